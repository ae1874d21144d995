//! Moving from External Secrets Operator (issue #33), end to end on the test bed: a Secrets Manager (moto) filled
//! as ESO's PushSecret leaves it (its `managed-by: external-secrets` tag; one value equal to the source, one
//! different, one secret missing), ESO's manifests converted with `secretsync convert` (the PushSecret's three
//! entries become one SecretSync of three `spec.data` rules, issue #30), applied in `Observe` mode next to it, then
//! switched to `Sync`.
//!
//! Observe must read the store exactly as Sync does and write nothing; Sync must then carry out exactly the plan
//! Observe showed: the missing and the different secret written, the equal one only marked (no new version).

#[path = "support/aws_call.rs"]
mod aws_call;
mod support;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, Patch, PatchParams, PostParams};

use secretsync::api::SecretSync;
use secretsync::controller;
use secretsync::dialects::{Registry, Shared};
use secretsync::metrics::Metrics;
use secretsync::plan::digest::DigestKey;
use serde_json::{Value, json};
use support::env;

const LIMIT: Duration = Duration::from_secs(90);

/// A secret as ESO's PushSecret creates one in Secrets Manager: a string value and ESO's tag.
async fn put_as_eso(name: &str, value: &str) {
    let (status, answer) = aws_call::call(
        "CreateSecret",
        json!({"Name": name, "SecretString": value,
               "Tags": [{"Key": "managed-by", "Value": "external-secrets"}]}),
    )
    .await;
    assert_eq!(status, 200, "CreateSecret {name}: {answer}");
}

/// The secret's versions and tags as Secrets Manager reports them (`None` when it does not exist).
async fn describe(name: &str) -> Option<(Value, Value)> {
    let (status, d) = aws_call::call("DescribeSecret", json!({"SecretId": name})).await;
    (status == 200).then(|| (d["VersionIdsToStages"].clone(), d["Tags"].clone()))
}

async fn current_value(name: &str) -> Option<String> {
    let (status, v) = aws_call::call("GetSecretValue", json!({"SecretId": name})).await;
    (status == 200).then(|| v["SecretString"].as_str().unwrap_or_default().to_owned())
}

fn tag<'a>(tags: &'a Value, key: &str) -> Option<&'a str> {
    tags.as_array()?
        .iter()
        .find(|t| t["Key"] == key)
        .and_then(|t| t["Value"].as_str())
}

/// ESO's manifests for this namespace: a SecretStore with access keys and one PushSecret of three keys.
fn eso_manifests(ns: &str, prefix: &str) -> String {
    format!(
        r#"apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: aws
  namespace: {ns}
spec:
  provider:
    aws:
      service: SecretsManager
      region: {region}
      auth:
        secretRef:
          accessKeyIDSecretRef: {{name: aws-keys, key: accessKeyId}}
          secretAccessKeySecretRef: {{name: aws-keys, key: secretAccessKey}}
---
apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata:
  name: app
  namespace: {ns}
spec:
  refreshInterval: 10s
  updatePolicy: Replace
  deletionPolicy: None
  secretStoreRefs:
    - name: aws
      kind: SecretStore
  selector:
    secret:
      name: app
  data:
    - match: {{secretKey: equal, remoteRef: {{remoteKey: {prefix}/equal}}}}
    - match: {{secretKey: differs, remoteRef: {{remoteKey: {prefix}/differs}}}}
    - match: {{secretKey: missing, remoteRef: {{remoteKey: {prefix}/missing}}}}
"#,
        region = env("AWSSM_REGION"),
    )
}

/// `secretsync convert` on `input` (stdin): its output, stderr and exit status.
fn convert(input: &str) -> (String, String, i32) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_secretsync"))
        .arg("convert")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("secretsync convert runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("input written");
    let out = child.wait_with_output().expect("convert finishes");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

fn kubectl_apply(manifests: &str) {
    let mut child = Command::new("kubectl")
        .args([
            "apply",
            "--server-side",
            "--field-manager=eso-migration-test",
            "-f",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(manifests.as_bytes())
        .expect("manifests written");
    let out = child.wait_with_output().expect("kubectl finishes");
    assert!(
        out.status.success(),
        "kubectl apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits until `pred` holds for the SecretSync's status; returns it.
async fn wait_status(
    api: &Api<SecretSync>,
    name: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let end = Instant::now() + LIMIT;
    loop {
        let obj = api.get(name).await.expect("SecretSync exists");
        let status = serde_json::to_value(&obj.status).unwrap_or(Value::Null);
        if pred(&status) {
            return status;
        }
        assert!(
            Instant::now() < end,
            "{name}: not {what} within {LIMIT:?}: {status}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_next_to_eso_then_sync_writes_only_what_differs() {
    let client = support::admin::admin().await;
    support::crds::install_crds(&client).await;
    let ns = support::admin::namespace(&client, "eso-move").await;
    let prefix = format!("eso-move/{}", support::unique::unique("run"));
    let (same, other) = (
        support::unique::unique("same"),
        support::unique::unique("other"),
    );
    put_as_eso(&format!("{prefix}/equal"), &same).await;
    put_as_eso(
        &format!("{prefix}/differs"),
        "what ESO pushed before the Secret changed",
    )
    .await;
    let before_equal = describe(&format!("{prefix}/equal"))
        .await
        .expect("equal exists");
    let before_differs = describe(&format!("{prefix}/differs"))
        .await
        .expect("differs exists");

    // The team's Secret and the store's credentials, as they were under ESO.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    for (name, data) in [
        (
            "app",
            json!({"equal": same, "differs": other, "missing": other}),
        ),
        (
            "aws-keys",
            json!({"accessKeyId": env("AWSSM_ACCESS_KEY_ID"), "secretAccessKey": env("AWSSM_SECRET_ACCESS_KEY")}),
        ),
    ] {
        let secret: Secret =
            serde_json::from_value(json!({"metadata": {"name": name}, "stringData": data}))
                .unwrap();
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .expect("Secret created");
    }

    // Convert. The keys are already named as SecretSync reads them, so nothing is dropped; the PushSecret's three
    // entries are the three rules of one SecretSync.
    let (converted, stderr, code) = convert(&eso_manifests(&ns, &prefix));
    assert_eq!(code, 0, "convert dropped something:\n{stderr}\n{converted}");
    assert_eq!(
        converted.matches("kind: SecretSync\n").count(),
        1,
        "{converted}"
    );
    assert!(converted.contains("mode: Observe"), "{converted}");
    // The admin's part: where this test bed's Secrets Manager is, and letting SecretSync take over ESO's secrets.
    let mut docs: Vec<Value> = serde_yaml_docs(&converted);
    for doc in &mut docs {
        if doc["kind"] == "Store" {
            doc["spec"]["endpoint"] = json!(env("AWSSM_ENDPOINT"));
            doc["spec"]["caBundle"] =
                json!(std::fs::read_to_string(env("AWSSM_CA_CERT")).expect("moto CA"));
            doc["spec"]["adoption"] = json!("Unmarked");
        }
    }
    let applied: String = docs
        .iter()
        .map(|d| format!("---\n{}", yaml_serde::to_string(d).expect("yaml")))
        .collect();
    kubectl_apply(&applied);

    let metrics = Metrics::new();
    let shared = Shared::new(50, 50, metrics.clone());
    let config = controller::Config {
        namespaces: vec![ns.clone()],
        selector: None,
        concurrency: 4,
        digest_key: DigestKey::new(rand::random::<[u8; 32]>().to_vec()).expect("key"),
        cluster_id: "test-bed".into(),
        metrics: metrics.clone(),
        ready: Arc::new(AtomicBool::new(false)),
        instance: format!("test-{ns}"),
        cleanup_timeout: Duration::from_secs(60),
        panic_on: None,
        allow_inline_targets: false,
        limits: controller::store_limits::StoreLimits {
            namespaced_store_hosts: env("SECRETSYNC_NAMESPACED_STORE_HOSTS")
                .split(',')
                .map(str::to_owned)
                .collect(),
            ..Default::default()
        },
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(controller::run(
        client.clone(),
        config,
        Registry::standard(&shared),
        async move {
            let _ = stopped.await;
        },
    ));

    // Observe: the plan for each remote secret (in name order), the first one's verdict, and none in sync.
    let syncs: Api<SecretSync> = Api::namespaced(client.clone(), &ns);
    let name = "app";
    let s = wait_status(&syncs, name, "observed", |s| s["phase"] == "Observing").await;
    assert_eq!(support::status::ready(&s), "True/Observing", "{s}");
    assert_eq!(support::status::in_sync(&s), "False/ValueDiffers", "{s}");
    let remote = |r: &str| format!("{prefix}/{r}");
    assert_eq!(
        s["plan"],
        json!([
            {"name": remote("differs"), "action": "Adopt"},
            {"name": remote("equal"), "action": "Adopt"},
            {"name": remote("missing"), "action": "Create"},
        ]),
        "{s}"
    );
    assert_eq!(s["remotesInSync"], "0/3", "{s}");
    // Observing wrote nothing: the store is as ESO left it, and the controller counted no write.
    assert_eq!(
        describe(&format!("{prefix}/equal")).await.as_ref(),
        Some(&before_equal)
    );
    assert_eq!(
        describe(&format!("{prefix}/differs")).await.as_ref(),
        Some(&before_differs)
    );
    assert!(describe(&format!("{prefix}/missing")).await.is_none());
    assert!(
        !metrics.render().contains("secretsync_remote_writes_total{"),
        "{}",
        metrics.render()
    );

    // Sync: exactly the plan shown.
    syncs
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"mode": "Sync"}})),
        )
        .await
        .expect("switched to Sync");
    let s = wait_status(&syncs, name, "Ready", |s| s["phase"] == "Ready").await;
    assert_eq!(
        support::status::in_sync(&s),
        "",
        "InSync is shown while observing only"
    );
    assert_eq!(s["remotesInSync"], "3/3", "{s}");
    let (versions, tags) = describe(&format!("{prefix}/equal"))
        .await
        .expect("equal exists");
    assert_eq!(
        versions, before_equal.0,
        "the equal secret got a new version"
    );
    assert!(
        tag(&tags, "secretsync-owner").is_some(),
        "the equal secret is not marked: {tags}"
    );
    assert_eq!(
        current_value(&format!("{prefix}/equal")).await.as_deref(),
        Some(same.as_str())
    );
    let (versions, _) = describe(&format!("{prefix}/differs"))
        .await
        .expect("differs exists");
    assert_ne!(
        versions, before_differs.0,
        "the different secret was not written"
    );
    assert_eq!(
        current_value(&format!("{prefix}/differs")).await.as_deref(),
        Some(other.as_str())
    );
    assert_eq!(
        current_value(&format!("{prefix}/missing")).await.as_deref(),
        Some(other.as_str())
    );

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("controller stops")
        .expect("controller did not panic");
    for remote in ["equal", "differs", "missing"] {
        aws_call::call(
            "DeleteSecret",
            json!({"SecretId": format!("{prefix}/{remote}"), "ForceDeleteWithoutRecovery": true}),
        )
        .await;
    }
    let _ = Api::<Namespace>::all(client)
        .delete(&ns, &Default::default())
        .await;
}

/// The documents of a multi-document YAML stream, comments and empty documents left out.
fn serde_yaml_docs(text: &str) -> Vec<Value> {
    text.split("\n---")
        .filter_map(|doc| {
            let doc: Value = yaml_serde::from_str(doc).ok()?;
            doc.is_object().then_some(doc)
        })
        .collect()
}
