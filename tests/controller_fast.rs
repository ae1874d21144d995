//! The controller's behaviour on the test bed's API server, with the store in memory: status, Events,
//! conditions, backoff, the finalizer, conflicts and fair shares, in seconds and without any store emulator.
//! What the dialects do against real stores is tested elsewhere (`tests/controller.rs`, the conformance suite).
//!
//! Each test runs its own controller with only the memory dialect (registered as ServiceFabricMesh), in a
//! namespace of its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use secretsync::api::{DialectKind, SecretSync, Store};
use secretsync::controller;
use secretsync::dialects::{ErrorClass, Registry};
use secretsync::metrics::Metrics;
use secretsync::plan::digest::DigestKey;
use serde_json::{Value, json};

#[path = "support/memory_store.rs"]
mod memory_store;
use memory_store::{MemoryStore, Op};

/// How long a wait may take before the test fails (a safety net, never a claim about speed).
const LIMIT: Duration = Duration::from_secs(30);
const FIELD_MANAGER: &str = "secretsync-fast-tests";
/// Labels the SecretSyncs of a bed whose controller watches every namespace.
const BED_LABEL: &str = "secretsync-fast-bed";

async fn install_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for text in [
        include_str!("../crds/secretsync.io_secretsyncs.yaml"),
        include_str!("../crds/secretsync.io_stores.yaml"),
        include_str!("../crds/secretsync.io_clusterstores.yaml"),
    ] {
        let crd: CustomResourceDefinition = yaml_serde::from_str(text).unwrap();
        let name = crd.name_any();
        crds.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await
        .expect("CRD applied");
        let established = kube::runtime::wait::await_condition(
            crds.clone(),
            &name,
            kube::runtime::wait::conditions::is_crd_established(),
        );
        tokio::time::timeout(LIMIT, established)
            .await
            .expect("CRD Established")
            .expect("watch ok");
    }
}

async fn create_namespace(client: &Client, prefix: &str) -> String {
    let ns = unique(prefix);
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .expect("namespace created");
    ns
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

/// One test's world: a namespace with a Store `mem`, and a controller whose only dialect is the memory store.
struct Bed {
    client: Client,
    ns: String,
    memory: Arc<MemoryStore>,
    /// Namespaces to delete at the end besides `ns`.
    others: Vec<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    metrics: Arc<Metrics>,
    digest_key: [u8; 32],
}

impl Bed {
    async fn new(prefix: &str) -> Bed {
        Bed::start(prefix, false).await
    }

    /// `all_namespaces`: the controller watches every namespace and handles only this bed's labelled SecretSyncs.
    async fn start(prefix: &str, all_namespaces: bool) -> Bed {
        let client = Client::try_default()
            .await
            .expect("KUBECONFIG: source .testbed/env");
        install_crds(&client).await;
        let ns = create_namespace(&client, prefix).await;
        let memory = MemoryStore::new(DialectKind::ServiceFabricMesh);
        let metrics = Metrics::new();
        let bed = Bed {
            client: client.clone(),
            ns: ns.clone(),
            memory: memory.clone(),
            others: Vec::new(),
            stop: None,
            task: None,
            metrics,
            digest_key: rand::random::<[u8; 32]>(),
        };
        bed.put_store_in(&ns, "mem", json!({})).await;
        let (tx, task) = bed.spawn_controller(all_namespaces).await;
        Bed {
            stop: Some(tx),
            task: Some(task),
            ..bed
        }
    }

    /// Starts a controller on this bed's memory store and digest key, once its watches have listed.
    async fn spawn_controller(
        &self,
        all_namespaces: bool,
    ) -> (
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let ns = self.ns.clone();
        let ready = Arc::new(AtomicBool::new(false));
        let config = controller::Config {
            namespaces: if all_namespaces {
                vec![]
            } else {
                vec![ns.clone()]
            },
            selector: all_namespaces.then(|| format!("{BED_LABEL}={ns}")),
            concurrency: 4,
            digest_key: DigestKey::new(self.digest_key.to_vec()).unwrap(),
            cluster_id: "test-bed".into(),
            metrics: self.metrics.clone(),
            ready: ready.clone(),
            instance: format!("fast-{ns}"),
            cleanup_timeout: Duration::from_secs(600),
            panic_on: None,
            allow_inline_targets: false,
            // The in-memory store answers whatever endpoint its Stores name.
            limits: secretsync::controller::store_limits::StoreLimits {
                namespaced_store_hosts: vec!["*".into()],
                ..Default::default()
            },
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let registry = Registry::new().with(self.memory.clone());
        let client = self.client.clone();
        let task = tokio::spawn(async move {
            controller::run(client, config, registry, async move {
                let _ = rx.await;
            })
            .await;
        });
        // The SecretSync watch has listed: from here on an applied SecretSync is seen.
        let end = Instant::now() + LIMIT;
        while !ready.load(Ordering::SeqCst) {
            assert!(
                Instant::now() < end,
                "the controller's watches never synced"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (tx, task)
    }

    /// Stops the controller and waits until it has.
    async fn stop_controller(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(LIMIT, task)
                .await
                .expect("controller stops")
                .expect("controller did not panic");
        }
    }

    /// Starts another controller after `stop_controller` (same store, same digest key), as a restart or a new
    /// leader.
    async fn start_controller(&mut self) {
        let (tx, task) = self.spawn_controller(false).await;
        self.stop = Some(tx);
        self.task = Some(task);
    }

    /// A Store of the memory dialect; `extra` adds to its spec.
    async fn put_store_in(&self, ns: &str, name: &str, extra: Value) {
        let mut spec = json!({"dialect": "ServiceFabricMesh", "endpoint": "http://127.0.0.1:9"});
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            spec[k] = v;
        }
        let obj = json!({
            "apiVersion": "secretsync.io/v1alpha1", "kind": "Store",
            "metadata": {"name": name}, "spec": spec,
        });
        Api::<Store>::namespaced(self.client.clone(), ns)
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&obj),
            )
            .await
            .expect("Store applied");
    }

    async fn put_store(&self, name: &str, extra: Value) {
        self.put_store_in(&self.ns, name, extra).await
    }

    async fn put_secret_in(&self, ns: &str, name: &str, data: Value) {
        let secret: Secret = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data,
        }))
        .unwrap();
        Api::<Secret>::namespaced(self.client.clone(), ns)
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&secret),
            )
            .await
            .expect("Secret applied");
    }

    async fn put_secret(&self, name: &str, data: Value) {
        self.put_secret_in(&self.ns, name, data).await
    }

    fn syncs_in(&self, ns: &str) -> Api<SecretSync> {
        Api::namespaced(self.client.clone(), ns)
    }

    fn syncs(&self) -> Api<SecretSync> {
        self.syncs_in(&self.ns)
    }

    async fn apply_in(&self, ns: &str, name: &str, spec: Value) {
        let obj = json!({
            "apiVersion": "secretsync.io/v1alpha1", "kind": "SecretSync",
            "metadata": {"name": name, "labels": {BED_LABEL: self.ns}}, "spec": spec,
        });
        self.syncs_in(ns)
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&obj),
            )
            .await
            .expect("SecretSync applied");
    }

    async fn apply(&self, name: &str, spec: Value) {
        self.apply_in(&self.ns, name, spec).await
    }

    async fn status_in(&self, ns: &str, name: &str) -> Value {
        match self
            .syncs_in(ns)
            .get_opt(name)
            .await
            .expect("get SecretSync")
        {
            Some(s) => serde_json::to_value(&s.status).unwrap(),
            None => Value::Null,
        }
    }

    async fn status(&self, name: &str) -> Value {
        self.status_in(&self.ns, name).await
    }

    /// Polls a SecretSync's status (of its current generation) until `pred` holds.
    async fn wait_in(&self, ns: &str, name: &str, mut pred: impl FnMut(&Value) -> bool) -> Value {
        let end = Instant::now() + LIMIT;
        loop {
            let sync = self
                .syncs_in(ns)
                .get_opt(name)
                .await
                .expect("get SecretSync");
            let generation = sync.as_ref().and_then(|s| s.metadata.generation);
            let status = serde_json::to_value(sync.as_ref().map(|s| &s.status)).unwrap();
            if generation.is_some()
                && status["observedGeneration"].as_i64() == generation
                && pred(&status)
            {
                return status;
            }
            assert!(
                Instant::now() < end,
                "{ns}/{name} (generation {generation:?}) never matched; last status: {status:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait(&self, name: &str, pred: impl FnMut(&Value) -> bool) -> Value {
        self.wait_in(&self.ns, name, pred).await
    }

    /// Events about one object of the bed's namespace.
    async fn events(&self, object: &str) -> Vec<Event> {
        Api::<Event>::namespaced(self.client.clone(), &self.ns)
            .list(&ListParams::default())
            .await
            .expect("list Events")
            .items
            .into_iter()
            .filter(|e| {
                e.regarding
                    .as_ref()
                    .is_some_and(|r| r.name.as_deref() == Some(object))
            })
            .collect()
    }

    async fn wait_event(&self, object: &str, kind: &str, reason: &str) -> Event {
        let end = Instant::now() + LIMIT;
        loop {
            let events = self.events(object).await;
            if let Some(e) = events
                .iter()
                .find(|e| e.reason.as_deref() == Some(reason) && e.type_.as_deref() == Some(kind))
            {
                return e.clone();
            }
            let seen: Vec<_> = events
                .iter()
                .map(|e| (e.type_.clone(), e.reason.clone()))
                .collect();
            assert!(
                Instant::now() < end,
                "no {kind} Event {reason} for {object}; have {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_gone(&self, name: &str) {
        let end = Instant::now() + LIMIT;
        while self.syncs().get_opt(name).await.unwrap().is_some() {
            assert!(Instant::now() < end, "{name} was never let go");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the controller, lets go of what it left behind and deletes the namespaces.
    async fn finish(mut self) {
        self.stop_controller().await;
        for ns in std::iter::once(&self.ns).chain(&self.others) {
            let syncs = self.syncs_in(ns);
            for s in syncs.list(&ListParams::default()).await.unwrap() {
                if !s.finalizers().is_empty() {
                    let _ = syncs
                        .patch(
                            &s.name_any(),
                            &PatchParams::default(),
                            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                        )
                        .await;
                }
            }
            // Without the node (TESTBED_NODE=0) the test bed has no namespace controller: what a deleted namespace
            // holds stays, and another test's controller watching every namespace would go on reconciling it.
            // Delete it all by hand.
            let _ = syncs
                .delete_collection(&DeleteParams::default(), &ListParams::default())
                .await;
            let _ = Api::<Store>::namespaced(self.client.clone(), ns)
                .delete_collection(&DeleteParams::default(), &ListParams::default())
                .await;
            let _ = Api::<Namespace>::all(self.client.clone())
                .delete(ns, &DeleteParams::default())
                .await;
        }
    }
}

/// A SecretSync spec pushing `secret`'s `key` through Store `store` to `remote`; `extra` adds to the spec.
fn spec(store: &str, secret: &str, key: &str, remote: &str, extra: Value) -> Value {
    let mut spec = json!({
        "source": {"secretRef": {"name": secret, "key": key}},
        "target": {"storeRef": {"kind": "Store", "name": store}, "remoteName": remote},
    });
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        spec[k] = v;
    }
    spec
}

trait Merge {
    fn merged(self, other: Value) -> Value;
}

impl Merge for Value {
    /// A deep merge of objects (`other` wins).
    fn merged(mut self, other: Value) -> Value {
        fn merge(a: &mut Value, b: Value) {
            match (a, b) {
                (Value::Object(a), Value::Object(b)) => {
                    for (k, v) in b {
                        merge(a.entry(k).or_insert(Value::Null), v);
                    }
                }
                (a, b) => *a = b,
            }
        }
        merge(&mut self, other);
        self
    }
}

fn phase(s: &Value) -> &str {
    s["phase"].as_str().unwrap_or("")
}

fn condition<'a>(s: &'a Value, type_: &str) -> Option<&'a Value> {
    s["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// `status/reason` of the Ready condition.
fn ready(s: &Value) -> String {
    condition(s, "Ready")
        .map(|c| {
            format!(
                "{}/{}",
                c["status"].as_str().unwrap_or(""),
                c["reason"].as_str().unwrap_or("")
            )
        })
        .unwrap_or_default()
}

fn ready_message(s: &Value) -> String {
    condition(s, "Ready")
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// The memory store holds `value` under `remote` (compared without printing either).
fn holds(bed: &Bed, remote: &str, value: &str) -> bool {
    bed.memory
        .entry(remote)
        .is_some_and(|e| e.value == value.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_becomes_ready_and_follows_value_and_metadata_changes() {
    let bed = Bed::new("fast-life").await;
    let remote = unique("life");
    let (v1, v2) = (unique("first"), unique("second"));
    bed.put_secret("s", json!({"k": v1, "other": "a"})).await;
    bed.apply("life", spec("mem", "s", "k", &remote, json!({})))
        .await;

    let s = bed.wait("life", |s| phase(s) == "Ready").await;
    assert_eq!(ready(&s), "True/Synced");
    assert!(
        holds(&bed, &remote, &v1),
        "the store does not hold the source value"
    );
    let entry = bed.memory.entry(&remote).unwrap();
    let sync = bed.syncs().get("life").await.unwrap();
    assert_eq!(
        entry.owner.as_ref().map(|o| (o.key(), o.uid.clone())),
        Some((format!("{}/life", bed.ns), sync.uid().unwrap())),
        "the entry carries the SecretSync's ownership marker"
    );
    assert_eq!(
        s["remote"],
        json!({"name": remote, "id": format!("memory:{remote}"), "version": "1"})
    );
    assert_eq!(s["syncedDigest"].as_str(), entry.digest.as_deref());
    assert_eq!(s["store"]["name"], "mem");
    assert!(s["lastSyncTime"].is_string());
    assert!(
        sync.finalizers().is_empty(),
        "Retain (the default) holds no finalizer"
    );
    bed.wait_event("life", "Normal", "Synced").await;
    assert_eq!(bed.memory.calls(Op::Apply, &remote), 1);

    // A new source value is pushed at once (the refresh interval is 1h) as a new version.
    bed.put_secret("s", json!({"k": v2, "other": "a"})).await;
    let s = bed.wait("life", |s| s["remote"]["version"] == "2").await;
    assert!(
        holds(&bed, &remote, &v2),
        "the store does not hold the new value"
    );
    assert_eq!(
        s["syncedDigest"].as_str(),
        bed.memory.entry(&remote).unwrap().digest.as_deref()
    );
    assert_eq!(bed.memory.calls(Op::Apply, &remote), 2);
    // The change was timed from the controller seeing it to the store taking it.
    let metrics = bed.metrics.render();
    let timed: u64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(r#"secretsync_push_latency_seconds_count{dialect="ServiceFabricMesh"} "#)
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(timed >= 1, "no push was timed:\n{metrics}");
    // Counted from the cache within one census interval (15 s).
    let row = format!(
        r#"secretsync_syncs{{store="Store/{}/mem",dialect="ServiceFabricMesh",phase="Ready"}} 1"#,
        bed.ns
    );
    let end = Instant::now() + Duration::from_secs(20);
    while !bed.metrics.render().contains(&row) {
        assert!(
            Instant::now() < end,
            "{row} missing from:\n{}",
            bed.metrics.render()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A key the SecretSync does not read changes: the store is read again, but nothing is written.
    let observes = bed.memory.calls(Op::Observe, &remote);
    bed.put_secret("s", json!({"k": v2, "other": "b"})).await;
    let end = Instant::now() + LIMIT;
    while bed.memory.calls(Op::Observe, &remote) == observes {
        assert!(
            Instant::now() < end,
            "a Secret change did not trigger a reconcile"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        bed.memory.calls(Op::Apply, &remote),
        2,
        "an unchanged value was written"
    );

    // Metadata only: updated in place, no new value version.
    bed.apply(
        "life",
        spec("mem", "s", "k", &remote, json!({}))
            .merged(json!({"target": {"description": "the db"}})),
    )
    .await;
    bed.wait("life", |s| phase(s) == "Ready").await;
    let entry = bed.memory.entry(&remote).unwrap();
    assert_eq!(entry.metadata.description.as_deref(), Some("the db"));
    assert_eq!(
        entry.version, 2,
        "a metadata change wrote a new value version"
    );
    assert_eq!(bed.memory.calls(Op::Apply, &remote), 3);

    // No value reached a status or an Event.
    let status = bed.status("life").await.to_string();
    let events = serde_json::to_string(&bed.events("life").await).unwrap();
    for v in [&v1, &v2] {
        assert!(
            !status.contains(v.as_str()),
            "a value leaked into the status"
        );
        assert!(!events.contains(v.as_str()), "a value leaked into an Event");
    }
    bed.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_fail_without_a_retry_loop_until_the_credentials_change() {
    let bed = Bed::new("fast-creds").await;
    let remote = unique("creds");
    let value = unique("v");
    bed.put_secret("creds", json!({"token": "one"})).await;
    bed.put_store("locked", json!({"credentialsRef": {"name": "creds"}}))
        .await;
    bed.memory.fail_next(
        Op::Observe,
        &remote,
        1000,
        ErrorClass::Credentials,
        "Unauthorized",
    );
    bed.put_secret("s", json!({"k": value})).await;
    bed.apply("c", spec("locked", "s", "k", &remote, json!({})))
        .await;

    let s = bed.wait("c", |s| phase(s) == "Failed").await;
    assert_eq!(ready(&s), "False/Unauthorized");
    assert!(
        ready_message(&s).contains("fix the credentials Secret"),
        "{}",
        ready_message(&s)
    );
    assert_eq!(
        condition(&s, "Stalled").map(|c| c["reason"].clone()),
        Some(json!("Unauthorized")),
        "kstatus tools see it as stalled"
    );
    bed.wait_event("c", "Warning", "Unauthorized").await;

    // Waiting for a change, not backing off: with backoff (1 s, then up to 2 s) there would be two more reads
    // within 4 s; a tight loop would use up the thousand faults.
    let before = bed.memory.calls(Op::Observe, &remote);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = bed.memory.calls(Op::Observe, &remote);
    assert!(
        after - before <= 1,
        "refused credentials were retried {} times in 4 s",
        after - before
    );
    assert_eq!(bed.memory.calls(Op::Apply, &remote), 0);
    assert!(bed.memory.entry(&remote).is_none());

    // Fixing the store's credentials Secret is enough: its change triggers a new attempt.
    bed.memory.clear_faults(Op::Observe, &remote);
    bed.put_secret("creds", json!({"token": "two"})).await;
    let s = bed.wait("c", |s| phase(s) == "Ready").await;
    assert_eq!(ready(&s), "True/Synced");
    assert!(
        condition(&s, "Stalled").is_none(),
        "Stalled stays after recovery"
    );
    assert!(holds(&bed, &remote, &value));
    bed.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_errors_are_retried_with_backoff_honouring_retry_after() {
    let bed = Bed::new("fast-retry").await;
    let remote = unique("retry");
    let (v1, v2) = (unique("first"), unique("second"));
    bed.put_secret("s", json!({"k": v1})).await;
    bed.apply("t", spec("mem", "s", "k", &remote, json!({})))
        .await;
    // In sync first, so that no trigger of the controller's start (its first look at the Store and the Secret)
    // runs a reconcile early: the store's Retry-After and the backoff decide every retry below.
    bed.wait("t", |s| phase(s) == "Ready").await;
    bed.wait_event("t", "Normal", "Synced").await;
    let first_writes = bed.memory.calls(Op::Apply, &remote);

    // The next write is throttled with a Retry-After of 3 s, the one after meets a conflict, the third succeeds.
    bed.memory.fail_next_after(
        Op::Apply,
        &remote,
        1,
        ErrorClass::Retry,
        "Throttled",
        Some(Duration::from_secs(3)),
    );
    bed.memory
        .fail_next(Op::Apply, &remote, 1, ErrorClass::Conflict, "Conflict");
    bed.put_secret("s", json!({"k": v2})).await;

    let throttled = bed.wait_event("t", "Warning", "Throttled").await;
    assert!(
        throttled
            .note
            .as_deref()
            .is_some_and(|n| n.contains("retrying with backoff")),
        "{:?}",
        throttled.note
    );
    let s = bed
        .wait("t", |s| {
            phase(s) == "Ready" && s["remote"]["version"] == "2"
        })
        .await;
    assert_eq!(ready(&s), "True/Synced");
    assert!(
        holds(&bed, &remote, &v2),
        "the store does not hold the new value"
    );
    bed.wait_event("t", "Warning", "Conflict").await;

    let writes = bed.memory.call_times(Op::Apply, &remote);
    assert_eq!(
        writes.len() - first_writes,
        3,
        "two failed writes and one that succeeded"
    );
    // Lower bounds only: the store's Retry-After (3 s) over the first backoff (1 s), then at least the second
    // backoff's floor (1 s).
    let gaps: Vec<Duration> = writes[first_writes..]
        .windows(2)
        .map(|w| w[1] - w[0])
        .collect();
    assert!(
        gaps[0] >= Duration::from_millis(2900),
        "Retry-After not honoured: {gaps:?}"
    );
    assert!(
        gaps[1] >= Duration::from_millis(900),
        "no backoff after a conflict: {gaps:?}"
    );
    bed.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_not_written_by_this_secretsync_is_a_conflict_and_left_untouched() {
    let bed = Bed::new("fast-owner").await;
    let foreign = unique("foreign");
    let shared = unique("shared");
    let (va, vb, vc) = (unique("a"), unique("b"), unique("c"));
    bed.memory.put_foreign(&foreign, b"not-ours");
    let untouched = bed.memory.entry(&foreign).unwrap();
    bed.put_secret("s", json!({"a": va, "b": vb, "c": vc}))
        .await;

    // Unmarked: refused, with what to do.
    bed.apply("f", spec("mem", "s", "c", &foreign, json!({})))
        .await;
    let s = bed.wait("f", |s| phase(s) == "Failed").await;
    assert_eq!(ready(&s), "False/Conflict");
    assert!(
        ready_message(&s).contains("adoptExisting"),
        "{}",
        ready_message(&s)
    );
    bed.wait_event("f", "Warning", "Conflict").await;

    // Marked by another SecretSync that exists: refused, without naming it (another tenant's, in a shared store).
    bed.apply("a", spec("mem", "s", "a", &shared, json!({})))
        .await;
    bed.wait("a", |s| phase(s) == "Ready").await;
    bed.apply("b", spec("mem", "s", "b", &shared, json!({})))
        .await;
    let s = bed.wait("b", |s| phase(s) == "Failed").await;
    assert_eq!(ready(&s), "False/Conflict");
    assert!(
        ready_message(&s).contains("another SecretSync")
            && !ready_message(&s).contains(&format!("{}/a", bed.ns)),
        "{}",
        ready_message(&s)
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        bed.memory.entry(&foreign),
        Some(untouched.clone()),
        "the foreign entry changed"
    );
    assert_eq!(bed.memory.calls(Op::Apply, &foreign), 0);
    assert_eq!(
        bed.memory.calls(Op::Apply, &shared),
        1,
        "only the owner wrote"
    );
    assert!(holds(&bed, &shared, &va));
    assert_eq!(ready(&bed.status("a").await), "True/Synced");

    // adoptExisting is a request the store decides on: by default (adoption: Never) it is refused.
    bed.apply(
        "f",
        spec("mem", "s", "c", &foreign, json!({"adoptExisting": true})),
    )
    .await;
    let s = bed
        .wait("f", |s| ready(s) == "False/AdoptionNotAllowed")
        .await;
    assert!(ready_message(&s).contains("spec.adoption"), "{s}");
    assert_eq!(bed.memory.entry(&foreign), Some(untouched.clone()));
    // The store's admin allows unmarked secrets to be taken: a new value version with this SecretSync's marker.
    bed.put_store("mem", json!({"adoption": "Unmarked"})).await;
    bed.wait("f", |s| phase(s) == "Ready").await;
    let adopted = bed.memory.entry(&foreign).unwrap();
    assert!(
        adopted.value == vc.as_bytes(),
        "the adopted entry does not hold the source value"
    );
    assert_eq!(adopted.version, 2);
    assert_eq!(
        adopted.owner.map(|o| o.key()),
        Some(format!("{}/f", bed.ns))
    );
    bed.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_finalizer_deletes_the_remote_secret_and_a_failed_delete_blocks_until_it_succeeds() {
    let bed = Bed::new("fast-final").await;
    let (kept, removed) = (unique("kept"), unique("removed"));
    bed.put_secret("s", json!({"k": unique("v")})).await;
    bed.apply("keep", spec("mem", "s", "k", &kept, json!({})))
        .await;
    bed.apply(
        "del",
        spec(
            "mem",
            "s",
            "k",
            &removed,
            json!({"deletionPolicy": "Delete"}),
        ),
    )
    .await;
    bed.wait("keep", |s| phase(s) == "Ready").await;
    bed.wait("del", |s| phase(s) == "Ready").await;
    assert!(
        bed.syncs()
            .get("del")
            .await
            .unwrap()
            .finalizers()
            .contains(&controller::FINALIZER.to_owned())
    );

    // Retain: the object goes at once and the remote secret stays.
    bed.syncs()
        .delete("keep", &DeleteParams::default())
        .await
        .unwrap();
    bed.wait_gone("keep").await;
    assert!(bed.memory.entry(&kept).is_some());
    assert_eq!(bed.memory.calls(Op::Delete, &kept), 0);

    // Delete, and the store refuses: the object stays and says why.
    bed.memory.fail_next(
        Op::Delete,
        &removed,
        1000,
        ErrorClass::Retry,
        "BackendError",
    );
    bed.syncs()
        .delete("del", &DeleteParams::default())
        .await
        .unwrap();
    let s = bed
        .wait("del", |s| ready(s) == "False/DeletionBlocked")
        .await;
    assert!(
        ready_message(&s).contains("deletionPolicy: Retain"),
        "{}",
        ready_message(&s)
    );
    bed.wait_event("del", "Warning", "DeletionBlocked").await;
    assert!(bed.syncs().get_opt("del").await.unwrap().is_some());
    assert!(bed.memory.entry(&removed).is_some());
    assert!(bed.memory.calls(Op::Delete, &removed) >= 1);

    // The store recovers: the next retry deletes the remote secret and lets the object go.
    bed.memory.clear_faults(Op::Delete, &removed);
    bed.wait_gone("del").await;
    assert!(
        bed.memory.entry(&removed).is_none(),
        "the remote secret was not deleted"
    );
    bed.wait_event("del", "Normal", "Deleted").await;
    bed.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_store_holds_at_most_its_share_of_the_workers() {
    // Four workers: a namespace gets two of them, one store one.
    let bed = Bed::new("fast-store-share").await;
    bed.put_store("slow", json!({})).await;
    bed.put_secret("s", json!({"k": unique("v")})).await;
    let slow: Vec<String> = (0..4).map(|i| unique(&format!("slow-{i}"))).collect();
    let names: Vec<&str> = slow.iter().map(String::as_str).collect();
    let hold = bed.memory.hold(Op::Observe, &names);
    for (i, remote) in slow.iter().enumerate() {
        bed.apply(
            &format!("slow-{i}"),
            spec("slow", "s", "k", remote, json!({})),
        )
        .await;
    }
    let end = Instant::now() + LIMIT;
    while hold.waiting() < 1 {
        assert!(Instant::now() < end, "the slow store's reads never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Another store of the same namespace still gets a worker.
    let fast = unique("fast");
    bed.apply("fast", spec("mem", "s", "k", &fast, json!({})))
        .await;
    bed.wait("fast", |s| phase(s) == "Ready").await;
    assert!(bed.memory.entry(&fast).is_some());
    assert_eq!(
        hold.most_waiting(),
        1,
        "the slow store held more than its share"
    );
    for i in 0..4 {
        assert_ne!(phase(&bed.status(&format!("slow-{i}")).await), "Ready");
    }

    // Released, the deferred objects are not lost: every one of them gets its turn.
    hold.release();
    for i in 0..4 {
        bed.wait(&format!("slow-{i}"), |s| phase(s) == "Ready")
            .await;
    }
    bed.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_whose_stores_hang_does_not_hold_up_other_namespaces() {
    // Four workers for every namespace: one namespace gets at most half of them (two), even across stores.
    let mut bed = Bed::start("fast-ns-share", true).await;
    let other = create_namespace(&bed.client, "fast-ns-share-other").await;
    bed.others.push(other.clone());
    bed.put_secret("s", json!({"k": unique("v")})).await;
    let hung: Vec<String> = (0..4).map(|i| unique(&format!("hung-{i}"))).collect();
    let names: Vec<&str> = hung.iter().map(String::as_str).collect();
    let hold = bed.memory.hold(Op::Observe, &names);
    for (i, remote) in hung.iter().enumerate() {
        // Four stores, one object each: every store's share (one) lets its object through, so only the
        // namespace's share (two) holds the rest back.
        let store = format!("hung-{i}");
        bed.put_store(&store, json!({})).await;
        bed.apply(
            &format!("hung-{i}"),
            spec(&store, "s", "k", remote, json!({})),
        )
        .await;
    }
    let end = Instant::now() + LIMIT;
    while hold.waiting() < 2 {
        assert!(Instant::now() < end, "the hung stores' reads never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    bed.put_store_in(&other, "mem", json!({})).await;
    bed.put_secret_in(&other, "s", json!({"k": unique("v")}))
        .await;
    let remote = unique("other");
    bed.apply_in(&other, "other", spec("mem", "s", "k", &remote, json!({})))
        .await;
    bed.wait_in(&other, "other", |s| phase(s) == "Ready").await;
    assert!(bed.memory.entry(&remote).is_some());
    assert_eq!(
        hold.most_waiting(),
        2,
        "one namespace held more than its share"
    );

    hold.release();
    for i in 0..4 {
        bed.wait(&format!("hung-{i}"), |s| phase(s) == "Ready")
            .await;
    }
    bed.finish().await;
}

/// After a restart (or a new leader), SecretSyncs whose status shows the current value synced are not all read
/// from the store at once: each first read moves to a random moment within its refresh interval. One whose source
/// changed while no controller ran is written at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_reads_no_in_sync_remote_at_once_but_writes_a_changed_one() {
    let mut bed = Bed::new("fast-restart").await;
    let names: Vec<String> = (0..6).map(|i| format!("r{i}")).collect();
    let remotes: Vec<String> = names.iter().map(|n| unique(n)).collect();
    for (name, remote) in names.iter().zip(&remotes) {
        bed.put_secret(name, json!({"k": format!("value-{name}")}))
            .await;
        // A day's refresh: a moved first read falls within the next few seconds with odds of about 1 in 5,000.
        bed.apply(
            name,
            spec("mem", name, "k", remote, json!({"refreshInterval": "24h"})),
        )
        .await;
    }
    for name in &names {
        bed.wait(name, |s| phase(s) == "Ready").await;
    }

    // The controller stops (its reconciles in flight finish first); r0's source changes while none runs.
    bed.stop_controller().await;
    let observed: Vec<usize> = remotes
        .iter()
        .map(|r| bed.memory.calls(Op::Observe, r))
        .collect();
    bed.put_secret("r0", json!({"k": "changed-during-restart"}))
        .await;
    bed.start_controller().await;
    let end = Instant::now() + LIMIT;
    while !holds(&bed, &remotes[0], "changed-during-restart") {
        assert!(
            Instant::now() < end,
            "r0's change was not written after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (i, remote) in remotes.iter().enumerate().skip(1) {
        assert_eq!(
            bed.memory.calls(Op::Observe, remote),
            observed[i],
            "{} was read from the store at once after the restart",
            names[i]
        );
    }
    for name in &names[1..] {
        assert_eq!(ready(&bed.status(name).await), "True/Synced");
    }
    bed.finish().await;
}

/// The upgrade to scoped markers and per-namespace digests (issue #27) writes nothing: a remote secret marked by
/// an earlier SecretSync version (no scope, the controller-wide digest) stays this object's and in sync, and one
/// whose marker names another object of the same name is not handed over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markers_and_digests_from_before_scopes_upgrade_without_a_write_or_a_handover() {
    let mut bed = Bed::new("fast-upgrade").await;
    bed.stop_controller().await;
    let (kept, newcomer) = (unique("kept"), unique("newcomer"));
    bed.put_secret("s", json!({"k": "the-value"})).await;
    bed.apply("kept", spec("mem", "s", "k", &kept, json!({})))
        .await;
    bed.apply("newcomer", spec("mem", "s", "k", &newcomer, json!({})))
        .await;
    let syncs = bed.syncs();
    let uid = |name: &str| {
        let syncs = syncs.clone();
        let name = name.to_owned();
        async move { syncs.get(&name).await.unwrap().uid().unwrap() }
    };
    let (ns, key) = (bed.ns.clone(), bed.digest_key);
    let earlier = |name: &str, uid: String| memory_store::Entry {
        value: b"the-value".to_vec(),
        owner: Some(secretsync::plan::Owner {
            namespace: ns.clone(),
            name: name.to_owned(),
            uid,
            scope: Default::default(),
        }),
        digest: Some(DigestKey::new(key.to_vec()).unwrap().digest(b"the-value")),
        version: 1,
        metadata: Default::default(),
    };
    bed.memory
        .put_entry(&kept, earlier("kept", uid("kept").await));
    // Written by an earlier object named `newcomer` (another uid), before scopes.
    bed.memory
        .put_entry(&newcomer, earlier("newcomer", "an-earlier-uid".into()));
    bed.start_controller().await;
    let s = bed.wait("kept", |s| phase(s) == "Ready").await;
    assert_eq!(ready(&s), "True/Synced");
    let s = bed.wait("newcomer", |s| phase(s) == "Failed").await;
    assert_eq!(ready(&s), "False/Conflict", "{s}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(bed.memory.calls(Op::Apply, &kept), 0, "the upgrade wrote");
    assert_eq!(bed.memory.calls(Op::Apply, &newcomer), 0);
    assert_eq!(
        bed.memory.entry(&kept),
        Some(earlier("kept", uid("kept").await))
    );
    // The next change is written under the namespace's key, with the scope in the marker.
    bed.put_secret("s", json!({"k": "next"})).await;
    let end = Instant::now() + LIMIT;
    while !holds(&bed, &kept, "next") {
        assert!(Instant::now() < end, "the change was not written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let entry = bed.memory.entry(&kept).unwrap();
    let owner = entry.owner.unwrap();
    assert_eq!(owner.scope.cluster, "test-bed");
    assert!(!owner.scope.namespace_uid.is_empty());
    assert_ne!(
        entry.digest,
        Some(
            DigestKey::new(bed.digest_key.to_vec())
                .unwrap()
                .digest(b"next")
        ),
        "still the controller-wide digest"
    );
    bed.finish().await;
}

/// The controller's Events recorder on the real API server: the same Event again is counted in the first one's
/// series (one object, count 2), another reason is another Event, and an Event gone from the server (its TTL) is
/// created anew rather than patched in vain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_event_counts_in_its_series_and_one_gone_from_the_server_is_created_again() {
    use controller::telemetry::events::{Event as Ev, EventType, Recorder};
    let bed = Bed::new("fast-events").await;
    let recorder = Recorder::new(bed.client.clone(), "secretsync", "test-instance");
    let object = unique("obj");
    let regarding = k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some("secretsync.io/v1alpha1".into()),
        kind: Some("SecretSync".into()),
        name: Some(object.clone()),
        namespace: Some(bed.ns.clone()),
        uid: Some(unique("uid")),
        ..Default::default()
    };
    let event = |reason: &str| Ev {
        type_: EventType::Warning,
        reason: reason.into(),
        note: Some(format!("{reason} happened")),
        action: "Reconcile".into(),
        secondary: None,
    };
    let of_reason = |events: &[Event], reason: &str| -> Vec<Event> {
        events
            .iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .cloned()
            .collect()
    };

    recorder
        .publish(&event("StoreDown"), &regarding)
        .await
        .unwrap();
    let first = bed.events(&object).await;
    assert_eq!(first.len(), 1);
    assert!(first[0].series.is_none(), "a first Event has no series");
    assert_eq!(first[0].reporting_controller.as_deref(), Some("secretsync"));
    assert_eq!(
        first[0].reporting_instance.as_deref(),
        Some("test-instance")
    );
    assert_eq!(first[0].note.as_deref(), Some("StoreDown happened"));

    recorder
        .publish(&event("StoreDown"), &regarding)
        .await
        .unwrap();
    recorder
        .publish(&event("Unauthorized"), &regarding)
        .await
        .unwrap();
    let events = bed.events(&object).await;
    let down = of_reason(&events, "StoreDown");
    assert_eq!(
        down.len(),
        1,
        "the repeat is counted, not created: {events:?}"
    );
    assert_eq!(down[0].series.as_ref().map(|s| s.count), Some(2));
    assert_eq!(of_reason(&events, "Unauthorized").len(), 1);

    Api::<Event>::namespaced(bed.client.clone(), &bed.ns)
        .delete(&down[0].name_any(), &DeleteParams::default())
        .await
        .unwrap();
    recorder
        .publish(&event("StoreDown"), &regarding)
        .await
        .unwrap();
    let again = of_reason(&bed.events(&object).await, "StoreDown");
    assert_eq!(again.len(), 1, "created anew: {again:?}");
    assert_ne!(again[0].name_any(), down[0].name_any());
    assert!(again[0].series.is_none());
    bed.finish().await;
}

/// `status/reason` of the InSync condition.
fn in_sync(s: &Value) -> String {
    condition(s, "InSync")
        .map(|c| {
            format!(
                "{}/{}",
                c["status"].as_str().unwrap_or(""),
                c["reason"].as_str().unwrap_or("")
            )
        })
        .unwrap_or_default()
}

/// Waits until the metrics show `line`, within one census interval (15 s) and a margin.
async fn wait_metric(bed: &Bed, line: &str) {
    let end = Instant::now() + Duration::from_secs(25);
    while !bed.metrics.render().contains(line) {
        assert!(
            Instant::now() < end,
            "{line} missing from:\n{}",
            bed.metrics.render()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_reports_what_sync_would_do_writes_nothing_and_sync_then_does_exactly_that() {
    let bed = Bed::new("fast-observe").await;
    bed.put_store("adopting", json!({"adoption": "Unmarked"}))
        .await;
    let value = unique("v");
    let [missing, equal, differs, theirs] = ["missing", "equal", "differs", "theirs"].map(unique);
    bed.put_secret("s", json!({"k": value})).await;
    bed.memory.put_foreign(&equal, value.as_bytes());
    bed.memory.put_foreign(&differs, b"what another tool wrote");
    bed.memory.put_foreign(&theirs, value.as_bytes());
    let observe = json!({"mode": "Observe", "adoptExisting": true, "deletionPolicy": "Delete"});
    let objects = [
        ("missing", "adopting", &missing, "False/Missing", "Create"),
        ("equal", "adopting", &equal, "False/NotOwned", "Adopt"),
        (
            "differs",
            "adopting",
            &differs,
            "False/ValueDiffers",
            "Adopt",
        ),
        // The bed's default Store lets no SecretSync take what it did not write.
        ("theirs", "mem", &theirs, "False/NotOwned", "Conflict"),
    ];
    for (name, store, remote, _, _) in objects {
        bed.apply(name, spec(store, "s", "k", remote, observe.clone()))
            .await;
    }
    for (name, _, remote, drift, action) in objects {
        let s = bed.wait(name, |s| phase(s) == "Observing").await;
        assert_eq!(ready(&s), "True/Observing", "{name}");
        assert_eq!(in_sync(&s), drift, "{name}");
        assert_eq!(
            s["plan"],
            json!([{"name": remote, "action": action}]),
            "{name}"
        );
        let reason = drift.split('/').nth(1).unwrap_or_default();
        bed.wait_event(name, "Warning", reason).await;
        let sync = bed.syncs().get(name).await.unwrap();
        assert!(
            sync.finalizers().is_empty(),
            "{name}: observing holds no finalizer, whatever the deletionPolicy"
        );
    }
    // Only the adopting store's values were read (to tell equal from different), and nothing was written.
    for (name, _, remote, _, _) in objects {
        assert_eq!(bed.memory.calls(Op::Apply, remote), 0, "{name} was written");
        assert_eq!(
            bed.memory.calls(Op::Delete, remote),
            0,
            "{name} was deleted"
        );
    }
    assert_eq!(bed.memory.calls(Op::ReadValue, &theirs), 0);
    assert_eq!(bed.memory.calls(Op::ReadValue, &missing), 0);
    assert!(bed.memory.calls(Op::ReadValue, &equal) >= 1);
    wait_metric(
        &bed,
        &format!(
            r#"secretsync_out_of_sync{{store="Store/{}/adopting"}} 3"#,
            bed.ns
        ),
    )
    .await;

    // Sync carries out exactly the plan shown.
    for (name, store, remote, _, _) in objects {
        let sync = spec(store, "s", "k", remote, observe.clone()).merged(json!({"mode": "Sync"}));
        bed.apply(name, sync).await;
    }
    for name in ["missing", "equal", "differs"] {
        let s = bed.wait(name, |s| phase(s) == "Ready").await;
        assert_eq!(
            in_sync(&s),
            "",
            "{name}: InSync is shown only while observing"
        );
        assert!(s.get("plan").is_none(), "{name}: {s}");
    }
    let s = bed.wait("theirs", |s| phase(s) == "Failed").await;
    assert_eq!(ready(&s), "False/AdoptionNotAllowed");
    assert!(holds(&bed, &missing, &value));
    let adopted = bed.memory.entry(&equal).unwrap();
    assert!(adopted.owner.is_some(), "the equal secret was not adopted");
    assert_eq!(
        adopted.version, 1,
        "adopting a secret holding the source's value wrote a new value"
    );
    assert!(holds(&bed, &differs, &value));
    assert_eq!(bed.memory.entry(&differs).unwrap().version, 2);
    assert_eq!(bed.memory.entry(&theirs).unwrap().owner, None);
    for (name, _, remote, _, _) in objects {
        let writes = if name == "theirs" { 0 } else { 1 };
        assert_eq!(bed.memory.calls(Op::Apply, remote), writes, "{name}");
    }
    for name in ["missing", "equal", "differs"] {
        let deadline = Instant::now() + LIMIT;
        while bed.syncs().get(name).await.unwrap().finalizers().is_empty() {
            assert!(
                Instant::now() < deadline,
                "{name}: Sync with Delete holds no finalizer"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    bed.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_that_puts_right_a_change_made_in_the_store_is_counted_as_a_drift_repair() {
    let bed = Bed::new("fast-drift").await;
    let remote = unique("drift");
    let value = unique("v");
    bed.put_secret("s", json!({"k": value})).await;
    let refresh = json!({"refreshInterval": "10s"});
    bed.apply("drift", spec("mem", "s", "k", &remote, refresh.clone()))
        .await;
    bed.wait("drift", |s| phase(s) == "Ready").await;
    assert!(
        !bed.metrics
            .render()
            .contains("secretsync_drift_repairs_total{"),
        "a first sync counted as a drift repair"
    );
    // A spec change that writes (a new description) is not drift either.
    bed.apply(
        "drift",
        spec("mem", "s", "k", &remote, refresh.clone())
            .merged(json!({"target": {"description": "the db"}})),
    )
    .await;
    let end = Instant::now() + LIMIT;
    while bed.memory.calls(Op::Apply, &remote) < 2 {
        assert!(Instant::now() < end, "the description was not written");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bed.wait("drift", |s| phase(s) == "Ready").await;
    assert!(
        !bed.metrics
            .render()
            .contains("secretsync_drift_repairs_total{")
    );

    bed.memory.remove(&remote);
    // The next refresh (10 s and its jitter) writes it again.
    bed.wait_event("drift", "Normal", "DriftRepaired").await;
    assert!(holds(&bed, &remote, &value));
    wait_metric(
        &bed,
        &format!(
            r#"secretsync_drift_repairs_total{{store="Store/{}/mem"}} 1"#,
            bed.ns
        ),
    )
    .await;
    let events = serde_json::to_string(&bed.events("drift").await).unwrap();
    assert!(
        events.contains(&remote),
        "the Event names the remote secret"
    );
    assert!(!events.contains(&value), "a value leaked into an Event");
    bed.finish().await;
}
