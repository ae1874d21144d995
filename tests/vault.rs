//! The Vault dialect against the test bed's real Vault (`tests/testbed/vault/`, KV version 2 at `secret/`), driven
//! through the `Dialect` trait and the real planner; what Vault holds is read back with the `vault` CLI of the same
//! build. The scenarios every dialect shares run in `tests/conformance/`; this file keeps what only Vault does:
//! check-and-set against a second writer, AppRole and Kubernetes sign-ins (the latter through a controller, with a
//! namespace's ServiceAccount), `maxVersions`, the KV map of a whole Secret, and a refused token as a condition.

mod support;

#[allow(dead_code)]
#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/dialect_case.rs"]
mod dialect_case;
#[path = "support/vault_cli.rs"]
mod vault_cli;

use std::sync::Arc;
use std::time::Duration;

use dialect_case::{Case, unique};
use secretsync::dialects::vault::Vault;
use secretsync::dialects::{Dialect, ErrorClass, Shared};
use secretsync::plan::{Observed, Plan, Refusal};
use secretsync::value::{Credentials, SecretValue};
use serde_json::{Value, json};
use support::env;

fn ca() -> SecretValue {
    SecretValue::new(std::fs::read(env("VAULT_CA_CERT")).expect("Vault's CA"))
}

fn creds(pairs: &[(&str, &str)]) -> Credentials {
    let mut map: std::collections::BTreeMap<String, SecretValue> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), SecretValue::from(*v)))
        .collect();
    map.insert("ca.crt".into(), ca());
    Credentials::new(map)
}

fn token() -> Credentials {
    creds(&[("token", &env("VAULT_POLICY_TOKEN"))])
}

fn app_role(secret_id: &str) -> Credentials {
    creds(&[
        ("roleId", &env("VAULT_APPROLE_ROLE_ID")),
        ("secretId", secret_id),
    ])
}

/// A case on a fresh path `vault-tests/<unique>` with `vault` settings `extra`.
fn case(credentials: Credentials, extra: Value, value: &[u8]) -> Case {
    let target = serde_json::from_value(json!({
        "dialect": "Vault", "endpoint": env("VAULT_ENDPOINT"), "vault": extra,
    }))
    .expect("target");
    let make = |shared: Shared| Arc::new(Vault::new(shared)) as Arc<dyn Dialect>;
    Case::new(make, target, credentials, &unique("vault-tests/v-"), value)
}

fn metadata(path: &str) -> Value {
    vault_cli::kv_metadata(path).expect("the path has metadata")
}

fn current(path: &str) -> Value {
    vault_cli::kv_get(path).expect("a current version")["data"].clone()
}

/// A `vault kv put` between observe and apply makes the check-and-set write a `Conflict`: the other writer's
/// version stays (nothing lost), and the next reconcile writes over it as a new version. A create that meets a
/// path someone created in between leaves it theirs: unmarked, and refused until adopted.
#[tokio::test]
async fn a_write_between_observe_and_apply_is_a_conflict_and_nothing_is_lost() {
    let mut case = case(token(), json!({}), b"ours 1");
    case.converge().await;
    case.set_value(b"ours 2");
    let (plan, observed) = case.plan().await.expect("plan");
    assert_eq!(plan, Plan::NewVersion);
    let theirs = vault_cli::kv_put(&case.name, &json!({"value": "theirs"}));
    let err = case
        .apply(&plan, &observed)
        .await
        .expect_err("check-and-set");
    assert_eq!(
        (err.class, err.reason),
        (ErrorClass::Conflict, "Conflict"),
        "{err}"
    );
    assert_eq!(
        current(&case.name),
        json!({"value": "theirs"}),
        "the other writer's value was lost"
    );
    let plans = case.converge().await;
    assert_eq!(plans, [Plan::NewVersion, Plan::InSync]);
    assert_eq!(current(&case.name), json!({"value": "ours 2"}));
    let their_version = theirs["version"].as_u64().expect("a version");
    let kept = vault_cli::kv_get_version(&case.name, their_version).expect("their version is kept");
    assert_eq!(kept["data"], json!({"value": "theirs"}));
    vault_cli::kv_metadata_delete(&case.name);

    let fresh = self::case(token(), json!({}), b"ours");
    let (plan, observed) = fresh.plan().await.expect("plan");
    assert_eq!(
        (plan.clone(), observed.clone()),
        (Plan::Create, Observed::Absent)
    );
    vault_cli::kv_put(&fresh.name, &json!({"value": "first"}));
    let err = fresh
        .apply(&plan, &observed)
        .await
        .expect_err("check-and-set");
    assert_eq!(err.class, ErrorClass::Conflict, "{err}");
    assert_eq!(current(&fresh.name), json!({"value": "first"}));
    let custom = &metadata(&fresh.name)["custom_metadata"];
    assert!(
        custom.get("secretsync-owner").is_none(),
        "left marked as ours: {custom}"
    );
    assert_eq!(
        fresh.plan().await.expect("plan").0,
        Plan::Refuse(Refusal::NotOwned)
    );
    vault_cli::kv_metadata_delete(&fresh.name);
}

/// AppRole signs in once for many calls (the token is cached per store and credentials), writes with the
/// token's policy, and a refused secret ID is a credentials error that quotes no credential.
#[tokio::test]
async fn app_role_signs_in_once_and_a_wrong_secret_id_is_a_credentials_error() {
    let mut case = case(
        app_role(&env("VAULT_APPROLE_SECRET_ID")),
        json!({}),
        b"by approle",
    );
    case.converge().await;
    assert_eq!(case.reconcile().await.0, Plan::InSync);
    assert_eq!(current(&case.name), json!({"value": "by approle"}));
    assert_eq!(case.requests("Login", "ok"), 1, "signed in more than once");
    vault_cli::kv_metadata_delete(&case.name);

    let wrong = format!("00000000-0000-0000-0000-{:012x}", rand::random::<u32>());
    let refused = self::case(app_role(&wrong), json!({}), b"never");
    let err = refused.observe().await.expect_err("a wrong secret ID");
    assert_eq!(
        (err.class, err.reason),
        (ErrorClass::Credentials, "CredentialsRejected"),
        "{err}"
    );
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains(&wrong) && !shown.contains(&env("VAULT_APPROLE_ROLE_ID")),
        "{shown}"
    );
}

/// `vault ARGS` as root, its JSON answer.
fn root(args: &[&str]) -> Value {
    let out = vault_cli::vault_as(&env("VAULT_ROOT_TOKEN"), args, None);
    assert!(
        out.status.success(),
        "vault {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// An AppRole role of this test's own (tokens living `ttl`, the secretsync policy): its credentials.
fn own_app_role(name: &str, ttl: &str) -> Credentials {
    let path = format!("auth/approle/role/{name}");
    root(&[
        "write",
        "-format=json",
        &path,
        "token_policies=secretsync",
        &format!("token_ttl={ttl}"),
    ]);
    let role_id =
        root(&["read", "-format=json", &format!("{path}/role-id")])["data"]["role_id"].clone();
    let secret_id =
        root(&["write", "-f", "-format=json", &format!("{path}/secret-id")])["data"]["secret_id"]
            .clone();
    creds(&[
        ("roleId", role_id.as_str().expect("a role ID")),
        ("secretId", secret_id.as_str().expect("a secret ID")),
    ])
}

/// Revokes every token an AppRole `role` signed in (found by accessor, as root); how many.
async fn revoke_tokens_of(role: &str) -> usize {
    let ca = reqwest::Certificate::from_pem(ca().expose()).expect("CA PEM");
    let http = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .expect("client");
    let call = |method: reqwest::Method, path: &str, body: Value| {
        http.request(method, format!("{}/v1/{path}", env("VAULT_ENDPOINT")))
            .header("X-Vault-Token", env("VAULT_ROOT_TOKEN"))
            .json(&body)
            .send()
    };
    let list = call(
        reqwest::Method::from_bytes(b"LIST").unwrap(),
        "auth/token/accessors",
        Value::Null,
    );
    let list: Value = list.await.expect("Vault").json().await.expect("JSON");
    let mut revoked = 0;
    for accessor in list["data"]["keys"].as_array().into_iter().flatten() {
        let body = json!({"accessor": accessor});
        let lookup = call(
            reqwest::Method::POST,
            "auth/token/lookup-accessor",
            body.clone(),
        )
        .await
        .expect("Vault");
        let token: Value = lookup.json().await.unwrap_or(Value::Null);
        if token["data"]["meta"]["role_name"] == role {
            let done = call(reqwest::Method::POST, "auth/token/revoke-accessor", body)
                .await
                .expect("Vault");
            assert!(done.status().is_success(), "revoke: {}", done.status());
            revoked += 1;
        }
    }
    revoked
}

/// A signed-in token is given up after two thirds of its lease, at least a minute before it ends (a lease of 62 s:
/// after 2 s), and signed in again; a token Vault stops accepting (revoked) is forgotten at the refusal, so the
/// next reconcile signs in again instead of failing until the cache would let it go.
#[tokio::test]
async fn signed_in_tokens_are_renewed_before_their_lease_ends_and_forgotten_when_refused() {
    let short = unique("secretsync-short-");
    let mut case = case(own_app_role(&short, "62s"), json!({}), b"renewed");
    case.converge().await;
    let before = case.requests("Login", "ok");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(case.reconcile().await.0, Plan::InSync);
    assert!(
        case.requests("Login", "ok") > before,
        "the token was used past its renewal"
    );
    vault_cli::kv_metadata_delete(&case.name);

    let long = unique("secretsync-long-");
    let mut case = self::case(own_app_role(&long, "1h"), json!({}), b"revoked");
    case.converge().await;
    assert_eq!(case.requests("Login", "ok"), 1);
    // Every token of this role, and no other test's: revoked behind the cache's back.
    assert!(
        revoke_tokens_of(&long).await > 0,
        "no token of {long} to revoke"
    );
    let err = case.observe().await.expect_err("a revoked token");
    assert_eq!(err.class, ErrorClass::Credentials, "{err}");
    assert_eq!(case.reconcile().await.0, Plan::InSync);
    assert_eq!(
        case.requests("Login", "ok"),
        2,
        "the refused token was not forgotten"
    );
    vault_cli::kv_metadata_delete(&case.name);
    for role in [short, long] {
        root(&["delete", &format!("auth/approle/role/{role}")]);
    }
}

/// `maxVersions` is written to the path's metadata, and changing it alone updates the metadata without a new
/// version; a whole Secret is one KV field per key.
#[tokio::test]
async fn max_versions_are_metadata_and_a_whole_secret_is_one_field_per_key() {
    let whole = br#"{"password":"p\"w","user":"admin"}"#;
    let mut case = case(token(), json!({"maxVersions": 2}), whole);
    case.converge().await;
    assert_eq!(
        current(&case.name),
        json!({"password": "p\"w", "user": "admin"})
    );
    let before = metadata(&case.name);
    assert_eq!(before["max_versions"], 2);
    assert_eq!(before["current_version"], 1);
    case.target
        .vault
        .as_mut()
        .expect("vault settings")
        .max_versions = Some(3);
    assert_eq!(case.converge().await, [Plan::UpdateMetadata, Plan::InSync]);
    let after = metadata(&case.name);
    assert_eq!(
        (&after["max_versions"], &after["current_version"]),
        (&json!(3), &json!(1))
    );
    // Three changes keep three versions.
    for v in ["a", "b", "c"] {
        case.set_value(v.as_bytes());
        case.converge().await;
    }
    let kept = metadata(&case.name);
    assert_eq!(
        (&kept["current_version"], &kept["oldest_version"]),
        (&json!(4), &json!(2))
    );
    vault_cli::kv_metadata_delete(&case.name);
}

/// A version deleted or destroyed behind SecretSync's back, or a path rolled back to an older value, is found from
/// the metadata alone and written again.
#[tokio::test]
async fn a_current_version_deleted_behind_our_back_is_written_again() {
    let mut case = case(token(), json!({}), b"kept");
    case.converge().await;
    let out = vault_cli::vault_as(
        &env("VAULT_ROOT_TOKEN"),
        &["kv", "delete", "-mount=secret", &case.name],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Deleted: readers get no data (the CLI shows the version's metadata alone).
    let gone = vault_cli::kv_get(&case.name);
    assert!(
        gone.as_ref().is_none_or(|v| v["data"].is_null()),
        "{gone:?}"
    );
    assert_eq!(case.converge().await, [Plan::NewVersion, Plan::InSync]);
    assert_eq!(current(&case.name), json!({"value": "kept"}));
    vault_cli::kv_metadata_delete(&case.name);
}

/// A store through a controller: Kubernetes auth with a ServiceAccount of the tenant's namespace (a Store's
/// `serviceAccountRef`, the token requested with the audience `vault` and reviewed by Vault at the API server),
/// where Vault's role names that account; another account of the namespace is refused by Vault's role and reads as
/// a credentials condition, and so does a wrong token, quoting neither token.
mod through_a_controller {
    use std::sync::atomic::AtomicBool;

    use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
    use kube::api::{Api, Patch, PatchParams};
    use secretsync::api::{SecretSync, Store};
    use secretsync::controller::{self, store_limits::StoreLimits};
    use secretsync::dialects::Registry;
    use secretsync::metrics::Metrics;
    use secretsync::plan::digest::DigestKey;
    use tokio::time::Instant;

    use super::*;

    const LONG: Duration = Duration::from_secs(90);

    async fn client() -> kube::Client {
        support::admin::admin().await
    }

    async fn put<K>(api: Api<K>, obj: Value)
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let name = obj["metadata"]["name"].as_str().expect("a name").to_owned();
        api.patch(
            &name,
            &PatchParams::apply("secretsync-vault-tests").force(),
            &Patch::Apply(&obj),
        )
        .await
        .unwrap_or_else(|e| panic!("{name} applied: {e}"));
    }

    /// Polls the SecretSync until its Ready condition is `status/reason`; the object.
    async fn wait_ready(api: &Api<SecretSync>, name: &str, want: &str) -> Value {
        let end = Instant::now() + LONG;
        loop {
            let obj =
                serde_json::to_value(api.get(name).await.expect("SecretSync readable")).unwrap();
            if cluster::ready_reason(&obj) == want {
                return obj;
            }
            assert!(Instant::now() < end, "{name} never became {want}: {obj}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kubernetes_auth_with_a_namespaces_service_account() {
        tokio::task::block_in_place(cluster::install_crds_and_namespace);
        let client = client().await;
        let ns = format!("vault-k8s-{:08x}", rand::random::<u32>());
        put(
            Api::<Namespace>::all(client.clone()),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await;
        let sas = Api::<ServiceAccount>::namespaced(client.clone(), &ns);
        for sa in [env("VAULT_K8S_NAMED_SA"), "someone-else".to_owned()] {
            put(
                sas.clone(),
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa}}),
            )
            .await;
        }
        let secrets = Api::<Secret>::namespaced(client.clone(), &ns);
        let bad_token = format!("hvs.not-a-token-{:08x}", rand::random::<u32>());
        for (name, data) in [
            ("src", json!({"k": "from kubernetes auth"})),
            ("bad-token", json!({"token": bad_token})),
        ] {
            put(secrets.clone(), json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data})).await;
        }
        let stores = Api::<Store>::namespaced(client.clone(), &ns);
        let kubernetes = |sa: &str| {
            json!({"dialect": "Vault", "endpoint": env("VAULT_ENDPOINT"), "caBundle": String::from_utf8(ca().expose().to_vec()).unwrap(),
                   "serviceAccountRef": {"name": sa, "audience": env("VAULT_K8S_AUDIENCE")},
                   "vault": {"kubernetes": {"role": env("VAULT_K8S_NAMED_ROLE")}}})
        };
        let specs = [
            ("granted", kubernetes(&env("VAULT_K8S_NAMED_SA"))),
            ("other-account", kubernetes("someone-else")),
            (
                "bad-token",
                json!({"dialect": "Vault", "endpoint": env("VAULT_ENDPOINT"),
                                 "caBundle": String::from_utf8(ca().expose().to_vec()).unwrap(),
                                 "credentialsRef": {"name": "bad-token"}}),
            ),
        ];
        for (name, spec) in &specs {
            put(stores.clone(), json!({"apiVersion": "secretsync.io/v1alpha1", "kind": "Store", "metadata": {"name": name}, "spec": spec})).await;
        }
        let syncs = Api::<SecretSync>::namespaced(client.clone(), &ns);
        let remote = |store: &str| format!("vault-tests/{ns}/{store}");
        for (store, _) in &specs {
            put(syncs.clone(), json!({"apiVersion": "secretsync.io/v1alpha1", "kind": "SecretSync", "metadata": {"name": store},
                "spec": {"source": {"secretRef": {"name": "src", "key": "k"}},
                         "target": {"storeRef": {"kind": "Store", "name": store}, "remoteName": remote(store)}}})).await;
        }
        let shared = Shared::new(50, 50, Metrics::new());
        let config = controller::Config {
            namespaces: vec![ns.clone()],
            selector: None,
            concurrency: 4,
            digest_key: DigestKey::new(rand::random::<[u8; 32]>().to_vec()).unwrap(),
            cluster_id: "vault-tests".into(),
            metrics: shared.metrics.clone(),
            ready: Arc::new(AtomicBool::new(false)),
            instance: format!("test-{ns}"),
            cleanup_timeout: Duration::from_secs(60),
            allow_inline_targets: false,
            panic_on: None,
            limits: StoreLimits {
                namespaced_store_hosts: env("SECRETSYNC_NAMESPACED_STORE_HOSTS")
                    .split(',')
                    .map(str::to_owned)
                    .collect(),
                token_audiences: vec![env("VAULT_K8S_AUDIENCE")],
            },
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let run = tokio::spawn(controller::run(
            client.clone(),
            config,
            Registry::standard(&shared),
            async {
                let _ = stopped.await;
            },
        ));

        wait_ready(&syncs, "granted", "True/Synced").await;
        assert_eq!(
            current(&remote("granted")),
            json!({"value": "from kubernetes auth"})
        );
        let refused = wait_ready(&syncs, "other-account", "False/CredentialsRejected").await;
        assert!(vault_cli::kv_metadata(&remote("other-account")).is_none());
        let forbidden = wait_ready(&syncs, "bad-token", "False/Forbidden").await;
        for obj in [&refused, &forbidden] {
            let shown = obj["status"].to_string();
            assert!(
                !shown.contains(&bad_token) && !shown.contains("eyJ"),
                "a token in the status: {shown}"
            );
        }

        let _ = stop.send(());
        let _ = run.await;
        vault_cli::kv_metadata_delete(&remote("granted"));
        let _ = Api::<Namespace>::all(client)
            .delete(&ns, &Default::default())
            .await;
    }
}
