//! The ServiceFabricMesh dialect against the Service Fabric emulator of the test bed (`make testbed`), driven
//! through the `Dialect` trait and the real planner, with the emulator's own view read over plain HTTP to check
//! what was really written.

use std::sync::Arc;
use std::time::{Duration, Instant};

use secretsync::api::Target;
use secretsync::dialects::service_fabric_mesh::ServiceFabricMesh;
use secretsync::dialects::{ErrorClass, Outcome, Shared};
use secretsync::metrics::Metrics;
use secretsync::plan::digest::short;
use secretsync::plan::{DeletePlan, Observed, Plan, Refusal, RemoteState, decide, decide_delete};
use secretsync::value::{Credentials, SecretValue};
use serde_json::{Value, json};

#[path = "support/dialect_case.rs"]
mod dialect_case;

use dialect_case::{Case, owner, remote, unique};

const API: &str = "api-version=6.4-preview";

#[path = "support/env.rs"]
mod env;
use env::env;

fn endpoint() -> String {
    env("SF_ENDPOINT")
}

fn target_at(endpoint: &str, extra: Value) -> Target {
    let mut t = json!({"dialect": "ServiceFabricMesh", "endpoint": endpoint});
    if let (Some(t), Some(extra)) = (t.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            t.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(t).expect("target parses")
}

fn target(extra: Value) -> Target {
    target_at(&endpoint(), extra)
}

fn creds(pairs: &[(&str, String)]) -> Credentials {
    Credentials::new(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), SecretValue::from(v.as_str())))
            .collect(),
    )
}

/// A case on a ServiceFabricMesh dialect of its own, without credentials.
fn new_case(name: &str, target: Target, value: &str) -> Case {
    Case::new(
        |shared| Arc::new(ServiceFabricMesh::new(shared)) as _,
        target,
        Credentials::default(),
        name,
        value.as_bytes(),
    )
}

/// The version SecretSync names the case's current value by.
fn version(case: &Case) -> String {
    short(&case.desired.digest, 20).to_owned()
}

// The emulator's own view, over plain HTTP.

async fn raw(method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let sep = if path.contains('?') { '&' } else { '?' };
    let url = format!("{}{path}{sep}{API}", endpoint());
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("emulator reachable");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn raw_status(name: &str) -> String {
    let (_, body) = raw(
        reqwest::Method::GET,
        &format!("/Resources/Secrets/{name}"),
        None,
    )
    .await;
    body["properties"]["status"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

async fn versions(name: &str) -> Vec<String> {
    let (status, body) = raw(
        reqwest::Method::GET,
        &format!("/Resources/Secrets/{name}/values"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["Items"]
        .as_array()
        .expect("Items")
        .iter()
        .map(|i| i["name"].as_str().expect("name").to_owned())
        .collect()
}

async fn shown(name: &str, version: &str) -> String {
    let (status, body) = raw(
        reqwest::Method::POST,
        &format!("/Resources/Secrets/{name}/values/{version}/list_value"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["value"].as_str().expect("value").to_owned()
}

/// Requests that reached the emulator's store for `name`: (writes, reads).
async fn stats(name: &str) -> (u64, u64) {
    let resp = reqwest::get(format!("{}/_emulator/stats/{name}", endpoint()))
        .await
        .expect("stats");
    let body: Value = resp.json().await.expect("stats json");
    (
        body["writes"].as_u64().expect("writes"),
        body["reads"].as_u64().expect("reads"),
    )
}

async fn writes(name: &str) -> u64 {
    stats(name).await.0
}

async fn fault(fault: Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/_emulator/faults", endpoint()))
        .json(&fault)
        .send()
        .await
        .expect("fault");
    assert!(resp.status().is_success());
}

/// Polls `observe` until the remote is no longer `Creating`, checking at every step that the dialect reports
/// `Creating` exactly while the emulator does. Returns how many polls saw `Creating`.
async fn wait_ready(case: &Case) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut creating = 0;
    loop {
        let before = raw_status(&case.name).await;
        let observed = case.observe().await.expect("observe");
        let after = raw_status(&case.name).await;
        let state = remote(&observed).state.clone();
        if after == "Creating" {
            assert_eq!(state, RemoteState::Creating, "backend still Creating");
        }
        if before == "Ready" {
            assert_eq!(state, RemoteState::Ready, "backend already Ready");
        }
        match state {
            RemoteState::Creating => {
                creating += 1;
                let caps = case.dialect.capabilities(&case.target);
                assert_eq!(decide(&case.desired, &observed, caps), Plan::WaitForBackend);
            }
            _ => return creating,
        }
        assert!(Instant::now() < deadline, "never left Creating");
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

#[tokio::test]
async fn full_lifecycle_through_the_planner() {
    let name = unique("life-");
    let mut case = new_case(
        &name,
        target(json!({"contentType": "text/plain", "description": "orders database"})),
        "first-value",
    );

    let (plan, outcome) = case.reconcile().await;
    assert_eq!(plan, Plan::Create);
    // 201 Creating: the SecretSync's phase is Creating, and no value was sent yet.
    let Some(Outcome::Creating(reference)) = outcome else {
        panic!("expected Creating, got {outcome:?}")
    };
    assert_eq!(reference.version, None, "no version exists yet");
    assert_eq!(raw_status(&name).await, "Creating");
    assert!(wait_ready(&case).await >= 1, "Creating was never observed");

    // Ready: the value is added as a version named after its keyed digest.
    let (plan, outcome) = case.reconcile().await;
    assert_eq!(plan, Plan::NewVersion);
    assert!(matches!(outcome, Some(Outcome::Ready(_))), "{outcome:?}");
    assert_eq!(versions(&name).await, vec![version(&case)]);
    assert_eq!(shown(&name, &version(&case)).await, "first-value");

    let observed = case.observe().await.expect("observe");
    let r = remote(&observed);
    assert_eq!(r.owner.as_ref(), Some(&owner()));
    assert_eq!(r.digest.as_deref(), Some(case.desired.digest.as_str()));
    assert_eq!(
        r.reference.id.as_deref(),
        Some(format!("{name}:{}", version(&case)).as_str())
    );
    assert_eq!(r.metadata.description.as_deref(), Some("orders database"));
    assert_eq!(r.metadata.content_type.as_deref(), Some("text/plain"));

    // In sync: observing and deciding writes nothing, and costs one GET (the resource; the status names its
    // current version).
    let (writes_before, reads_before) = stats(&name).await;
    let (plan, outcome) = case.reconcile().await;
    assert_eq!(plan, Plan::InSync);
    assert!(outcome.is_none());
    assert_eq!(
        stats(&name).await,
        (writes_before, reads_before + 1),
        "an in-sync reconcile wrote, or read more than the resource"
    );

    // A new value: a new version, the old one retained, the markers moved on.
    let first_version = version(&case);
    case.set_value(b"second-value");
    let before = writes(&name).await;
    let (plan, _) = case.reconcile().await;
    assert_eq!(plan, Plan::NewVersion);
    // One PUT of the value, one PUT of the resource's markers; nothing to delete yet.
    assert_eq!(writes(&name).await, before + 2);
    assert_eq!(versions(&name).await, vec![first_version, version(&case)]);
    assert_eq!(shown(&name, &version(&case)).await, "second-value");
    assert_eq!(case.reconcile().await.0, Plan::InSync);

    // A description change: updated in place, no new version, exactly one write.
    case.desired.metadata.description = Some("orders database (primary)".into());
    let before = writes(&name).await;
    let (plan, _) = case.reconcile().await;
    assert_eq!(plan, Plan::UpdateMetadata);
    assert_eq!(writes(&name).await, before + 1);
    assert_eq!(versions(&name).await.len(), 2);
    let observed = case.observe().await.expect("observe");
    assert_eq!(
        remote(&observed).metadata.description.as_deref(),
        Some("orders database (primary)")
    );
    assert_eq!(
        remote(&observed).digest.as_deref(),
        Some(case.desired.digest.as_str())
    );
    assert_eq!(case.reconcile().await.0, Plan::InSync);

    // Delete: the resource and every version go.
    assert_eq!(decide_delete(&owner(), &observed), DeletePlan::Delete);
    case.dialect
        .delete(&case.request(), &observed)
        .await
        .expect("delete");
    assert_eq!(case.observe().await.expect("observe"), Observed::Absent);
    // Deleting what is gone is not an error.
    case.dialect
        .delete(&case.request(), &observed)
        .await
        .expect("second delete");
}

#[tokio::test]
async fn accepted_202_is_creating_until_the_backend_is_ready() {
    let name = unique("accepted-");
    let mut case = new_case(&name, target(json!({})), "v");
    let (plan, outcome) = case.reconcile().await;
    assert_eq!(plan, Plan::Create);
    assert!(
        matches!(outcome, Some(Outcome::Creating(_))),
        "202 must report Creating: {outcome:?}"
    );
    assert!(wait_ready(&case).await >= 1);
    assert_eq!(case.reconcile().await.0, Plan::NewVersion);
    assert_eq!(case.reconcile().await.0, Plan::InSync);
    assert_eq!(shown(&name, &version(&case)).await, "v");
}

#[tokio::test]
async fn immediately_ready_resource_gets_its_value_in_the_same_apply() {
    let name = unique("instant-");
    let mut case = new_case(&name, target(json!({})), "v");
    let (plan, outcome) = case.reconcile().await;
    assert_eq!(plan, Plan::Create);
    assert!(matches!(outcome, Some(Outcome::Ready(_))), "{outcome:?}");
    assert_eq!(versions(&name).await, vec![version(&case)]);
    assert_eq!(case.reconcile().await.0, Plan::InSync);
}

#[tokio::test]
async fn failed_resource_is_reported_in_our_words_never_the_backend_details() {
    let name = unique("failing-");
    let mut case = new_case(&name, target(json!({})), "v");
    assert!(matches!(
        case.reconcile().await.1,
        Some(Outcome::Creating(_))
    ));
    wait_ready(&case).await;
    let (plan, observed) = case.plan().await.expect("plan");
    let RemoteState::Failed(detail) = &remote(&observed).state else {
        panic!("expected Failed, got {observed:?}")
    };
    assert!(
        detail.contains("Failed") && !detail.contains("emulated failure"),
        "{detail}"
    );
    assert_eq!(plan, Plan::BackendFailed(detail.clone()));
}

#[tokio::test]
async fn content_type_is_immutable_unless_replace_is_allowed() {
    let name = unique("instant-ct-");
    let mut case = new_case(&name, target(json!({"contentType": "text/plain"})), "v1");
    assert!(matches!(case.reconcile().await.1, Some(Outcome::Ready(_))));

    case.desired.metadata.content_type = Some("application/json".into());
    let (plan, observed) = case.plan().await.expect("plan");
    assert_eq!(
        plan,
        Plan::Refuse(Refusal::Immutable {
            field: "contentType"
        })
    );
    // Written anyway, the store itself refuses it, and the error says what to do.
    let err = case
        .apply(&Plan::UpdateMetadata, &observed)
        .await
        .expect_err("store refuses a contentType change");
    assert_eq!(err.class, ErrorClass::Permanent);
    assert_eq!(err.reason, "Immutable");
    assert!(
        err.to_string()
            .contains("FABRIC_E_SECRET_TYPE_CANNOT_BE_CHANGED")
    );

    case.desired.allow_replace = true;
    let (plan, outcome) = case.reconcile().await;
    assert_eq!(
        plan,
        Plan::Replace {
            field: "contentType"
        }
    );
    assert!(matches!(outcome, Some(Outcome::Ready(_))), "{outcome:?}");
    let observed = case.observe().await.expect("observe");
    assert_eq!(
        remote(&observed).metadata.content_type.as_deref(),
        Some("application/json")
    );
    assert_eq!(case.reconcile().await.0, Plan::InSync);
}

#[tokio::test]
async fn a_foreign_kind_is_reported_or_replaced_when_allowed() {
    let name = unique("instant-kv-");
    let (status, body) = raw(
        reqwest::Method::PUT,
        &format!("/Resources/Secrets/{name}"),
        Some(json!({"name": name, "properties": {"kind": "keyVaultVersionedReference"}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let mut case = new_case(&name, target(json!({})), "v");
    let (plan, _) = case.plan().await.expect("plan");
    assert_eq!(plan, Plan::Refuse(Refusal::NotOwned));

    // Its kind is fixed like a content type: the planner refuses to write into it, or replaces it when allowed.
    case.desired.adopt_existing = true;
    let (plan, observed) = case.plan().await.expect("plan");
    let field = "contentType";
    assert_eq!(plan, Plan::Refuse(Refusal::Immutable { field }));
    // Written anyway, the store itself refuses it.
    let err = case
        .apply(&Plan::NewVersion, &observed)
        .await
        .expect_err("a keyVaultVersionedReference cannot become inlinedValue");
    assert_eq!(err.reason, "Immutable");

    case.target = target(json!({"serviceFabricMesh": {"allowReplace": true}}));
    case.desired.allow_replace = true;
    let (plan, outcome) = case.reconcile().await;
    assert_eq!(plan, Plan::Replace { field });
    assert!(matches!(outcome, Some(Outcome::Ready(_))), "{outcome:?}");
    let (_, body) = raw(
        reqwest::Method::GET,
        &format!("/Resources/Secrets/{name}"),
        None,
    )
    .await;
    assert_eq!(body["properties"]["kind"], "inlinedValue");
    assert_eq!(case.reconcile().await.0, Plan::InSync);
}

#[tokio::test]
async fn superseded_versions_beyond_retention_are_deleted() {
    let name = unique("instant-ret-");
    let mut case = new_case(
        &name,
        target(json!({"serviceFabricMesh": {"retainVersions": 1}})),
        "value-0",
    );
    case.reconcile().await;
    let mut written = vec![version(&case)];
    for i in 1..4 {
        case.set_value(format!("value-{i}").as_bytes());
        assert_eq!(case.reconcile().await.0, Plan::NewVersion);
        written.push(version(&case));
    }
    // The current version and one superseded one remain.
    assert_eq!(versions(&name).await, written[2..].to_vec());
    assert_eq!(shown(&name, &written[3]).await, "value-3");

    // A version SecretSync did not write is never deleted.
    let (status, _) = raw(
        reqwest::Method::PUT,
        &format!("/Resources/Secrets/{name}/values/hand-made"),
        Some(json!({"name": "hand-made", "properties": {"value": "x"}})),
    )
    .await;
    assert_eq!(status, 201);
    case.set_value(b"value-4");
    case.reconcile().await;
    let left = versions(&name).await;
    assert!(left.contains(&"hand-made".to_owned()), "{left:?}");
    assert!(!left.contains(&written[2]), "{left:?}");
}

#[tokio::test]
async fn an_unmarked_resource_is_not_taken_over() {
    let name = unique("instant-foreign-");
    raw(
        reqwest::Method::PUT,
        &format!("/Resources/Secrets/{name}"),
        Some(json!({"properties": {"kind": "inlinedValue", "description": "someone else's"}})),
    )
    .await;
    let mut case = new_case(&name, target(json!({})), "v");
    let before = writes(&name).await;
    assert_eq!(case.reconcile().await.0, Plan::Refuse(Refusal::NotOwned));
    assert_eq!(writes(&name).await, before);
    let observed = case.observe().await.expect("observe");
    assert_eq!(remote(&observed).owner, None);
    assert_eq!(
        remote(&observed).metadata.description.as_deref(),
        Some("someone else's")
    );
    assert_eq!(decide_delete(&owner(), &observed), DeletePlan::LeaveForeign);
}

/// Deletes the case's current value version behind SecretSync's back, as another client of the store could.
async fn delete_current_version(name: &str, case: &Case) {
    let (status, _) = raw(
        reqwest::Method::DELETE,
        &format!("/Resources/Secrets/{name}/values/{}", version(case)),
        None,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn at_rest_one_read_and_a_lost_version_is_written_again_once_unconfirmed() {
    let name = unique("instant-lost-");
    let mut case = new_case(&name, target(json!({})), "v");
    case.reconcile().await;
    // The status names the current version: a refresh at rest reads the resource only.
    let (_, reads) = stats(&name).await;
    assert_eq!(case.reconcile().await.0, Plan::InSync);
    assert_eq!(
        stats(&name).await.1 - reads,
        1,
        "reads for one refresh at rest"
    );

    delete_current_version(&name, &case).await;
    // Without a status naming it (a first sync, a new value, a restored object) the version is checked.
    case.last = None;
    let (_, reads) = stats(&name).await;
    let observed = case.observe().await.expect("observe");
    assert_eq!(stats(&name).await.1 - reads, 2, "resource and version read");
    assert_eq!(remote(&observed).digest, None);
    assert_eq!(case.reconcile().await.0, Plan::NewVersion);
    assert_eq!(shown(&name, &version(&case)).await, "v");
}

#[tokio::test]
async fn verify_values_checks_the_version_even_when_the_status_names_it() {
    let name = unique("instant-verify-lost-");
    let mut case = new_case(
        &name,
        target(json!({"serviceFabricMesh": {"verifyValues": true}})),
        "v",
    );
    case.reconcile().await;
    assert!(case.last.is_some());
    delete_current_version(&name, &case).await;
    assert_eq!(case.reconcile().await.0, Plan::NewVersion);
    assert_eq!(shown(&name, &version(&case)).await, "v");
}

#[tokio::test]
async fn verify_values_reads_back_with_list_value() {
    let name = unique("instant-verify-");
    let mut case = new_case(
        &name,
        target(json!({"serviceFabricMesh": {"verifyValues": true}})),
        "v",
    );
    case.reconcile().await;
    // A failing list_value shows the read-back is really used for the comparison.
    fault(json!({"secret": name, "method": "POST", "status": 403, "code": "E_ACCESSDENIED", "times": 1})).await;
    let err = case.observe().await.expect_err("list_value refused");
    assert_eq!(err.class, ErrorClass::Credentials);
    assert_eq!(case.reconcile().await.0, Plan::InSync);
}

#[tokio::test]
async fn transient_errors_are_retried_in_place() {
    let name = unique("instant-retry-");
    let mut case = new_case(&name, target(json!({})), "v");
    case.reconcile().await;
    fault(json!({"secret": name, "method": "GET", "status": 503, "times": 2})).await;
    let observed = case.observe().await.expect("two 503s are absorbed");
    assert!(matches!(observed, Observed::Present(_)));

    fault(json!({"secret": name, "method": "GET", "status": 503, "times": 3})).await;
    let err = case.observe().await.expect_err("three 503s are too many");
    assert_eq!(err.class, ErrorClass::Retry);
    assert!(err.to_string().contains("503"), "{err}");
}

#[tokio::test]
async fn store_errors_map_to_classes() {
    let name = unique("instant-err-");
    let mut case = new_case(&name, target(json!({})), "SENTINEL-secret-value");
    case.reconcile().await;

    // A long Retry-After is handed to the controller at once.
    fault(json!({"secret": name, "method": "GET", "status": 429, "retryAfter": 30, "times": 1}))
        .await;
    let started = Instant::now();
    let err = case.observe().await.expect_err("throttled");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(err.class, ErrorClass::Retry);
    assert_eq!(err.retry_after, Some(Duration::from_secs(30)));

    // 401: credentials refused or the Central Secret Service is being removed.
    fault(json!({"secret": name, "status": 401, "code": "E_ACCESSDENIED", "times": 1})).await;
    let err = case.observe().await.expect_err("401");
    assert_eq!(err.class, ErrorClass::Credentials);
    assert!(err.to_string().contains("being removed"), "{err}");

    // The store's own code decides, and the value never shows in the message.
    case.set_value(b"SENTINEL-other-value");
    fault(json!({"secret": name, "method": "PUT", "status": 400, "code": "FABRIC_E_SECRET_INVALID", "times": 1})).await;
    let (plan, observed) = case.plan().await.expect("plan");
    let err = case.apply(&plan, &observed).await.expect_err("invalid");
    assert_eq!(err.class, ErrorClass::Permanent);
    assert!(err.to_string().contains("FABRIC_E_SECRET_INVALID"));
    assert!(!err.to_string().contains("SENTINEL"));
    assert!(!format!("{err:?}").contains("SENTINEL"));

    fault(json!({"secret": name, "status": 500, "code": "FABRIC_E_CENTRAL_SECRET_SERVICE_GENERIC", "times": 3})).await;
    let err = case.observe().await.expect_err("generic");
    assert_eq!(err.class, ErrorClass::Retry);

    let (status, body) = raw(
        reqwest::Method::GET,
        &format!("/Resources/Secrets/{name}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(!body.to_string().contains("SENTINEL"));
}

#[tokio::test]
async fn wrong_api_version_is_a_permanent_error() {
    let name = unique("instant-api-");
    let case = new_case(
        &name,
        target(json!({"serviceFabricMesh": {"apiVersion": "6.3"}})),
        "v",
    );
    let err = case.observe().await.expect_err("6.3 is refused");
    assert_eq!(err.class, ErrorClass::Permanent);
}

fn read(path_var: &str) -> String {
    std::fs::read_to_string(env(path_var)).expect("test-bed file")
}

/// The token itself, right and wrong, is what the conformance suite runs every scenario with; what is left is
/// the private CA the gateway's certificate needs.
#[tokio::test]
async fn bearer_token_over_https() {
    let name = unique("instant-token-");
    let mut case = new_case(&name, target_at(&env("SF_TOKEN_ENDPOINT"), json!({})), "v");
    case.credentials = creds(&[
        ("token", read("SF_TOKEN_FILE").trim().to_owned()),
        ("ca.crt", read("SF_CA_CERT")),
    ]);
    assert_eq!(case.observe().await.expect("trusted"), Observed::Absent);

    // Without the private CA the gateway's certificate is not trusted.
    case.credentials = creds(&[("token", read("SF_TOKEN_FILE").trim().to_owned())]);
    let err = case.observe().await.expect_err("untrusted server");
    assert_eq!(err.class, ErrorClass::Retry);
}

#[tokio::test]
async fn client_certificate_over_mutual_tls() {
    let name = unique("instant-mtls-");
    let mut case = new_case(&name, target_at(&env("SF_MTLS_ENDPOINT"), json!({})), "v");
    case.credentials = creds(&[
        ("tls.crt", read("SF_CLIENT_CERT")),
        ("tls.key", read("SF_CLIENT_KEY")),
        ("ca.crt", read("SF_CA_CERT")),
    ]);
    let (plan, outcome) = case.reconcile().await;
    assert_eq!(plan, Plan::Create);
    assert!(matches!(outcome, Some(Outcome::Ready(_))), "{outcome:?}");
    assert_eq!(case.reconcile().await.0, Plan::InSync);

    // A certificate from a CA the cluster does not trust, or none at all, gets nowhere.
    let other = unique("instant-mtls-");
    let mut stranger = new_case(&other, target_at(&env("SF_MTLS_ENDPOINT"), json!({})), "v");
    stranger.credentials = creds(&[
        ("tls.crt", read("SF_STRANGER_CERT")),
        ("tls.key", read("SF_STRANGER_KEY")),
        ("ca.crt", read("SF_CA_CERT")),
    ]);
    assert!(stranger.observe().await.is_err());
    stranger.credentials = creds(&[("ca.crt", read("SF_CA_CERT"))]);
    assert!(stranger.observe().await.is_err());
    assert_eq!(
        stats(&other).await,
        (0, 0),
        "a refused client reached the store"
    );
}

#[tokio::test]
async fn many_secrets_share_one_endpoint_limiter() {
    const SECRETS: usize = 100;
    const RATE: u32 = 200;
    const BURST: u32 = 10;
    let metrics = Metrics::new();
    let dialect = Arc::new(ServiceFabricMesh::new(Shared::new(
        RATE,
        BURST,
        metrics.clone(),
    )));
    let run = unique("");
    let mut cases: Vec<Case> = (0..SECRETS)
        .map(|i| {
            Case::sharing(
                dialect.clone(),
                metrics.clone(),
                target(json!({})),
                Credentials::default(),
                &format!("instant-many-{run}-{i}"),
                format!("value-{i}").as_bytes(),
            )
        })
        .collect();

    let started = Instant::now();
    let created = futures::future::join_all(cases.iter_mut().map(|c| c.reconcile())).await;
    let in_sync = futures::future::join_all(cases.iter_mut().map(|c| c.reconcile())).await;
    let elapsed = started.elapsed();

    assert!(
        created
            .iter()
            .all(|(p, o)| *p == Plan::Create && matches!(o, Some(Outcome::Ready(_))))
    );
    assert!(in_sync.iter().all(|(p, _)| *p == Plan::InSync));
    // Create: GET (404), PUT resource, PUT value. In sync: GET resource (the status names the version).
    let requests = cases[0].requests_total();
    assert_eq!(requests, (SECRETS * 4) as u64);
    // Every request took a token of the one endpoint bucket: no faster than the rate allows.
    let floor = Duration::from_secs_f64((requests - BURST as u64) as f64 / RATE as f64);
    assert!(elapsed >= floor.mul_f64(0.95), "{elapsed:?} < {floor:?}");
    eprintln!(
        "{SECRETS} secrets created and re-checked with {requests} requests in {elapsed:?} \
         (limiter {RATE}/s, burst {BURST}; floor {floor:?})"
    );
}
