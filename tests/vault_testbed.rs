//! The test bed's real Vault (tests/testbed/vault/): the `vault` CLI read-back the Vault dialect's tests use
//! (support/vault_cli.rs), and the three ways the dialect logs in, as the test bed configures them: the
//! policy-only token, AppRole, and Kubernetes auth with a ServiceAccount token for the audience `vault`, reviewed
//! by the test bed's kube-apiserver.

mod support;

#[allow(dead_code)]
#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/vault_cli.rs"]
mod vault_cli;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use support::env;

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos:x}", std::process::id())
}

fn client() -> reqwest::Client {
    let ca = std::fs::read(env("VAULT_CA_CERT")).expect("Vault's CA");
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA PEM"))
        .build()
        .expect("client")
}

/// `method` on Vault's `/v1/{path}` as `token` (if any): the status and the answer (`null` when not JSON).
async fn call(
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client().request(method, format!("{}/v1/{path}", env("VAULT_ENDPOINT")));
    if let Some(t) = token {
        req = req.header("X-Vault-Token", t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("Vault reachable");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A login at `auth/{mount}/login`: the status, Vault's `errors` (never the token), and the `auth` block.
async fn login(mount: &str, body: Value) -> (u16, Value, Value) {
    let (status, answer) = call(
        reqwest::Method::POST,
        &format!("auth/{mount}/login"),
        None,
        Some(body),
    )
    .await;
    (status, answer["errors"].clone(), answer["auth"].clone())
}

/// What `token` may do on each of `paths`, asked as root (sys/capabilities): the dialect's tokens have no right to
/// ask themselves.
async fn capabilities(token: &str, paths: &[&str]) -> Value {
    let (status, answer) = call(
        reqwest::Method::POST,
        "sys/capabilities",
        Some(&env("VAULT_ROOT_TOKEN")),
        Some(json!({"token": token, "paths": paths})),
    )
    .await;
    assert_eq!(status, 200, "sys/capabilities: {}", answer["errors"]);
    answer
}

/// A token of the `secretsync` policy may do what the dialect does on KV v2 paths and nothing on Vault's own.
async fn assert_secretsync_scope(token: &str) {
    let caps = capabilities(
        token,
        &[
            "secret/data/any/path",
            "secret/metadata/any/path",
            "sys/mounts",
        ],
    )
    .await;
    for path in ["secret/data/any/path", "secret/metadata/any/path"] {
        let got: Vec<&str> = caps[path]
            .as_array()
            .expect("a list")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for want in ["create", "read", "update", "delete", "list"] {
            assert!(got.contains(&want), "{path}: {got:?} lacks {want}");
        }
    }
    assert_eq!(caps["sys/mounts"], json!(["deny"]));
}

#[test]
fn the_cli_reads_back_versions_and_metadata_and_deletes_all() {
    let path = unique("testbed/cli");
    assert!(
        vault_cli::kv_get(&path).is_none(),
        "a new path has no value"
    );
    let first = vault_cli::kv_put(&path, &json!({"a": "1"}));
    assert_eq!(first["version"], 1);
    vault_cli::kv_put(&path, &json!({"a": "2", "b": "x"}));

    let current = vault_cli::kv_get(&path).expect("a current version");
    assert_eq!(current["data"], json!({"a": "2", "b": "x"}));
    assert_eq!(current["metadata"]["version"], 2);
    let old = vault_cli::kv_get_version(&path, 1).expect("version 1 is kept");
    assert_eq!(old["data"], json!({"a": "1"}));
    let meta = vault_cli::kv_metadata(&path).expect("metadata");
    assert_eq!(meta["current_version"], 2);
    assert_eq!(meta["versions"].as_object().map(|v| v.len()), Some(2));

    vault_cli::kv_metadata_delete(&path);
    assert!(vault_cli::kv_get(&path).is_none(), "deleted");
    assert!(vault_cli::kv_metadata(&path).is_none(), "metadata deleted");
}

#[tokio::test]
async fn the_policy_token_has_the_secretsync_policy_alone() {
    let token = env("VAULT_POLICY_TOKEN");
    let (status, me) = call(
        reqwest::Method::GET,
        "auth/token/lookup-self",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "lookup-self: {}", me["errors"]);
    assert_eq!(me["data"]["policies"], json!(["secretsync"]));
    assert_secretsync_scope(&token).await;
}

#[tokio::test]
async fn approle_login_gives_a_short_renewable_secretsync_token_that_writes() {
    let (status, errors, auth) = login(
        "approle",
        json!({"role_id": env("VAULT_APPROLE_ROLE_ID"), "secret_id": env("VAULT_APPROLE_SECRET_ID")}),
    )
    .await;
    assert_eq!(status, 200, "AppRole login: {errors}");
    assert!(
        auth["token_policies"]
            .as_array()
            .expect("policies")
            .contains(&json!("secretsync"))
    );
    assert_eq!(auth["renewable"], true);
    let ttl = auth["lease_duration"].as_u64().expect("a TTL");
    assert!(ttl > 0 && ttl <= 20 * 60, "token TTL {ttl} s");
    let token = auth["client_token"].as_str().expect("a token");
    assert_secretsync_scope(token).await;

    // The token writes through the CLI as the dialect writes over HTTP; root reads it back.
    let path = unique("testbed/approle");
    let out = vault_cli::vault_as(token, &["kv", "put", "-mount=secret", &path, "k=v"], None);
    assert!(
        out.status.success(),
        "put as the AppRole token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        vault_cli::kv_get(&path).expect("written")["data"],
        json!({"k": "v"})
    );
    vault_cli::kv_metadata_delete(&path);

    let wrong = json!({"role_id": env("VAULT_APPROLE_ROLE_ID"), "secret_id": "wrong"});
    let (status, _, auth) = login("approle", wrong).await;
    assert!(
        matches!(status, 400 | 403),
        "a wrong secret_id is refused: {status}"
    );
    assert!(auth.is_null());
}

/// A token for `sa` in `ns` from the TokenRequest API, with `audience` unless `None` (the API server's own).
fn sa_token(ns: &str, sa: &str, audience: Option<&str>) -> String {
    let mut args = vec!["-n", ns, "create", "token", sa, "--duration=10m"];
    if let Some(a) = audience {
        args.extend(["--audience", a]);
    }
    cluster::kubectl(&args, None).trim().to_owned()
}

#[tokio::test]
async fn kubernetes_login_takes_service_account_tokens_for_vault_only() {
    let ns = unique("vault-login");
    cluster::kubectl(&["create", "namespace", &ns], None);
    for sa in ["app", env("VAULT_K8S_NAMED_SA").as_str()] {
        cluster::kubectl(&["-n", &ns, "create", "serviceaccount", sa], None);
    }
    let role = env("VAULT_K8S_ROLE");
    let audience = env("VAULT_K8S_AUDIENCE");

    let jwt = sa_token(&ns, "app", Some(&audience));
    let (status, errors, auth) = login("kubernetes", json!({"role": role, "jwt": jwt})).await;
    assert_eq!(status, 200, "Kubernetes login: {errors}");
    assert_eq!(auth["metadata"]["service_account_namespace"], json!(ns));
    assert_eq!(auth["metadata"]["service_account_name"], "app");
    assert_eq!(auth["renewable"], true);
    assert_secretsync_scope(auth["client_token"].as_str().expect("a token")).await;

    // The role's audience is enforced: a token for the API server itself is refused.
    let api_jwt = sa_token(&ns, "app", None);
    let (status, _, auth) = login("kubernetes", json!({"role": role, "jwt": api_jwt})).await;
    assert!(
        matches!(status, 400 | 403),
        "a token without the audience vault: {status}"
    );
    assert!(auth.is_null());

    // The named role takes its ServiceAccount name only.
    let named = env("VAULT_K8S_NAMED_ROLE");
    let (status, _, _) = login("kubernetes", json!({"role": named, "jwt": jwt})).await;
    assert!(
        matches!(status, 400 | 403),
        "another ServiceAccount on the named role: {status}"
    );
    let named_jwt = sa_token(&ns, &env("VAULT_K8S_NAMED_SA"), Some(&audience));
    let (status, errors, _) = login("kubernetes", json!({"role": named, "jwt": named_jwt})).await;
    assert_eq!(status, 200, "the named ServiceAccount: {errors}");

    // Vault asks the API server: a ServiceAccount deleted since its token was issued no longer logs in (once the
    // API server's cache has seen the deletion).
    cluster::kubectl(&["-n", &ns, "delete", "serviceaccount", "app"], None);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, _, _) = login("kubernetes", json!({"role": role, "jwt": jwt})).await;
        if matches!(status, 400 | 403) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a deleted ServiceAccount's token still logs in: {status}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    cluster::kubectl(&["delete", "namespace", &ns, "--wait=false"], None);
}
