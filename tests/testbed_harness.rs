//! Proof that the test bed is a real Kubernetes control plane: CRDs, watches, server-side apply on /status,
//! RBAC denial and grant, TokenRequest, and kubectl, all against the kube-apiserver started by
//! `tests/testbed/kube/up.sh`.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::authentication::v1::{SelfSubjectReview, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Config};
use serde_json::json;

#[path = "support/crds.rs"]
mod crds;
#[path = "support/env.rs"]
mod env;
use env::env;
#[path = "support/unique.rs"]
mod names;

async fn client_from(path: &str) -> Client {
    let kubeconfig = Kubeconfig::read_from(path).expect("kubeconfig readable");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig valid");
    Client::try_from(config).expect("client")
}

async fn admin() -> Client {
    client_from(&env("KUBECONFIG")).await
}

async fn namespace(client: &Client, prefix: &str) -> String {
    let name = names::unique(prefix);
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace created");
    name
}

const CRD_GROUP: &str = "harness.secretsync.io";

async fn widget_crd(client: &Client) -> ApiResource {
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": format!("widgets.{CRD_GROUP}")},
        "spec": {
            "group": CRD_GROUP,
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
                    "status": {"type": "object", "properties": {"state": {"type": "string"}}}
                }}}
            }]
        }
    }))
    .unwrap();
    crds::install_crd(client, crd).await;
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(CRD_GROUP, "v1", "Widget"), "widgets")
}

#[tokio::test]
async fn crd_becomes_established_and_its_objects_can_be_created_read_and_watched() {
    let client = admin().await;
    let ar = widget_crd(&client).await;
    let ns = namespace(&client, "harness-crd").await;
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);

    let mut watch = widgets
        .watch(&WatchParams::default().timeout(30), "0")
        .await
        .expect("watch opened")
        .boxed();
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": format!("{CRD_GROUP}/v1"), "kind": "Widget",
        "metadata": {"name": "w1"}, "spec": {"size": 3}
    }))
    .unwrap();
    widgets
        .create(&PostParams::default(), &obj)
        .await
        .expect("created");
    let got = widgets.get("w1").await.expect("read back");
    assert_eq!(got.data["spec"]["size"], 3);

    loop {
        let event = tokio::time::timeout(Duration::from_secs(20), watch.try_next())
            .await
            .expect("event within 20 s")
            .expect("watch ok")
            .expect("stream open");
        match event {
            WatchEvent::Bookmark(_) => continue,
            WatchEvent::Added(o) => {
                assert_eq!(o.metadata.name.as_deref(), Some("w1"));
                break;
            }
            other => panic!("expected Added, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn secret_changes_arrive_through_a_watch() {
    let client = admin().await;
    let ns = namespace(&client, "harness-secret").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let mut watch = secrets
        .watch(&WatchParams::default().timeout(30), "0")
        .await
        .expect("watch opened")
        .boxed();

    let s: Secret = serde_json::from_value(json!({
        "metadata": {"name": "s1"}, "stringData": {"k": "one"}
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &s)
        .await
        .expect("created");
    let patch = json!({"stringData": {"k": "two"}});
    secrets
        .patch("s1", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("updated");

    let mut seen = Vec::new();
    while seen.len() < 2 {
        let ev = tokio::time::timeout(Duration::from_secs(20), watch.try_next())
            .await
            .expect("event within 20 s")
            .expect("watch ok")
            .expect("stream open");
        match ev {
            WatchEvent::Added(s) | WatchEvent::Modified(s) => {
                let v = s.data.unwrap_or_default()["k"].0.clone();
                seen.push(String::from_utf8(v).unwrap());
            }
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, ["one", "two"]);
}

#[tokio::test]
async fn server_side_apply_writes_the_status_subresource() {
    let client = admin().await;
    let ar = widget_crd(&client).await;
    let ns = namespace(&client, "harness-ssa").await;
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": format!("{CRD_GROUP}/v1"), "kind": "Widget",
        "metadata": {"name": "w2"}, "spec": {"size": 1}
    }))
    .unwrap();
    widgets
        .create(&PostParams::default(), &obj)
        .await
        .expect("created");

    let status = json!({
        "apiVersion": format!("{CRD_GROUP}/v1"), "kind": "Widget",
        "metadata": {"name": "w2"}, "status": {"state": "Ready"}
    });
    let pp = PatchParams::apply("testbed-harness").force();
    widgets
        .patch_status("w2", &pp, &Patch::Apply(&status))
        .await
        .expect("status applied");
    let got = widgets.get("w2").await.unwrap();
    assert_eq!(got.data["status"]["state"], "Ready");
    // The status subresource must not be writable through the main resource.
    let sneaky = json!({"status": {"state": "Sneaky"}});
    widgets
        .patch("w2", &PatchParams::default(), &Patch::Merge(&sneaky))
        .await
        .unwrap();
    assert_eq!(
        widgets.get("w2").await.unwrap().data["status"]["state"],
        "Ready"
    );
    let managers: Vec<String> = got
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers.iter().any(|m| m == "testbed-harness"),
        "{managers:?}"
    );
}

#[tokio::test]
async fn identity_without_rights_is_denied_until_a_role_binding_grants_it() {
    let client = admin().await;
    let ns = namespace(&client, "harness-rbac").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let s: Secret =
        serde_json::from_value(json!({"metadata": {"name": "s"}, "stringData": {"k": "v"}}))
            .unwrap();
    secrets.create(&PostParams::default(), &s).await.unwrap();

    let nobody = client_from(&env("TESTBED_KUBECONFIG_NOBODY")).await;
    let as_nobody: Api<Secret> = Api::namespaced(nobody, &ns);
    match as_nobody.get("s").await {
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 403),
        other => panic!("expected 403, got {other:?}"),
    }

    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "read-secrets"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
    }))
    .unwrap();
    Api::<Role>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "read-secrets"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-secrets"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": env("TESTBED_NOBODY_USER")}]
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();

    // RBAC changes reach the authorizer through its informer: allow a few seconds.
    let mut last = None;
    for _ in 0..40 {
        match as_nobody.get("s").await {
            Ok(s) => {
                assert_eq!(s.data.unwrap()["k"].0, b"v");
                return;
            }
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("still denied after the RoleBinding: {last:?}");
}

#[tokio::test]
async fn token_request_returns_a_token_the_server_accepts() {
    let client = admin().await;
    let ns = namespace(&client, "harness-token").await;
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
    let sa: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "robot"}})).unwrap();
    sas.create(&PostParams::default(), &sa).await.unwrap();

    let req = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(600),
            ..Default::default()
        },
        ..Default::default()
    };
    let issued = sas
        .create_token_request("robot", &PostParams::default(), &req)
        .await
        .expect("TokenRequest served");
    let token = issued.status.expect("token issued").token;

    let mut config = Config::from_kubeconfig(&KubeConfigOptions::default())
        .await
        .unwrap();
    config.auth_info = Default::default();
    config.auth_info.token = Some(token.into());
    let robot = Client::try_from(config).unwrap();
    let review: SelfSubjectReview = Api::all(robot)
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .expect("token accepted");
    let user = review.status.unwrap().user_info.unwrap().username.unwrap();
    assert_eq!(user, format!("system:serviceaccount:{ns}:robot"));
}

#[tokio::test]
async fn kubectl_server_side_apply_works() {
    let client = admin().await;
    let ns = namespace(&client, "harness-kubectl").await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("cm.yaml");
    std::fs::write(
        &manifest,
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n  namespace: {ns}\ndata:\n  a: b\n"),
    )
    .unwrap();
    let out = std::process::Command::new("kubectl")
        .args([
            "--kubeconfig",
            &env("KUBECONFIG"),
            "apply",
            "--server-side",
            "-f",
        ])
        .arg(&manifest)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cm: k8s_openapi::api::core::v1::ConfigMap =
        Api::namespaced(client, &ns).get("applied").await.unwrap();
    assert_eq!(cm.data.unwrap()["a"], "b");
}
