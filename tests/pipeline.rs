//! The controller's reconcile, whole, without a test bed: each scenario runs `Harness::reconcile` (the same steps,
//! reads and writes as the running controller) against an API server in the test process
//! (`support/fake_api.rs`) and the in-memory store (`support/memory_store.rs`), and asserts on what the reconcile
//! wrote to both and on what it never did.
//!
//! What needs a real API server (watches and what they trigger, fair shares across a running controller over
//! time, the metrics census, Events' server-side life) stays in `tests/controller_fast.rs` and `tests/controller.rs`.
//!
//! `cargo test --test pipeline` (no test bed, no KUBECONFIG).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::core::PartialObjectMeta;
use secretsync::api::{ClusterStore, DialectKind, SecretSync, Store};
use secretsync::controller::{self, FINALIZER, harness::Harness, harness::Next};
use secretsync::dialects::{ErrorClass, Registry};
use secretsync::metrics::Metrics;
use secretsync::plan::digest::DigestKey;
use secretsync::plan::{Owner, Scope};
use serde_json::{Value, json};

#[path = "support/fake_api.rs"]
mod fake_api;
#[path = "support/memory_store.rs"]
mod memory_store;
#[path = "support/status.rs"]
mod status;

use fake_api::FakeApi;
use memory_store::{Entry, MemoryStore, Op};
use status::{condition, in_sync, phase, ready, ready_message};

const NS: &str = "team-a";
const NS_UID: &str = "uid-of-team-a";
const CLUSTER: &str = "this-cluster";
const GROUP: &str = "/apis/secretsync.io/v1alpha1";
const DIGEST_KEY: [u8; 32] = [7; 32];

/// One scenario's world: the API server, the memory store (standing in for ServiceFabricMesh), and a controller's
/// context on both, with the namespace `team-a` and its Store `mem`.
struct World {
    api: FakeApi,
    memory: Arc<MemoryStore>,
    harness: Harness,
    metrics: Arc<Metrics>,
    settings: Settings,
    /// What the caches were given, to give a restarted controller the same.
    namespaces: Vec<PartialObjectMeta<Namespace>>,
    stores: Vec<Store>,
    cluster_stores: Vec<ClusterStore>,
}

/// The operator's flags that scenarios change.
#[derive(Clone)]
struct Settings {
    allow_inline: bool,
    cleanup_timeout: Duration,
    concurrency: u16,
    namespaced_store_hosts: Vec<String>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            allow_inline: false,
            cleanup_timeout: Duration::from_secs(600),
            concurrency: 4,
            // The memory store answers whatever endpoint its Stores name.
            namespaced_store_hosts: vec!["*".into()],
        }
    }
}

fn harness(api: &FakeApi, memory: &Arc<MemoryStore>, settings: &Settings, metrics: &Arc<Metrics>) -> Harness {
    let config = controller::Config {
        namespaces: vec![],
        selector: None,
        concurrency: settings.concurrency,
        digest_key: DigestKey::new(DIGEST_KEY.to_vec()).expect("a digest key"),
        cluster_id: CLUSTER.into(),
        metrics: metrics.clone(),
        ready: Arc::new(AtomicBool::new(false)),
        instance: "pipeline-tests".into(),
        cleanup_timeout: settings.cleanup_timeout,
        panic_on: None,
        allow_inline_targets: settings.allow_inline,
        limits: controller::store_limits::StoreLimits {
            namespaced_store_hosts: settings.namespaced_store_hosts.clone(),
            ..Default::default()
        },
    };
    let registry = Registry::new().with(memory.clone());
    Harness::new(api.client(), &config, registry)
}

impl World {
    fn new() -> World {
        World::with(Settings::default())
    }

    fn with(settings: Settings) -> World {
        let api = FakeApi::new();
        let memory = MemoryStore::new(DialectKind::ServiceFabricMesh);
        let metrics = Metrics::new();
        let harness = harness(&api, &memory, &settings, &metrics);
        let mut world = World {
            api,
            memory,
            harness,
            metrics,
            settings,
            namespaces: Vec::new(),
            stores: Vec::new(),
            cluster_stores: Vec::new(),
        };
        world.namespace(NS, NS_UID, json!({}));
        world.store("mem", json!({}));
        world
    }

    /// A new controller process on the same API server and store (a restart, or a new leader).
    fn restart(&mut self) {
        self.metrics = Metrics::new();
        self.harness = harness(&self.api, &self.memory, &self.settings, &self.metrics);
        for ns in self.namespaces.clone() {
            self.harness.put_namespace(ns);
        }
        for store in self.stores.clone() {
            self.harness.put_store(store);
        }
        for store in self.cluster_stores.clone() {
            self.harness.put_cluster_store(store);
        }
    }

    // ---- what the cluster holds ----

    fn namespace(&mut self, name: &str, uid: &str, labels: Value) {
        let object = json!({"apiVersion": "v1", "kind": "Namespace",
                            "metadata": {"name": name, "uid": uid, "labels": labels}});
        let object = self.api.put(&format!("/api/v1/namespaces/{name}"), object);
        let meta: PartialObjectMeta<Namespace> = serde_json::from_value(object).expect("a namespace");
        self.namespaces.retain(|n| n.metadata.name.as_deref() != Some(name));
        self.namespaces.push(meta.clone());
        self.harness.put_namespace(meta);
    }

    /// Marks the namespace as being deleted, as the controller's namespace watch would see it.
    fn terminate_namespace(&mut self, name: &str) {
        let path = format!("/api/v1/namespaces/{name}");
        let mut object = self.api.get(&path).expect("the namespace exists");
        object["metadata"]["deletionTimestamp"] = json!(fake_api::now());
        let object = self.api.put(&path, object);
        let meta: PartialObjectMeta<Namespace> = serde_json::from_value(object).expect("a namespace");
        self.namespaces.retain(|n| n.metadata.name.as_deref() != Some(name));
        self.namespaces.push(meta.clone());
        self.harness.put_namespace(meta);
    }

    /// A Store of the memory dialect in `team-a`; `extra` adds to its spec.
    fn store(&mut self, name: &str, extra: Value) {
        let mut spec = json!({"dialect": "ServiceFabricMesh", "endpoint": "http://127.0.0.1:9"});
        fake_api::merge(&mut spec, &extra);
        let object = json!({"apiVersion": "secretsync.io/v1alpha1", "kind": "Store",
                            "metadata": {"name": name, "namespace": NS}, "spec": spec});
        let object = self.api.put(&store_path(name), object);
        self.cache_store(object);
    }

    fn cache_store(&mut self, object: Value) {
        let store: Store = serde_json::from_value(object).expect("a Store");
        self.stores.retain(|s| s.metadata.name != store.metadata.name);
        self.stores.push(store.clone());
        self.harness.put_store(store);
    }

    /// A ClusterStore of the memory dialect; `extra` adds to its spec.
    fn cluster_store(&mut self, name: &str, extra: Value) {
        let mut spec = json!({"dialect": "ServiceFabricMesh", "endpoint": "http://127.0.0.1:9"});
        fake_api::merge(&mut spec, &extra);
        let object = json!({"apiVersion": "secretsync.io/v1alpha1", "kind": "ClusterStore",
                            "metadata": {"name": name}, "spec": spec});
        let object = self.api.put(&format!("{GROUP}/clusterstores/{name}"), object);
        let store: ClusterStore = serde_json::from_value(object).expect("a ClusterStore");
        self.cluster_stores.retain(|s| s.metadata.name != store.metadata.name);
        self.cluster_stores.push(store.clone());
        self.harness.put_cluster_store(store);
    }

    /// A Secret of `team-a` holding `data` (text values), with `labels`.
    fn secret_labelled(&self, name: &str, data: Value, labels: Value) {
        use base64::Engine;
        let data: BTreeMap<String, String> = data
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                let text = v.as_str().unwrap_or_default();
                (k.clone(), base64::engine::general_purpose::STANDARD.encode(text))
            })
            .collect();
        self.api.put(
            &secret_path(name),
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": name, "namespace": NS, "labels": labels}, "data": data}),
        );
    }

    fn secret(&self, name: &str, data: Value) {
        self.secret_labelled(name, data, json!({}))
    }

    /// Creates or changes the SecretSync `name` of `team-a` (a change is a new generation; status, uid and
    /// finalizers stay).
    fn sync(&self, name: &str, spec: Value) {
        let path = sync_path(name);
        let object = match self.api.get(&path) {
            Some(mut old) => {
                let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
                old["metadata"]["generation"] = json!(generation + 1);
                old["spec"] = spec;
                old
            }
            None => json!({"apiVersion": "secretsync.io/v1alpha1", "kind": "SecretSync",
                           "metadata": {"name": name, "namespace": NS, "generation": 1}, "spec": spec}),
        };
        self.api.put(&path, object);
    }

    /// Deletes the SecretSync as the API server does: at once without finalizers, else marked `deleted_ago`.
    fn delete_sync(&self, name: &str, deleted_ago: Duration) {
        let path = sync_path(name);
        let mut object = self.api.get(&path).expect("the SecretSync exists");
        if object["metadata"]["finalizers"]
            .as_array()
            .is_none_or(Vec::is_empty)
        {
            self.api.remove(&path);
            return;
        }
        let at = k8s_openapi::jiff::Timestamp::now() - k8s_openapi::jiff::SignedDuration::try_from(deleted_ago).unwrap_or_default();
        let at = at.round(k8s_openapi::jiff::Unit::Second).unwrap_or(at);
        object["metadata"]["deletionTimestamp"] = json!(at.to_string());
        self.api.put(&path, object);
    }

    /// One reconcile of the SecretSync as the API server holds it now, with caches that have seen every change
    /// to the stores and namespaces (the controller's own included), as its watches would by then.
    async fn reconcile(&mut self, name: &str) -> Next {
        self.watch();
        let obj = self.object(name).expect("the SecretSync exists");
        self.harness.reconcile(obj).await
    }

    /// The caches catch up with the API server.
    fn watch(&mut self) {
        for name in self.stores.iter().filter_map(|s| s.metadata.name.clone()).collect::<Vec<_>>() {
            match self.api.get(&store_path(&name)) {
                Some(object) => self.cache_store(object),
                None => {
                    if let Some(gone) = self.stores.iter().find(|s| s.metadata.name.as_deref() == Some(&name)) {
                        self.harness.delete_store(gone.clone());
                    }
                    self.stores.retain(|s| s.metadata.name.as_deref() != Some(&name));
                }
            }
        }
    }

    fn object(&self, name: &str) -> Option<SecretSync> {
        self.api
            .get(&sync_path(name))
            .map(|o| serde_json::from_value(o).expect("a SecretSync"))
    }

    fn status(&self, name: &str) -> Value {
        self.api
            .get(&sync_path(name))
            .map(|o| o["status"].clone())
            .unwrap_or(Value::Null)
    }

    fn finalizers(&self, name: &str) -> Vec<String> {
        self.object(name)
            .and_then(|o| o.metadata.finalizers)
            .unwrap_or_default()
    }

    /// Events about `object` in `team-a`, oldest first.
    fn events(&self, object: &str) -> Vec<Value> {
        self.events_in(NS, object)
    }

    fn events_in(&self, ns: &str, object: &str) -> Vec<Value> {
        self.api
            .list(&format!("/apis/events.k8s.io/v1/namespaces/{ns}/events"))
            .into_iter()
            .filter(|e| e["regarding"]["name"] == object)
            .collect()
    }

    /// `type/reason` of each Event about `object`.
    fn event_reasons(&self, object: &str) -> Vec<String> {
        self.events(object)
            .iter()
            .map(|e| format!("{}/{}", str_of(&e["type"]), str_of(&e["reason"])))
            .collect()
    }

    fn event(&self, object: &str, reason: &str) -> Value {
        self.events(object)
            .into_iter()
            .find(|e| e["reason"] == reason)
            .unwrap_or_else(|| panic!("no Event {reason}; have {:?}", self.event_reasons(object)))
    }

    /// The status writes (server-side applies of `status`) of `name` recorded so far.
    fn status_writes(&self, name: &str) -> usize {
        let path = format!("{}/status", sync_path(name));
        self.api
            .requests()
            .iter()
            .filter(|r| r.method == "PATCH" && r.path == path)
            .count()
    }

    /// Requests of `method` to `path` recorded so far.
    fn requests_to(&self, method: &str, path: &str) -> usize {
        self.api
            .requests()
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .count()
    }

    /// The memory store's calls of every kind on `remote`.
    fn store_calls(&self, remote: &str) -> usize {
        [Op::Observe, Op::Apply, Op::Delete, Op::ReadValue]
            .iter()
            .map(|op| self.memory.calls(*op, remote))
            .sum()
    }

    /// Nothing the controller sent the API server, and nothing it shows, holds `value`.
    fn assert_never_shown(&self, value: &str) {
        for r in self.api.requests() {
            assert!(
                !r.body.to_string().contains(value),
                "a value reached the API server in {} {}",
                r.method,
                r.path
            );
        }
        assert!(
            !self.metrics.render().contains(value),
            "a value reached the metrics"
        );
    }

    fn holds(&self, remote: &str, value: &str) -> bool {
        self.memory
            .entry(remote)
            .is_some_and(|e| e.value == value.as_bytes())
    }

    /// This controller's ownership marker for the SecretSync `name` of `team-a`.
    fn owner(&self, name: &str) -> Owner {
        let uid = self
            .object(name)
            .and_then(|o| o.metadata.uid)
            .expect("the SecretSync has a uid");
        owner(name, &uid, CLUSTER, NS_UID)
    }
}

fn owner(name: &str, uid: &str, cluster: &str, namespace_uid: &str) -> Owner {
    Owner {
        namespace: NS.into(),
        name: name.into(),
        uid: uid.into(),
        scope: Scope {
            cluster: cluster.into(),
            namespace_uid: namespace_uid.into(),
        },
    }
}

/// The digest a remote secret's marker holds for `value` in `team-a`.
fn digest(value: &str) -> String {
    DigestKey::new(DIGEST_KEY.to_vec())
        .expect("a digest key")
        .for_namespace(NS_UID)
        .digest(value.as_bytes())
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn sync_path(name: &str) -> String {
    format!("{GROUP}/namespaces/{NS}/secretsyncs/{name}")
}

fn store_path(name: &str) -> String {
    format!("{GROUP}/namespaces/{NS}/stores/{name}")
}

fn secret_path(name: &str) -> String {
    format!("/api/v1/namespaces/{NS}/secrets/{name}")
}

/// A SecretSync spec pushing Secret `s`'s key `k` through Store `mem` to `remote`; `extra` merges into it.
fn spec(remote: &str, extra: Value) -> Value {
    let mut spec = json!({
        "source": {"secretRef": {"name": "s", "key": "k"}},
        "target": {"storeRef": {"kind": "Store", "name": "mem"}, "remoteName": remote},
    });
    fake_api::merge(&mut spec, &extra);
    spec
}

/// A world where the SecretSync `name` has synced `value` to `remote` once, with `extra` in its spec.
async fn synced(name: &str, remote: &str, value: &str, extra: Value) -> World {
    let mut w = World::new();
    w.secret("s", json!({"k": value}));
    w.sync(name, spec(remote, extra));
    let next = w.reconcile(name).await;
    assert_eq!(next.failed, None, "{}", w.status(name));
    assert_eq!(ready(&w.status(name)), "True/Synced");
    w
}

/// A refusal of the planner's (ownership, adoption): reported as Failed, yet the reconcile itself succeeded, so
/// there is no retry with backoff: only a change or the next refresh (the default hour) looks again.
fn assert_plan_refused(next: &Next, status: &Value, reason: &str) {
    assert_eq!(next.failed, None, "{next:?}");
    assert!(about(Duration::from_secs(3600))(next.requeue_after), "{next:?}");
    assert_eq!(phase(status), "Failed");
    assert_eq!(ready(status), format!("False/{reason}"), "{status}");
}

/// The refresh interval with its jitter of at most 10%.
fn about(interval: Duration) -> impl Fn(Option<Duration>) -> bool {
    move |wait| wait.is_some_and(|w| w >= interval && w <= interval.mul_f64(1.1))
}

// ---------------------------------------------------------------------------------------------------------------
// Create, update, nothing to do.

#[tokio::test]
async fn a_new_secretsync_creates_its_remote_secret_and_reports_ready() {
    let mut w = World::new();
    w.secret("s", json!({"k": "first-value"}));
    w.sync("db", spec("db-remote", json!({})));

    let next = w.reconcile("db").await;

    assert_eq!(next.failed, None);
    assert!(about(Duration::from_secs(3600))(next.requeue_after), "{next:?}");
    assert!(w.holds("db-remote", "first-value"));
    let entry = w.memory.entry("db-remote").expect("written");
    assert_eq!(entry.owner, Some(w.owner("db")), "the marker names this SecretSync in its scope");
    assert_eq!(entry.digest, Some(digest("first-value")));
    let s = w.status("db");
    assert_eq!(phase(&s), "Ready");
    assert_eq!(ready(&s), "True/Synced");
    assert_eq!(ready_message(&s), r#"remote secret "db-remote" created"#);
    assert_eq!(s["observedGeneration"], 1);
    assert_eq!(
        s["remote"],
        json!({"name": "db-remote", "id": "memory:db-remote", "version": "1"})
    );
    assert_eq!(s["syncedDigest"], json!(digest("first-value")));
    assert_eq!(s["store"]["name"], "mem");
    assert_eq!(s["syncedTarget"]["remoteName"], "db-remote");
    assert!(s["lastSyncTime"].is_string());
    assert_eq!(w.event_reasons("db"), ["Normal/Synced"]);
    assert!(w.finalizers("db").is_empty(), "Retain (the default) holds no finalizer");
    w.assert_never_shown("first-value");
}

#[tokio::test]
async fn a_new_source_value_is_written_as_a_new_version() {
    let mut w = synced("db", "db-remote", "first-value", json!({})).await;
    w.secret("s", json!({"k": "second-value"}));

    let next = w.reconcile("db").await;

    assert_eq!(next.failed, None);
    assert!(w.holds("db-remote", "second-value"));
    assert_eq!(w.memory.calls(Op::Apply, "db-remote"), 2);
    let s = w.status("db");
    assert_eq!(s["remote"]["version"], "2");
    assert_eq!(s["syncedDigest"], json!(digest("second-value")));
    assert_eq!(ready_message(&s), r#"remote secret "db-remote" updated with a new value"#);
    w.assert_never_shown("second-value");
}

#[tokio::test]
async fn a_reconcile_with_nothing_changed_reads_the_store_and_writes_nothing() {
    let mut w = synced("db", "db-remote", "v", json!({})).await;
    let status_writes = w.status_writes("db");
    let events = w.events("db").len();

    let next = w.reconcile("db").await;

    assert_eq!(next.failed, None);
    assert_eq!(w.memory.calls(Op::Observe, "db-remote"), 2, "the store is read again");
    assert_eq!(w.memory.calls(Op::Apply, "db-remote"), 1, "an unchanged value was written");
    assert_eq!(w.status_writes("db"), status_writes, "an unchanged status was written");
    assert_eq!(w.events("db").len(), events);
    assert_eq!(ready(&w.status("db")), "True/Synced");
}

#[tokio::test]
async fn a_metadata_only_change_is_written_in_place_without_a_new_value_version() {
    let mut w = synced("db", "db-remote", "v", json!({})).await;
    w.sync("db", spec("db-remote", json!({"target": {"description": "the db", "labels": {"team": "a"}}})));

    w.reconcile("db").await;

    let entry = w.memory.entry("db-remote").expect("kept");
    assert_eq!(entry.metadata.description.as_deref(), Some("the db"));
    assert_eq!(entry.metadata.labels.get("team").map(String::as_str), Some("a"));
    assert_eq!(entry.version, 1, "a metadata change wrote a new value version");
    let s = w.status("db");
    assert_eq!(ready_message(&s), r#"remote secret "db-remote" metadata updated"#);
    assert_eq!(s["observedGeneration"], 2);
}

#[tokio::test]
async fn without_a_key_the_whole_secret_is_pushed_as_one_json_object() {
    let mut w = World::new();
    w.secret("s", json!({"user": "app", "password": "hunter2"}));
    w.sync("db", spec("db-remote", json!({"source": {"secretRef": {"key": null}}})));

    w.reconcile("db").await;

    assert!(
        w.holds("db-remote", r#"{"password":"hunter2","user":"app"}"#),
        "{:?}",
        w.memory.entry("db-remote").map(|e| String::from_utf8_lossy(&e.value).into_owned())
    );
    w.assert_never_shown("hunter2");
}

#[tokio::test]
async fn if_not_exists_leaves_an_existing_remote_secret_unchanged() {
    let mut w = synced("db", "db-remote", "v1", json!({"updatePolicy": "IfNotExists"})).await;
    w.secret("s", json!({"k": "v2"}));

    w.reconcile("db").await;

    assert!(w.holds("db-remote", "v1"));
    assert_eq!(w.memory.calls(Op::Apply, "db-remote"), 1);
    assert_eq!(ready(&w.status("db")), "True/ExistsNotUpdated");
}

// ---------------------------------------------------------------------------------------------------------------
// Ownership: conflicts, adoption, scopes.

#[tokio::test]
async fn a_remote_secret_not_written_by_secretsync_is_a_conflict_and_left_untouched() {
    let mut w = World::new();
    w.memory.put_foreign("db-remote", b"not-ours");
    let untouched = w.memory.entry("db-remote");
    w.secret("s", json!({"k": "v"}));
    w.sync("db", spec("db-remote", json!({})));

    let next = w.reconcile("db").await;

    assert_plan_refused(&next, &w.status("db"), "Conflict");
    let s = w.status("db");
    assert_eq!(ready(&s), "False/Conflict");
    assert!(ready_message(&s).contains("spec.adoptExisting: true"), "{s}");
    assert_eq!(w.memory.entry("db-remote"), untouched);
    assert_eq!(w.memory.calls(Op::Apply, "db-remote"), 0);
    assert_eq!(w.memory.calls(Op::ReadValue, "db-remote"), 0, "a value was read without adoption");
    assert_eq!(w.event_reasons("db"), ["Warning/Conflict"]);
}

#[tokio::test]
async fn a_remote_secret_of_another_secretsync_is_a_conflict_that_does_not_name_it() {
    let mut w = synced("first", "shared", "first-value", json!({})).await;
    w.sync("second", spec("shared", json!({})));

    let next = w.reconcile("second").await;

    assert_plan_refused(&next, &w.status("second"), "Conflict");
    let message = ready_message(&w.status("second"));
    assert!(message.contains("owned by another SecretSync"), "{message}");
    assert!(!message.contains("first"), "the owner was named: {message}");
    assert!(w.holds("shared", "first-value"));
    assert_eq!(w.memory.calls(Op::Apply, "shared"), 1, "only the owner wrote");
    assert_eq!(ready(&w.status("first")), "True/Synced");
}

#[tokio::test]
async fn adopt_existing_is_refused_by_a_store_that_adopts_nothing() {
    let mut w = World::new();
    w.memory.put_foreign("db-remote", b"theirs");
    w.secret("s", json!({"k": "v"}));
    w.sync("db", spec("db-remote", json!({"adoptExisting": true})));

    let next = w.reconcile("db").await;

    assert_plan_refused(&next, &w.status("db"), "AdoptionNotAllowed");
    assert!(ready_message(&w.status("db")).contains("spec.adoption"));
    assert!(w.holds("db-remote", "theirs"));
    assert_eq!(w.memory.entry("db-remote").and_then(|e| e.owner), None);
}

#[tokio::test]
async fn a_store_that_adopts_unmarked_secrets_takes_one_over_with_a_new_version() {
    let mut w = World::new();
    w.store("mem", json!({"adoption": "Unmarked"}));
    w.memory.put_foreign("db-remote", b"theirs");
    w.secret("s", json!({"k": "ours"}));
    w.sync("db", spec("db-remote", json!({"adoptExisting": true})));

    let next = w.reconcile("db").await;

    assert_eq!(next.failed, None);
    let entry = w.memory.entry("db-remote").expect("kept");
    assert_eq!(entry.value, b"ours");
    assert_eq!(entry.version, 2);
    assert_eq!(entry.owner, Some(w.owner("db")));
    assert_eq!(w.memory.calls(Op::ReadValue, "db-remote"), 1, "the value is read once to compare");
}

#[tokio::test]
async fn adopting_a_secret_that_already_holds_the_value_writes_only_the_marker() {
    let mut w = World::new();
    w.store("mem", json!({"adoption": "Unmarked"}));
    w.memory.put_foreign("db-remote", b"same");
    w.secret("s", json!({"k": "same"}));
    w.sync("db", spec("db-remote", json!({"adoptExisting": true})));

    w.reconcile("db").await;

    let entry = w.memory.entry("db-remote").expect("kept");
    assert_eq!(entry.version, 1, "an equal value was written again");
    assert_eq!(entry.owner, Some(w.owner("db")));
    assert_eq!(entry.digest, Some(digest("same")));
    assert_eq!(ready_message(&w.status("db")), r#"remote secret "db-remote" metadata updated"#);
}

/// A remote secret whose SecretSync is gone (deleted under Retain) in this namespace incarnation.
fn orphan(w: &World, remote: &str, value: &[u8]) {
    w.memory.put_entry(
        remote,
        Entry {
            value: value.to_vec(),
            owner: Some(owner("gone", "uid-of-gone", CLUSTER, NS_UID)),
            digest: Some("some-digest".into()),
            version: 3,
            metadata: Default::default(),
        },
    );
}

#[tokio::test]
async fn an_orphan_is_adopted_only_where_the_store_allows_orphans() {
    let mut w = World::new();
    w.store("mem", json!({"adoption": "Unmarked"}));
    orphan(&w, "db-remote", b"old");
    w.secret("s", json!({"k": "new"}));
    w.sync("db", spec("db-remote", json!({"adoptExisting": true})));

    let next = w.reconcile("db").await;
    assert_plan_refused(&next, &w.status("db"), "AdoptionNotAllowed");
    assert!(w.holds("db-remote", "old"));

    w.store("mem", json!({"adoption": "UnmarkedOrOrphaned"}));
    let next = w.reconcile("db").await;
    assert_eq!(next.failed, None, "{}", w.status("db"));
    assert!(w.holds("db-remote", "new"));
    assert_eq!(w.memory.entry("db-remote").and_then(|e| e.owner), Some(w.owner("db")));
}

#[tokio::test]
async fn an_orphan_without_adopt_existing_is_a_conflict_that_says_adoption_may_help() {
    let mut w = World::new();
    orphan(&w, "db-remote", b"old");
    w.secret("s", json!({"k": "new"}));
    w.sync("db", spec("db-remote", json!({})));

    let next = w.reconcile("db").await;

    assert_plan_refused(&next, &w.status("db"), "Conflict");
    assert!(ready_message(&w.status("db")).contains("adoptExisting takes over a secret whose SecretSync is gone"));
    // Whether the owner exists was looked up on the API server.
    assert_eq!(w.requests_to("GET", &sync_path("gone")), 1);
}

#[tokio::test]
async fn a_marker_from_another_cluster_is_never_taken_over() {
    let mut w = World::new();
    w.store("mem", json!({"adoption": "UnmarkedOrOrphaned"}));
    w.secret("s", json!({"k": "ours"}));
    w.sync("db", spec("db-remote", json!({"adoptExisting": true})));
    let uid = w.object("db").and_then(|o| o.metadata.uid).expect("uid");
    // Same namespace, name and even uid, written by another cluster sharing the store.
    w.memory.put_entry(
        "db-remote",
        Entry {
            value: b"theirs".to_vec(),
            owner: Some(owner("db", &uid, "other-cluster", "their-namespace-uid")),
            digest: Some("d".into()),
            version: 1,
            metadata: Default::default(),
        },
    );

    let next = w.reconcile("db").await;

    assert_plan_refused(&next, &w.status("db"), "Conflict");
    assert!(w.holds("db-remote", "theirs"));
    assert_eq!(w.requests_to("GET", &sync_path("db")), 0, "another cluster's object was looked up here");
}

#[tokio::test]
async fn a_marker_from_a_namespace_deleted_and_created_again_is_an_orphan() {
    let mut w = World::new();
    w.store("mem", json!({"adoption": "UnmarkedOrOrphaned"}));
    w.secret("s", json!({"k": "new"}));
    w.sync("db", spec("db-remote", json!({"adoptExisting": true})));
    // Written by `team-a/db` of the namespace's earlier life.
    w.memory.put_entry(
        "db-remote",
        Entry {
            value: b"old".to_vec(),
            owner: Some(owner("db", "uid-of-the-earlier-db", CLUSTER, "uid-of-the-earlier-team-a")),
            digest: Some("d".into()),
            version: 1,
            metadata: Default::default(),
        },
    );

    let next = w.reconcile("db").await;

    assert_eq!(next.failed, None, "{}", w.status("db"));
    assert!(w.holds("db-remote", "new"));
    assert_eq!(w.memory.entry("db-remote").and_then(|e| e.owner), Some(w.owner("db")));
}

#[tokio::test]
async fn a_marker_and_digest_from_before_scopes_stay_this_objects_without_a_write() {
    let mut w = World::new();
    w.secret("s", json!({"k": "the-value"}));
    w.sync("kept", spec("kept-remote", json!({})));
    w.sync("newcomer", spec("newcomer-remote", json!({})));
    let uid = w.object("kept").and_then(|o| o.metadata.uid).expect("uid");
    let controller_wide = DigestKey::new(DIGEST_KEY.to_vec()).expect("key").digest(b"the-value");
    let earlier = |name: &str, uid: &str| Entry {
        value: b"the-value".to_vec(),
        owner: Some(owner(name, uid, "", "")),
        digest: Some(controller_wide.clone()),
        version: 1,
        metadata: Default::default(),
    };
    w.memory.put_entry("kept-remote", earlier("kept", &uid));
    // Written by an earlier object named `newcomer` (another uid), before scopes.
    w.memory.put_entry("newcomer-remote", earlier("newcomer", "an-earlier-uid"));

    assert_eq!(w.reconcile("kept").await.failed, None);
    let next = w.reconcile("newcomer").await;
    assert_plan_refused(&next, &w.status("newcomer"), "Conflict");

    assert_eq!(ready(&w.status("kept")), "True/Synced");
    assert_eq!(w.memory.calls(Op::Apply, "kept-remote"), 0, "the upgrade wrote");
    assert_eq!(w.memory.calls(Op::Apply, "newcomer-remote"), 0);
    // The next value is written under the namespace's key, with the scope in the marker.
    w.secret("s", json!({"k": "next"}));
    w.reconcile("kept").await;
    let entry = w.memory.entry("kept-remote").expect("kept");
    assert_eq!(entry.owner, Some(w.owner("kept")));
    assert_eq!(entry.digest, Some(digest("next")));
}

// ---------------------------------------------------------------------------------------------------------------
// A target that moved: the previous remote secret.

#[tokio::test]
async fn a_rename_under_delete_deletes_the_previous_remote_secret() {
    let mut w = synced("db", "old-name", "v", json!({"deletionPolicy": "Delete"})).await;
    w.sync("db", spec("new-name", json!({"deletionPolicy": "Delete"})));

    let next = w.reconcile("db").await;

    assert_eq!(next.failed, None);
    assert!(w.holds("new-name", "v"));
    assert_eq!(w.memory.entry("old-name"), None);
    assert_eq!(w.status("db")["syncedTarget"]["remoteName"], "new-name");
    let note = w.event("db", "PreviousRemoteDeleted")["note"].clone();
    assert!(str_of(&note).contains(r#""old-name" was deleted"#), "{note}");
}

#[tokio::test]
async fn a_rename_under_retain_leaves_the_previous_remote_secret() {
    let mut w = synced("db", "old-name", "v", json!({})).await;
    w.sync("db", spec("new-name", json!({})));

    w.reconcile("db").await;

    assert!(w.holds("new-name", "v"));
    assert!(w.holds("old-name", "v"));
    assert_eq!(w.memory.calls(Op::Delete, "old-name"), 0);
    let note = w.event("db", "PreviousRemoteLeft")["note"].clone();
    assert!(str_of(&note).contains("deletionPolicy is Retain"), "{note}");
    assert_eq!(w.status("db")["syncedTarget"]["remoteName"], "new-name");
}

#[tokio::test]
async fn a_previous_remote_secret_taken_over_since_is_left_in_place() {
    let mut w = synced("db", "old-name", "v", json!({"deletionPolicy": "Delete"})).await;
    w.memory.put_foreign("old-name", b"someone else's now");
    w.sync("db", spec("new-name", json!({"deletionPolicy": "Delete"})));

    w.reconcile("db").await;

    assert!(w.holds("old-name", "someone else's now"));
    assert_eq!(w.memory.calls(Op::Delete, "old-name"), 0);
    let note = w.event("db", "PreviousRemoteLeft")["note"].clone();
    assert!(str_of(&note).contains("no longer owned by this SecretSync"), "{note}");
}

#[tokio::test]
async fn a_failed_delete_of_the_previous_remote_secret_is_reported_and_tried_again() {
    let mut w = synced("db", "old-name", "v", json!({"deletionPolicy": "Delete"})).await;
    w.memory.fail_next(Op::Delete, "old-name", 1, ErrorClass::Retry, "BackendError");
    w.sync("db", spec("new-name", json!({"deletionPolicy": "Delete"})));

    let next = w.reconcile("db").await;

    assert_eq!(next.failed.as_deref(), Some("PreviousRemoteNotDeleted"));
    assert!(next.requeue_after.is_some_and(|d| d <= Duration::from_secs(1)), "{next:?}");
    let s = w.status("db");
    assert!(ready_message(&s).contains(r#"previous remote secret "old-name" could not be deleted"#), "{s}");
    assert_eq!(s["syncedTarget"]["remoteName"], "old-name", "the old placement is kept to try again");
    assert!(w.holds("new-name", "v"));

    let next = w.reconcile("db").await;
    assert_eq!(next.failed, None);
    assert_eq!(w.memory.entry("old-name"), None);
    assert_eq!(w.status("db")["syncedTarget"]["remoteName"], "new-name");
}

