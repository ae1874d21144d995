//! The DockerSwarm dialect against the real `dockerd` of the test bed (`make testbed`): a swarm manager reached
//! over its unix socket and over TCP with mutual TLS, and a daemon outside any swarm for the 503 case. Driven
//! through the `Dialect` trait and the real planner; what was really written is read back with bollard over the
//! socket, and services are made with Debian's `docker` CLI.

#[path = "support/dialect_case.rs"]
mod dialect_case;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use bollard::models::Secret;
use bollard::query_parameters::{ListSecretsOptions, UpdateSecretOptions};
use bollard::{API_DEFAULT_VERSION, Docker};
use secretsync::api::Target;
use secretsync::dialects::docker_swarm::{DockerSwarm, MAX_VALUE_LEN};
use secretsync::dialects::{Dialect, ErrorClass, Shared};
use secretsync::metrics::Metrics;
use secretsync::plan::digest::DigestKey;
use secretsync::plan::{Observed, Owner, Plan, Refusal};
use secretsync::value::{Credentials, SecretValue};
use serde_json::{Value, json};

use dialect_case::{Case, owner, ready, remote, unique};

#[path = "support/env.rs"]
mod env;
use env::env;

fn socket() -> String {
    format!("unix://{}", env("DOCKER_SWARM_SOCKET"))
}

fn target_at(endpoint: &str, extra: Value) -> Target {
    let mut t = json!({"dialect": "DockerSwarm", "endpoint": endpoint});
    if let (Some(t), Some(extra)) = (t.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            t.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(t).expect("target parses")
}

fn tls_creds() -> Credentials {
    let read = |var: &str| {
        let path = env(var);
        SecretValue::new(std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
    };
    Credentials::new(
        [
            ("ca.crt".to_owned(), read("DOCKER_SWARM_CA_CERT")),
            ("tls.crt".to_owned(), read("DOCKER_SWARM_CLIENT_CERT")),
            ("tls.key".to_owned(), read("DOCKER_SWARM_CLIENT_KEY")),
        ]
        .into(),
    )
}

fn dialect(shared: Shared) -> Arc<dyn Dialect> {
    Arc::new(DockerSwarm::new(shared))
}

/// A case on a fresh `<prefix><8 hex>` name at `target`.
fn new_case_at(prefix: &str, value: &str, target: Target, credentials: Credentials) -> Case {
    Case::new(
        dialect,
        target,
        credentials,
        &unique(prefix),
        value.as_bytes(),
    )
}

/// A case on a fresh name over the swarm manager's unix socket.
fn new_case(prefix: &str, value: &str) -> Case {
    new_case_at(
        prefix,
        value,
        target_at(&socket(), json!({})),
        Credentials::default(),
    )
}

/// The name of the Swarm secret holding the case's current value: `<name>-<8 digest characters>`.
fn full_name(case: &Case) -> String {
    secretsync::dialects::docker_swarm::full_name(&case.name, &case.desired.digest)
}

/// Removes every secret under the case's name.
async fn cleanup(case: &Case) {
    let docker = docker().await;
    for s in secrets_named(&docker, &case.name).await {
        let _ = docker
            .delete_secret(s.id.as_deref().unwrap_or_default())
            .await;
    }
}

// Docker's own view, through bollard on the socket.

async fn docker() -> Docker {
    Docker::connect_with_unix(&socket(), 30, API_DEFAULT_VERSION)
        .expect("socket exists")
        .negotiate_version()
        .await
        .expect("dockerd answers")
}

async fn secrets_named(docker: &Docker, prefix: &str) -> Vec<Secret> {
    let filters = HashMap::from([("name".to_owned(), vec![prefix.to_owned()])]);
    docker
        .list_secrets(Some(ListSecretsOptions {
            filters: Some(filters),
        }))
        .await
        .expect("list secrets")
}

async fn inspect(name: &str) -> Option<Secret> {
    match docker().await.inspect_secret(name).await {
        Ok(s) => Some(s),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => None,
        Err(e) => panic!("inspect {name}: {e}"),
    }
}

fn labels(secret: &Secret) -> HashMap<String, String> {
    secret
        .spec
        .as_ref()
        .and_then(|s| s.labels.clone())
        .unwrap_or_default()
}

fn version(secret: &Secret) -> u64 {
    secret
        .version
        .as_ref()
        .and_then(|v| v.index)
        .expect("a version")
}

/// Replaces a secret's labels behind SecretSync's back.
async fn relabel(name: &str, new_labels: HashMap<String, String>) {
    let docker = docker().await;
    let secret = docker.inspect_secret(name).await.expect("inspect");
    let mut spec = secret.spec.clone().expect("spec");
    spec.labels = Some(new_labels);
    docker
        .update_secret(
            name,
            spec,
            UpdateSecretOptions {
                version: version(&secret) as i64,
            },
        )
        .await
        .expect("update labels");
}

/// Runs Debian's docker CLI against the swarm manager.
fn cli(args: &[&str]) -> String {
    let out = std::process::Command::new("/usr/bin/docker")
        .arg("-H")
        .arg(socket())
        .args(args)
        .output()
        .expect("docker CLI runs");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A service that uses `secret`. Its image does not exist, but Swarm creates the service anyway, and that is
/// all "in use" needs.
fn service_using(secret: &str) -> String {
    let name = unique("svc");
    cli(&[
        "service",
        "create",
        "--detach",
        "--name",
        &name,
        "--secret",
        secret,
        "secretsync.invalid/none:1",
    ]);
    name
}

#[tokio::test]
async fn lifecycle_over_the_unix_socket() {
    let mut case = new_case("life", "first value");
    case.target.labels = [("team".to_owned(), "a".to_owned())].into();
    case.desired.metadata.labels = case.target.labels.clone();

    // Absent -> Create.
    let observed = case.observe().await.expect("observe");
    assert_eq!(observed, Observed::Absent);
    let (plan, outcome) = case.reconcile().await;
    assert_eq!(plan, Plan::Create);
    let created = ready(outcome);
    assert_eq!(created.name, full_name(&case));
    let first = inspect(&created.name).await.expect("created");
    assert_eq!(created.id, first.id);
    assert_eq!(created.version, Some(version(&first).to_string()));
    let l = labels(&first);
    assert_eq!(l["secretsync.io/owner"], "team-a/db");
    assert_eq!(l["secretsync.io/owner-uid"], owner().uid);
    assert_eq!(l["secretsync.io/digest"], case.desired.digest);
    assert_eq!(l["secretsync.io/remote-name"], case.name);
    assert_eq!(l["team"], "a");
    assert!(!l.values().any(|v| v.contains("first value")));

    // Observe shows ours with the same digest, and the planner writes nothing.
    let (plan, observed) = case.plan().await.expect("plan");
    let r = remote(&observed);
    assert_eq!(r.owner, Some(owner()));
    assert_eq!(r.digest.as_deref(), Some(case.desired.digest.as_str()));
    assert_eq!(
        r.metadata.labels,
        [("team".to_owned(), "a".to_owned())].into()
    );
    assert_eq!(plan, Plan::InSync);
    assert_eq!(r.reference, created);
    let (plan, _) = case.reconcile().await;
    assert_eq!(plan, Plan::InSync);
    let unchanged = inspect(&created.name).await.expect("still there");
    assert_eq!(
        version(&unchanged),
        version(&first),
        "in sync must not write"
    );
    assert_eq!(case.requests("create", "ok"), 1);
    assert_eq!(case.requests("update", "ok"), 0);

    // A new value is a new secret object; the superseded one is pruned.
    case.set_value(b"second value");
    let (plan, outcome) = case.reconcile().await;
    assert_eq!(plan, Plan::NewVersion);
    let second = ready(outcome);
    assert_eq!(second.name, full_name(&case));
    assert_ne!(second.name, created.name);
    assert_ne!(second.id, created.id);
    assert!(inspect(&created.name).await.is_none(), "old value pruned");
    assert_eq!(
        labels(&inspect(&second.name).await.expect("new"))["secretsync.io/digest"],
        case.desired.digest
    );
    assert_eq!(case.reconcile().await.0, Plan::InSync);

    // A label change is made in place: same ID, higher version.
    case.target.labels = [("team".to_owned(), "b".to_owned())].into();
    case.desired.metadata.labels = case.target.labels.clone();
    let (plan, outcome) = case.reconcile().await;
    assert_eq!(plan, Plan::UpdateMetadata);
    let relabelled = ready(outcome);
    assert_eq!(relabelled.id, second.id);
    let after = inspect(&second.name).await.expect("same secret");
    assert_eq!(labels(&after)["team"], "b");
    assert_eq!(
        labels(&after)["secretsync.io/digest"],
        case.desired.digest,
        "ownership survives a label update"
    );
    assert!(version(&after) > second.version.as_deref().unwrap().parse::<u64>().unwrap());
    assert_eq!(case.reconcile().await.0, Plan::InSync);

    case.delete().await.expect("delete");
    assert!(secrets_named(&docker().await, &case.name).await.is_empty());
}

#[tokio::test]
async fn tls_without_a_client_certificate_is_refused() {
    let endpoint = env("DOCKER_SWARM_TLS_ENDPOINT");
    let all = tls_creds();
    let ca_only =
        Credentials::new([("ca.crt".to_owned(), all.get("ca.crt").expect("ca").clone())].into());
    let case = new_case_at("notls", "v", target_at(&endpoint, json!({})), ca_only);
    let err = case
        .observe()
        .await
        .expect_err("dockerd --tlsverify wants a client certificate");
    // The daemon's TLS alert says what to fix: a credentials problem, not a daemon to wait for.
    assert_eq!(err.class, ErrorClass::Credentials);
    assert_eq!(err.reason, "CertificateRefused");

    // Half a client identity is a credentials problem, found before any call.
    let half = Credentials::new(
        [(
            "tls.crt".to_owned(),
            all.get("tls.crt").expect("cert").clone(),
        )]
        .into(),
    );
    let case = new_case_at("half", "v", target_at(&endpoint, json!({})), half);
    let err = case.check().expect_err("tls.key missing");
    assert_eq!(err.class, ErrorClass::Credentials);
}

#[tokio::test]
async fn superseded_secret_in_use_is_kept_then_pruned() {
    let mut case = new_case("inuse", "v1");
    let old = ready(case.reconcile().await.1);
    let service = service_using(&old.name);

    case.set_value(b"v2");
    let (plan, outcome) = case.reconcile().await;
    assert_eq!(plan, Plan::NewVersion);
    let new = ready(outcome);
    assert!(
        inspect(&old.name).await.is_some(),
        "a secret a service uses is kept"
    );
    assert_eq!(case.requests("prune", "in_use"), 1);

    // Reported, not an error loop: the next reconcile is in sync and tries the prune once more.
    assert_eq!(case.reconcile().await.0, Plan::InSync);
    assert_eq!(case.requests("prune", "in_use"), 2);
    assert!(inspect(&old.name).await.is_some());

    // Once the service lets go, the next observe prunes the old value.
    cli(&["service", "rm", &service]);
    let observed = case.observe().await.expect("observe");
    assert_eq!(remote(&observed).reference.name, new.name);
    assert!(
        inspect(&old.name).await.is_none(),
        "pruned after the service went"
    );
    assert!(inspect(&new.name).await.is_some());

    // Deleting the SecretSync while a service uses its value is a clear conflict, and works once it does not.
    let service = service_using(&new.name);
    let observed = case.observe().await.expect("observe");
    let err = case
        .dialect
        .delete(&case.request(), &observed)
        .await
        .expect_err("in use");
    assert_eq!(
        (err.class, err.reason),
        (ErrorClass::Conflict, "SecretInUse")
    );
    assert!(err.message.contains(&new.name));
    assert!(inspect(&new.name).await.is_some());
    cli(&["service", "rm", &service]);
    case.dialect
        .delete(&case.request(), &observed)
        .await
        .expect("deleted once unused");
    assert!(inspect(&new.name).await.is_none());
}

#[tokio::test]
async fn prune_can_be_switched_off() {
    let mut case = new_case_at(
        "keep",
        "v1",
        target_at(
            &socket(),
            json!({"dockerSwarm": {"pruneSuperseded": false}}),
        ),
        Credentials::default(),
    );
    let old = ready(case.reconcile().await.1);
    case.set_value(b"v2");
    let new = ready(case.reconcile().await.1);
    assert!(inspect(&old.name).await.is_some());
    assert!(inspect(&new.name).await.is_some());
    // The current value is reported, not the older one.
    let observed = case.observe().await.expect("observe");
    assert_eq!(remote(&observed).reference.name, new.name);
    assert_eq!(case.reconcile().await.0, Plan::InSync);
    cleanup(&case).await;
}

#[tokio::test]
async fn stale_version_is_reread_and_retried() {
    let mut case = new_case("stale", "v");
    let created = ready(case.reconcile().await.1);
    case.target.labels = [("tier".to_owned(), "gold".to_owned())].into();
    case.desired.metadata.labels = case.target.labels.clone();
    let (plan, observed) = case.plan().await.expect("plan");
    assert_eq!(plan, Plan::UpdateMetadata);

    // Another writer updates the labels after observe: the version SecretSync holds is now stale.
    let mut theirs = labels(&inspect(&created.name).await.expect("exists"));
    theirs.insert("someone".into(), "else".into());
    relabel(&created.name, theirs).await;

    let updated = ready(Some(case.apply(&plan, &observed).await.expect("retried")));
    assert_eq!(case.requests("update", "conflict"), 1, "one stale attempt");
    assert_eq!(case.requests("update", "ok"), 1);
    let after = inspect(&created.name).await.expect("exists");
    assert_eq!(updated.version, Some(version(&after).to_string()));
    let l = labels(&after);
    assert_eq!(l["tier"], "gold");
    assert!(!l.contains_key("someone"), "labels are SecretSync's again");
    assert_eq!(l["secretsync.io/digest"], case.desired.digest);
    cleanup(&case).await;
}

#[tokio::test]
async fn relabelled_secret_is_a_conflict_until_adopted() {
    let mut case = new_case("relabel", "v");
    let created = ready(case.reconcile().await.1);
    relabel(&created.name, HashMap::new()).await;

    let (plan, observed) = case.plan().await.expect("plan");
    assert_eq!(remote(&observed).owner, None);
    assert_eq!(remote(&observed).digest, None);
    assert_eq!(plan, Plan::Refuse(Refusal::NotOwned));

    // Adopting re-creates it: its value cannot be read, so it cannot be vouched for.
    case.desired.adopt_existing = true;
    let (plan, outcome) = case.reconcile().await;
    assert_eq!(plan, Plan::NewVersion);
    let adopted = ready(outcome);
    assert_eq!(adopted.name, created.name);
    assert_ne!(adopted.id, created.id);
    let l = labels(&inspect(&adopted.name).await.expect("re-created"));
    assert_eq!(l["secretsync.io/digest"], case.desired.digest);
    assert_eq!(case.reconcile().await.0, Plan::InSync);
    cleanup(&case).await;
}

/// The same value names the same Swarm secret: the other SecretSync finds that exact name taken, not just
/// another value under its base name (which the conformance suite covers).
#[tokio::test]
async fn another_secretsync_with_the_same_value_is_refused() {
    let mut case = new_case("twin", "v");
    ready(case.reconcile().await.1);
    let mut other = new_case("twin", "v");
    other.name = case.name.clone();
    other.desired.owner = Owner {
        namespace: "team-b".into(),
        name: "db".into(),
        uid: "uid-other".into(),
        scope: Default::default(),
    };
    let (plan, observed) = other.plan().await.expect("plan");
    assert_eq!(remote(&observed).reference.name, full_name(&other));
    assert!(
        matches!(plan, Plan::Refuse(Refusal::OwnedByOther { ref owner, .. }) if owner.namespace == "team-a"),
        "{plan:?}"
    );
    assert_eq!(case.reconcile().await.0, Plan::InSync);
    cleanup(&case).await;
}

#[tokio::test]
async fn status_404_on_update_of_a_vanished_secret() {
    let mut case = new_case("s404", "v");
    let created = ready(case.reconcile().await.1);
    case.target.labels = [("x".to_owned(), "y".to_owned())].into();
    case.desired.metadata.labels = case.target.labels.clone();
    let (plan, observed) = case.plan().await.expect("plan");
    assert_eq!(plan, Plan::UpdateMetadata);
    docker()
        .await
        .delete_secret(&created.name)
        .await
        .expect("delete behind the back");
    let err = case.apply(&plan, &observed).await.expect_err("404");
    assert_eq!(
        (err.class, err.reason),
        (ErrorClass::Retry, "SecretNotFound")
    );
    assert!(err.message.contains("404"), "{err}");
    // The next reconcile recovers by creating it again.
    assert_eq!(case.reconcile().await.0, Plan::Create);
    cleanup(&case).await;
}

#[tokio::test]
async fn status_409_when_the_name_is_taken_by_a_foreign_secret() {
    let case = new_case("s409", "the value");
    // Someone else's secret under the exact name SecretSync would use (uppercase: names clash case-insensitively).
    let foreign = full_name(&case).to_uppercase();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf other | /usr/bin/docker -H {} secret create {foreign} -",
            socket()
        ))
        .output()
        .expect("docker CLI");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let err = case
        .apply(&Plan::Create, &Observed::Absent)
        .await
        .expect_err("409");
    assert_eq!((err.class, err.reason), (ErrorClass::Conflict, "NameTaken"));
    assert!(err.message.contains("409"), "{err}");
    assert!(!err.to_string().contains("the value"));
    // Observe sees it as unowned, and the planner refuses to touch it.
    assert_eq!(
        case.plan().await.expect("plan").0,
        Plan::Refuse(Refusal::NotOwned)
    );
    docker()
        .await
        .delete_secret(&foreign)
        .await
        .expect("remove the foreign secret");
}

#[tokio::test]
async fn status_400_when_a_secret_to_recreate_is_in_use() {
    let mut case = new_case("s400", "v");
    let created = ready(case.reconcile().await.1);
    let service = service_using(&created.name);
    relabel(&created.name, HashMap::new()).await;
    case.desired.adopt_existing = true;
    let (plan, observed) = case.plan().await.expect("plan");
    assert_eq!(plan, Plan::NewVersion);
    let err = case.apply(&plan, &observed).await.expect_err("in use");
    assert_eq!(
        (err.class, err.reason),
        (ErrorClass::Conflict, "SecretInUse")
    );
    assert!(inspect(&created.name).await.is_some());
    cli(&["service", "rm", &service]);
    cleanup(&case).await;
}

#[tokio::test]
async fn status_503_from_a_daemon_outside_a_swarm() {
    let endpoint = format!("unix://{}", env("DOCKER_NOSWARM_SOCKET"));
    let case = new_case_at(
        "s503",
        "v",
        target_at(&endpoint, json!({})),
        Credentials::default(),
    );
    let err = case.observe().await.expect_err("not a manager");
    assert_eq!(
        (err.class, err.reason),
        (ErrorClass::Retry, "NotSwarmManager")
    );
    assert!(err.message.contains("503"), "{err}");
    let err = case
        .apply(&Plan::Create, &Observed::Absent)
        .await
        .expect_err("not a manager");
    assert_eq!(err.reason, "NotSwarmManager");
}

#[tokio::test]
async fn unreachable_socket_is_a_transport_error() {
    let case = new_case_at(
        "nosock",
        "v",
        target_at("unix:///nonexistent/docker.sock", json!({})),
        Credentials::default(),
    );
    let err = case.observe().await.expect_err("no socket");
    assert_eq!(
        (err.class, err.reason),
        (ErrorClass::Retry, "BackendUnreachable")
    );
}

#[tokio::test]
async fn size_and_name_limits_match_the_daemon() {
    // The largest value check() lets through is one the daemon takes.
    let big = "x".repeat(MAX_VALUE_LEN);
    let mut case = new_case("big", &big);
    case.check().expect("largest allowed value");
    assert_eq!(case.reconcile().await.0, Plan::Create);
    cleanup(&case).await;

    // One byte more is refused before any call.
    let case = new_case("big", &format!("{big}x"));
    let err = case.check().expect_err("too large");
    assert_eq!(
        (err.class, err.reason),
        (ErrorClass::Permanent, "PayloadTooLarge")
    );
    assert!(!err.message.contains("xxxx"));

    // Empty values are refused by Swarm too.
    let case = new_case("empty", "");
    assert!(case.check().is_err());

    // The longest remote name works; one character more does not.
    let mut case = new_case("n", "v");
    case.name = format!("n{}", "a".repeat(54));
    case.check().expect("55 characters");
    assert_eq!(case.reconcile().await.0, Plan::Create);
    assert_eq!(full_name(&case).len(), 64);
    cleanup(&case).await;
    case.name.push('a');
    let err = case.check().expect_err("56 characters");
    assert_eq!(err.reason, "InvalidName");
    case.name = "bad/name".into();
    assert!(case.check().is_err());
}

#[tokio::test]
async fn a_hundred_secretsyncs_through_one_rate_limiter() {
    const N: usize = 100;
    const RATE: u32 = 100;
    const BURST: u32 = 10;
    let metrics = Metrics::new();
    let shared = dialect(Shared::new(RATE, BURST, metrics.clone()));
    let mut cases: Vec<Case> = (0..N)
        .map(|i| {
            Case::sharing(
                shared.clone(),
                metrics.clone(),
                target_at(&socket(), json!({})),
                Credentials::default(),
                &unique("many"),
                format!("value {i}").as_bytes(),
            )
        })
        .collect();
    // Counted on the metrics all cases share.
    let total = |cases: &[Case], op: &str| cases[0].requests(op, "ok");

    let start = std::time::Instant::now();
    let results = futures::future::join_all(cases.iter_mut().map(|c| c.reconcile())).await;
    let elapsed = start.elapsed();
    assert!(results.iter().all(|(plan, _)| *plan == Plan::Create));
    // One version negotiation for the shared client, then list, create and inspect per SecretSync.
    assert_eq!(total(&cases, "version"), 1);
    assert_eq!(
        (
            total(&cases, "list"),
            total(&cases, "create"),
            total(&cases, "inspect")
        ),
        (100, 100, 100)
    );
    let requests = 1 + 3 * N as u64;
    let floor = (requests - u64::from(BURST)) as f64 / f64::from(RATE);
    assert!(
        elapsed.as_secs_f64() >= floor * 0.95,
        "{requests} requests at {RATE}/s took {elapsed:?}, under the limiter's floor of {floor:.2}s"
    );
    println!("{N} creates: {requests} requests in {elapsed:?} at {RATE}/s");

    // In sync costs one list request each and writes nothing.
    let start = std::time::Instant::now();
    let results = futures::future::join_all(cases.iter_mut().map(|c| c.reconcile())).await;
    println!("{N} in-sync reconciles in {:?}", start.elapsed());
    assert!(results.iter().all(|(plan, _)| *plan == Plan::InSync));
    assert_eq!(
        (
            total(&cases, "list"),
            total(&cases, "create"),
            total(&cases, "update")
        ),
        (200, 100, 0)
    );

    for case in &cases {
        case.delete().await.expect("delete");
    }
    assert_eq!(total(&cases, "delete"), 100);
}

/// Every `log` record, at every level, from every crate.
struct Capture(Mutex<String>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if let Ok(mut text) = self.0.lock() {
            text.push_str(&format!("{} {}\n", record.target(), record.args()));
        }
    }
    fn flush(&self) {}
}

static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();

#[tokio::test]
async fn the_value_never_reaches_a_log_record() {
    let capture = *CAPTURE.get_or_init(|| {
        let c: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(String::new()))));
        log::set_logger(c).expect("first logger");
        log::set_max_level(log::LevelFilter::Trace);
        c
    });
    let value = "log-canary-7f3a9c";
    let mut case = new_case("logs", value);
    ready(case.reconcile().await.1);
    let text = capture.0.lock().expect("lock").clone();
    assert!(
        text.contains("reqwest"),
        "the logger saw the HTTP client's records"
    );
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(value);
    assert!(!text.contains(value));
    assert!(!text.contains(&encoded), "a request body was logged");
    cleanup(&case).await;
}

/// The digest key and owner uid `tests/python/docker/test_docker_sdk_interop.py` expects (`KEY`, and the
/// `secretsync.io/owner-uid` label).
const INTEROP_DIGEST_KEY: &[u8] = b"docker-integration-test-key-32by";
const INTEROP_OWNER_UID: &str = "uid-docker-1";

/// Writes one secret for the Python SDK interop test (`tests/python/docker/`), which runs it with
/// `DOCKER_INTEROP_NAME`, `DOCKER_INTEROP_VALUE_HEX` and `DOCKER_INTEROP_LABELS` (JSON) set, and then checks with
/// the official `docker` SDK what SecretSync wrote. Ignored in ordinary runs: it leaves the secret behind.
#[tokio::test]
#[ignore = "driven by tests/python/docker"]
async fn interop_write() {
    let name = env("DOCKER_INTEROP_NAME");
    let value = hex::decode(env("DOCKER_INTEROP_VALUE_HEX")).expect("hex value");
    let user_labels: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&env("DOCKER_INTEROP_LABELS")).expect("labels JSON");
    let mut case = Case::new(
        dialect,
        target_at(&socket(), json!({})),
        Credentials::default(),
        &name,
        &value,
    );
    // tests/python/docker checks the digest and owner uid against its own copies of these.
    case.desired.digest = DigestKey::new(INTEROP_DIGEST_KEY.to_vec())
        .expect("long enough")
        .digest(&value);
    case.desired.owner.uid = INTEROP_OWNER_UID.into();
    case.desired.metadata.labels = user_labels;
    let (plan, outcome) = case.reconcile().await;
    assert_eq!(plan, Plan::Create);
    let written = ready(outcome);
    println!(
        "{}",
        json!({"name": written.name, "id": written.id, "digest": case.desired.digest})
    );
}
