//! Fair under abuse (#28): what one tenant does cannot crash, starve or bloat the controller for the others.
//!
//! Each test starts its own `secretsync run` process (as tests/e2e.rs does, with the admin kubeconfig and leader
//! election off) and measures it from outside: its resident memory from `/proc/<pid>/status`, its `/metrics`, and
//! when a change reaches the Service Fabric emulator. The tests take turns (one at a time within this binary), so
//! that the load one of them makes (250 MB of objects, a thousand Stores) is not measured as another's latency.
//!
//! Run: `source .testbed/env && cargo test --test fair_share -- --test-threads=2`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use secretsync::api::{SecretSync, Store};
use serde_json::{Value, json};

mod support;
use support::env;
#[allow(dead_code)]
#[path = "support/cluster.rs"]
mod cluster;
use cluster::{install_crds_and_namespace, sf_writes};
#[path = "support/metrics_access.rs"]
mod metrics_access;
use metrics_access::MetricsClient;
#[path = "support/replica.rs"]
mod replica;
use replica::Replica;

/// One test at a time (see the module's comment).
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Creates at once, as a tenant's script would.
const PARALLEL: usize = 16;

/// Deletes the namespaces when the test ends, failing or not (the objects in them are the test's only traces).
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = cluster::kubectl_try(&["delete", "namespace", ns, "--wait=false"], None);
        }
    }
}

/// A controller watching `args` (namespaces or a selector), eight workers, leader election off.
fn start_controller(name: &str, dir: &Path, args: &[&str]) -> Replica {
    let mut all = vec!["--leader-election", "false", "--concurrency", "8"];
    all.extend_from_slice(args);
    let replica = Replica::start(name, Path::new(&env("KUBECONFIG")), dir, &all);
    let end = Instant::now() + Duration::from_secs(60);
    while !replica.ready() {
        assert!(Instant::now() < end, "{name} not ready within 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    replica
}

/// The controller's `/metrics` text, read as Prometheus reads it (HTTPS, a reader's token): the one place that
/// knows how.
async fn scrape(replica: &Replica, reader: &MetricsClient) -> String {
    let (status, body) = metrics_access::scrape(replica.metrics_port, Some(&reader.token));
    assert_eq!(status, 200, "/metrics");
    body
}

/// The sum of the samples of `metric` whose line contains every one of `with`.
fn sample_sum(text: &str, metric: &str, with: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(metric) && l[metric.len()..].starts_with(['{', ' ']))
        .filter(|l| with.iter().all(|w| l.contains(w)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Resident memory of a process in bytes (`VmRSS`, or `VmHWM` for its peak), from `/proc/<pid>/status`.
fn memory(pid: u32, field: &str) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the controller runs");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"));
    kib * 1024
}

const MIB: f64 = 1024.0 * 1024.0;

fn secret_sync(
    name: &str,
    store: &str,
    remote: &str,
    labels: Value,
    annotations: Value,
) -> SecretSync {
    serde_json::from_value(json!({
        "apiVersion": "secretsync.io/v1alpha1", "kind": "SecretSync",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {"source": {"secretRef": {"name": "s", "key": "k"}},
                 "target": {"storeRef": {"kind": "Store", "name": store}, "remoteName": remote}},
    }))
    .expect("a SecretSync")
}

fn store(name: &str, endpoint: &str) -> Store {
    serde_json::from_value(json!({
        "apiVersion": "secretsync.io/v1alpha1", "kind": "Store",
        "metadata": {"name": name},
        "spec": {"dialect": "ServiceFabricMesh", "endpoint": endpoint},
    }))
    .expect("a Store")
}

async fn put_secret(client: &Client, ns: &str, value: &str) {
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": value},
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), ns)
        .patch(
            "s",
            &PatchParams::apply("secretsync-tests").force(),
            &Patch::Apply(&secret),
        )
        .await
        .expect("Secret applied");
}

/// Creates every object, `PARALLEL` at once; returns how long it took.
async fn create_all<K>(api: &Api<K>, objects: Vec<K>) -> Duration
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let started = Instant::now();
    futures::stream::iter(objects)
        .map(|o| {
            let api = api.clone();
            async move { api.create(&PostParams::default(), &o).await }
        })
        .buffer_unordered(PARALLEL)
        .try_collect::<Vec<_>>()
        .await
        .expect("every object created");
    started.elapsed()
}

async fn phase(api: &Api<SecretSync>, name: &str) -> String {
    let obj = api.get(name).await.expect("SecretSync readable");
    serde_json::to_value(&obj.status).unwrap()["phase"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// 1,000 SecretSyncs carrying 250 KB of annotations each (250 MB, near the API's 256 KiB limit per object): the
/// controller keeps no annotation it does not read, so its memory grows by less than 20 MiB and it never restarts.
/// A second controller started with all of them in place lists them (the relist that used to crash-loop both
/// replicas) and must stay as small.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_objects_of_250_kb_annotations_grow_the_controller_by_less_than_20_mib() {
    let _turn = TURN.lock().await;
    install_crds_and_namespace();
    let client = support::admin::admin().await;
    let ns = support::admin::namespace(&client, "fair-memory").await;
    let _cleanup = Namespaces(vec![ns.clone()]);
    let reader = MetricsClient::new(&ns, "scraper", true);
    let dir = tempfile::tempdir().unwrap();
    let mut controller = start_controller("fair-memory", dir.path(), &["--namespace", &ns]);
    let pid = controller.pid().expect("running");
    // The first reconciles and the census settle the allocator; the baseline is taken after them.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let baseline = memory(pid, "VmRSS");

    let padding = "x".repeat(250_000);
    let objects: Vec<SecretSync> = (0..1000)
        .map(|i| {
            secret_sync(
                &format!("big-{i}"),
                "missing",
                &format!("big-{i}"),
                json!({}),
                json!({"fair-share.test/padding": padding}),
            )
        })
        .collect();
    let syncs = Api::<SecretSync>::namespaced(client.clone(), &ns);
    let sampler = {
        let peak = Arc::new(AtomicUsize::new(0));
        let seen = peak.clone();
        let task = tokio::spawn(async move {
            loop {
                let now = memory(pid, "VmRSS") as usize;
                seen.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        (peak, task)
    };
    let took = create_all(&syncs, objects).await;
    eprintln!("1,000 SecretSyncs of 250 KB created in {took:?} ({PARALLEL} at once)");

    // Every object reached the controller: each one is reconciled (its store is missing) and counted.
    let end = Instant::now() + Duration::from_secs(180);
    loop {
        let text = scrape(&controller, &reader).await;
        if sample_sum(&text, "secretsync_syncs", &["phase=\"Failed\""]) >= 1000.0 {
            break;
        }
        assert!(
            Instant::now() < end,
            "not every SecretSync was reconciled within 180 s"
        );
        assert!(controller.exited().is_none(), "the controller exited");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (peak, task) = sampler;
    task.abort();
    let last = memory(pid, "VmRSS");
    let peak = (peak.load(Ordering::SeqCst) as u64).max(last);
    eprintln!(
        "controller RSS: baseline {:.1} MiB, peak {:.1} MiB (+{:.1}), after {:.1} MiB (+{:.1}); VmHWM {:.1} MiB",
        baseline as f64 / MIB,
        peak as f64 / MIB,
        (peak as f64 - baseline as f64) / MIB,
        last as f64 / MIB,
        (last as f64 - baseline as f64) / MIB,
        memory(pid, "VmHWM") as f64 / MIB,
    );
    assert!(controller.exited().is_none(), "the controller exited");
    assert!(
        peak < baseline + 20 * 1024 * 1024,
        "RSS grew by {:.1} MiB",
        (peak as f64 - baseline as f64) / MIB
    );

    // A controller that starts now lists all 250 MB at once.
    let relisting = start_controller("fair-memory-relist", dir.path(), &["--namespace", &ns]);
    let relist_pid = relisting.pid().expect("running");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let relist_peak = memory(relist_pid, "VmHWM");
    eprintln!(
        "a controller started with the 1,000 in place: VmHWM {:.1} MiB, RSS {:.1} MiB (the first one's baseline {:.1} MiB)",
        relist_peak as f64 / MIB,
        memory(relist_pid, "VmRSS") as f64 / MIB,
        baseline as f64 / MIB
    );
    drop(relisting);
    // Not the 20 MiB of growth (a relist goes through list pages, and the allocator keeps what they took), but
    // far from the Deployment's 256 MiB limit: kube's default pages of 500 objects took 475 MiB.
    assert!(
        relist_peak < 128 * 1024 * 1024,
        "a relist took {:.1} MiB",
        relist_peak as f64 / MIB
    );
    assert!(controller.exited().is_none(), "the controller exited");
    controller.kill();

    let started = Instant::now();
    Api::<Namespace>::all(client.clone())
        .delete(&ns, &DeleteParams::default())
        .await
        .expect("namespace deleted");
    eprintln!("namespace deletion requested in {:?}", started.elapsed());
}

/// How long a request to a store may hang.
const STORE_DEADLINE: Duration = secretsync::dialects::kit::http::ATTEMPT_DEADLINE;

/// A TCP listener on 127.0.0.1 that accepts and never answers; counts the connections it holds.
async fn blackhole() -> (String, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(conn);
        }
    });
    (url, accepted, task)
}

/// A tenant with two namespaces of 100 SecretSyncs each on stores that never answer (30 s per attempt): with half
/// the workers each, they would hold all eight; a third namespace's new SecretSync and its source change must
/// still reach the store within 30 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_namespaces_of_hanging_stores_do_not_hold_up_a_third() {
    let _turn = TURN.lock().await;
    install_crds_and_namespace();
    let client = support::admin::admin().await;
    let run = format!("{:08x}", rand::random::<u32>());
    let hostile = [
        support::admin::namespace(&client, "fair-hung-a").await,
        support::admin::namespace(&client, "fair-hung-b").await,
    ];
    let victim = support::admin::namespace(&client, "fair-victim").await;
    let _cleanup = Namespaces(vec![hostile[0].clone(), hostile[1].clone(), victim.clone()]);
    let dir = tempfile::tempdir().unwrap();
    // Every namespace, one runner: the fairness between namespaces is what is tested. The selector keeps the
    // controller to this test's objects.
    let selector = format!("fair-share-run={run}");
    let controller = start_controller("fair-workers", dir.path(), &["--selector", &selector]);
    let reader = MetricsClient::new(&victim, "scraper", true);
    let labels = json!({"fair-share-run": run});

    let mut holes = Vec::new();
    for ns in &hostile {
        let (url, accepted, task) = blackhole().await;
        holes.push((accepted, task));
        put_secret(&client, ns, "hostile").await;
        // Ten stores: more than the per-store share, so only the namespace's share holds them back.
        let stores: Vec<Store> = (0..10).map(|i| store(&format!("hung-{i}"), &url)).collect();
        create_all(&Api::namespaced(client.clone(), ns), stores).await;
        let syncs: Vec<SecretSync> = (0..100)
            .map(|i| {
                secret_sync(
                    &format!("hung-{i}"),
                    &format!("hung-{}", i % 10),
                    &format!("hung-{run}-{i}"),
                    labels.clone(),
                    json!({}),
                )
            })
            .collect();
        create_all(&Api::namespaced(client.clone(), ns), syncs).await;
    }

    // Both hostile namespaces hold what they may: objects are sent back for their namespace's share.
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let text = scrape(&controller, &reader).await;
        if sample_sum(
            &text,
            "secretsync_reconciles_deferred_total",
            &["share=\"namespace\""],
        ) >= 50.0
        {
            break;
        }
        assert!(
            Instant::now() < end,
            "the hung namespaces never filled their shares"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let held: Vec<usize> = holes
        .iter()
        .map(|(a, _)| a.load(Ordering::SeqCst))
        .collect();
    eprintln!("connections held by the blackholes when the third namespace starts: {held:?}");

    let remote = format!("instant-fair-{run}");
    put_secret(&client, &victim, &format!("first-{run}")).await;
    Api::<Store>::namespaced(client.clone(), &victim)
        .create(&PostParams::default(), &store("sf", &env("SF_ENDPOINT")))
        .await
        .expect("Store created");
    let syncs = Api::<SecretSync>::namespaced(client.clone(), &victim);
    let started = Instant::now();
    syncs
        .create(
            &PostParams::default(),
            &secret_sync("c", "sf", &remote, labels.clone(), json!({})),
        )
        .await
        .expect("SecretSync created");
    loop {
        if phase(&syncs, "c").await == "Ready" && sf_writes(&remote) >= 1 {
            break;
        }
        // Within the 30 s, and more: the hung requests began before this object was created, so one
        // that waited for a worker to free waited for a hung request's deadline (30 s), minus the few seconds they
        // had run. Half the deadline tells a push that waited for none of them from one that waited for the first.
        assert!(
            started.elapsed() < STORE_DEADLINE / 2,
            "the third namespace's SecretSync did not reach its store within half a store deadline"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let first = started.elapsed();

    let before = sf_writes(&remote);
    let changed = Instant::now();
    put_secret(&client, &victim, &format!("second-{run}")).await;
    while sf_writes(&remote) <= before {
        assert!(
            changed.elapsed() < STORE_DEADLINE,
            "the third namespace's source change did not reach its store within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let change = changed.elapsed();
    let text = scrape(&controller, &reader).await;
    eprintln!(
        "third namespace under two hung ones: first push {first:?}, source change {change:?}; deferred for a \
         namespace share {} times",
        sample_sum(
            &text,
            "secretsync_reconciles_deferred_total",
            &["share=\"namespace\""]
        )
    );
    for ns in &hostile {
        let api = Api::<SecretSync>::namespaced(client.clone(), ns);
        assert_ne!(
            phase(&api, "hung-0").await,
            "Ready",
            "a store that never answers"
        );
    }
    drop(controller);
    for (_, task) in holes {
        task.abort();
    }
}

/// Lines of `/metrics` that samples make, leaving out ClusterStores' (other tests on the shared test bed create
/// and delete theirs, and this controller's census shows them for as long as they exist).
fn sample_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.contains("store=\"ClusterStore/"))
        .collect()
}

async fn wait_metrics(
    controller: &Replica,
    reader: &MetricsClient,
    what: &str,
    limit: Duration,
    mut check: impl FnMut(&str) -> bool,
) -> String {
    let end = Instant::now() + limit;
    loop {
        let text = scrape(controller, reader).await;
        if check(&text) {
            return text;
        }
        assert!(Instant::now() < end, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Stores come and go by the thousand: their series go with them. SecretSyncs naming 300 stores that do not
/// exist add one `unresolved` series per metric at most, and none of those names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_series_stay_bounded_when_stores_come_and_go_and_names_are_made_up() {
    let _turn = TURN.lock().await;
    install_crds_and_namespace();
    let client = support::admin::admin().await;
    let ns = support::admin::namespace(&client, "fair-series").await;
    let _cleanup = Namespaces(vec![ns.clone()]);
    let reader = MetricsClient::new(&ns, "scraper", true);
    let dir = tempfile::tempdir().unwrap();
    // Store checks of a thousand stores on one endpoint: a budget that does not make the test wait for them.
    let controller = start_controller(
        "fair-series",
        dir.path(),
        &[
            "--namespace",
            &ns,
            "--backend-rate",
            "1000",
            "--backend-burst",
            "1000",
        ],
    );
    let stores = Api::<Store>::namespaced(client.clone(), &ns);
    let ready_of = |name: &str| format!("secretsync_store_ready{{store=\"Store/{ns}/{name}\"}}");

    // One store checked and deleted first, so the series a first check brings (its requests' counters) are in
    // the baseline, not only the store's own.
    stores
        .create(
            &PostParams::default(),
            &store("warm-up", &env("SF_ENDPOINT")),
        )
        .await
        .expect("Store created");
    let warm = ready_of("warm-up");
    wait_metrics(
        &controller,
        &reader,
        "the warm-up store is checked",
        Duration::from_secs(60),
        |t| t.contains(&warm),
    )
    .await;
    stores
        .delete("warm-up", &DeleteParams::default())
        .await
        .expect("deleted");
    let text = wait_metrics(
        &controller,
        &reader,
        "the warm-up store's series go",
        Duration::from_secs(60),
        |t| !t.contains(&warm),
    )
    .await;
    let start = sample_lines(&text).len();

    let objects: Vec<Store> = (0..1000)
        .map(|i| store(&format!("s-{i}"), &env("SF_ENDPOINT")))
        .collect();
    let took = create_all(&stores, objects).await;
    eprintln!("1,000 Stores created in {took:?}");
    let prefix = format!("secretsync_store_ready{{store=\"Store/{ns}/s-");
    let text = wait_metrics(
        &controller,
        &reader,
        "every store is checked",
        Duration::from_secs(240),
        |t| t.lines().filter(|l| l.starts_with(&prefix)).count() >= 1000,
    )
    .await;
    let full = sample_lines(&text).len();
    let started = Instant::now();
    cluster::kubectl(
        &["-n", &ns, "delete", "stores", "--all", "--wait=false"],
        None,
    );
    let text = wait_metrics(
        &controller,
        &reader,
        "the deleted stores' series go",
        Duration::from_secs(180),
        |t| sample_lines(t).len() <= start + 10,
    )
    .await;
    let after = sample_lines(&text).len();
    eprintln!(
        "/metrics sample lines: {start} at start, {full} with 1,000 Stores, {after} {:?} after deleting them",
        started.elapsed()
    );
    assert!(full >= start + 1000, "the stores' series never appeared");
    assert!(
        !text.contains(&format!("Store/{ns}/")),
        "a deleted store's series is left"
    );

    // SecretSyncs naming 300 stores that were never created.
    put_secret(&client, &ns, "v").await;
    let syncs: Vec<SecretSync> = (0..300)
        .map(|i| {
            let name = format!("made-up-{i}");
            secret_sync(&name, &name, &name, json!({}), json!({}))
        })
        .collect();
    create_all(&Api::namespaced(client.clone(), &ns), syncs).await;
    wait_metrics(
        &controller,
        &reader,
        "the 300 SecretSyncs are counted",
        Duration::from_secs(120),
        |t| {
            sample_sum(
                t,
                "secretsync_syncs",
                &["store=\"unresolved\"", "phase=\"Failed\""],
            ) >= 300.0
        },
    )
    .await;
    // The census after that, so that rows of phases they have left are gone too.
    tokio::time::sleep(Duration::from_secs(16)).await;
    let text = scrape(&controller, &reader).await;
    let mut unresolved: std::collections::BTreeMap<&str, usize> = Default::default();
    for line in sample_lines(&text)
        .into_iter()
        .filter(|l| l.contains("store=\"unresolved\""))
    {
        let metric = line.split(['{', ' ']).next().unwrap_or(line);
        *unresolved.entry(metric).or_default() += 1;
    }
    let grown = sample_lines(&text).len() as i64 - after as i64;
    eprintln!(
        "300 SecretSyncs naming missing stores: {grown:+} sample lines; unresolved series {unresolved:?}"
    );
    assert!(!unresolved.is_empty(), "no series counts the SecretSyncs");
    for (metric, n) in &unresolved {
        assert!(*n <= 1, "{metric} has {n} unresolved series");
    }
    assert!(
        !text.contains("made-up-"),
        "a store name nobody created is a label"
    );
    drop(controller);
}
