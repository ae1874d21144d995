//! The world of `tests/pipeline*.rs`: an API server in the test process, the memory store and a controller
//! context on both, with what scenarios ask of them.
#![allow(dead_code, unused_imports)]

pub use std::collections::BTreeMap;
pub use std::sync::Arc;
pub use std::sync::atomic::AtomicBool;
pub use std::time::Duration;

pub use k8s_openapi::api::core::v1::Namespace;
pub use kube::core::PartialObjectMeta;
pub use secretsync::api::{ClusterStore, DialectKind, SecretSync, Store};
pub use secretsync::controller::{self, FINALIZER, harness::Harness, harness::Next};
pub use secretsync::dialects::{ErrorClass, Registry};
pub use secretsync::metrics::Metrics;
pub use secretsync::plan::digest::DigestKey;
pub use secretsync::plan::{Owner, Scope};
pub use serde_json::{Value, json};

use super::fake_api;
pub use super::fake_api::FakeApi;
pub use super::memory_store::{Entry, MemoryStore, Op};
pub use super::status::{condition, in_sync, phase, ready, ready_message};

pub const NS: &str = "team-a";
pub const NS_UID: &str = "uid-of-team-a";
pub const CLUSTER: &str = "this-cluster";
pub const GROUP: &str = "/apis/secretsync.io/v1alpha1";
pub const DIGEST_KEY: [u8; 32] = [7; 32];

/// One scenario's world: the API server, the memory store (standing in for ServiceFabricMesh), and a controller's
/// context on both, with the namespace `team-a` and its Store `mem`.
pub struct World {
    pub api: FakeApi,
    pub memory: Arc<MemoryStore>,
    pub harness: Harness,
    pub metrics: Arc<Metrics>,
    pub settings: Settings,
    /// What the caches were given, to give a restarted controller the same.
    pub namespaces: Vec<PartialObjectMeta<Namespace>>,
    pub stores: Vec<Store>,
    pub cluster_stores: Vec<ClusterStore>,
}

/// The operator's flags that scenarios change.
#[derive(Clone)]
pub struct Settings {
    pub allow_inline: bool,
    pub cleanup_timeout: Duration,
    pub concurrency: u16,
    pub namespaced_store_hosts: Vec<String>,
    /// `--test-panic-on namespace/name`.
    pub panic_on: Option<String>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            allow_inline: false,
            cleanup_timeout: Duration::from_secs(600),
            panic_on: None,
            concurrency: 4,
            // The memory store answers whatever endpoint its Stores name.
            namespaced_store_hosts: vec!["*".into()],
        }
    }
}

pub fn harness(
    api: &FakeApi,
    memory: &Arc<MemoryStore>,
    settings: &Settings,
    metrics: &Arc<Metrics>,
) -> Harness {
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
        panic_on: settings.panic_on.clone(),
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
    pub fn new() -> World {
        World::with(Settings::default())
    }

    pub fn with(settings: Settings) -> World {
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
    pub fn restart(&mut self) {
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

    pub fn namespace(&mut self, name: &str, uid: &str, labels: Value) {
        let object = json!({"apiVersion": "v1", "kind": "Namespace",
                            "metadata": {"name": name, "uid": uid, "labels": labels}});
        let object = self.api.put(&format!("/api/v1/namespaces/{name}"), object);
        let meta: PartialObjectMeta<Namespace> =
            serde_json::from_value(object).expect("a namespace");
        self.namespaces
            .retain(|n| n.metadata.name.as_deref() != Some(name));
        self.namespaces.push(meta.clone());
        self.harness.put_namespace(meta);
    }

    /// Marks the namespace as being deleted, as the controller's namespace watch would see it.
    pub fn terminate_namespace(&mut self, name: &str) {
        let path = format!("/api/v1/namespaces/{name}");
        let mut object = self.api.get(&path).expect("the namespace exists");
        object["metadata"]["deletionTimestamp"] = json!(fake_api::now());
        let object = self.api.put(&path, object);
        let meta: PartialObjectMeta<Namespace> =
            serde_json::from_value(object).expect("a namespace");
        self.namespaces
            .retain(|n| n.metadata.name.as_deref() != Some(name));
        self.namespaces.push(meta.clone());
        self.harness.put_namespace(meta);
    }

    /// A Store of the memory dialect in `team-a`; `extra` adds to its spec.
    pub fn store(&mut self, name: &str, extra: Value) {
        let mut spec = json!({"dialect": "ServiceFabricMesh", "endpoint": "http://127.0.0.1:9"});
        fake_api::merge(&mut spec, &extra);
        let object = json!({"apiVersion": "secretsync.io/v1alpha1", "kind": "Store",
                            "metadata": {"name": name, "namespace": NS}, "spec": spec});
        let object = self.api.put(&store_path(name), object);
        self.cache_store(object);
    }

    pub fn cache_store(&mut self, object: Value) {
        let store: Store = serde_json::from_value(object).expect("a Store");
        self.stores
            .retain(|s| s.metadata.name != store.metadata.name);
        self.stores.push(store.clone());
        self.harness.put_store(store);
    }

    /// A ClusterStore of the memory dialect; `extra` adds to its spec.
    pub fn cluster_store(&mut self, name: &str, extra: Value) {
        let mut spec = json!({"dialect": "ServiceFabricMesh", "endpoint": "http://127.0.0.1:9"});
        fake_api::merge(&mut spec, &extra);
        let object = json!({"apiVersion": "secretsync.io/v1alpha1", "kind": "ClusterStore",
                            "metadata": {"name": name}, "spec": spec});
        let object = self
            .api
            .put(&format!("{GROUP}/clusterstores/{name}"), object);
        let store: ClusterStore = serde_json::from_value(object).expect("a ClusterStore");
        self.cluster_stores
            .retain(|s| s.metadata.name != store.metadata.name);
        self.cluster_stores.push(store.clone());
        self.harness.put_cluster_store(store);
    }

    /// A Secret of `team-a` holding `data` (text values), with `labels`.
    pub fn secret_labelled(&self, name: &str, data: Value, labels: Value) {
        use base64::Engine;
        let data: BTreeMap<String, String> = data
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                let text = v.as_str().unwrap_or_default();
                (
                    k.clone(),
                    base64::engine::general_purpose::STANDARD.encode(text),
                )
            })
            .collect();
        self.api.put(
            &secret_path(name),
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": name, "namespace": NS, "labels": labels}, "data": data}),
        );
    }

    pub fn secret(&self, name: &str, data: Value) {
        self.secret_labelled(name, data, json!({}))
    }

    /// Creates or changes the SecretSync `name` of `team-a` (a change is a new generation; status, uid and
    /// finalizers stay).
    pub fn sync(&self, name: &str, spec: Value) {
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
    pub fn delete_sync(&self, name: &str, deleted_ago: Duration) {
        let path = sync_path(name);
        let mut object = self.api.get(&path).expect("the SecretSync exists");
        if object["metadata"]["finalizers"]
            .as_array()
            .is_none_or(Vec::is_empty)
        {
            self.api.remove(&path);
            return;
        }
        let at = k8s_openapi::jiff::Timestamp::now()
            - k8s_openapi::jiff::SignedDuration::try_from(deleted_ago).unwrap_or_default();
        let at = at.round(k8s_openapi::jiff::Unit::Second).unwrap_or(at);
        object["metadata"]["deletionTimestamp"] = json!(at.to_string());
        self.api.put(&path, object);
    }

    /// One reconcile of the SecretSync as the API server holds it now, with caches that have seen every change
    /// to the stores and namespaces (the controller's own included), as its watches would by then.
    pub async fn reconcile(&mut self, name: &str) -> Next {
        self.watch();
        let obj = self.object(name).expect("the SecretSync exists");
        self.harness.reconcile(obj).await
    }

    /// The caches catch up with the API server.
    pub fn watch(&mut self) {
        for name in self
            .stores
            .iter()
            .filter_map(|s| s.metadata.name.clone())
            .collect::<Vec<_>>()
        {
            match self.api.get(&store_path(&name)) {
                Some(object) => self.cache_store(object),
                None => {
                    if let Some(gone) = self
                        .stores
                        .iter()
                        .find(|s| s.metadata.name.as_deref() == Some(&name))
                    {
                        self.harness.delete_store(gone.clone());
                    }
                    self.stores
                        .retain(|s| s.metadata.name.as_deref() != Some(&name));
                }
            }
        }
    }

    pub fn object(&self, name: &str) -> Option<SecretSync> {
        self.api
            .get(&sync_path(name))
            .map(|o| serde_json::from_value(o).expect("a SecretSync"))
    }

    pub fn status(&self, name: &str) -> Value {
        self.api
            .get(&sync_path(name))
            .map(|o| o["status"].clone())
            .unwrap_or(Value::Null)
    }

    pub fn finalizers(&self, name: &str) -> Vec<String> {
        self.object(name)
            .and_then(|o| o.metadata.finalizers)
            .unwrap_or_default()
    }

    /// Events about `object` in `team-a`, oldest first.
    pub fn events(&self, object: &str) -> Vec<Value> {
        self.events_in(NS, object)
    }

    pub fn events_in(&self, ns: &str, object: &str) -> Vec<Value> {
        self.api
            .list(&format!("/apis/events.k8s.io/v1/namespaces/{ns}/events"))
            .into_iter()
            .filter(|e| e["regarding"]["name"] == object)
            .collect()
    }

    /// `type/reason` of each Event about `object`.
    pub fn event_reasons(&self, object: &str) -> Vec<String> {
        self.events(object)
            .iter()
            .map(|e| format!("{}/{}", str_of(&e["type"]), str_of(&e["reason"])))
            .collect()
    }

    pub fn event(&self, object: &str, reason: &str) -> Value {
        self.events(object)
            .into_iter()
            .find(|e| e["reason"] == reason)
            .unwrap_or_else(|| panic!("no Event {reason}; have {:?}", self.event_reasons(object)))
    }

    /// The status writes (server-side applies of `status`) of `name` recorded so far.
    pub fn status_writes(&self, name: &str) -> usize {
        let path = format!("{}/status", sync_path(name));
        self.api
            .requests()
            .iter()
            .filter(|r| r.method == "PATCH" && r.path == path)
            .count()
    }

    /// Requests of `method` to `path` recorded so far.
    pub fn requests_to(&self, method: &str, path: &str) -> usize {
        self.api
            .requests()
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .count()
    }

    /// The memory store's calls of every kind on `remote`.
    pub fn store_calls(&self, remote: &str) -> usize {
        [Op::Observe, Op::Apply, Op::Delete, Op::ReadValue]
            .iter()
            .map(|op| self.memory.calls(*op, remote))
            .sum()
    }

    /// Nothing the controller sent the API server, and nothing it shows, holds `value`.
    pub fn assert_never_shown(&self, value: &str) {
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

    pub fn holds(&self, remote: &str, value: &str) -> bool {
        self.memory
            .entry(remote)
            .is_some_and(|e| e.value == value.as_bytes())
    }

    /// This controller's ownership marker for the SecretSync `name` of `team-a`.
    pub fn owner(&self, name: &str) -> Owner {
        let uid = self
            .object(name)
            .and_then(|o| o.metadata.uid)
            .expect("the SecretSync has a uid");
        owner(name, &uid, CLUSTER, NS_UID)
    }
}

pub fn owner(name: &str, uid: &str, cluster: &str, namespace_uid: &str) -> Owner {
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
pub fn digest(value: &str) -> String {
    DigestKey::new(DIGEST_KEY.to_vec())
        .expect("a digest key")
        .for_namespace(NS_UID)
        .digest(value.as_bytes())
}

pub fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

pub fn sync_path(name: &str) -> String {
    format!("{GROUP}/namespaces/{NS}/secretsyncs/{name}")
}

pub fn store_path(name: &str) -> String {
    format!("{GROUP}/namespaces/{NS}/stores/{name}")
}

pub fn secret_path(name: &str) -> String {
    format!("/api/v1/namespaces/{NS}/secrets/{name}")
}

/// A SecretSync spec pushing Secret `s`'s key `k` through Store `mem` to `remote`; `extra` merges into it.
pub fn spec(remote: &str, extra: Value) -> Value {
    let mut spec = json!({
        "source": {"secretRef": {"name": "s", "key": "k"}},
        "target": {"storeRef": {"kind": "Store", "name": "mem"}, "remoteName": remote},
    });
    fake_api::merge(&mut spec, &extra);
    spec
}

/// A world with the Secret `s` (`k: v`) and the SecretSync `db` pushing it to `db-remote`, not reconciled yet;
/// `extra` merges into its spec.
pub fn pending(extra: Value) -> World {
    let w = World::new();
    w.secret("s", json!({"k": "v"}));
    w.sync("db", spec("db-remote", extra));
    w
}

/// A world where the SecretSync `name` has synced `value` to `remote` once, with `extra` in its spec.
pub async fn synced(name: &str, remote: &str, value: &str, extra: Value) -> World {
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
pub fn assert_plan_refused(next: &Next, status: &Value, reason: &str) {
    assert_eq!(next.failed, None, "{next:?}");
    assert!(
        about(Duration::from_secs(3600))(next.requeue_after),
        "{next:?}"
    );
    assert_eq!(phase(status), "Failed");
    assert_eq!(ready(status), format!("False/{reason}"), "{status}");
}

/// The refresh interval with its jitter of at most 10%.
pub fn about(interval: Duration) -> impl Fn(Option<Duration>) -> bool {
    move |wait| wait.is_some_and(|w| w >= interval && w <= interval.mul_f64(1.1))
}
