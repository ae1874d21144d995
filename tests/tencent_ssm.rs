//! The TencentSSM dialect against the SSM emulator of the test bed (`make testbed`), driven through the
//! `Dialect` trait and the real planner on the shared harness (`support/dialect_case.rs`). What was really
//! stored is read back with separately signed raw calls. The scenarios every dialect shares live in
//! `tests/conformance/`; these tests cover what only SSM has: its wire, versions, error codes, credential
//! flavours, per-action pacing and the emulator's faults.

#[path = "support/dialect_case.rs"]
mod dialect_case;
#[path = "support/ssm_call.rs"]
mod ssm_call;

use std::sync::Arc;
use std::time::{Duration, Instant};

use dialect_case::{Case, owner, ready, remote, unique};
use secretsync::api::Target;
use secretsync::dialects::tencent_ssm::TencentSsm;
use secretsync::dialects::{Dialect, ErrorClass, Outcome, Shared};
use secretsync::metrics::Metrics;
use secretsync::plan::{DeletePlan, Observed, Plan, Refusal, RemoteState, decide, decide_delete};
use secretsync::value::{Credentials, SecretValue};
use serde_json::{Value, json};

#[path = "support/env.rs"]
mod env;
use env::env;

fn target(extra: Value) -> Target {
    let mut t = json!({
        "dialect": "TencentSSM",
        "endpoint": env("SSM_ENDPOINT"),
        "tencentSSM": {"region": env("SSM_REGION")},
    });
    if let (Some(t), Some(extra)) = (t.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            t.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(t).expect("target parses")
}

fn creds(id: &str, secret: &str, token: Option<&str>) -> Credentials {
    let mut map = std::collections::BTreeMap::new();
    map.insert("secretId".to_string(), SecretValue::from(id));
    map.insert("secretKey".to_string(), SecretValue::from(secret));
    if let Some(t) = token {
        map.insert("token".to_string(), SecretValue::from(t));
    }
    Credentials::new(map)
}

fn main_creds() -> Credentials {
    creds(&env("SSM_SECRET_ID"), &env("SSM_SECRET_KEY"), None)
}

/// The dialect under test, on `shared`.
fn ssm(shared: Shared) -> Arc<dyn Dialect> {
    Arc::new(TencentSsm::new(shared))
}

/// A case with the main key pair, on a dialect of its own.
fn new_case(name: &str, target: Target, value: &[u8]) -> Case {
    new_case_as(name, target, value, main_creds())
}

/// A case with `credentials`, on a dialect of its own.
fn new_case_as(name: &str, target: Target, value: &[u8], credentials: Credentials) -> Case {
    Case::new(ssm, target, credentials, name, value)
}

/// A raw signed call with the main key pair: what the store holds, as any other client sees it.
async fn raw(action: &str, body: Value) -> Value {
    raw_as(&env("SSM_SECRET_ID"), &env("SSM_SECRET_KEY"), action, body).await
}

async fn raw_as(id: &str, secret: &str, action: &str, body: Value) -> Value {
    ssm_call::call(id, secret, action, body).await
}

async fn stored_value(name: &str, version: &str) -> Value {
    raw(
        "GetSecretValue",
        json!({"SecretName": name, "VersionId": version}),
    )
    .await
}

async fn version_ids(name: &str) -> Vec<String> {
    raw("ListSecretVersionIds", json!({"SecretName": name})).await["Versions"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .filter_map(|v| v["VersionId"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn fault(name: &str, code: &str, times: u32) {
    fault_with(json!({"secretName": name, "code": code, "times": times})).await
}

async fn fault_with(spec: Value) {
    reqwest::Client::new()
        .post(format!("{}/_emulator/faults", env("SSM_ENDPOINT")))
        .json(&spec)
        .send()
        .await
        .expect("emulator reachable")
        .error_for_status()
        .expect("fault accepted");
}

#[tokio::test]
async fn overwrite_lifecycle_create_in_sync_change_describe_delete() {
    let name = unique("life-");
    let mut case = new_case(
        &name,
        target(json!({"description": "database password"})),
        b"first-value",
    );

    let (plan, outcome) = case.reconcile().await;
    assert_eq!(plan, Plan::Create);
    let reference = ready(outcome);
    assert_eq!(reference.version.as_deref(), Some("SSM_Current"));
    assert_eq!(
        stored_value(&name, "SSM_Current").await["SecretString"],
        "first-value"
    );

    let observed = case.observe().await.expect("observe");
    let r = remote(&observed);
    assert_eq!(r.owner.as_ref(), Some(&owner()));
    assert_eq!(r.digest.as_deref(), Some(case.desired.digest.as_str()));
    assert_eq!(r.metadata.description.as_deref(), Some("database password"));
    assert_eq!(r.state, RemoteState::Ready);
    let described = raw("DescribeSecret", json!({"SecretName": name})).await;
    let text = described["Description"].as_str().unwrap_or_default();
    assert!(
        text.starts_with("database password\n#secretsync.io {"),
        "{text}"
    );
    assert!(
        text.contains(r#""secretsync.io/owner":"team-a/db""#),
        "{text}"
    );
    assert!(
        !text.contains("first-value"),
        "the marker holds a digest, never the value"
    );

    // In sync: one DescribeSecret decides it, and nothing is written.
    let writes_before = case.requests("CreateSecret", "ok");
    let (plan, outcome) = case.reconcile().await;
    assert_eq!((plan, outcome), (Plan::InSync, None));
    assert_eq!(writes_before, 1);
    for action in ["UpdateSecret", "PutSecretValue", "UpdateDescription"] {
        assert_eq!(case.requests(action, "ok"), 0, "{action}");
    }
    assert_eq!(case.requests("DescribeSecret", "ok"), 2);

    case.set_value(b"second-value");
    let (plan, _) = case.reconcile().await;
    assert_eq!(plan, Plan::NewVersion);
    assert_eq!(case.requests("UpdateSecret", "ok"), 1);
    assert_eq!(
        stored_value(&name, "SSM_Current").await["SecretString"],
        "second-value"
    );
    assert_eq!(
        version_ids(&name).await,
        ["SSM_Current"],
        "overwrite keeps one version"
    );
    assert_eq!(case.reconcile().await.0, Plan::InSync);

    // A new versionId: the value moves to it, the old version stays for readers still using it.
    case.target = target(json!({
        "description": "database password",
        "tencentSSM": {"region": env("SSM_REGION"), "versionId": "v2"},
    }));
    let (plan, outcome) = case.reconcile().await;
    assert_eq!(plan, Plan::NewVersion);
    assert!(
        matches!(&outcome, Some(Outcome::Ready(r)) if r.version.as_deref() == Some("v2")),
        "{outcome:?}"
    );
    assert_eq!(version_ids(&name).await, ["SSM_Current", "v2"]);
    assert_eq!(
        stored_value(&name, "v2").await["SecretString"],
        "second-value"
    );
    assert_eq!(case.reconcile().await.0, Plan::InSync);

    case.desired.metadata.description = Some("rotated monthly".into());
    let (plan, _) = case.reconcile().await;
    assert_eq!(plan, Plan::UpdateMetadata);
    let observed = case.observe().await.expect("observe");
    assert_eq!(
        remote(&observed).metadata.description.as_deref(),
        Some("rotated monthly")
    );
    assert_eq!(
        decide(
            &case.desired,
            &observed,
            case.dialect.capabilities(&case.target)
        ),
        Plan::InSync
    );

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
        .expect("delete again");
}

#[tokio::test]
async fn history_adds_versions_and_keeps_under_the_cap_deleting_only_its_own() {
    let name = unique("hist-");
    let mut case = new_case(
        &name,
        target(json!({"tencentSSM": {"region": env("SSM_REGION"), "versionPolicy": "History"}})),
        b"value-0",
    );
    let (_, outcome) = case.reconcile().await;
    let first = ready(outcome).version.expect("a version");
    assert!(first.starts_with("ss-1-"), "{first}");
    // A version someone else added is never SecretSync's to delete.
    let put = raw(
        "PutSecretValue",
        json!({"SecretName": name, "VersionId": "by-hand", "SecretString": "manual"}),
    )
    .await;
    assert!(put.get("Error").is_none(), "{put}");

    let mut last = first.clone();
    for i in 1..=12 {
        case.set_value(format!("value-{i}").as_bytes());
        let (plan, outcome) = case.reconcile().await;
        assert_eq!(plan, Plan::NewVersion);
        last = ready(outcome).version.expect("a version");
        assert!(last.starts_with(&format!("ss-{}-", i + 1)), "{last}");
        let ids = version_ids(&name).await;
        assert!(ids.len() <= 10, "{ids:?}");
        assert!(ids.contains(&"by-hand".to_string()), "{ids:?}");
    }
    let ids = version_ids(&name).await;
    assert_eq!(ids.len(), 10);
    assert!(
        !ids.contains(&first),
        "the oldest of ours went first: {ids:?}"
    );
    assert_eq!(stored_value(&name, &last).await["SecretString"], "value-12");
    let observed = case.observe().await.expect("observe");
    assert_eq!(
        remote(&observed).reference.version.as_deref(),
        Some(last.as_str())
    );
    assert_eq!(case.reconcile().await.0, Plan::InSync);
}

#[tokio::test]
async fn binary_values_travel_as_secret_binary() {
    let name = unique("bin-");
    let bytes = vec![0u8, 0xff, 0x10, 0xfe, 0x80];
    let mut case = new_case(&name, target(json!({})), &bytes);
    assert_eq!(case.reconcile().await.0, Plan::Create);
    let stored = stored_value(&name, "SSM_Current").await;
    assert_eq!(stored["SecretBinary"], "AP8Q/oA=");
    assert_eq!(stored["SecretString"], "");
}

#[tokio::test]
async fn adopting_a_foreign_secret_adds_ssm_current_beside_its_version() {
    let name = unique("foreign-");
    let made = raw(
        "CreateSecret",
        json!({"SecretName": name, "VersionId": "v1.0", "SecretString": "theirs", "Description": "by hand"}),
    )
    .await;
    assert!(made.get("Error").is_none(), "{made}");
    let mut case = new_case(&name, target(json!({})), b"ours");
    let (plan, observed) = case.plan().await.expect("plan");
    assert_eq!(plan, Plan::Refuse(Refusal::NotOwned));
    assert_eq!(remote(&observed).owner, None);

    case.desired.adopt_existing = true;
    let (plan, outcome) = case.reconcile().await;
    assert_eq!(plan, Plan::NewVersion);
    assert!(matches!(outcome, Some(Outcome::Ready(_))));
    // The adopted secret lacked SSM_Current: it was added next to the existing version.
    assert_eq!(version_ids(&name).await, ["v1.0", "SSM_Current"]);
    assert_eq!(stored_value(&name, "v1.0").await["SecretString"], "theirs");
    assert_eq!(
        stored_value(&name, "SSM_Current").await["SecretString"],
        "ours"
    );
    let observed = case.observe().await.expect("observe");
    assert_eq!(remote(&observed).owner.as_ref(), Some(&owner()));
    case.desired.adopt_existing = false;
    assert_eq!(case.reconcile().await.0, Plan::InSync);
}

#[tokio::test]
async fn create_race_is_a_conflict() {
    let name = unique("race-");
    let case = new_case(&name, target(json!({})), b"v");
    let (plan, observed) = case.plan().await.expect("plan");
    assert_eq!(plan, Plan::Create);
    raw(
        "CreateSecret",
        json!({"SecretName": name, "SecretString": "someone else"}),
    )
    .await;
    let err = case.apply(&plan, &observed).await.expect_err("exists now");
    assert_eq!(
        (err.class, err.reason),
        (ErrorClass::Conflict, "SecretExists")
    );
    assert!(
        err.to_string().contains("ResourceInUse.SecretExists"),
        "{err}"
    );
}

#[tokio::test]
async fn a_secret_deleted_between_observe_and_apply_is_remote_gone() {
    let name = unique("gone-");
    let mut case = new_case(&name, target(json!({})), b"one");
    case.reconcile().await;
    case.set_value(b"two");
    let (plan, observed) = case.plan().await.expect("plan");
    assert_eq!(plan, Plan::NewVersion);
    raw("DisableSecret", json!({"SecretName": name})).await;
    raw("DeleteSecret", json!({"SecretName": name})).await;
    let err = case.apply(&plan, &observed).await.expect_err("gone");
    assert_eq!((err.class, err.reason), (ErrorClass::Retry, "RemoteGone"));
    assert!(err.to_string().contains("ResourceNotFound"), "{err}");
}

#[tokio::test]
async fn disabled_secret_is_reported_failed() {
    let name = unique("off-");
    let mut case = new_case(&name, target(json!({})), b"v");
    case.reconcile().await;
    raw("DisableSecret", json!({"SecretName": name})).await;
    let (plan, _) = case.plan().await.expect("plan");
    let Plan::BackendFailed(detail) = plan else {
        panic!("{plan:?}")
    };
    assert!(detail.contains("disabled"), "{detail}");
}

#[tokio::test]
async fn credential_failures_are_credentials_errors() {
    let name = unique("auth-");
    let id = env("SSM_SECRET_ID");
    let cases = [
        (
            creds(&id, "wrong-key", None),
            "AuthFailure.SignatureFailure",
        ),
        (
            creds("AKID00000000000000000000000000000000", "k", None),
            "AuthFailure.SecretIdNotFound",
        ),
        (
            creds(
                &env("SSM_TEMP_SECRET_ID"),
                &env("SSM_TEMP_SECRET_KEY"),
                None,
            ),
            "AuthFailure.TokenFailure",
        ),
        (
            creds(
                &env("SSM_TEMP_SECRET_ID"),
                &env("SSM_TEMP_SECRET_KEY"),
                Some("not-the-token"),
            ),
            "AuthFailure.TokenFailure",
        ),
        (
            creds("not-a-key-id", "k", None),
            "AuthFailure.InvalidSecretId",
        ),
    ];
    for (credentials, code) in cases {
        let case = new_case_as(&name, target(json!({})), b"v", credentials);
        let err = case.observe().await.expect_err(code);
        assert_eq!(err.class, ErrorClass::Credentials, "{code}: {err}");
        assert_eq!(err.reason, "CredentialsRejected");
        assert!(err.to_string().contains(code), "{err}");
        assert!(!err.to_string().contains("wrong-key"), "{err}");
    }
}

#[tokio::test]
async fn temporary_credentials_send_their_token() {
    let name = unique("temp-");
    let credentials = creds(
        &env("SSM_TEMP_SECRET_ID"),
        &env("SSM_TEMP_SECRET_KEY"),
        Some(&env("SSM_TEMP_TOKEN")),
    );
    let mut case = new_case_as(&name, target(json!({})), b"v", credentials);
    assert_eq!(case.reconcile().await.0, Plan::Create);
    assert_eq!(case.reconcile().await.0, Plan::InSync);
}

#[tokio::test]
async fn read_only_credentials_are_unauthorized_to_write() {
    let name = unique("ro-");
    let credentials = creds(
        &env("SSM_READONLY_SECRET_ID"),
        &env("SSM_READONLY_SECRET_KEY"),
        None,
    );
    let case = new_case_as(&name, target(json!({})), b"v", credentials);
    let (plan, observed) = case.plan().await.expect("plan");
    assert_eq!(plan, Plan::Create);
    let err = case.apply(&plan, &observed).await.expect_err("read-only");
    assert_eq!(
        (err.class, err.reason),
        (ErrorClass::Credentials, "Unauthorized")
    );
    assert!(err.to_string().contains("UnauthorizedOperation"), "{err}");
}

#[tokio::test]
async fn transient_errors_are_retried_in_place_then_handed_back() {
    // Two throttled answers: the store did nothing, so even the create is sent again, and the third attempt
    // succeeds within one apply.
    let name = unique("flaky-");
    let case = new_case(&name, target(json!({})), b"v");
    let (plan, observed) = case.plan().await.expect("plan");
    fault(&name, "RequestLimitExceeded", 2).await;
    case.apply(&plan, &observed)
        .await
        .expect("retried in place");
    assert_eq!(case.requests("CreateSecret", "retry"), 2);
    assert_eq!(case.requests("CreateSecret", "ok"), 1);

    // An InternalError may come after the secret was made: the create is not repeated in place; the next
    // reconcile reads the store (here: nothing was made) and creates it.
    let name = unique("flaky-");
    let mut case = new_case(&name, target(json!({})), b"v");
    let (plan, observed) = case.plan().await.expect("plan");
    fault(&name, "InternalError", 1).await;
    let err = case.apply(&plan, &observed).await.expect_err("handed back");
    assert_eq!(
        (err.class, err.reason),
        (ErrorClass::Retry, "BackendError"),
        "{err}"
    );
    assert_eq!(case.requests("CreateSecret", "retry"), 1);
    assert_eq!(case.requests("CreateSecret", "ok"), 0);
    assert_eq!(case.reconcile().await.0, Plan::Create);
    assert_eq!(case.requests("CreateSecret", "ok"), 1);

    for (code, reason) in [
        ("InternalError", "BackendError"),
        ("RequestLimitExceeded", "Throttled"),
    ] {
        let name = unique("down-");
        let case = new_case(&name, target(json!({})), b"v");
        fault(&name, code, 3).await;
        let err = case.observe().await.expect_err(code);
        assert_eq!(
            (err.class, err.reason),
            (ErrorClass::Retry, reason),
            "{err}"
        );
        assert!(err.to_string().contains(code), "{err}");
    }
}

#[tokio::test]
async fn store_rejections_fail_with_code_and_message_but_never_the_value() {
    let name = unique("big-");
    // Bypasses check() to prove the store's own answer is mapped (and the value kept out of the message).
    let value = "s3cret-".repeat(5000);
    let case = new_case(&name, target(json!({})), value.as_bytes());
    let err = case.check().expect_err("too large");
    assert_eq!(err.reason, "PayloadTooLarge");
    let observed = case.observe().await.expect("observe");
    let plan = decide(
        &case.desired,
        &observed,
        case.dialect.capabilities(&case.target),
    );
    let err = case.apply(&plan, &observed).await.expect_err("too large");
    assert_eq!(
        (err.class, err.reason),
        (ErrorClass::Permanent, "BackendRejected")
    );
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("InvalidParameterValue"), "{shown}");
    assert!(!shown.contains("s3cret"), "{shown}");
}

#[derive(serde::Deserialize, Debug, Default)]
#[serde(rename_all = "camelCase")]
struct ActionStats {
    total: u64,
    limited: u64,
    max_per_second: u32,
    max_in_any_second: u32,
}

async fn stats(secret_id: &str) -> std::collections::HashMap<String, ActionStats> {
    let body: Value = reqwest::get(format!(
        "{}/_emulator/stats?secretId={secret_id}",
        env("SSM_ENDPOINT")
    ))
    .await
    .expect("emulator reachable")
    .json()
    .await
    .expect("stats JSON");
    serde_json::from_value(body["actions"].clone()).expect("stats shape")
}

/// Runs one reconcile of every case at once; answers the cases, each plan, and how long the wave took.
async fn wave(cases: Vec<Case>) -> (Vec<Case>, Vec<Plan>, Duration) {
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for mut case in cases {
        tasks.spawn(async move {
            let plan = case.reconcile().await.0;
            (case, plan)
        });
    }
    let mut cases = Vec::new();
    let mut plans = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (case, plan) = done.expect("task");
        cases.push(case);
        plans.push(plan);
    }
    (cases, plans, start.elapsed())
}

/// Checks the emulator's counts of this key pair's requests since `before`: every action saw `expected`
/// requests, none was refused, and no second (calendar or sliding) passed the limit.
fn assert_within_limit(
    before: &std::collections::HashMap<String, ActionStats>,
    after: &std::collections::HashMap<String, ActionStats>,
    actions: &[&str],
    expected: u64,
    limit: u32,
) {
    for action in actions {
        let a = &after[*action];
        let b = before.get(*action);
        assert_eq!(a.total - b.map_or(0, |b| b.total), expected, "{action}");
        assert_eq!(
            a.limited,
            b.map_or(0, |b| b.limited),
            "{action}: refused requests"
        );
        assert!(
            a.max_per_second <= limit,
            "{action}: {} in one second, limit {limit}",
            a.max_per_second
        );
        // Stricter than the store's own count: no sliding one-second window passes the limit either.
        assert!(
            a.max_in_any_second <= limit,
            "{action}: {} within one second, limit {limit}",
            a.max_in_any_second
        );
    }
}

/// 1,000 SecretSyncs are created at once, then all change at once. The emulator counts requests per action per
/// second for this test's own key pair: no second may pass the limit, nothing may be refused, and the work
/// finishes near the paced rate.
#[tokio::test]
async fn a_thousand_concurrent_changes_stay_under_the_rate_limit() {
    let limit: u32 = env("SSM_RATE_LIMIT").parse().expect("a number");
    let id = env("SSM_RATE_SECRET_ID");
    let secret = env("SSM_RATE_SECRET_KEY");
    let metrics = Metrics::new();
    // A generous shared limiter: the dialect's own per-action pacing must do the work.
    let dialect = ssm(Shared::new(10_000, 10_000, metrics.clone()));
    let prefix = unique("load-");
    let t =
        target(json!({"tencentSSM": {"region": env("SSM_REGION"), "requestsPerSecond": limit}}));
    let cases: Vec<Case> = (0..1000)
        .map(|i| {
            Case::sharing(
                dialect.clone(),
                metrics.clone(),
                t.clone(),
                creds(&id, &secret, None),
                &format!("{prefix}-{i}"),
                format!("value-{i}").as_bytes(),
            )
        })
        .collect();

    let before = stats(&id).await;
    let (mut cases, plans, created_in) = wave(cases).await;
    assert!(plans.iter().all(|p| *p == Plan::Create), "{plans:?}");
    let after = stats(&id).await;
    assert_within_limit(
        &before,
        &after,
        &["DescribeSecret", "CreateSecret"],
        1000,
        limit,
    );

    for (i, case) in cases.iter_mut().enumerate() {
        case.set_value(format!("changed-{i}").as_bytes());
    }
    let before = after;
    let (_, plans, changed_in) = wave(cases).await;
    assert!(plans.iter().all(|p| *p == Plan::NewVersion), "{plans:?}");
    let after = stats(&id).await;
    assert_within_limit(
        &before,
        &after,
        &["DescribeSecret", "UpdateSecret", "UpdateDescription"],
        1000,
        limit,
    );

    let create_rate = 1000.0 / created_in.as_secs_f64();
    let change_rate = 1000.0 / changed_in.as_secs_f64();
    eprintln!(
        "1000 creates in {:.1} s ({create_rate:.1}/s), 1000 value changes in {:.1} s ({change_rate:.1}/s); \
         limit {limit}/s per action; most in one second (calendar/sliding): DescribeSecret {}/{}, \
         CreateSecret {}/{}, UpdateSecret {}/{}",
        created_in.as_secs_f64(),
        changed_in.as_secs_f64(),
        after["DescribeSecret"].max_per_second,
        after["DescribeSecret"].max_in_any_second,
        after["CreateSecret"].max_per_second,
        after["CreateSecret"].max_in_any_second,
        after["UpdateSecret"].max_per_second,
        after["UpdateSecret"].max_in_any_second,
    );
    // Close to the paced rate (90% of the limit); loose floors only, never a tight timing.
    assert!(create_rate > f64::from(limit) * 0.5, "{create_rate:.1}/s");
    assert!(change_rate > f64::from(limit) * 0.5, "{change_rate:.1}/s");
}

#[tokio::test]
async fn the_region_header_is_sent_and_checked() {
    let name = unique("region-");
    let case = new_case(
        &name,
        target(json!({"tencentSSM": {"region": "xx-nowhere-1"}})),
        b"v",
    );
    let err = case.observe().await.expect_err("unknown region");
    assert_eq!(
        (err.class, err.reason),
        (ErrorClass::Permanent, "BackendRejected")
    );
    assert!(err.to_string().contains("UnsupportedRegion"), "{err}");
    let case = new_case(
        &name,
        target(json!({"tencentSSM": {"region": "ap-singapore"}})),
        b"v",
    );
    assert_eq!(case.observe().await.expect("observe"), Observed::Absent);
}

#[tokio::test]
async fn gateway_statuses_honour_retry_after() {
    // A short Retry-After is waited out in place: the second attempt succeeds.
    let name = unique("gw-");
    let case = new_case(&name, target(json!({})), b"v");
    fault_with(
        json!({"secretName": name, "code": "x", "times": 1, "httpStatus": 503, "retryAfter": 1}),
    )
    .await;
    let start = Instant::now();
    assert_eq!(case.observe().await.expect("observe"), Observed::Absent);
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "waited for Retry-After"
    );

    // A long one goes back to the controller at once, with the delay.
    let name = unique("gw-");
    let case = new_case(&name, target(json!({})), b"v");
    fault_with(
        json!({"secretName": name, "code": "x", "times": 1, "httpStatus": 429, "retryAfter": 30}),
    )
    .await;
    let err = case.observe().await.expect_err("throttled");
    assert_eq!((err.class, err.reason), (ErrorClass::Retry, "Throttled"));
    assert_eq!(err.retry_after, Some(Duration::from_secs(30)));
    assert_eq!(
        case.requests("DescribeSecret", "retry"),
        1,
        "no retry in place"
    );

    let name = unique("gw-");
    let case = new_case(&name, target(json!({})), b"v");
    fault_with(json!({"secretName": name, "code": "x", "times": 1, "httpStatus": 403})).await;
    let err = case.observe().await.expect_err("forbidden");
    assert_eq!(err.class, ErrorClass::Credentials);
}

/// Reads one HTTP request (head and `Content-Length` body) from `conn`; false when the connection ended first.
async fn read_request(conn: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return true;
            }
        }
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// A local SSM that reads each request and answers the n-th with `answers[n]` (HTTP 200, the `Response`
/// object given), or never answers once they run out. Returns its endpoint and the count of requests read.
async fn local_ssm(answers: Vec<Value>) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(AtomicUsize::new(0));
    let counted = seen.clone();
    let answers = Arc::new(answers);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let counted = counted.clone();
            let answers = answers.clone();
            tokio::spawn(async move {
                while read_request(&mut conn).await {
                    let n = counted.fetch_add(1, Ordering::SeqCst);
                    let Some(answer) = answers.get(n) else {
                        // Hold the connection open and never answer.
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        return;
                    };
                    let body = json!({"Response": answer}).to_string();
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if conn.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, seen)
}

fn local_case(endpoint: &str) -> Case {
    let metrics = Metrics::new();
    let shared = Shared::new(100, 100, metrics.clone()).with_deadline(Duration::from_secs(1));
    let t: Target = serde_json::from_value(json!({
        "dialect": "TencentSSM",
        "endpoint": endpoint,
        "tencentSSM": {"region": "ap-guangzhou"},
    }))
    .expect("target parses");
    Case::sharing(
        ssm(shared),
        metrics,
        t,
        creds("AKIDlocal", "local-key", None),
        "local",
        b"v",
    )
}

/// A CreateSecret that times out may have made the secret: it is sent exactly once (the next reconcile reads
/// the store), while a DescribeSecret that times out is a read and is tried again.
#[tokio::test]
async fn a_create_that_times_out_is_sent_exactly_once() {
    use std::sync::atomic::Ordering;
    let (endpoint, seen) = local_ssm(vec![]).await;
    let case = local_case(&endpoint);
    let err = case
        .apply(&Plan::Create, &Observed::Absent)
        .await
        .expect_err("no answer");
    assert_eq!(err.class, ErrorClass::Retry, "{err}");
    assert_eq!(seen.load(Ordering::SeqCst), 1, "the create was repeated");
    assert_eq!(case.requests("CreateSecret", "retry"), 1);

    let (endpoint, seen) = local_ssm(vec![]).await;
    let case = local_case(&endpoint);
    case.observe().await.expect_err("no answer");
    assert_eq!(seen.load(Ordering::SeqCst), 3, "a read is retried");
}

/// A read answered with a transient code is retried in place (here the second answer says "no such secret").
#[tokio::test]
async fn a_read_answered_with_a_transient_code_is_retried() {
    use std::sync::atomic::Ordering;
    for code in ["RequestLimitExceeded", "InternalError"] {
        let (endpoint, seen) = local_ssm(vec![
            json!({"Error": {"Code": code, "Message": "try again"}, "RequestId": "r1"}),
            json!({"Error": {"Code": "ResourceNotFound", "Message": "no such secret"}, "RequestId": "r2"}),
        ])
        .await;
        let case = local_case(&endpoint);
        assert_eq!(
            case.observe().await.expect("retried"),
            Observed::Absent,
            "{code}"
        );
        assert_eq!(seen.load(Ordering::SeqCst), 2, "{code}");
        assert_eq!(case.requests("DescribeSecret", "retry"), 1, "{code}");
        assert_eq!(case.requests("DescribeSecret", "not_found"), 1, "{code}");
    }
}

/// A create answered InternalError (it may have been applied) is not repeated; a throttled one is.
#[tokio::test]
async fn a_create_is_repeated_only_when_throttled() {
    use std::sync::atomic::Ordering;
    let ok = json!({"SecretName": "local", "VersionId": "SSM_Current", "RequestId": "r2"});
    let (endpoint, seen) = local_ssm(vec![
        json!({"Error": {"Code": "InternalError", "Message": "oops"}, "RequestId": "r1"}),
        ok.clone(),
    ])
    .await;
    let case = local_case(&endpoint);
    let err = case
        .apply(&Plan::Create, &Observed::Absent)
        .await
        .expect_err("handed back");
    assert_eq!((err.class, err.reason), (ErrorClass::Retry, "BackendError"));
    assert!(err.to_string().contains("CreateSecret"), "{err}");
    assert_eq!(seen.load(Ordering::SeqCst), 1);

    let (endpoint, seen) = local_ssm(vec![
        json!({"Error": {"Code": "RequestLimitExceeded", "Message": "slow down"}, "RequestId": "r1"}),
        ok,
    ])
    .await;
    let case = local_case(&endpoint);
    case.apply(&Plan::Create, &Observed::Absent)
        .await
        .expect("throttled, so not applied: sent again");
    assert_eq!(seen.load(Ordering::SeqCst), 2);
}

/// An endpoint behind a private CA (the emulator's HTTPS listener): with the CA as `ca.crt` (what the store's
/// `caBundle` becomes) the dialect writes and reads through it, and what it wrote is what any client of the
/// store reads (the raw call goes to the plain-HTTP listener of the same store). Without the CA the certificate
/// is not trusted: a clear, retried condition, never a value sent.
#[tokio::test]
async fn https_with_a_private_ca() {
    let name = unique("tls-");
    let endpoint = env("SSM_TLS_ENDPOINT");
    let ca = std::fs::read_to_string(env("SSM_CA_CERT")).expect("the test bed's CA");
    let with_ca = |ca: &str| {
        let mut c = std::collections::BTreeMap::new();
        c.insert(
            "secretId".to_string(),
            SecretValue::from(env("SSM_SECRET_ID").as_str()),
        );
        c.insert(
            "secretKey".to_string(),
            SecretValue::from(env("SSM_SECRET_KEY").as_str()),
        );
        c.insert("ca.crt".to_string(), SecretValue::from(ca));
        Credentials::new(c)
    };
    let mut case = new_case_as(
        &name,
        target(json!({"endpoint": endpoint})),
        b"over-tls",
        with_ca(&ca),
    );
    let (plan, outcome) = case.reconcile().await;
    assert_eq!(plan, Plan::Create);
    ready(outcome);
    assert_eq!(
        stored_value(&name, "SSM_Current").await["SecretString"],
        "over-tls"
    );
    case.set_value(b"changed-over-tls");
    let (plan, outcome) = case.reconcile().await;
    assert_eq!(plan, Plan::NewVersion);
    ready(outcome);
    assert_eq!(
        stored_value(&name, "SSM_Current").await["SecretString"],
        "changed-over-tls"
    );
    let observed = case.observe().await.expect("observe over TLS");
    assert_eq!(
        remote(&observed).digest.as_deref(),
        Some(case.desired.digest.as_str())
    );

    // The same endpoint without the CA: only the public roots, which never signed the emulator's certificate.
    case.credentials = main_creds();
    let err = case.observe().await.expect_err("an untrusted certificate");
    assert_eq!(
        (err.class, err.reason),
        (ErrorClass::Retry, "CertificateUntrusted"),
        "{err}"
    );
    assert!(
        err.message.contains("caBundle") && err.message.contains("UnknownIssuer"),
        "{err}"
    );
    // A CA with the plain-HTTP listener is refused before any call.
    case.credentials = with_ca(&ca);
    case.target = target(json!({}));
    let err = case.check().expect_err("a CA over http://");
    assert_eq!(
        (err.class, err.reason),
        (ErrorClass::Permanent, "InsecureEndpoint")
    );
    raw("DisableSecret", json!({"SecretName": name})).await;
    raw(
        "DeleteSecret",
        json!({"SecretName": name, "RecoveryWindowInDays": 0}),
    )
    .await;
}
