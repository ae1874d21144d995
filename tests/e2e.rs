//! End to end, as a user installs it: `crds/` and `deploy/` applied with kubectl, the examples from
//! `deploy/examples/` applied as written, and the built `secretsync` binary running with the token of the
//! ServiceAccount from `deploy/` (never the admin identity), two replicas with leader election.
//!
//! Runs against whatever `KUBECONFIG` names (`make e2e`): the test bed by default. Where the test bed's audit log is
//! available (`TESTBED_AUDIT_LOG`), it also proves that the ClusterRole and Role grant exactly what the controller
//! uses: a granted-but-unused permission fails the test, and so does a denied request, but for the one this test
//! provokes: a TokenRequest in a namespace that has not granted it (deploy/ holds no cluster-wide right to tokens).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

const EXAMPLES_NS: &str = "examples";
const LEASE_SECONDS: u64 = 6;

mod support;
use support::{env, substitute};
#[path = "support/cluster.rs"]
mod cluster;
use cluster::{
    SYSTEM_NS, install_crds_and_namespace, kubectl, kubectl_try, ready_reason, root,
    service_account_kubeconfig, sf_writes, wait_for,
};
#[path = "support/rbac_audit.rs"]
mod rbac_audit;
use rbac_audit::{audit_lines, audited, covers, granted};
#[path = "support/replica.rs"]
mod replica;
use replica::Replica;
#[path = "support/metrics_access.rs"]
mod metrics_access;
use metrics_access::{MetricsClient, scrape};

/// The Key Vault stand-in's control API: a JSON answer, with the stand-in's CA.
fn azurekv_control(args: &[&str]) -> Value {
    let out = Command::new("curl")
        .args(["-sf", "--cacert", &env("AZUREKV_CA_CERT")])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "curl {args:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A new app registration of the Key Vault stand-in's Entra ID that trusts exactly `subject`, a ServiceAccount of
/// the test bed's issuer: its client ID.
fn federated_app(subject: &str) -> String {
    let app = azurekv_control(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "--data",
        &serde_json::json!({"issuer": env("TESTBED_SA_ISSUER"), "subject": subject,
            "public_key": std::fs::read_to_string(env("TESTBED_SA_PUBLIC_KEY")).unwrap()})
        .to_string(),
        &format!("{}/federate", env("AZUREKV_CONTROL")),
    ]);
    app["client_id"].as_str().unwrap().to_owned()
}

/// Asserts that every assertion presented to the app registration `client_id` was `subject`'s.
fn presented_only(client_id: &str, subject: &str) {
    let seen = azurekv_control(&[&format!("{}/subjects", env("AZUREKV_CONTROL"))]);
    support::assert_presented_only(&seen, client_id, subject);
}

/// A store's spec for the Key Vault stand-in with workload identity through `service_account`.
fn key_vault_spec(credentials: Value, service_account: Value) -> Value {
    serde_json::json!({"dialect": "AzureKeyVault", "endpoint": env("AZUREKV_ENDPOINT"),
        "credentialsRef": credentials,
        "caBundle": std::fs::read_to_string(env("AZUREKV_CA_CERT")).unwrap(),
        "serviceAccountRef": service_account,
        "azureKeyVault": {"authorityHost": env("AZUREKV_AUTHORITY")}})
}

fn store(ns: &str, name: &str) -> Value {
    serde_json::from_str(&kubectl(
        &["-n", ns, "get", "store", name, "-o", "json"],
        None,
    ))
    .unwrap()
}

fn ready_message(obj: &Value) -> String {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Workload identity through a team's Store, under the controller's own RBAC, which holds no cluster-wide right
/// to tokens: until the namespace grants the controller its ServiceAccount's tokens, the API server refuses the
/// TokenRequest and the store says how to grant it (TokenNotGranted); the namespace admin runs the two commands
/// from that message, and the Key Vault stand-in's Entra ID, trusting exactly the namespace's ServiceAccount, sees
/// it (not the controller's identity) as the subject.
fn workload_identity_through_a_store(ns: &str) {
    let subject = format!("system:serviceaccount:{ns}:vault-writer");
    let client_id = federated_app(&subject);
    kubectl(
        &["-n", ns, "create", "serviceaccount", "vault-writer"],
        None,
    );
    let objects = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "vault-ids", "namespace": ns},
         "stringData": {"tenantId": env("AZUREKV_TENANT_ID"), "clientId": client_id}},
        {"apiVersion": "secretsync.io/v1alpha1", "kind": "Store", "metadata": {"name": "vault", "namespace": ns},
         "spec": key_vault_spec(serde_json::json!({"name": "vault-ids"}),
                                serde_json::json!({"name": "vault-writer"}))},
        {"apiVersion": "secretsync.io/v1alpha1", "kind": "SecretSync", "metadata": {"name": "wi", "namespace": ns},
         "spec": {"source": {"secretRef": {"name": "src", "key": "k"}},
                  "target": {"storeRef": {"kind": "Store", "name": "vault"},
                             "remoteName": format!("e2e-wi-{:08x}", rand::random::<u32>())}}}
    ]});
    kubectl(&["apply", "-f", "-"], Some(&objects.to_string()));

    // Not granted: the store and its SecretSync say so, with the commands that grant it.
    wait_for(
        "the store reads TokenNotGranted",
        Duration::from_secs(60),
        || ready_reason(&store(ns, "vault")) == "False/TokenNotGranted",
    );
    wait_for(
        "the SecretSync reads TokenNotGranted",
        Duration::from_secs(60),
        || ready_reason(&ssync(ns, "wi")) == "False/TokenNotGranted",
    );
    let message = ready_message(&store(ns, "vault"));
    let role = "secretsync-token-vault-writer";
    let commands = format!(
        "kubectl -n {ns} create role {role} --verb=create --resource=serviceaccounts/token \
         --resource-name=vault-writer && kubectl -n {ns} create rolebinding {role} --role={role} \
         --serviceaccount={SYSTEM_NS}:secretsync"
    );
    assert!(
        message.ends_with(&commands),
        "the message does not end with the commands that grant the token:\n{message}\n{commands}"
    );
    // The namespace admin runs them as written.
    for command in commands.split(" && ") {
        let args: Vec<&str> = command.split_whitespace().skip(1).collect();
        kubectl(&args, None);
    }
    // The store's admin applies it again (a change of its spec is checked at once; otherwise within the
    // store check's 5 minutes): the token is granted, exchanged, and the SecretSync syncs.
    kubectl(
        &[
            "-n",
            ns,
            "patch",
            "store",
            "vault",
            "--type=merge",
            "-p",
            r#"{"spec":{"rateLimit":{"requestsPerSecond":10}}}"#,
        ],
        None,
    );
    kubectl(
        &[
            "-n",
            ns,
            "wait",
            "--for=condition=Ready",
            "ssync/wi",
            "--timeout=60s",
        ],
        None,
    );
    wait_for("the store is Ready", Duration::from_secs(60), || {
        ready_reason(&store(ns, "vault")) == "True/Checked"
    });
    presented_only(&client_id, &subject);
    kubectl(&["-n", ns, "delete", "ssync", "wi", "--timeout=30s"], None);
}

/// Workload identity through a platform admin's ClusterStore whose ServiceAccount is in secretsync-system, where
/// deploy/ grants the controller tokens (the Role secretsync-tokens): Ready at once, used by a SecretSync of `ns`.
fn workload_identity_through_a_cluster_store(ns: &str) {
    let account = format!("vault-writer-{ns}");
    let subject = format!("system:serviceaccount:{SYSTEM_NS}:{account}");
    let client_id = federated_app(&subject);
    let ids = format!("{ns}-vault-ids");
    let mut spec = key_vault_spec(
        serde_json::json!({"name": ids, "namespace": SYSTEM_NS}),
        serde_json::json!({"name": account, "namespace": SYSTEM_NS}),
    );
    spec["conditions"] = serde_json::json!([{"namespaces": [ns]}]);
    let mut objects = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account, "namespace": SYSTEM_NS}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": ids, "namespace": SYSTEM_NS},
         "stringData": {"tenantId": env("AZUREKV_TENANT_ID"), "clientId": client_id}},
        {"apiVersion": "secretsync.io/v1alpha1", "kind": "ClusterStore", "metadata": {"name": ns}, "spec": spec},
    ]});
    let sync = serde_json::json!({"apiVersion": "secretsync.io/v1alpha1", "kind": "SecretSync",
        "metadata": {"name": "wi-cluster", "namespace": ns},
        "spec": {"source": {"secretRef": {"name": "src", "key": "k"}},
                 "target": {"storeRef": {"kind": "ClusterStore", "name": ns},
                            "remoteName": format!("e2e-wi-cluster-{:08x}", rand::random::<u32>())}}});
    objects["items"].as_array_mut().unwrap().push(sync);
    kubectl(&["apply", "-f", "-"], Some(&objects.to_string()));
    kubectl(
        &[
            "-n",
            ns,
            "wait",
            "--for=condition=Ready",
            "ssync/wi-cluster",
            "--timeout=60s",
        ],
        None,
    );
    kubectl(
        &[
            "wait",
            "--for=condition=Ready",
            &format!("clusterstore/{ns}"),
            "--timeout=60s",
        ],
        None,
    );
    presented_only(&client_id, &subject);
    kubectl(
        &["-n", ns, "delete", "ssync", "wi-cluster", "--timeout=30s"],
        None,
    );
    kubectl(&["delete", "clusterstore", ns, "--timeout=30s"], None);
    kubectl(
        &[
            "-n",
            SYSTEM_NS,
            "delete",
            "secret",
            &ids,
            "--ignore-not-found",
        ],
        None,
    );
    kubectl(
        &[
            "-n",
            SYSTEM_NS,
            "delete",
            "serviceaccount",
            &account,
            "--ignore-not-found",
        ],
        None,
    );
}

/// deploy/'s store authority policy is bound cluster-wide too; like `cluster::AdmissionBinding`, the binding goes
/// when the test ends. (Other tests write stores as the test bed's admin, whom it lets through; the tests of the
/// policy itself, tests/store_authority.rs, bind their own copies.)
struct StoreAuthorityBinding;

impl Drop for StoreAuthorityBinding {
    fn drop(&mut self) {
        let _ = kubectl_try(
            &[
                "delete",
                "validatingadmissionpolicybinding",
                "secretsync-store-authority",
                "--ignore-not-found",
            ],
            None,
        );
    }
}

fn examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("deploy/examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn ssync(ns: &str, name: &str) -> Value {
    serde_json::from_str(&kubectl(
        &["-n", ns, "get", "ssync", name, "-o", "json"],
        None,
    ))
    .unwrap()
}

#[test]
fn installs_with_kubectl_runs_under_its_own_rbac_and_hands_over_leadership() {
    let dir = tempfile::tempdir().unwrap();
    let audit = std::env::var("TESTBED_AUDIT_LOG").ok();
    let audit_start = audit.as_deref().map(audit_lines).unwrap_or(0);

    // Install as the README says, proving first that the server accepts every object, without a warning.
    let dry = Command::new("kubectl")
        .args([
            "apply",
            "--server-side",
            "--dry-run=server",
            "--force-conflicts",
            "-f",
            "crds/",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&dry.stderr),
        "",
        "the API server warns about the CRD"
    );
    install_crds_and_namespace();
    kubectl(&["apply", "--dry-run=server", "-k", "deploy/"], None);
    kubectl(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-k",
            "deploy/",
        ],
        None,
    );
    // deploy/'s admission policy refuses inline targets at apply (it takes effect within seconds).
    let _binding = cluster::AdmissionBinding;
    let _authority = StoreAuthorityBinding;
    let inline = format!(
        r#"apiVersion: secretsync.io/v1alpha1
kind: SecretSync
metadata: {{name: inline, namespace: {SYSTEM_NS}}}
spec:
  source: {{secretRef: {{name: s}}}}
  target: {{dialect: DockerSwarm}}
"#
    );
    wait_for(
        "the admission policy refuses an inline target",
        Duration::from_secs(30),
        || {
            kubectl_try(&["apply", "--dry-run=server", "-f", "-"], Some(&inline))
                .is_err_and(|e| e.contains("spec.target.storeRef"))
        },
    );
    // A clean start: the controller must create its digest key and Lease itself (that is what the Role is for).
    let _ = kubectl_try(
        &[
            "-n",
            SYSTEM_NS,
            "delete",
            "secret",
            "secretsync-digest-key",
            "--ignore-not-found",
        ],
        None,
    );
    let _ = kubectl_try(
        &[
            "-n",
            SYSTEM_NS,
            "delete",
            "lease",
            "secretsync",
            "--ignore-not-found",
        ],
        None,
    );

    // The examples pass server-side validation as written (after the endpoints are filled in).
    let manifests: Vec<String> = examples()
        .iter()
        .map(|p| substitute(&std::fs::read_to_string(p).unwrap()))
        .collect();
    kubectl(&["apply", "--server-side", "-f", "-"], Some(&manifests[0]));
    for m in &manifests {
        kubectl(&["apply", "--dry-run=server", "-f", "-"], Some(m));
    }

    // Two replicas, each with the ServiceAccount's own token.
    let kubeconfig = service_account_kubeconfig(&dir.path().join("secretsync.kubeconfig"), None);
    let lease_seconds = LEASE_SECONDS.to_string();
    let lease_args = ["--lease-seconds", lease_seconds.as_str()];
    let mut a = Replica::start("e2e-a", &kubeconfig, dir.path(), &lease_args);
    let mut b = Replica::start("e2e-b", &kubeconfig, dir.path(), &lease_args);
    wait_for("a leader is elected", Duration::from_secs(60), || {
        a.leads() || b.leads()
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !(a.leads() && b.leads()),
        "both replicas lead:\n{}\n{}",
        a.log(),
        b.log()
    );
    let (leader, follower) = if a.leads() {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };

    for m in &manifests {
        kubectl(&["apply", "--server-side", "-f", "-"], Some(m));
    }
    let ready = kubectl_try(
        &[
            "wait",
            "--for=condition=Ready",
            "ssync",
            "--all",
            "-n",
            EXAMPLES_NS,
            "--timeout=180s",
        ],
        None,
    );
    if let Err(e) = ready {
        panic!(
            "examples not Ready: {e}\n{}\nleader log:\n{}",
            kubectl(&["get", "ssync", "-A", "-o", "wide"], None),
            leader.log()
        );
    }
    // Both are ready: the leader has synced its watches, the standby is ready to take over (a rolling update
    // waits for it).
    // (The examples may be Ready from an earlier run before this leader's watches have synced.)
    wait_for("the leader is ready", Duration::from_secs(60), || {
        leader.ready()
    });
    // /metrics as a Prometheus bound to deploy/'s reader role scrapes it: the controller's own TokenReview and
    // SubjectAccessReview of that client are part of the RBAC comparison below.
    let (status, _) = scrape(leader.metrics_port, None);
    assert_eq!(status, 401, "/metrics without a token");
    let reader = MetricsClient::new(SYSTEM_NS, "e2e-metrics-reader", true);
    let (status, metrics) = scrape(leader.metrics_port, Some(&reader.token));
    assert_eq!(status, 200, "/metrics with the reader role: {metrics}");
    // Scraped again within the minute an allowance is kept: no further review (counted in the audit log below).
    for _ in 0..4 {
        assert_eq!(scrape(leader.metrics_port, Some(&reader.token)).0, 200);
    }
    for series in [
        "secretsync_reconciles_total{",
        "secretsync_reconcile_duration_seconds_bucket{",
        "secretsync_backend_requests_total{",
        "secretsync_remote_writes_total{",
        "secretsync_queue_depth ",
    ] {
        assert!(
            metrics.contains(series),
            "no {series} in /metrics:\n{metrics}"
        );
    }
    for dialect in [
        "AzureKeyVault",
        "Barbican",
        "DockerSwarm",
        "ServiceFabricMesh",
        "TencentSSM",
        "AWSSecretsManager",
        "Vault",
    ] {
        assert!(
            metrics.contains(&format!("dialect=\"{dialect}\"")),
            "no {dialect} requests in /metrics"
        );
    }
    assert!(
        !metrics.contains("correct horse battery staple"),
        "a value leaked into /metrics"
    );
    assert!(follower.ready(), "the standby replica is not ready");
    assert_eq!(
        follower.reconciles(),
        0,
        "the follower reconciled:\n{}",
        follower.log()
    );

    // Nothing is written while in sync, by either replica.
    let sf_remote = ssync(EXAMPLES_NS, "db-password-sf")["status"]["remote"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let writes = sf_writes(&sf_remote);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        sf_writes(&sf_remote),
        writes,
        "an in-sync object was written again"
    );

    // The leader dies without a goodbye: the follower takes over once the lease runs out.
    leader.kill();
    let took = wait_for(
        "the follower takes over",
        Duration::from_secs(LEASE_SECONDS * 4 + 10),
        || follower.leads(),
    );
    eprintln!("handover after the leader was killed: {took:?} (lease {LEASE_SECONDS}s)");

    // The new leader follows a source change, in every dialect: each example reports a new synced digest.
    let before = ssync(EXAMPLES_NS, "db-password-sf")["status"]["remote"]["version"].clone();
    let list = |ns: &str| -> Vec<Value> {
        let v: Value =
            serde_json::from_str(&kubectl(&["-n", ns, "get", "ssync", "-o", "json"], None))
                .unwrap();
        v["items"].as_array().cloned().unwrap_or_default()
    };
    let digests: Vec<(String, Value)> = list(EXAMPLES_NS)
        .iter()
        .map(|o| {
            (
                o["metadata"]["name"].as_str().unwrap().to_owned(),
                o["status"]["syncedDigest"].clone(),
            )
        })
        .collect();
    assert!(digests.len() >= 3, "too few examples: {digests:?}");
    kubectl(
        &[
            "-n",
            EXAMPLES_NS,
            "patch",
            "secret",
            "db-password",
            "-p",
            r#"{"stringData":{"password":"rotated-by-e2e"}}"#,
        ],
        None,
    );
    wait_for(
        "the change reaches the store",
        Duration::from_secs(60),
        || {
            let s = ssync(EXAMPLES_NS, "db-password-sf");
            s["status"]["remote"]["version"] != before && ready_reason(&s) == "True/Synced"
        },
    );
    wait_for(
        "every dialect pushes the change",
        Duration::from_secs(90),
        || {
            list(EXAMPLES_NS).iter().all(|o| {
                let name = o["metadata"]["name"].as_str().unwrap();
                let old = digests.iter().find(|(n, _)| n == name).map(|(_, d)| d);
                ready_reason(o) == "True/Synced" && Some(&o["status"]["syncedDigest"]) != old
            })
        },
    );
    let delta = sf_writes(&sf_remote) - writes;
    // One value version, the description that lists the versions, and at most one prune of a superseded version
    // (retainVersions: 2). A second writer would double this.
    assert!(
        delta <= 3,
        "{delta} writes for one change: something wrote twice"
    );

    // Deletion with a finalizer, and a Warning that repeats (the Event is patched, not duplicated).
    let ns = format!("e2e-{:08x}", rand::random::<u32>());
    kubectl(&["create", "namespace", &ns], None);
    let remote = format!("instant-e2e-{:08x}", rand::random::<u32>());
    let objects = format!(
        r#"apiVersion: v1
kind: Secret
metadata: {{name: src, namespace: {ns}}}
stringData: {{k: e2e-value}}
---
apiVersion: secretsync.io/v1alpha1
kind: Store
metadata: {{name: sf, namespace: {ns}}}
spec: {{dialect: ServiceFabricMesh, endpoint: "{}"}}
---
apiVersion: secretsync.io/v1alpha1
kind: SecretSync
metadata: {{name: gone, namespace: {ns}}}
spec:
  source: {{secretRef: {{name: src, key: k}}}}
  target: {{storeRef: {{kind: Store, name: sf}}, remoteName: {remote}}}
  deletionPolicy: Delete
"#,
        env("SF_ENDPOINT")
    );
    kubectl(&["apply", "-f", "-"], Some(&objects));
    kubectl(
        &[
            "-n",
            &ns,
            "wait",
            "--for=condition=Ready",
            "ssync/gone",
            "--timeout=60s",
        ],
        None,
    );
    workload_identity_through_a_store(&ns);
    workload_identity_through_a_cluster_store(&ns);
    // A second SecretSync for the same remote secret is a Conflict (the controller looks the owner up).
    let rival = format!(
        r#"apiVersion: secretsync.io/v1alpha1
kind: SecretSync
metadata: {{name: rival, namespace: {ns}}}
spec:
  source: {{secretRef: {{name: src, key: k}}}}
  target: {{storeRef: {{kind: Store, name: sf}}, remoteName: {remote}}}
"#
    );
    kubectl(&["apply", "-f", "-"], Some(&rival));
    wait_for(
        "the rival reports a Conflict",
        Duration::from_secs(30),
        || ready_reason(&ssync(&ns, "rival")) == "False/Conflict",
    );
    kubectl(&["-n", &ns, "delete", "ssync", "rival"], None);
    for _ in 0..2 {
        kubectl(&["-n", &ns, "delete", "secret", "src"], None);
        wait_for("SourceNotFound", Duration::from_secs(30), || {
            ready_reason(&ssync(&ns, "gone")) == "False/SourceNotFound"
        });
        kubectl(&["apply", "-f", "-"], Some(&objects));
        kubectl(
            &[
                "-n",
                &ns,
                "wait",
                "--for=condition=Ready",
                "ssync/gone",
                "--timeout=60s",
            ],
            None,
        );
    }
    // The store refuses the first three DELETEs (every in-place attempt of the first cleanup): a blocked cleanup
    // checks whether its namespace is being deleted (from the namespaces watch), then a retry after backoff succeeds.
    let fault = Command::new("curl")
        .args([
            "-sf",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
        ])
        .arg(format!(
            r#"{{"secret": "{remote}", "method": "DELETE", "status": 500, "times": 3}}"#
        ))
        .arg(format!("{}/_emulator/faults", env("SF_ENDPOINT")))
        .status()
        .unwrap();
    assert!(fault.success(), "fault not installed");
    kubectl(
        &["-n", &ns, "delete", "ssync", "gone", "--timeout=60s"],
        None,
    );
    let status = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!(
            "{}/Resources/Secrets/{remote}?api-version=6.4-preview",
            env("SF_ENDPOINT")
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&status.stdout),
        "404",
        "remote secret left behind"
    );
    let events: Value =
        serde_json::from_str(&kubectl(&["-n", &ns, "get", "events", "-o", "json"], None)).unwrap();
    assert!(
        !serde_json::to_string(&events)
            .unwrap()
            .contains("e2e-value"),
        "a value leaked into an Event"
    );
    // Deleting the examples while the controller runs releases their finalizers. (The namespace stays: without the
    // node the test bed runs no namespace controller, and a deleted namespace would stay Terminating and refuse
    // new objects.)
    kubectl(
        &[
            "-n",
            EXAMPLES_NS,
            "delete",
            "ssync",
            "--all",
            "--wait=true",
            "--timeout=60s",
        ],
        None,
    );
    follower.terminate();
    for replica in [&a, &b] {
        let log = replica.log();
        for value in [
            "rotated-by-e2e",
            "correct horse battery staple",
            "e2e-value",
        ] {
            assert!(
                !log.contains(value),
                "a value leaked into the log of {}",
                replica.name
            );
        }
    }

    // RBAC: nothing denied, nothing granted that was not used.
    if let Some(path) = audit {
        std::thread::sleep(Duration::from_secs(2)); // the audit log is written in batches
        let audit = audited(&path, audit_start);
        let (used, denied) = (audit.used, audit.denied);
        let access_reviews = audit
            .counts
            .get(&(
                "authorization.k8s.io".to_owned(),
                "subjectaccessreviews".to_owned(),
                "create".to_owned(),
                String::new(),
            ))
            .copied();
        assert_eq!(
            access_reviews,
            Some(1),
            "five scrapes with one token within a minute: one SubjectAccessReview"
        );
        // One denial is expected, and only that one: the TokenRequests for the ServiceAccount of `ns` before that
        // namespace granted them (`workload_identity_through_a_store`), which the API server must refuse.
        let not_granted = format!(
            "{:?}",
            (String::new(), "serviceaccounts/token", "create", &ns)
        );
        let (expected, denied): (Vec<_>, Vec<_>) =
            denied.into_iter().partition(|d| *d == not_granted);
        assert!(
            !expected.is_empty(),
            "the TokenRequest of an ungranted namespace was not refused by RBAC"
        );
        assert!(denied.is_empty(), "the controller was denied: {denied:#?}");
        let unused: Vec<_> = granted()
            .into_iter()
            .filter(|grant| !used.iter().any(|u| covers(grant, u)))
            .collect();
        assert!(
            unused.is_empty(),
            "granted in deploy/ but never used: {unused:#?}\nused: {used:#?}"
        );
    } else {
        eprintln!(
            "TESTBED_AUDIT_LOG not set: the RBAC comparison needs the test bed's audit log; skipped"
        );
    }
}

#[test]
fn the_binary_answers_version_and_prints_the_committed_crds() {
    let out = Command::new(env!("CARGO_BIN_EXE_secretsync"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("secretsync {}", env!("CARGO_PKG_VERSION"))
    );
    let out = Command::new(env!("CARGO_BIN_EXE_secretsync"))
        .arg("crd")
        .output()
        .unwrap();
    // `cat crds/*.yaml`: the files in name order.
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("crds"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let committed: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert_eq!(String::from_utf8_lossy(&out.stdout), committed);
}

/// `make image` with the test bed's own Docker engine; then the binary in the image must start.
#[test]
fn the_image_builds_and_its_binary_starts() {
    let Ok(socket) = std::env::var("DOCKER_NOSWARM_SOCKET") else {
        panic!("DOCKER_NOSWARM_SOCKET is not set: the image is built with the test bed's dockerd");
    };
    let host = format!("unix://{socket}");
    let status = Command::new("bash")
        .arg(root().join("deploy/image/build.sh"))
        .env("DOCKER_HOST", &host)
        .status()
        .unwrap();
    assert!(status.success(), "deploy/image/build.sh failed");
    let docker = |args: &[&str]| {
        Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", &host)
            .output()
            .unwrap()
    };
    let inspect = docker(&[
        "image",
        "inspect",
        "secretsync:dev",
        "--format",
        "{{.Config.User}} {{json .Config.Entrypoint}}",
    ]);
    assert!(
        inspect.status.success(),
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&inspect.stdout).trim(),
        r#"65532:65532 ["/secretsync"]"#
    );
    let run = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "secretsync:dev",
        "--version",
    ]);
    let version = if run.status.success() {
        String::from_utf8_lossy(&run.stdout).into_owned()
    } else {
        // Some sandboxes cannot start containers at all; then run the very file the image holds.
        eprintln!(
            "docker run failed ({}); running the binary copied out of the image",
            String::from_utf8_lossy(&run.stderr).trim()
        );
        let dir = tempfile::tempdir().unwrap();
        let id = String::from_utf8_lossy(&docker(&["create", "secretsync:dev"]).stdout)
            .trim()
            .to_owned();
        let bin = dir.path().join("secretsync");
        let cp = docker(&["cp", &format!("{id}:/secretsync"), bin.to_str().unwrap()]);
        docker(&["rm", &id]);
        assert!(
            cp.status.success(),
            "{}",
            String::from_utf8_lossy(&cp.stderr)
        );
        let out = Command::new(&bin).arg("--version").output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        version.trim(),
        format!("secretsync {}", env!("CARGO_PKG_VERSION"))
    );
}
