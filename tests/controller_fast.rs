//! The controller on the test bed's API server, with the store in memory: what needs a running controller and a
//! real API server (watches and what they trigger, fair shares of the workers over time, the metrics census, the
//! life of Events on the server), in seconds and without any store emulator. What one reconcile does (status,
//! Events, conditions, backoff, the finalizer, conflicts, adoption, Observe, drift) is in `tests/pipeline.rs`,
//! without a test bed; what the dialects do against real stores in `tests/controller.rs` and the conformance suite.
//!
//! Each test runs its own controller with only the memory dialect (registered as ServiceFabricMesh), in a
//! namespace of its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use secretsync::api::{DialectKind, SecretSync, Store};
use secretsync::controller;
use secretsync::dialects::Registry;
use secretsync::metrics::Metrics;
use secretsync::plan::digest::DigestKey;
use serde_json::{Value, json};

#[path = "support/memory_store.rs"]
mod memory_store;
use memory_store::{MemoryStore, Op};
#[path = "support/unique.rs"]
mod names;
use names::unique;
#[path = "support/status.rs"]
mod status;
use status::{in_sync, phase, ready};
#[path = "support/crds.rs"]
mod crds;
use crds::install_crds;

/// How long a wait may take before the test fails (a safety net, never a claim about speed).
const LIMIT: Duration = Duration::from_secs(30);
const FIELD_MANAGER: &str = "secretsync-fast-tests";
/// Labels the SecretSyncs of a bed whose controller watches every namespace.
const BED_LABEL: &str = "secretsync-fast-bed";

async fn create_namespace(client: &Client, prefix: &str) -> String {
    let ns = unique(prefix);
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .expect("namespace created");
    ns
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

/// The memory store holds `value` under `remote` (compared without printing either).
fn holds(bed: &Bed, remote: &str, value: &str) -> bool {
    bed.memory
        .entry(remote)
        .is_some_and(|e| e.value == value.as_bytes())
}
/// What needs the watches and the census of a running controller (what one reconcile does is in
/// `tests/pipeline.rs`): a source change is pushed at once and timed, the census counts the object, and a change to
/// a key the SecretSync does not read triggers a store read but no write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_change_is_pushed_at_once_timed_and_counted_in_the_census() {
    let bed = Bed::new("fast-life").await;
    let remote = unique("life");
    let (v1, v2) = (unique("first"), unique("second"));
    bed.put_secret("s", json!({"k": v1, "other": "a"})).await;
    bed.apply("life", spec("mem", "s", "k", &remote, json!({})))
        .await;

    let s = bed.wait("life", |s| phase(s) == "Ready").await;
    assert_eq!(ready(&s), "True/Synced");
    assert!(holds(&bed, &remote, &v1));

    // A new source value is pushed at once (the refresh interval is 1h) as a new version.
    bed.put_secret("s", json!({"k": v2, "other": "a"})).await;
    bed.wait("life", |s| s["remote"]["version"] == "2").await;
    assert!(
        holds(&bed, &remote, &v2),
        "the store does not hold the new value"
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
    wait_metric(&bed, &row).await;

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
/// The census of a running controller counts the observed SecretSyncs out of sync, per store (what Observe
/// reports and writes is in `tests/pipeline.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observed_secretsyncs_out_of_sync_are_counted_per_store() {
    let bed = Bed::new("fast-observe").await;
    bed.put_store("adopting", json!({"adoption": "Unmarked"}))
        .await;
    let value = unique("v");
    let [missing, equal, differs, matching] =
        ["missing", "equal", "differs", "matching"].map(unique);
    bed.put_secret("s", json!({"k": value})).await;
    bed.memory.put_foreign(&equal, value.as_bytes());
    bed.memory.put_foreign(&differs, b"what another tool wrote");
    // Synced first, then observed: in sync, not counted.
    bed.apply("matching", spec("adopting", "s", "k", &matching, json!({})))
        .await;
    bed.wait("matching", |s| phase(s) == "Ready").await;
    let observe = json!({"mode": "Observe", "adoptExisting": true});
    for (name, remote) in [
        ("missing", &missing),
        ("equal", &equal),
        ("differs", &differs),
        ("matching", &matching),
    ] {
        bed.apply(name, spec("adopting", "s", "k", remote, observe.clone()))
            .await;
    }
    for name in ["missing", "equal", "differs", "matching"] {
        bed.wait(name, |s| phase(s) == "Observing").await;
    }
    assert_eq!(in_sync(&bed.status("matching").await), "True/Matches");
    wait_metric(
        &bed,
        &format!(
            r#"secretsync_out_of_sync{{store="Store/{}/adopting"}} 3"#,
            bed.ns
        ),
    )
    .await;
    bed.finish().await;
}
