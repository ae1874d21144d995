//! The Barbican dialect against the real OpenStack services of the test bed (`make testbed`): Barbican from PyPI
//! behind a real Keystone (password and application-credential auth, catalog lookup, token expiry and
//! revocation) and a second Barbican in no-auth mode. Driven through the `Dialect` trait and the real planner on
//! the shared harness (`support/dialect_case.rs`); what was really stored is read back over plain HTTP,
//! independently of the dialect's own client. Only the 429/5xx mapping uses a stub server, since a healthy
//! Barbican does not answer those on demand.
//!
//! What every dialect must do (create, no-op, change, delete, drift, foreign and other owners, retain, wrong
//! credentials, crash safety of a create, rate limits) is the conformance suite's (`tests/conformance/`); this
//! file keeps what only Barbican has.

mod support;

#[path = "support/dialect_case.rs"]
mod dialect_case;

#[allow(dead_code)]
#[path = "support/cluster.rs"]
mod cluster;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use dialect_case::{Case, owner, ready, unique};
use reqwest::Method;
use secretsync::api::Target;
use secretsync::dialects::barbican::Barbican;
use secretsync::dialects::{ErrorClass, Outcome, Shared};
use secretsync::metrics::{BackendLabels, Metrics};
use secretsync::plan::digest::DigestKey;
use secretsync::plan::{
    Adoption, DeletePlan, Observed, Plan, Refusal, RemoteRef, decide, decide_delete,
};
use secretsync::value::{Credentials, SecretValue};
use serde_json::{Value, json};
use support::env;

fn creds(pairs: &[(&str, String)]) -> Credentials {
    Credentials::new(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), SecretValue::from(v.as_str())))
            .collect(),
    )
}

/// How a test reaches Barbican.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// No-auth Barbican: X-Project-Id.
    NoAuth,
    /// Keystone password; the endpoint comes from the catalog.
    Password,
    /// Keystone application credential; the endpoint is given in the spec.
    AppCred,
}

fn project_for_noauth() -> String {
    // One project per test run keeps runs apart without cleanup.
    static P: OnceLock<String> = OnceLock::new();
    P.get_or_init(|| unique("proj-")).clone()
}

fn target_for(mode: Mode, extra: Value) -> Target {
    let mut t = match mode {
        Mode::NoAuth => json!({"dialect": "Barbican", "endpoint": env("BARBICAN_NOAUTH_ENDPOINT"),
            "barbican": {"projectId": project_for_noauth()}}),
        Mode::Password => json!({"dialect": "Barbican"}),
        Mode::AppCred => json!({"dialect": "Barbican", "endpoint": env("BARBICAN_ENDPOINT")}),
    };
    if let (Some(t), Some(extra)) = (t.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            if k == "barbican"
                && let Some(existing) = t.get_mut("barbican").and_then(Value::as_object_mut)
            {
                for (bk, bv) in v.as_object().expect("barbican settings object") {
                    existing.insert(bk.clone(), bv.clone());
                }
                continue;
            }
            t.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(t).expect("target parses")
}

fn password_creds(auth_url: &str) -> Credentials {
    creds(&[
        ("authUrl", auth_url.to_owned()),
        ("username", env("KEYSTONE_USERNAME")),
        ("password", env("KEYSTONE_PASSWORD")),
        ("userDomainName", "Default".into()),
        ("projectName", env("KEYSTONE_PROJECT")),
        ("projectDomainName", "Default".into()),
    ])
}

fn creds_for(mode: Mode) -> Credentials {
    match mode {
        Mode::NoAuth => Credentials::default(),
        Mode::Password => password_creds(&env("KEYSTONE_AUTH_URL")),
        Mode::AppCred => creds(&[
            ("authUrl", env("KEYSTONE_AUTH_URL")),
            ("applicationCredentialId", env("KEYSTONE_APP_CRED_ID")),
            (
                "applicationCredentialSecret",
                env("KEYSTONE_APP_CRED_SECRET"),
            ),
        ]),
    }
}

/// A case on a Barbican dialect of its own, reached as `mode` says.
fn case(mode: Mode, prefix: &str, value: &[u8]) -> Case {
    case_with(mode, prefix, value, json!({}))
}

/// [`case`], with `extra` merged into the target.
fn case_with(mode: Mode, prefix: &str, value: &[u8], extra: Value) -> Case {
    Case::new(
        |shared| Arc::new(Barbican::new(shared)) as _,
        target_for(mode, extra),
        creds_for(mode),
        &unique(&format!("{prefix}-")),
        value,
    )
}

/// A case on `dialect`, which the caller keeps as the concrete type (for its `session`).
fn case_on(
    dialect: &Arc<Barbican>,
    metrics: &Arc<Metrics>,
    mode: Mode,
    prefix: &str,
    value: &[u8],
) -> Case {
    Case::sharing(
        dialect.clone(),
        metrics.clone(),
        target_for(mode, json!({})),
        creds_for(mode),
        &unique(&format!("{prefix}-")),
        value,
    )
}

/// A Barbican dialect and its metrics.
fn barbican(shared: impl FnOnce(Arc<Metrics>) -> Shared) -> (Arc<Barbican>, Arc<Metrics>) {
    let metrics = Metrics::new();
    (Arc::new(Barbican::new(shared(metrics.clone()))), metrics)
}

/// A target on a stub server standing in for a no-auth Barbican.
fn stub_target(endpoint: &str) -> Target {
    serde_json::from_value(
        json!({"dialect": "Barbican", "endpoint": endpoint, "barbican": {"projectId": "p"}}),
    )
    .expect("target parses")
}

/// Requests of `operation`, whatever their outcome.
fn requests(case: &Case, operation: &str) -> u64 {
    [
        "ok",
        "not_found",
        "retry",
        "conflict",
        "credentials",
        "permanent",
        "renewed_credentials",
    ]
    .iter()
    .map(|outcome| case.requests(operation, outcome))
    .sum()
}

/// Requests that write to Barbican.
fn writes(case: &Case) -> u64 {
    ["create", "put_payload", "put_metadata", "delete"]
        .iter()
        .map(|op| requests(case, op))
        .sum()
}

/// Deletes the case's secrets (as `deletionPolicy: Delete` does), which must be its own.
async fn delete_ours(case: &Case) {
    let observed = case.observe().await.expect("observe");
    assert_eq!(
        decide_delete(&case.desired.owner, &observed),
        DeletePlan::Delete
    );
    case.dialect
        .delete(&case.request(), &observed)
        .await
        .expect("delete");
}

/// Plain HTTP to the Barbican (and project) the case writes to.
async fn raw(case: &Case) -> Raw {
    let noauth = case.target.endpoint.as_deref() == Some(env("BARBICAN_NOAUTH_ENDPOINT").as_str());
    Raw::for_mode(if noauth { Mode::NoAuth } else { Mode::Password }).await
}

/// Removes every secret of the case's name behind the dialect's back.
async fn cleanup(case: &Case) {
    let raw = raw(case).await;
    for s in raw.named(&case.name).await {
        raw.delete(&uuid(&s)).await;
    }
}

fn uuid(secret: &Value) -> String {
    secret["secret_ref"]
        .as_str()
        .expect("secret_ref")
        .rsplit('/')
        .next()
        .expect("uuid")
        .to_owned()
}

/// Plain HTTP to Barbican, independent of the dialect: what the store really holds.
struct Raw {
    base: String,
    headers: Vec<(&'static str, String)>,
}

async fn keystone_token(auth_url: &str, body: Value) -> (String, Value) {
    let r = reqwest::Client::new()
        .post(format!("{auth_url}/auth/tokens"))
        .json(&json!({ "auth": body }))
        .send()
        .await
        .expect("keystone reachable");
    assert_eq!(r.status().as_u16(), 201, "keystone token");
    let token = r.headers()["x-subject-token"]
        .to_str()
        .expect("token header")
        .to_owned();
    (token, r.json().await.expect("token body"))
}

fn password_auth(user: &str, password: &str, project: &str) -> Value {
    json!({
        "identity": {"methods": ["password"], "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}
    })
}

async fn admin_token() -> String {
    keystone_token(
        &env("KEYSTONE_AUTH_URL"),
        password_auth("admin", &env("KEYSTONE_ADMIN_PASSWORD"), "admin"),
    )
    .await
    .0
}

impl Raw {
    async fn for_mode(mode: Mode) -> Raw {
        match mode {
            Mode::NoAuth => Raw::noauth("secretsync"),
            Mode::Password | Mode::AppCred => {
                let (token, _) = keystone_token(
                    &env("KEYSTONE_AUTH_URL"),
                    password_auth(
                        &env("KEYSTONE_USERNAME"),
                        &env("KEYSTONE_PASSWORD"),
                        &env("KEYSTONE_PROJECT"),
                    ),
                )
                .await;
                Raw {
                    base: env("BARBICAN_ENDPOINT"),
                    headers: vec![("X-Auth-Token", token)],
                }
            }
        }
    }

    /// No-auth access as `user` (SecretSync's own no-auth identity is `secretsync`).
    fn noauth(user: &str) -> Raw {
        Raw {
            base: env("BARBICAN_NOAUTH_ENDPOINT"),
            headers: vec![
                ("X-Project-Id", project_for_noauth()),
                ("X-Roles", "member".into()),
                ("X-User-Id", user.into()),
            ],
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
        accept: &str,
    ) -> (u16, Vec<u8>) {
        let mut r = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base))
            .header("Accept", accept);
        for (k, v) in &self.headers {
            r = r.header(*k, v);
        }
        if let Some(ct) = content_type {
            r = r.header("Content-Type", ct).body(body);
        }
        let resp = r.send().await.expect("barbican reachable");
        let status = resp.status().as_u16();
        (status, resp.bytes().await.expect("body").to_vec())
    }

    async fn json(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let (status, bytes) = match body {
            Some(b) => {
                self.send(
                    method,
                    path,
                    Some("application/json"),
                    serde_json::to_vec(&b).unwrap(),
                    "application/json",
                )
                .await
            }
            None => {
                self.send(method, path, None, vec![], "application/json")
                    .await
            }
        };
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Every secret named exactly `name`.
    async fn named(&self, name: &str) -> Vec<Value> {
        let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
        let (status, body) = self
            .json(
                Method::GET,
                &format!("/v1/secrets?name={encoded}&limit=100"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["secrets"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|s| s["name"] == name)
            .collect()
    }

    async fn only(&self, name: &str) -> Value {
        let all = self.named(name).await;
        assert_eq!(all.len(), 1, "exactly one secret named {name}: {all:?}");
        all.into_iter().next().unwrap()
    }

    async fn metadata(&self, uuid: &str) -> BTreeMap<String, String> {
        let (status, body) = self
            .json(Method::GET, &format!("/v1/secrets/{uuid}/metadata"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body["metadata"].clone()).expect("metadata map")
    }

    async fn set_metadata(&self, uuid: &str, meta: Value) {
        let (status, body) = self
            .json(
                Method::PUT,
                &format!("/v1/secrets/{uuid}/metadata"),
                Some(json!({ "metadata": meta })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    async fn payload(&self, uuid: &str, accept: &str) -> Vec<u8> {
        let (status, body) = self
            .send(
                Method::GET,
                &format!("/v1/secrets/{uuid}/payload"),
                None,
                vec![],
                accept,
            )
            .await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        body
    }

    /// An empty secret, as a `POST` without SecretSync's creation tag makes it.
    async fn create_empty(&self, name: &str) -> String {
        self.create(json!({"name": name, "secret_type": "opaque"}))
            .await
    }

    /// An empty secret whose `POST` carried `tag` as its `mode`, as SecretSync's does.
    async fn create_tagged(&self, name: &str, tag: &str) -> String {
        self.create(json!({"name": name, "secret_type": "opaque", "mode": tag}))
            .await
    }

    async fn create(&self, body: Value) -> String {
        let (status, body) = self.json(Method::POST, "/v1/secrets", Some(body)).await;
        assert_eq!(status, 201, "{body}");
        uuid(&body)
    }

    async fn put_payload(&self, uuid: &str, value: &[u8]) {
        let (status, body) = self
            .send(
                Method::PUT,
                &format!("/v1/secrets/{uuid}"),
                Some("application/octet-stream"),
                value.to_vec(),
                "application/json",
            )
            .await;
        assert_eq!(status, 204, "{}", String::from_utf8_lossy(&body));
    }

    async fn delete(&self, uuid: &str) {
        let (status, _) = self
            .json(Method::DELETE, &format!("/v1/secrets/{uuid}"), None)
            .await;
        assert!(status == 204 || status == 404, "delete answered {status}");
    }
}

/// The markers of the harness's owner (`team-a/db`) with `digest`, as the dialect writes them.
fn marker_meta(digest: &str) -> Value {
    let owner = owner();
    json!({
        "secretsync-owner-namespace": owner.namespace,
        "secretsync-owner-name": owner.name,
        "secretsync-owner-uid": owner.uid,
        "secretsync-digest": digest,
    })
}

fn id_of(r: &RemoteRef) -> String {
    r.id.as_deref()
        .expect("secret ref")
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned()
}

/// One SecretSync's life through one auth flavour, as Barbican shows it: what a create stores (content type,
/// markers and labels in the metadata), a no-op that reads no payload, a value change as a new secret with the old
/// one deleted, and edited labels put back in place. (The generic lifecycle, drift by deletion included, is the
/// conformance suite's, which runs with an application credential.)
async fn lifecycle(mode: Mode) {
    let value = b"  first value\nwith a trailing newline\n".to_vec();
    let mut case = case_with(
        mode,
        "life",
        &value,
        json!({"labels": {"team": "payments"}}),
    );
    let raw = raw(&case).await;

    let (plan, created) = case.reconcile().await;
    assert_eq!(plan, Plan::Create);
    let created = ready(created);
    let stored = raw.only(&case.name).await;
    assert_eq!(uuid(&stored), id_of(&created));
    assert_eq!(
        stored["content_types"]["default"],
        "application/octet-stream"
    );
    assert_eq!(
        raw.payload(&id_of(&created), "application/octet-stream")
            .await,
        value
    );
    let meta = raw.metadata(&id_of(&created)).await;
    assert_eq!(meta["secretsync-owner-namespace"], "team-a");
    assert_eq!(meta["secretsync-owner-name"], "db");
    assert_eq!(meta["secretsync-owner-uid"], owner().uid);
    assert_eq!(meta["secretsync-digest"], case.desired.digest);
    assert_eq!(meta["team"], "payments");
    assert!(
        !meta.values().any(|v| v.contains("first value")),
        "the value is never metadata"
    );

    // Unchanged: nothing is written, and no payload is read.
    let before = writes(&case);
    let (plan, _) = case.reconcile().await;
    assert_eq!(plan, Plan::InSync);
    assert_eq!(writes(&case), before);
    assert_eq!(requests(&case, "get_payload"), 0);

    // A new value is a new secret; the old one is deleted (keepSuperseded 0).
    case.set_value(b"second value");
    let (plan, rotated) = case.reconcile().await;
    assert_eq!(plan, Plan::NewVersion);
    let rotated = ready(rotated);
    assert_ne!(id_of(&rotated), id_of(&created));
    let stored = raw.only(&case.name).await;
    assert_eq!(uuid(&stored), id_of(&rotated));
    assert_eq!(
        raw.payload(&id_of(&rotated), "application/octet-stream")
            .await,
        b"second value"
    );
    assert_eq!(case.reconcile().await.0, Plan::InSync);

    // Drift: someone edits the labels: they are put back in place, on the same secret.
    let mut edited = marker_meta(&case.desired.digest);
    edited["team"] = "intruders".into();
    edited["extra"] = "x".into();
    raw.set_metadata(&id_of(&rotated), edited).await;
    let (plan, fixed) = case.reconcile().await;
    assert_eq!(plan, Plan::UpdateMetadata);
    assert_eq!(id_of(&ready(fixed)), id_of(&rotated));
    let meta = raw.metadata(&id_of(&rotated)).await;
    assert_eq!(meta["team"], "payments");
    assert!(!meta.contains_key("extra"));

    delete_ours(&case).await;
    assert!(raw.named(&case.name).await.is_empty());
    assert_eq!(case.observe().await.expect("observe"), Observed::Absent);
}

#[tokio::test]
async fn lifecycle_without_keystone() {
    lifecycle(Mode::NoAuth).await;
}

#[tokio::test]
async fn lifecycle_with_keystone_password_and_catalog_endpoint() {
    lifecycle(Mode::Password).await;
}

/// Values Barbican would alter inside JSON arrive byte for byte.
#[tokio::test]
async fn exact_bytes_arrive_unchanged() {
    let values: Vec<Vec<u8>> = vec![
        b"   leading and trailing   ".to_vec(),
        b"\n\nnewlines only around\n\n".to_vec(),
        b"\r\nCRLF\r\n".to_vec(),
        b"\t".to_vec(),
        vec![0xff, 0x00, 0xfe, b' ', 0x80, b'\n'],
        "  unicode é ✓ \n".as_bytes().to_vec(),
    ];
    for mode in [Mode::NoAuth, Mode::AppCred] {
        let raw = Raw::for_mode(mode).await;
        for v in &values {
            let mut case = case(mode, "bytes", v);
            let (_, r) = case.reconcile().await;
            let got = raw
                .payload(&id_of(&ready(r)), "application/octet-stream")
                .await;
            assert_eq!(&got, v, "{mode:?}");
            cleanup(&case).await;
        }
        // Text secrets too, read back as text/plain.
        let text = "  spaced text\n".as_bytes();
        let mut case = case_with(
            mode,
            "text",
            text,
            json!({"contentType": "text/plain; charset=utf-8"}),
        );
        let (_, r) = case.reconcile().await;
        let id = id_of(&ready(r));
        assert_eq!(raw.payload(&id, "text/plain").await, text);
        assert_eq!(
            raw.only(&case.name).await["content_types"]["default"],
            "text/plain"
        );
        // Barbican's "text/plain" is the spec's "text/plain; charset=utf-8": in sync.
        assert_eq!(case.reconcile().await.0, Plan::InSync);
        cleanup(&case).await;
    }
}

#[tokio::test]
async fn content_type_change_makes_a_new_secret() {
    let mut case = case(Mode::NoAuth, "ctype", b"same value");
    let raw = raw(&case).await;
    let (_, first) = case.reconcile().await;
    case.target = target_for(Mode::NoAuth, json!({"contentType": "text/plain"}));
    case.desired.metadata.content_type = Some("text/plain".into());
    let (plan, second) = case.reconcile().await;
    assert_eq!(plan, Plan::NewVersion);
    let second = ready(second);
    assert_ne!(id_of(&second), id_of(&ready(first)));
    assert_eq!(
        raw.only(&case.name).await["content_types"]["default"],
        "text/plain"
    );
    assert_eq!(case.reconcile().await.0, Plan::InSync);
    cleanup(&case).await;
}

#[tokio::test]
async fn rotation_keeps_as_many_superseded_secrets_as_asked() {
    let mut case = case_with(
        Mode::NoAuth,
        "keep",
        b"v0",
        json!({"barbican": {"keepSuperseded": 2}}),
    );
    let raw = raw(&case).await;
    let mut refs = Vec::new();
    for i in 0..4 {
        case.set_value(format!("v{i}").as_bytes());
        let (_, r) = case.reconcile().await;
        refs.push(id_of(&ready(r)));
        assert_eq!(case.reconcile().await.0, Plan::InSync, "round {i}");
    }
    let mut left: Vec<String> = raw.named(&case.name).await.iter().map(uuid).collect();
    left.sort();
    let mut want = refs[1..].to_vec();
    want.sort();
    assert_eq!(left, want, "the current one and the two before it");
    // The status points at the newest.
    let Observed::Present(r) = case.observe().await.unwrap() else {
        panic!("present")
    };
    assert_eq!(id_of(&r.reference), refs[3]);
    delete_ours(&case).await;
    assert!(
        raw.named(&case.name).await.is_empty(),
        "delete removes superseded ones too"
    );
}

/// The controller died after `POST`, before the metadata: the leftover, which carries this SecretSync's creation
/// tag, is claimed and completed.
#[tokio::test]
async fn crash_after_post_leaves_no_duplicate() {
    for mode in [Mode::NoAuth, Mode::Password] {
        let mut case = case(mode, "crash1", b"crash value");
        let raw = raw(&case).await;
        let leftover = raw.create_tagged(&case.name, &our_tag()).await;
        let (plan, r) = case.reconcile().await;
        assert_eq!(
            plan,
            Plan::NewVersion,
            "{mode:?}: the leftover is ours but unfinished"
        );
        assert_eq!(
            id_of(&ready(r)),
            leftover,
            "{mode:?}: completed, not duplicated"
        );
        assert_eq!(uuid(&raw.only(&case.name).await), leftover);
        assert_eq!(
            raw.payload(&leftover, "application/octet-stream").await,
            b"crash value"
        );
        assert_eq!(case.reconcile().await.0, Plan::InSync);
        assert_eq!(requests(&case, "create"), 0);
        cleanup(&case).await;
    }
}

/// `secretsync:` and the uid of the harness's owner: the `mode` of every secret the cases `POST`.
fn our_tag() -> String {
    format!("secretsync:{}", owner().uid)
}

/// An empty secret of that name made by someone else is not ours to complete.
#[tokio::test]
async fn someone_elses_empty_secret_is_not_claimed() {
    let case = case(Mode::NoAuth, "notmine", b"v");
    let other = Raw::noauth("somebody-else");
    let theirs = other.create_empty(&case.name).await;
    let (plan, _) = case.plan().await.expect("plan");
    assert_eq!(plan, Plan::Refuse(Refusal::NotOwned));
    other.delete(&theirs).await;
    // Not even with this SecretSync's tag: it was not made by SecretSync's user.
    let forged = other.create_tagged(&case.name, &our_tag()).await;
    assert_eq!(
        case.plan().await.expect("plan").0,
        Plan::Refuse(Refusal::NotOwned)
    );
    other.delete(&forged).await;
}

/// Issue #27: an unmarked, empty secret of that name made by SecretSync's own user, but without this SecretSync's
/// creation tag, is what another SecretSync's secret looks like between its `POST` and its metadata write (or a
/// leftover from before tags). It is never completed, marked or deleted: a `Conflict`, and with `adoptExisting` on
/// a store that adopts unmarked secrets, another SecretSync's tagged one is waited for rather than taken.
#[tokio::test]
async fn an_empty_secret_of_the_same_user_is_claimed_only_with_our_tag() {
    for mode in [Mode::NoAuth, Mode::Password] {
        let mut case = case(mode, "untagged", b"mine");
        let raw = raw(&case).await;
        for tag in [None, Some("secretsync:another-secretsync-uid")] {
            let theirs = match tag {
                Some(t) => raw.create_tagged(&case.name, t).await,
                None => raw.create_empty(&case.name).await,
            };
            case.desired.adopt_existing = false;
            let (plan, _) = case.reconcile().await;
            assert_eq!(plan, Plan::Refuse(Refusal::NotOwned), "{mode:?} {tag:?}");
            case.desired.adopt_existing = true;
            case.desired.adoption = Adoption::Unmarked;
            if tag.is_some() {
                let (plan, _) = case.reconcile().await;
                assert_eq!(plan, Plan::WaitForBackend, "{mode:?}: its markers are due");
            }
            let left = raw.only(&case.name).await;
            assert_eq!(uuid(&left), theirs);
            assert!(
                left.get("content_types").is_none_or(Value::is_null),
                "{left}"
            );
            assert!(raw.metadata(&theirs).await.is_empty(), "{mode:?} {tag:?}");
            assert_eq!(writes(&case), 0, "{mode:?} {tag:?}");
            // Nor does deleting this SecretSync's secrets take it.
            let observed = case.observe().await.expect("observe");
            case.dialect
                .delete(&case.request(), &observed)
                .await
                .expect("delete");
            assert_eq!(uuid(&raw.only(&case.name).await), theirs);
            raw.delete(&theirs).await;
        }
    }
}

/// The controller died after the metadata, before the payload: the payload goes into that secret.
#[tokio::test]
async fn crash_before_payload_is_healed_in_place() {
    let mut case = case(Mode::AppCred, "crash2", b"old value");
    let raw = raw(&case).await;
    let (_, first) = case.reconcile().await;
    let first = id_of(&ready(first));
    // A rotation got as far as the metadata of the new secret.
    case.set_value(b"new value");
    let pending = raw.create_empty(&case.name).await;
    raw.set_metadata(&pending, marker_meta(&case.desired.digest))
        .await;
    let (plan, r) = case.reconcile().await;
    assert_eq!(plan, Plan::NewVersion);
    assert_eq!(id_of(&ready(r)), pending);
    assert_eq!(
        uuid(&raw.only(&case.name).await),
        pending,
        "the old one is pruned"
    );
    assert_ne!(pending, first);
    assert_eq!(
        raw.payload(&pending, "application/octet-stream").await,
        b"new value"
    );
    assert_eq!(
        requests(&case, "create"),
        1,
        "only the first secret was POSTed"
    );
    cleanup(&case).await;
}

/// The controller died after a rotation's payload, before pruning and the status: nothing new is made (the newest
/// secret of ours holds the value), and the superseded one goes with the next write.
#[tokio::test]
async fn crash_after_payload_reuses_and_tidies() {
    let mut case = case(Mode::NoAuth, "crash3", b"one");
    let raw = raw(&case).await;
    case.reconcile().await;
    case.set_value(b"two");
    let done = raw.create_empty(&case.name).await;
    raw.set_metadata(&done, marker_meta(&case.desired.digest))
        .await;
    raw.put_payload(&done, b"two").await;
    let creates = requests(&case, "create");
    let (plan, observed) = case.plan().await.expect("plan");
    assert_eq!(
        plan,
        Plan::InSync,
        "the newest secret of ours holds the value"
    );
    let Observed::Present(current) = observed else {
        panic!("observed nothing")
    };
    assert_eq!(id_of(&current.reference), done);
    assert_eq!(
        raw.named(&case.name).await.len(),
        2,
        "pruned by the next write"
    );
    case.set_value(b"three");
    let (plan, r) = case.reconcile().await;
    assert_eq!(plan, Plan::NewVersion);
    assert_eq!(requests(&case, "create"), creates + 1);
    assert_eq!(uuid(&raw.only(&case.name).await), id_of(&ready(r)));
    assert_eq!(case.reconcile().await.0, Plan::InSync);
    cleanup(&case).await;
}

#[tokio::test]
async fn foreign_secrets_are_left_alone_unless_adopted() {
    let mut case = case(Mode::NoAuth, "foreign", b"mine");
    let tag = format!("{:08x}", rand::random::<u32>());
    case.name = format!("lk_{tag}");
    let other = Raw::noauth("somebody-else");
    // Look-alikes: Barbican's name filter is SQL LIKE ('_' is a wildcard, and SQLite ignores ASCII case), so
    // it lists these too; only the exact name counts.
    let mut lookalikes = Vec::new();
    for n in [format!("lkX{tag}"), format!("LK_{tag}")] {
        let u = other.create_empty(&n).await;
        other.put_payload(&u, b"look-alike").await;
        lookalikes.push(u);
    }
    assert_eq!(
        case.observe().await.unwrap(),
        Observed::Absent,
        "look-alikes are not this name"
    );
    let theirs = other.create_empty(&case.name).await;
    other.put_payload(&theirs, b"theirs").await;
    let (plan, _) = case.plan().await.expect("plan");
    assert_eq!(plan, Plan::Refuse(Refusal::NotOwned));
    assert_eq!(
        other.payload(&theirs, "application/octet-stream").await,
        b"theirs"
    );

    // With adoptExisting the foreign secret is taken over, replaced by ours, and pruned.
    case.desired.adopt_existing = true;
    let (plan, r) = case.reconcile().await;
    assert_eq!(plan, Plan::NewVersion);
    let left = other.named(&case.name).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(uuid(&left[0]), id_of(&ready(r)));
    assert_eq!(case.reconcile().await.0, Plan::InSync);
    cleanup(&case).await;
    for u in lookalikes {
        assert_eq!(
            other.payload(&u, "application/octet-stream").await,
            b"look-alike"
        );
        other.delete(&u).await;
    }
}

/// Adopting a foreign secret that already holds the value only writes the markers.
#[tokio::test]
async fn adopting_a_secret_with_the_value_marks_it() {
    let mut case = case(Mode::NoAuth, "adopt", b"shared value");
    case.desired.adopt_existing = true;
    let other = Raw::noauth("somebody-else");
    let theirs = other.create_empty(&case.name).await;
    other.put_payload(&theirs, b"shared value").await;
    // Marked by a SecretSync that no longer exists, with the same digest.
    other
        .set_metadata(
            &theirs,
            json!({"secretsync-owner-namespace": "gone", "secretsync-owner-name": "old",
                "secretsync-digest": case.desired.digest}),
        )
        .await;
    let mut observed = case.observe().await.unwrap();
    if let Observed::Present(r) = &mut observed {
        r.owner_exists = false;
    }
    let plan = decide(
        &case.desired,
        &observed,
        case.dialect.capabilities(&case.target),
    );
    assert_eq!(plan, Plan::UpdateMetadata);
    let Outcome::Ready(r) = case.apply(&plan, &observed).await.unwrap() else {
        panic!("ready")
    };
    assert_eq!(id_of(&r), theirs);
    let meta = other.metadata(&theirs).await;
    assert_eq!(meta["secretsync-owner-namespace"], "team-a");
    assert_eq!(case.reconcile().await.0, Plan::InSync);
    cleanup(&case).await;
}

#[tokio::test]
async fn each_documented_payload_put_answer_is_mapped() {
    let (dialect, metrics) = barbican(|m| Shared::new(200, 200, m));
    let case = case_on(&dialect, &metrics, Mode::AppCred, "statuses", b"x");
    let req = case.request();
    let s = dialect.session(&req).await.expect("session");
    let (uuid, _) = s
        .create_empty(&case.name, &case.desired.owner)
        .await
        .expect("create");
    // 400: no payload.
    let e = s
        .put_payload(&uuid, &SecretValue::new(vec![]), "application/octet-stream")
        .await
        .expect_err("empty");
    assert_eq!(
        (e.class, e.reason),
        (ErrorClass::Permanent, "PayloadRejected")
    );
    assert!(e.message.contains("HTTP 400"), "{}", e.message);
    // 413: larger than the server's 20000 bytes.
    let limit: usize = env("BARBICAN_MAX_SECRET_BYTES").parse().unwrap();
    let e = s
        .put_payload(
            &uuid,
            &SecretValue::new(vec![b'x'; limit + 1]),
            "application/octet-stream",
        )
        .await
        .expect_err("too large");
    assert_eq!(
        (e.class, e.reason),
        (ErrorClass::Permanent, "PayloadTooLarge")
    );
    // 204, then 409 for the second PUT.
    s.put_payload(
        &uuid,
        &SecretValue::from("first"),
        "application/octet-stream",
    )
    .await
    .expect("204");
    let e = s
        .put_payload(
            &uuid,
            &SecretValue::from("second"),
            "application/octet-stream",
        )
        .await
        .expect_err("second PUT");
    assert_eq!(
        (e.class, e.reason),
        (ErrorClass::Conflict, "PayloadAlreadySet")
    );
    assert!(
        e.message.contains("HTTP 409") && !e.message.contains("already has data"),
        "the status, never Barbican's description: {}",
        e.message
    );
    assert!(
        s.payload_equals(
            &uuid,
            &SecretValue::from("first"),
            "application/octet-stream"
        )
        .await
        .unwrap()
    );
    assert!(
        !s.payload_equals(
            &uuid,
            &SecretValue::from("second"),
            "application/octet-stream"
        )
        .await
        .unwrap()
    );
    // 404: the secret is gone.
    s.delete_secret(&uuid).await.expect("delete");
    let e = s
        .put_payload(
            &uuid,
            &SecretValue::from("late"),
            "application/octet-stream",
        )
        .await
        .expect_err("gone");
    assert_eq!(e.reason, "SecretNotFound");
    // 415: a content type Barbican does not take in a PUT.
    let (u2, _) = s
        .create_empty(&case.name, &case.desired.owner)
        .await
        .expect("create");
    let e = s
        .put_payload(&u2, &SecretValue::from("k"), "application/pkcs8")
        .await
        .expect_err("415");
    assert_eq!(e.class, ErrorClass::Permanent);
    assert!(e.message.contains("415"), "{}", e.message);
    s.delete_secret(&u2).await.unwrap();
    s.delete_secret(&u2).await.expect("deleting twice is fine");
}

#[tokio::test]
async fn oversized_values_fail_fast_or_with_barbicans_413() {
    let limit: usize = env("BARBICAN_MAX_SECRET_BYTES").parse().unwrap();
    let big = vec![b'z'; limit + 1];
    let case = case(Mode::NoAuth, "big", &big);
    let e = case.check().expect_err("too large");
    assert_eq!(
        (e.class, e.reason),
        (ErrorClass::Permanent, "PayloadTooLarge")
    );
    assert!(e.message.contains(&limit.to_string()));
    assert_eq!(requests(&case, "list"), 0, "no call was made");

    // Someone raised maxPayloadBytes above the server's limit: Barbican's 413, and no empty secret left over.
    let case = case_with(
        Mode::NoAuth,
        "big413",
        &big,
        json!({"barbican": {"maxPayloadBytes": 100000}}),
    );
    case.check().expect("allowed by the setting");
    let (plan, observed) = case.plan().await.expect("plan");
    let e = case.apply(&plan, &observed).await.expect_err("413");
    assert_eq!(
        (e.class, e.reason),
        (ErrorClass::Permanent, "PayloadTooLarge")
    );
    assert!(e.message.contains("HTTP 413"), "{}", e.message);
    assert!(raw(&case).await.named(&case.name).await.is_empty());
}

#[tokio::test]
async fn names_barbican_cannot_keep_are_refused() {
    let mut case = case(Mode::NoAuth, "n", b"v");
    case.name = "x".repeat(256);
    let e = case.check().expect_err("long");
    assert_eq!((e.class, e.reason), (ErrorClass::Permanent, "InvalidName"));
    // Past the check, Barbican itself refuses it: a permanent 400.
    let e = case
        .apply(&Plan::Create, &Observed::Absent)
        .await
        .expect_err("Barbican refuses");
    assert_eq!(
        (e.class, e.reason),
        (ErrorClass::Permanent, "BackendRejected")
    );
    assert!(e.message.contains("HTTP 400"), "{}", e.message);
    case.name = " padded".into();
    assert_eq!(case.check().unwrap_err().reason, "InvalidName");
}

#[tokio::test]
async fn bad_credentials_are_reported_without_secrets() {
    let mut case = case(Mode::Password, "badcreds", b"v");
    case.credentials = creds(&[
        ("authUrl", env("KEYSTONE_AUTH_URL")),
        ("username", env("KEYSTONE_USERNAME")),
        ("password", "wrong-password-SENTINEL".into()),
        ("projectName", env("KEYSTONE_PROJECT")),
    ]);
    let e = case.observe().await.expect_err("refused");
    assert_eq!(
        (e.class, e.reason),
        (ErrorClass::Credentials, "KeystoneUnauthorized")
    );
    assert!(e.message.contains("HTTP 401"), "{}", e.message);
    assert!(!e.message.contains("SENTINEL"));

    // Authenticated, but only a reader in the project: Barbican's policy answers 403.
    case.credentials = creds(&[
        ("authUrl", env("KEYSTONE_AUTH_URL")),
        ("username", env("KEYSTONE_READER_USERNAME")),
        ("password", env("KEYSTONE_READER_PASSWORD")),
        ("projectName", env("KEYSTONE_PROJECT")),
    ]);
    let e = case.observe().await.expect_err("403");
    assert_eq!((e.class, e.reason), (ErrorClass::Credentials, "Forbidden"));
    assert!(e.message.contains("HTTP 403"), "{}", e.message);
    assert!(
        !e.message.contains("privileges") && e.message.contains("a role that may manage secrets"),
        "our words, never Barbican's description: {}",
        e.message
    );

    // A project the user is not in.
    case.credentials = creds(&[
        ("authUrl", env("KEYSTONE_AUTH_URL")),
        ("username", env("KEYSTONE_USERNAME")),
        ("password", env("KEYSTONE_PASSWORD")),
        ("projectName", "admin".into()),
    ]);
    assert_eq!(
        case.observe().await.unwrap_err().class,
        ErrorClass::Credentials
    );

    // Missing keys are named before any call.
    case.credentials = creds(&[
        ("authUrl", env("KEYSTONE_AUTH_URL")),
        ("username", "u".into()),
    ]);
    let e = case.check().unwrap_err();
    assert_eq!(e.class, ErrorClass::Credentials);
    assert!(e.message.contains("password"), "{}", e.message);
}

#[tokio::test]
async fn a_catalog_without_the_interface_is_a_clear_error() {
    let case = case_with(
        Mode::Password,
        "catalog",
        b"v",
        json!({"barbican": {"interface": "internal"}}),
    );
    let e = case.observe().await.expect_err("no internal endpoint");
    assert_eq!(
        (e.class, e.reason),
        (ErrorClass::Permanent, "NoKeyManagerEndpoint")
    );
}

/// Tokens from the short-lived Keystone (same database and keys) are renewed half-way through their life.
#[tokio::test]
async fn tokens_are_cached_then_renewed_before_they_expire() {
    let ttl: u64 = env("KEYSTONE_SHORT_TTL").parse().unwrap();
    let mut case = case(Mode::Password, "renew", b"v");
    case.credentials = password_creds(&env("KEYSTONE_SHORT_AUTH_URL"));
    case.reconcile().await;
    assert_eq!(requests(&case, "token"), 1);
    case.reconcile().await;
    assert_eq!(requests(&case, "token"), 1, "cached");
    tokio::time::sleep(Duration::from_secs(ttl / 2 + 1)).await;
    assert_eq!(case.reconcile().await.0, Plan::InSync);
    assert_eq!(requests(&case, "token"), 2, "renewed half-way");
    // The first reconcile lists once (nothing there, so no metadata read; its write acts on that listing),
    // each later one lists and reads the one secret's metadata.
    assert_eq!(requests(&case, "list") + requests(&case, "get_metadata"), 5);
    // No call was ever refused: renewal happened before expiry.
    for outcome in ["credentials", "renewed_credentials"] {
        assert_eq!(case.requests("list", outcome), 0, "{outcome}");
    }
    cleanup(&case).await;
}

/// Many SecretSyncs with the same credentials share one token.
#[tokio::test]
async fn concurrent_reconciles_fetch_one_token() {
    let (dialect, metrics) = barbican(|m| Shared::new(200, 200, m));
    let mut tasks = Vec::new();
    for i in 0..12 {
        let mut case = case_on(
            &dialect,
            &metrics,
            Mode::AppCred,
            "many",
            format!("value {i}").as_bytes(),
        );
        tasks.push(tokio::spawn(async move {
            let (plan, _) = case.reconcile().await;
            assert_eq!(plan, Plan::Create);
            delete_ours(&case).await;
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let tokens = metrics
        .backend_requests
        .get_or_create(&BackendLabels {
            dialect: "Barbican".into(),
            operation: "token".into(),
            outcome: "ok".into(),
        })
        .get();
    assert_eq!(tokens, 1);
}

/// Keystone revokes the user's tokens (disabled and enabled again): Barbican answers 401, and the dialect
/// fetches one new token and carries on.
#[tokio::test]
async fn a_revoked_token_is_renewed_once_on_401() {
    let admin = admin_token().await;
    let http = reqwest::Client::new();
    let v3 = env("KEYSTONE_AUTH_URL");
    let user_name = unique("revoke-");
    let password = format!("pw-{:016x}", rand::random::<u64>());
    let r: Value = http
        .post(format!("{v3}/users"))
        .header("X-Auth-Token", &admin)
        .json(&json!({"user": {"name": user_name, "domain_id": "default", "password": password}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user_id = r["user"]["id"].as_str().expect("user id").to_owned();
    let roles: Value = http
        .get(format!("{v3}/roles?name=member"))
        .header("X-Auth-Token", &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let role = roles["roles"][0]["id"]
        .as_str()
        .expect("member role")
        .to_owned();
    let status = http
        .put(format!(
            "{v3}/projects/{}/users/{user_id}/roles/{role}",
            env("KEYSTONE_PROJECT_ID")
        ))
        .header("X-Auth-Token", &admin)
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success());

    let mut case = case(Mode::Password, "revoked", b"v");
    case.credentials = creds(&[
        ("authUrl", v3.clone()),
        ("username", user_name.clone()),
        ("password", password.clone()),
        ("projectName", env("KEYSTONE_PROJECT")),
    ]);
    assert_eq!(case.reconcile().await.0, Plan::Create);
    assert_eq!(requests(&case, "token"), 1);

    for enabled in [false, true] {
        let status = http
            .patch(format!("{v3}/users/{user_id}"))
            .header("X-Auth-Token", &admin)
            .json(&json!({"user": {"enabled": enabled}}))
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success());
    }
    // Revocation events cover tokens issued up to their second: the next token must be issued after it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(case.reconcile().await.0, Plan::InSync);
    assert_eq!(requests(&case, "token"), 2, "one new token after the 401");
    // The refused attempt is counted as renewed (the kit's label), and nothing was finally refused.
    assert_eq!(case.requests("list", "renewed_credentials"), 1);
    assert_eq!(case.requests("list", "credentials"), 0);
    delete_ours(&case).await;
    let _ = http
        .delete(format!("{v3}/users/{user_id}"))
        .header("X-Auth-Token", &admin)
        .send()
        .await;
}

/// A loopback store: `answer(n)` is the raw HTTP reply to its n-th request (from 1), or `None` to read the
/// request and never answer, holding the connection open. Returns its URL and the count of requests seen.
async fn loopback(
    answer: impl Fn(u32) -> Option<String> + Send + Sync + 'static,
) -> (String, Arc<Mutex<u32>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(Mutex::new(0));
    let counter = count.clone();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (counter, answer) = (counter.clone(), answer.clone());
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                if !matches!(sock.read(&mut buf).await, Ok(n) if n > 0) {
                    return;
                }
                let n = {
                    let mut n = counter.lock().unwrap();
                    *n += 1;
                    *n
                };
                match answer(n) {
                    Some(reply) => {
                        let _ = sock.write_all(reply.as_bytes()).await;
                        let _ = sock.shutdown().await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(120)).await,
                }
            });
        }
    });
    (format!("http://{addr}"), count)
}

fn http_reply(status: &str, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A stub that answers every request with one canned reply, counting requests.
async fn stub(
    status: &'static str,
    headers: &'static str,
    body: &'static str,
) -> (String, Arc<Mutex<u32>>) {
    let reply = http_reply(status, headers, body);
    loopback(move |_| Some(reply.clone())).await
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_then_reported_as_transient() {
    for (status, headers, body, reason) in [
        (
            "503 Service Unavailable",
            "Retry-After: 0\r\nContent-Type: application/json\r\n",
            r#"{"code": 503, "title": "Service Unavailable", "description": "down"}"#,
            "BackendError",
        ),
        (
            "429 Too Many Requests",
            "Retry-After: 0\r\n",
            "",
            "Throttled",
        ),
        (
            "500 Internal Server Error",
            "Content-Type: text/html\r\n",
            "<html>oops</html>",
            "BackendError",
        ),
    ] {
        let (endpoint, count) = stub(status, headers, body).await;
        let (dialect, metrics) = barbican(|m| Shared::new(200, 200, m));
        let mut case = case_on(&dialect, &metrics, Mode::NoAuth, "stub", b"v");
        case.target = stub_target(&endpoint);
        let e = case.observe().await.expect_err("transient");
        assert_eq!(
            (e.class, e.reason),
            (ErrorClass::Retry, reason),
            "{}",
            e.message
        );
        assert_eq!(*count.lock().unwrap(), 3, "three attempts in place");
        // Only Barbican's parsed description is shown, never a body's raw text.
        assert!(!e.message.contains("oops"), "{}", e.message);
        if status.starts_with('5') {
            // A POST is not repeated after a 5xx (the secret may have been made): one attempt.
            *count.lock().unwrap() = 0;
            let req = case.request();
            let session = dialect.session(&req).await.expect("no-auth session");
            let e = session
                .create_empty("x", &owner())
                .await
                .expect_err("create");
            assert_eq!(e.class, ErrorClass::Retry);
            assert_eq!(*count.lock().unwrap(), 1, "one POST only");
            // Nor is a payload PUT (write-once: a repeat would be answered 409).
            *count.lock().unwrap() = 0;
            let e = session
                .put_payload(
                    "985e595e-8bdf-4c69-917a-5b9ca9f7ce9b",
                    &SecretValue::from("v"),
                    "application/octet-stream",
                )
                .await
                .expect_err("payload");
            assert_eq!(e.class, ErrorClass::Retry);
            assert_eq!(*count.lock().unwrap(), 1, "one payload PUT only");
        }
    }
    // Nothing listening: unreachable, transient.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut case = case(Mode::NoAuth, "down", b"v");
    case.target = stub_target(&format!("http://127.0.0.1:{port}"));
    let e = case.observe().await.expect_err("unreachable");
    assert_eq!(
        (e.class, e.reason),
        (ErrorClass::Retry, "BackendUnreachable")
    );
}

/// The kit's rule for Barbican: a create `POST` that may have reached Barbican (here it timed out) is sent exactly
/// once, and the next reconcile's listing finds what it made; an idempotent read is repeated in place, whether
/// it timed out or was answered 503.
#[tokio::test]
async fn a_create_that_may_have_been_applied_is_sent_once_while_reads_are_retried() {
    let (dialect, metrics) =
        barbican(|m| Shared::new(100, 100, m).with_deadline(Duration::from_secs(1)));

    let (endpoint, count) = loopback(|_| None).await;
    let mut case = case_on(&dialect, &metrics, Mode::NoAuth, "hang", b"v");
    case.target = stub_target(&endpoint);
    let req = case.request();
    let session = dialect.session(&req).await.expect("no-auth session");
    let e = session
        .create_empty(&case.name, &case.desired.owner)
        .await
        .expect_err("timed out");
    assert_eq!(
        (e.class, e.reason),
        (ErrorClass::Retry, "BackendTimeout"),
        "{}",
        e.message
    );
    assert_eq!(
        *count.lock().unwrap(),
        1,
        "the create was sent exactly once"
    );
    assert_eq!(requests(&case, "create"), 1);
    // The same silence for a read: three attempts.
    *count.lock().unwrap() = 0;
    let e = case.observe().await.expect_err("timed out");
    assert_eq!(e.reason, "BackendTimeout");
    assert_eq!(*count.lock().unwrap(), 3, "the listing was retried");

    // 503 to the first request, then an empty secret list.
    let (endpoint, count) = loopback(|n| {
        Some(if n == 1 {
            http_reply("503 Service Unavailable", "", "")
        } else {
            http_reply(
                "200 OK",
                "Content-Type: application/json\r\n",
                r#"{"secrets": [], "total": 0}"#,
            )
        })
    })
    .await;
    case.target = stub_target(&endpoint);
    assert_eq!(
        case.observe().await.expect("503, then 200"),
        Observed::Absent
    );
    assert_eq!(
        *count.lock().unwrap(),
        2,
        "the listing was sent again after the 503"
    );
    assert_eq!(
        (case.requests("list", "retry"), case.requests("list", "ok")),
        (4, 1)
    );
}

#[tokio::test]
async fn no_value_or_credential_reaches_a_log_line() {
    let capture = support::LogCapture::install("trace");
    let canary = format!("log-canary-{:08x}", rand::random::<u32>());
    let mut case = case(Mode::Password, "logs", canary.as_bytes());
    case.reconcile().await;
    // A heal and a rotation log too.
    let raw = raw(&case).await;
    case.set_value(format!("{canary}-2").as_bytes());
    let pending = raw.create_empty(&case.name).await;
    raw.set_metadata(&pending, marker_meta(&case.desired.digest))
        .await;
    case.reconcile().await;
    case.set_value(format!("{canary}-3").as_bytes());
    case.reconcile().await;
    delete_ours(&case).await;
    let text = capture.text();
    assert!(
        text.contains("created a Barbican secret") && text.contains("completing a Barbican secret"),
        "the capture saw the dialect's lines"
    );
    use base64::Engine;
    for needle in [
        canary.clone(),
        base64::engine::general_purpose::STANDARD.encode(&canary),
        hex::encode(&canary),
        env("KEYSTONE_PASSWORD"),
    ] {
        assert!(
            !text.contains(&needle),
            "a log line holds a value or credential"
        );
    }
}

/// The digest key `tests/python/barbican` checks `interop_write`'s digest with.
const INTEROP_DIGEST_KEY: &[u8] = b"barbican-integration-test-key-32";

/// Writes one secret for the python-barbicanclient interop test (`tests/python/barbican/`), which runs it with
/// `BARBICAN_INTEROP_NAME`, `BARBICAN_INTEROP_VALUE_HEX` and `BARBICAN_INTEROP_CONTENT_TYPE` set, and then reads
/// back with the official client what SecretSync wrote. Ignored in ordinary runs: it leaves the secret behind.
#[tokio::test]
#[ignore = "driven by tests/python/barbican"]
async fn interop_write() {
    let value = hex::decode(env("BARBICAN_INTEROP_VALUE_HEX")).expect("hex value");
    let ct = std::env::var("BARBICAN_INTEROP_CONTENT_TYPE").unwrap_or_default();
    let extra = if ct.is_empty() {
        json!({"labels": {"team": "interop"}})
    } else {
        json!({"labels": {"team": "interop"}, "contentType": ct})
    };
    let mut case = case_with(Mode::Password, "interop", &value, extra);
    case.name = env("BARBICAN_INTEROP_NAME");
    // The python test checks the digest with the key it knows.
    case.desired.digest = DigestKey::new(INTEROP_DIGEST_KEY.to_vec())
        .expect("long enough")
        .digest(&value);
    let (plan, r) = case.reconcile().await;
    assert_eq!(plan, Plan::Create);
    let r = ready(r);
    println!(
        "{}",
        json!({"name": r.name, "secret_ref": r.id, "digest": case.desired.digest})
    );
}

/// A stub that plays back one reply per request, in order, and records each request's method and path.
async fn playback(replies: Vec<(u16, String)>) -> (String, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let mut replies = replies.into_iter();
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = vec![0u8; 65536];
            let n = sock.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let line = head.lines().next().unwrap_or_default().to_owned();
            let mut parts = line.split(' ');
            let (method, path) = (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            );
            log.lock().unwrap().push(format!(
                "{method} {}",
                path.split('?').next().unwrap_or_default()
            ));
            let (status, body) = replies.next().unwrap_or((500, String::new()));
            let reply = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(reply.as_bytes()).await;
            let _ = sock.shutdown().await;
        }
    });
    (format!("http://{addr}"), seen)
}

fn stub_case(endpoint: &str, value: &[u8]) -> Case {
    let mut case = case(Mode::NoAuth, "playback", value);
    case.target = stub_target(endpoint);
    case
}

const UUID_A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const UUID_B: &str = "bbbbbbbb-0000-4000-8000-000000000002";

fn created(base: &str, uuid: &str) -> (u16, String) {
    (
        201,
        json!({"secret_ref": format!("{base}/v1/secrets/{uuid}")}).to_string(),
    )
}

/// The payload PUT's 404 (the secret vanished between the two steps) makes the secret again. A healthy
/// Barbican cannot be made to lose a secret between two calls on demand, so a playback stub stands in.
#[tokio::test]
async fn a_secret_vanishing_before_its_payload_is_made_again() {
    let base = "http://barbican.example";
    let replies = vec![
        created(base, UUID_A),
        (201, "{}".to_owned()),
        (
            404,
            json!({"code": 404, "title": "Not Found", "description": "Secret not found."})
                .to_string(),
        ),
        created(base, UUID_B),
        (201, "{}".to_owned()),
        (204, String::new()),
    ];
    let (endpoint, seen) = playback(replies).await;
    let case = stub_case(&endpoint, b"v");
    let Outcome::Ready(r) = case
        .apply(&Plan::Create, &Observed::Absent)
        .await
        .expect("made again")
    else {
        panic!("ready")
    };
    assert_eq!(id_of(&r), UUID_B);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            // Nothing observed: the write acts on that, without listing again.
            "POST /v1/secrets".to_owned(),
            format!("PUT /v1/secrets/{UUID_A}/metadata"),
            format!("PUT /v1/secrets/{UUID_A}"),
            "POST /v1/secrets".into(),
            format!("PUT /v1/secrets/{UUID_B}/metadata"),
            format!("PUT /v1/secrets/{UUID_B}"),
        ]
    );
}

/// The payload PUT's 409 (already has data, as after a retried PUT whose first reply was lost) is checked by
/// reading the payload back: the same bytes are accepted, other bytes make the secret be replaced.
#[tokio::test]
async fn an_already_set_payload_is_read_back_before_it_is_trusted() {
    let base = "http://barbican.example";
    let conflict = (409, json!({"code": 409, "title": "Conflict", "description": "Secret already has data, cannot modify it."}).to_string());
    let replies = vec![
        created(base, UUID_A),
        (201, "{}".to_owned()),
        conflict.clone(),
        (200, "the value".to_owned()),
    ];
    let (endpoint, seen) = playback(replies).await;
    let case = stub_case(&endpoint, b"the value");
    let Outcome::Ready(r) = case
        .apply(&Plan::Create, &Observed::Absent)
        .await
        .expect("accepted")
    else {
        panic!("ready")
    };
    assert_eq!(id_of(&r), UUID_A);
    assert_eq!(
        seen.lock().unwrap().last().unwrap(),
        &format!("GET /v1/secrets/{UUID_A}/payload")
    );

    let replies = vec![
        created(base, UUID_A),
        (201, "{}".to_owned()),
        conflict,
        (200, "another value".to_owned()),
        (204, String::new()),
        created(base, UUID_B),
        (201, "{}".to_owned()),
        (204, String::new()),
    ];
    let (endpoint, seen) = playback(replies).await;
    let case = stub_case(&endpoint, b"the value");
    let Outcome::Ready(r) = case
        .apply(&Plan::Create, &Observed::Absent)
        .await
        .expect("replaced")
    else {
        panic!("ready")
    };
    assert_eq!(id_of(&r), UUID_B);
    assert!(
        seen.lock()
            .unwrap()
            .contains(&format!("DELETE /v1/secrets/{UUID_A}"))
    );
}

// ---- two tenants on one Barbican project, through the controller ----

/// One tenant: a namespace with its credentials Secret, a namespaced Store on the test bed's Keystone-backed
/// Barbican, and a controller of its own watching only that namespace (so its Barbican requests are counted
/// apart from the other tenant's).
struct Tenant {
    client: kube::Client,
    ns: String,
    metrics: Arc<Metrics>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The test bed's API server as its admin, with SecretSync's CRDs as `crds/` has them.
async fn kube_admin() -> kube::Client {
    tokio::task::spawn_blocking(cluster::install_crds_and_namespace)
        .await
        .expect("CRDs installed");
    let kubeconfig =
        kube::config::Kubeconfig::read_from(env("KUBECONFIG")).expect("kubeconfig readable");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("kubeconfig valid");
    kube::Client::try_from(config).expect("client")
}

/// Server-side applies `obj` through `api`.
async fn kube_apply<K>(api: &kube::Api<K>, obj: Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    use kube::api::{Patch, PatchParams};
    let name = obj["metadata"]["name"].as_str().expect("name").to_owned();
    api.patch(
        &name,
        &PatchParams::apply("secretsync-barbican-tests").force(),
        &Patch::Apply(&obj),
    )
    .await
    .unwrap_or_else(|e| panic!("{name} applied: {e}"))
}

impl Tenant {
    async fn new(client: &kube::Client, prefix: &str) -> Tenant {
        use k8s_openapi::api::core::v1::{Namespace, Secret};
        use secretsync::api::Store;
        let ns = unique(&format!("{prefix}-"));
        kube_apply(
            &kube::Api::<Namespace>::all(client.clone()),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await;
        let tenant = Tenant {
            client: client.clone(),
            ns,
            metrics: Metrics::new(),
            stop: None,
            task: None,
        };
        kube_apply(
            &kube::Api::<Secret>::namespaced(client.clone(), &tenant.ns),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "os"},
                   "stringData": {"authUrl": env("KEYSTONE_AUTH_URL"), "username": env("KEYSTONE_USERNAME"),
                                  "password": env("KEYSTONE_PASSWORD"), "userDomainName": "Default",
                                  "projectName": env("KEYSTONE_PROJECT"), "projectDomainName": "Default"}}),
        )
        .await;
        kube_apply(
            &kube::Api::<Store>::namespaced(client.clone(), &tenant.ns),
            json!({"apiVersion": "secretsync.io/v1alpha1", "kind": "Store", "metadata": {"name": "os"},
                   "spec": {"dialect": "Barbican", "endpoint": env("BARBICAN_ENDPOINT"),
                            "credentialsRef": {"name": "os"}}}),
        )
        .await;
        tenant
    }

    fn start(&mut self) {
        use secretsync::controller;
        let shared = Shared::new(50, 50, self.metrics.clone());
        let config = controller::Config {
            namespaces: vec![self.ns.clone()],
            selector: None,
            concurrency: 2,
            digest_key: DigestKey::new(rand::random::<[u8; 32]>().to_vec()).expect("32 bytes"),
            cluster_id: "barbican-tenants-test".into(),
            metrics: self.metrics.clone(),
            ready: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            instance: format!("test-{}", self.ns),
            cleanup_timeout: Duration::from_secs(60),
            allow_inline_targets: false,
            panic_on: None,
            limits: controller::store_limits::StoreLimits {
                namespaced_store_hosts: env("SECRETSYNC_NAMESPACED_STORE_HOSTS")
                    .split(',')
                    .map(str::to_owned)
                    .collect(),
                ..Default::default()
            },
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let client = self.client.clone();
        let registry = secretsync::dialects::Registry::standard(&shared);
        self.task = Some(tokio::spawn(controller::run(
            client,
            config,
            registry,
            async move {
                let _ = rx.await;
            },
        )));
        self.stop = Some(tx);
    }

    /// The source Secret `src` with `value` under key `v`.
    async fn put_source(&self, value: &str) {
        kube_apply(
            &kube::Api::<k8s_openapi::api::core::v1::Secret>::namespaced(
                self.client.clone(),
                &self.ns,
            ),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "src"},
                   "stringData": {"v": value}}),
        )
        .await;
    }

    /// The SecretSync `sync` pushing `src` to `remote` through the Store `os`.
    async fn put_sync(&self, remote: &str, refresh: &str) -> secretsync::api::SecretSync {
        kube_apply(
            &kube::Api::namespaced(self.client.clone(), &self.ns),
            json!({"apiVersion": "secretsync.io/v1alpha1", "kind": "SecretSync", "metadata": {"name": "sync"},
                   "spec": {"source": {"secretRef": {"name": "src", "key": "v"}},
                            "target": {"storeRef": {"kind": "Store", "name": "os"}, "remoteName": remote},
                            "refreshInterval": refresh}}),
        )
        .await
    }

    /// The SecretSync `sync` as JSON.
    async fn object(&self) -> Value {
        let api: kube::Api<secretsync::api::SecretSync> =
            kube::Api::namespaced(self.client.clone(), &self.ns);
        serde_json::to_value(api.get("sync").await.expect("get SecretSync")).expect("JSON")
    }

    /// Polls the SecretSync until `pred` holds; panics with its last status after a minute.
    async fn wait_status(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let end = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.object().await;
            if pred(&s) {
                return s;
            }
            assert!(
                std::time::Instant::now() < end,
                "{}: never {what}: {:#}",
                self.ns,
                s["status"]
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// This tenant's controller's Barbican requests of `operation`, whatever their outcome.
    fn requests(&self, operation: &str) -> u64 {
        self.metrics
            .render()
            .lines()
            .filter_map(|l| l.strip_prefix("secretsync_backend_requests_total{"))
            .filter_map(|l| l.split_once("} "))
            .filter(|(labels, _)| labels.contains(&format!("operation=\"{operation}\"")))
            .filter_map(|(_, n)| n.trim().parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    /// Panics when a controller other than this tenant's reported Events here: a cluster-wide one on the shared
    /// test bed (an e2e run's) reconciling these objects too, which makes this test's counts meaningless.
    async fn assert_alone(&self) {
        let events: kube::Api<k8s_openapi::api::events::v1::Event> =
            kube::Api::namespaced(self.client.clone(), &self.ns);
        let mine = format!("test-{}", self.ns);
        for e in events
            .list(&Default::default())
            .await
            .expect("Events")
            .items
        {
            let who = e.reporting_instance.unwrap_or_default();
            assert!(
                who == mine,
                "controller {who:?} also reconciles {}: run this test when no cluster-wide controller runs",
                self.ns
            );
        }
    }

    /// Requests of this tenant's controller that change Barbican.
    fn writes(&self) -> u64 {
        ["create", "put_metadata", "put_payload", "delete"]
            .iter()
            .map(|op| self.requests(op))
            .sum()
    }

    /// Stops the controller; the namespace goes when the tenant is dropped.
    async fn finish(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
    }
}

impl Drop for Tenant {
    /// Deletes the namespace even when the test failed (kubectl, since no runtime may be left to await on), so
    /// no other controller on the test bed keeps its SecretSync writing to Barbican.
    fn drop(&mut self) {
        let _ = cluster::kubectl_try(&["delete", "namespace", &self.ns, "--wait=false"], None);
    }
}

/// Issue #27: two namespaces whose Stores share one Barbican project and one Keystone user write the same secret
/// name. A rotates while B's SecretSync of that name keeps reconciling; each round also holds one secret of A's in
/// the state A's `POST` leaves it in before its metadata write (unmarked, no payload, made by the same user) while
/// B reconciles at least twice. B must never mark, fill or delete any of A's secrets, and stays `Conflict`; A
/// completes its own unfinished secret on its next write instead of making another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_never_claims_another_tenants_secret_of_the_same_name() {
    const ROUNDS_AT_LEAST: usize = 3;
    const B_RECONCILING: Duration = Duration::from_secs(55);
    let client = kube_admin().await;
    let remote = unique("shared-");
    let mut a = Tenant::new(&client, "bbc-a").await;
    let mut b = Tenant::new(&client, "bbc-b").await;
    a.start();
    b.start();
    let raw = Raw::for_mode(Mode::Password).await;
    // The dialect as A's controller runs it, to leave a secret in A's between-POST-and-metadata state.
    let (dialect, metrics) = barbican(|m| Shared::new(50, 50, m));
    let mut stand_in = case_on(&dialect, &metrics, Mode::Password, "stand-in", b"unused");
    stand_in.name = remote.clone();

    a.put_source("a-value-0").await;
    let a_sync = a.put_sync(&remote, "1h").await;
    let a_owner = secretsync::plan::Owner {
        namespace: a.ns.clone(),
        name: "sync".into(),
        uid: a_sync.metadata.uid.clone().expect("uid"),
        ..owner()
    };
    let mut a_ref = a
        .wait_status("Ready", |s| s["status"]["phase"] == "Ready")
        .await["status"]["remote"]["id"]
        .as_str()
        .expect("remote id")
        .to_owned();
    b.put_source("b-value-0").await;
    b.put_sync(&remote, "10s").await;
    b.wait_status("Conflict", |s| cluster::ready_reason(s) == "False/Conflict")
        .await;

    let started = std::time::Instant::now();
    let mut round = 0;
    while round < ROUNDS_AT_LEAST || started.elapsed() < B_RECONCILING {
        round += 1;
        // A's next secret, as its POST leaves it.
        let s = dialect.session(&stand_in.request()).await.expect("session");
        let (pending, pending_ref) = s.create_empty(&remote, &a_owner).await.expect("POST");
        // B reconciles at least twice while it stands, pushed along by changes to its own source.
        let lists = b.requests("list");
        let end = std::time::Instant::now() + Duration::from_secs(40);
        let mut poke = 0;
        while b.requests("list") < lists + 2 {
            assert!(
                std::time::Instant::now() < end,
                "round {round}: B did not reconcile"
            );
            poke += 1;
            b.put_source(&format!("b-value-{round}-{poke}")).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        a.assert_alone().await;
        b.assert_alone().await;
        assert_eq!(
            b.writes(),
            0,
            "round {round}: B's controller wrote to Barbican"
        );
        let meta = raw.metadata(&pending).await;
        assert_ne!(
            meta.get("secretsync-owner-namespace"),
            Some(&b.ns),
            "round {round}: B claimed A's unfinished secret"
        );
        assert_eq!(
            cluster::ready_reason(&b.object().await),
            "False/Conflict",
            "round {round}: B stays Conflict"
        );
        // A rotates: its controller completes its own unfinished secret rather than making another.
        a.put_source(&format!("a-value-{round}")).await;
        let status = a
            .wait_status("Ready with the rotated value", |s| {
                s["status"]["phase"] == "Ready"
                    && s["status"]["remote"]["id"].as_str() != Some(a_ref.as_str())
            })
            .await;
        a_ref = status["status"]["remote"]["id"]
            .as_str()
            .expect("id")
            .to_owned();
        a.assert_alone().await;
        assert_eq!(
            a_ref, pending_ref,
            "round {round}: A completed its own secret"
        );
        // What the store holds: that secret alone (A pruned the one before), marked as A's.
        let left = raw.only(&remote).await;
        assert_eq!(uuid(&left), pending, "round {round}");
        assert_eq!(
            raw.metadata(&pending)
                .await
                .get("secretsync-owner-namespace"),
            Some(&a.ns),
            "round {round}"
        );
    }
    // B wrote nothing to Barbican (no delete among it), so whatever of A's is gone was pruned by A.
    assert_eq!(b.writes(), 0, "B's controller wrote to Barbican");
    let b_reconciles = b.requests("list");
    assert!(b_reconciles >= 2 * round as u64);
    println!(
        "{round} rounds in {:?}; B listed the name {b_reconciles} times",
        started.elapsed()
    );
    assert_eq!(
        raw.payload(&uuid(&raw.only(&remote).await), "application/octet-stream")
            .await,
        format!("a-value-{round}").as_bytes(),
        "A's current value, and nothing else left"
    );
    a.finish().await;
    b.finish().await;
    for s in raw.named(&remote).await {
        raw.delete(&uuid(&s)).await;
    }
}
