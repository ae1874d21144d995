//! The controller: watches SecretSyncs and the Secrets they reference, and runs each reconcile through the
//! planner and the object's dialect.
//!
//! Secrets are watched as metadata only (an `Api<PartialObjectMeta<Secret>>` lists and watches metadata alone):
//! a change to a referenced Secret triggers its SecretSyncs within seconds, but no Secret data of the cluster is
//! kept in memory. Data is fetched with one GET when a SecretSync needs it.

pub mod harness;
pub mod identity;
pub mod leadership;
pub mod pacing;
pub mod stores;
pub mod sync;
pub mod telemetry;
pub mod watch;

/// The operator's limits on where stores may connect, under the name the flags' documentation uses.
pub use stores::limits as store_limits;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::utils::PredicateConfig;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};

use crate::api::{ClusterStore, SecretSync, Store, StoreKind};
use crate::dialects::Registry;
use crate::metrics::Metrics;
use crate::plan::digest::DigestKey;

pub use sync::reconcile::Error;

/// The finalizer held while `deletionPolicy: Delete`.
pub const FINALIZER: &str = "secretsync.io/remote-cleanup";
/// Field manager of every write SecretSync makes.
pub const FIELD_MANAGER: &str = "secretsync";

/// How the controller runs (set by `secretsync run`'s flags).
pub struct Config {
    /// Namespaces to watch; empty means all.
    pub namespaces: Vec<String>,
    /// Label selector: only SecretSyncs matching it are handled (several controllers can split a cluster).
    pub selector: Option<String>,
    /// Reconciles running at once (per watched namespace set).
    pub concurrency: u16,
    pub digest_key: DigestKey,
    /// This cluster in ownership markers ([`identity::cluster_id::resolve`]).
    pub cluster_id: String,
    pub metrics: Arc<Metrics>,
    /// Set once the watches have synced; `/readyz` reports it.
    pub ready: Arc<AtomicBool>,
    /// Name reported on Events.
    pub instance: String,
    /// In a namespace being deleted, how long a SecretSync under `deletionPolicy: Delete` keeps trying to delete
    /// its remote secret before it lets go (with a Warning Event naming what was left), so the namespace can go.
    pub cleanup_timeout: Duration,
    /// Whether a SecretSync may name its dialect, endpoint and credentials itself instead of a store (single-tenant
    /// clusters only: whoever writes such a SecretSync decides where a credential goes).
    pub allow_inline_targets: bool,
    /// Test hook (`--test-panic-on namespace/name`): the reconcile of that one object panics, to prove that a panic
    /// ends only its own reconcile.
    pub panic_on: Option<String>,
    /// Where namespaced Stores may connect, and the token audiences stores may ask for.
    pub limits: stores::limits::StoreLimits,
}

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub registry: Registry,
    pub digest_key: DigestKey,
    pub cluster_id: String,
    pub metrics: Arc<Metrics>,
    pub recorder: telemetry::events::Recorder,
    backoff: pacing::backoff::Backoff,
    /// Fair shares of the workers per store and per namespace.
    stores: pacing::fair_share::Slots,
    namespaces: pacing::fair_share::Slots,
    cleanup_timeout: Duration,
    panic_on: Option<String>,
    allow_inline: bool,
    limits: stores::limits::StoreLimits,
    tokens: stores::token_request::Cache,
    seen_changes: telemetry::change_clock::SeenChanges,
    lookup: watch::caches::Lookup,
    remembered: stores::protection::Remembered,
    first_looks: pacing::startup_spread::FirstLooks,
    credentials: stores::credentials_cache::CredentialsCache,
}

impl Context {
    /// The shared state of a controller's reconciles, before any watch has started: its caches of stores and
    /// namespaces are empty until [`Context::lookup`]'s watches (or a test's writers) fill them.
    pub fn new(client: Client, config: &Config, registry: Registry) -> Context {
        let shares = pacing::fair_share::Shares::of(usize::from(config.concurrency));
        Context {
            client: client.clone(),
            registry,
            digest_key: config.digest_key.clone(),
            cluster_id: config.cluster_id.clone(),
            metrics: config.metrics.clone(),
            recorder: telemetry::events::Recorder::new(
                client.clone(),
                "secretsync",
                &config.instance,
            ),
            backoff: pacing::backoff::Backoff::default(),
            stores: pacing::fair_share::Slots::new(shares.per_store),
            namespaces: pacing::fair_share::Slots::namespaces(shares, config.namespaces.len()),
            cleanup_timeout: config.cleanup_timeout,
            panic_on: config.panic_on.clone(),
            allow_inline: config.allow_inline_targets,
            limits: config.limits.clone(),
            tokens: stores::token_request::Cache::default(),
            seen_changes: telemetry::change_clock::SeenChanges::default(),
            lookup: watch::caches::Lookup::default(),
            remembered: stores::protection::Remembered::default(),
            first_looks: pacing::startup_spread::FirstLooks::default(),
            credentials: stores::credentials_cache::CredentialsCache::new(
                config.namespaces.clone(),
            ),
        }
    }
}

/// Runs the controller until `shutdown` resolves; running reconciles then get up to [`SHUTDOWN_GRACE`] to finish.
pub async fn run(
    client: Client,
    config: Config,
    registry: Registry,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    run_until(
        client,
        config,
        registry,
        shutdown,
        SHUTDOWN_GRACE,
        std::future::pending(),
    )
    .await
}

/// Runs the controller until `shutdown` resolves, after which running reconciles get up to `grace` to finish, or
/// until `abort` resolves, which cancels running reconciles at once (a leader that lost its Lease).
pub async fn run_until(
    client: Client,
    config: Config,
    registry: Registry,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    grace: Duration,
    abort: impl std::future::Future<Output = ()> + Send,
) {
    let ctx = Arc::new(Context::new(client.clone(), &config, registry));
    let scopes: Vec<Option<String>> = if config.namespaces.is_empty() {
        vec![None]
    } else {
        config.namespaces.iter().cloned().map(Some).collect()
    };
    let shutdown = futures::future::FutureExt::shared(Box::pin(shutdown));
    let mut stores = Vec::new();
    let mut known = telemetry::census::Stores::default();
    let mut runs: Vec<futures::future::BoxFuture<'static, ()>> = Vec::new();
    for scope in scopes {
        let (syncs, secrets, namespaced_stores): (
            Api<SecretSync>,
            Api<PartialObjectMeta<Secret>>,
            Api<Store>,
        ) = match &scope {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            ),
            None => (
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client.clone()),
            ),
        };
        // Status writes must not trigger reconciles (each would cost a store read), so SecretSync events pass
        // only when what the user controls changed: generation, finalizers or deletion.
        let (store, writer) = reflector::store();
        // A list page is held whole while its objects are slimmed: at kube's 500 a page, 500 objects of 250 KB of
        // annotations (a tenant's to write) took 475 MiB at every relist. 25 holds a page to a few MiB.
        let mut watch_config = watcher::Config::default().any_semantic().page_size(25);
        if let Some(selector) = &config.selector {
            watch_config = watch_config.labels(selector);
        }
        let gone = ctx.clone();
        let triggers = watcher(syncs, watch_config)
            .default_backoff()
            .modify(watch::slim::slim)
            .reflect(writer)
            .inspect(move |event| forget_deleted(event, &gone.first_looks, &gone.backoff))
            .applied_objects()
            .predicate_filter(user_changes, PredicateConfig::default());
        let controller = Controller::for_stream(triggers, store.clone())
            .with_config(ControllerConfig::default().concurrency(config.concurrency));
        stores.push(store.clone());
        let relists = ctx.clone();
        let secret_events = watcher(secrets, watcher::Config::default().any_semantic())
            .default_backoff()
            .inspect(move |event| {
                if let Ok(watcher::Event::Init) = event {
                    relists.credentials.relisted();
                }
            })
            .touched_objects();
        // Stores are watched for what their admins change (spec, deletion), not for their status; namespaces for
        // their labels (a ClusterStore may admit by them).
        let (store_cache, store_writer) = reflector::store();
        let store_events = watch::triggers::changes(
            watcher(namespaced_stores, watcher::Config::default().any_semantic())
                .default_backoff()
                .modify(watch::slim::slim)
                .reflect(store_writer),
            watch::triggers::spec_generation,
        );
        let (cluster_store_cache, cluster_store_writer) = reflector::store();
        let cluster_store_events = watch::triggers::changes(
            watcher(
                Api::<ClusterStore>::all(client.clone()),
                watcher::Config::default().any_semantic(),
            )
            .default_backoff()
            .modify(watch::slim::slim)
            .reflect(cluster_store_writer),
            watch::triggers::spec_generation,
        );
        let (namespace_cache, namespace_writer) = reflector::store();
        let namespace_events = watch::triggers::changes(
            watcher(
                Api::<PartialObjectMeta<Namespace>>::all(client.clone()),
                watcher::Config::default().any_semantic(),
            )
            .default_backoff()
            .modify(watch::slim::slim)
            .reflect(namespace_writer),
            watch::triggers::labels,
        );
        ctx.lookup.add_stores(store_cache.clone());
        ctx.lookup
            .add_cluster_stores(scope.clone(), cluster_store_cache.clone());
        known.stores.push(store_cache.clone());
        known.cluster_stores.push(cluster_store_cache.clone());
        ctx.lookup.add_namespaces(scope.clone(), namespace_cache);
        let syncs_of = |store: reflector::Store<SecretSync>| {
            move |matches: &dyn Fn(&SecretSync) -> bool| {
                store
                    .state()
                    .into_iter()
                    .filter(|s| matches(s))
                    .map(|s| ObjectRef::from_obj(&*s))
                    .collect::<Vec<_>>()
            }
        };
        let by_secret = syncs_of(store.clone());
        let by_store = syncs_of(store.clone());
        let by_cluster_store = syncs_of(store.clone());
        let by_namespace = syncs_of(store.clone());
        let secret_stores = (store_cache.clone(), cluster_store_cache.clone());
        let changes = ctx.clone();
        let run = controller
            .watches_stream(secret_events, move |secret| {
                let ns = secret.namespace().unwrap_or_default();
                let name = secret.name_any();
                changes.credentials.touched(&ns, &name);
                let is_source = std::cell::Cell::new(false);
                let (stores, cluster_stores) = &secret_stores;
                let using: Vec<(StoreKind, Option<String>, String)> = stores
                    .state()
                    .iter()
                    .filter(|s| s.namespace().as_deref() == Some(ns.as_str()))
                    .filter(|s| {
                        s.spec
                            .credentials_ref
                            .as_ref()
                            .is_some_and(|c| c.name == name)
                    })
                    .map(|s| (StoreKind::Store, s.namespace(), s.name_any()))
                    .chain(
                        cluster_stores
                            .state()
                            .iter()
                            .filter(|s| {
                                s.spec.store.credentials_ref.as_ref().is_some_and(|c| {
                                    c.name == name && c.namespace.as_deref() == Some(ns.as_str())
                                })
                            })
                            .map(|s| (StoreKind::ClusterStore, None, s.name_any())),
                    )
                    .collect();
                // Runs over every SecretSync for every Secret event (a burst of N changes is N² calls): no
                // allocation in here.
                let syncs = by_secret(&|s: &SecretSync| {
                    let sync_ns = s.metadata.namespace.as_deref().unwrap_or_default();
                    if sync_ns == ns && s.spec.source.secret_ref.name == name {
                        is_source.set(true);
                    }
                    (sync_ns == ns && references(s, &name))
                        || using.iter().any(|(kind, store_ns, store)| {
                            uses_store(s, *kind, store)
                                && store_ns.as_deref().is_none_or(|n| n == sync_ns)
                        })
                });
                if is_source.get() {
                    changes.seen_changes.saw(&ns, &name);
                }
                syncs
            })
            .watches_stream(store_events, move |changed| {
                let ns = changed.namespace();
                let name = changed.name_any();
                by_store(&|s: &SecretSync| {
                    s.namespace() == ns && uses_store(s, StoreKind::Store, &name)
                })
            })
            .watches_stream(cluster_store_events, move |changed| {
                let name = changed.name_any();
                by_cluster_store(&|s: &SecretSync| uses_store(s, StoreKind::ClusterStore, &name))
            })
            .watches_stream(namespace_events, move |changed| {
                let name = changed.name_any();
                by_namespace(&|s: &SecretSync| {
                    s.namespace().as_deref() == Some(name.as_str())
                        && s.spec
                            .target
                            .store_ref
                            .as_ref()
                            .is_some_and(|r| r.kind == StoreKind::ClusterStore)
                })
            })
            .graceful_shutdown_on(shutdown.clone())
            .run(
                sync::reconcile::reconcile,
                sync::reconcile::error_policy,
                ctx.clone(),
            )
            .for_each(|_| async {});
        runs.push(Box::pin(run));
        // Stores' own checks: a status write must not start another check, so only spec changes trigger one.
        // A change to a store's credentials Secret checks the store again at once.
        let (checked_stores, their_secrets) = match &scope {
            Some(ns) => (
                Api::<Store>::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            ),
            None => (Api::all(client.clone()), Api::all(client.clone())),
        };
        let (checks, checked) = store_checks(
            checked_stores,
            their_secrets,
            ctx.clone(),
            shutdown.clone(),
            stores::check::store,
            store_uses_secret,
        );
        runs.push(checks);
        known.stores.push(checked);
    }
    let (checks, checked) = store_checks(
        Api::<ClusterStore>::all(client.clone()),
        Api::all(client.clone()),
        ctx.clone(),
        shutdown.clone(),
        stores::check::cluster_store,
        |store: &ClusterStore, ns: &str, name: &str| {
            store
                .spec
                .store
                .credentials_ref
                .as_ref()
                .is_some_and(|c| c.name == name && c.namespace.as_deref() == Some(ns))
        },
    );
    runs.push(checks);
    known.cluster_stores.push(checked);
    let census = tokio::spawn(count_syncs(stores.clone(), known, config.metrics.clone()));
    let ready = config.ready.clone();
    tokio::spawn(async move {
        for store in stores {
            if !synced(&store).await {
                return;
            }
        }
        ready.store(true, Ordering::SeqCst);
        tracing::info!("watches synced; ready");
    });
    // Graceful shutdown lets running reconciles finish, but kube's runner waits for the watch to sync first: a
    // shutdown before the initial list completes would wait forever. So: stop at once if not synced yet, and
    // otherwise give the reconciles at most `grace`, inside Kubernetes' default 30 s termination grace.
    let synced = config.ready.clone();
    let deadline = async move {
        shutdown.await;
        if synced.load(Ordering::SeqCst) {
            tokio::time::sleep(grace).await;
            tracing::warn!(
                "reconciles still running after the shutdown grace period; stopping anyway"
            );
        }
    };
    tokio::select! {
        _ = futures::future::join_all(runs) => {}
        _ = deadline => {}
        // Dropping the controllers' streams drops kube's handles on the running reconciles, and dropping a handle
        // aborts its task: each reconcile ends at its next await, without a grace period.
        _ = abort => tracing::warn!("cancelling running reconciles"),
    }
    census.abort();
    config.ready.store(false, Ordering::SeqCst);
}

/// Whether a cache has listed (`false` when its watch ended first). The cache's readiness is a one-shot channel
/// that wakes only its latest waiter, and the controller's runner waits on it too: this polls every half second
/// instead of waiting for a wake-up.
async fn synced<K>(cache: &reflector::Store<K>) -> bool
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    loop {
        match tokio::time::timeout(Duration::from_millis(500), cache.wait_until_ready()).await {
            Ok(result) => return result.is_ok(),
            Err(_) => continue,
        }
    }
}

/// Keeps `secretsync_syncs` up to date from the caches, every [`CENSUS_EVERY`], and removes the series of stores
/// that are gone.
async fn count_syncs(
    syncs: Vec<reflector::Store<SecretSync>>,
    stores: telemetry::census::Stores,
    metrics: Arc<Metrics>,
) {
    for cache in &stores.stores {
        if !synced(cache).await {
            return;
        }
    }
    for cache in &stores.cluster_stores {
        if !synced(cache).await {
            return;
        }
    }
    let mut shown = std::collections::BTreeSet::new();
    let mut shown_out_of_sync = std::collections::BTreeSet::new();
    let mut every = tokio::time::interval(CENSUS_EVERY);
    loop {
        every.tick().await;
        // The series are listed before the stores: a series is written only for a store some cache already holds,
        // so one written meanwhile for a new store is not taken for one whose store is gone.
        let labelled = metrics.stores();
        let existing = stores.labels();
        for gone in telemetry::census::gone(&labelled, &existing) {
            metrics.remove_store(gone);
        }
        let objects: Vec<_> = syncs.iter().flat_map(|s| s.state()).collect();
        let rows = telemetry::census::count(
            objects.iter().map(|o| &**o),
            |s| telemetry::census::counted(sync::reconcile::store_label(s), &existing),
            sync::reconcile::dialect_label,
        );
        for (row, count) in &rows {
            metrics.syncs.get_or_create(&labels(row)).set(*count);
        }
        for gone in shown.iter().filter(|r| !rows.contains_key(*r)) {
            metrics.syncs.remove(&labels(gone));
        }
        shown = rows.into_keys().collect();
        let out_of_sync = telemetry::census::out_of_sync(objects.iter().map(|o| &**o), |s| {
            telemetry::census::counted(sync::reconcile::store_label(s), &existing)
        });
        let store = |store: &String| crate::metrics::StoreLabels {
            store: store.clone(),
        };
        for (label, count) in &out_of_sync {
            metrics.out_of_sync.get_or_create(&store(label)).set(*count);
        }
        for gone in shown_out_of_sync
            .iter()
            .filter(|s| !out_of_sync.contains_key(*s))
        {
            metrics.out_of_sync.remove(&store(gone));
        }
        shown_out_of_sync = out_of_sync.into_keys().collect();
    }
}

fn labels(row: &telemetry::census::Row) -> crate::metrics::SyncLabels {
    crate::metrics::SyncLabels {
        store: row.store.clone(),
        dialect: row.dialect.clone(),
        phase: row.phase.to_owned(),
    }
}

/// How often `secretsync_syncs` is counted again.
const CENSUS_EVERY: Duration = Duration::from_secs(15);

/// A controller running a store kind's periodic check (see [`store_check`]), and its cache of the stores.
fn store_checks<K, F>(
    api: Api<K>,
    secrets: Api<PartialObjectMeta<Secret>>,
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    check: fn(Arc<K>, Arc<Context>) -> F,
    uses_secret: fn(&K, &str, &str) -> bool,
) -> (futures::future::BoxFuture<'static, ()>, reflector::Store<K>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    F: std::future::Future<Output = Result<kube::runtime::controller::Action, Error>>
        + Send
        + 'static,
{
    let (cache, writer) = reflector::store();
    let triggers = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(watch::slim::slim)
        .reflect(writer)
        .applied_objects()
        .predicate_filter(
            kube::runtime::predicates::generation,
            PredicateConfig::default(),
        );
    let secret_events = watcher(secrets, watcher::Config::default().any_semantic())
        .default_backoff()
        .touched_objects();
    let stores = cache.clone();
    let checked = cache.clone();
    let credentials = ctx.clone();
    let run = Box::pin(
        Controller::for_stream(triggers, cache)
            .with_config(ControllerConfig::default().concurrency(2))
            .watches_stream(secret_events, move |secret| {
                checks_for_secret(
                    &credentials.credentials,
                    &stores,
                    &secret.namespace().unwrap_or_default(),
                    &secret.name_any(),
                    uses_secret,
                )
            })
            .graceful_shutdown_on(shutdown)
            .run(check, stores::check::retry, ctx)
            .for_each(|_| async {}),
    );
    (run, checked)
}

/// Whether the namespaced Store reads the Secret `ns/name` as its credentials.
fn store_uses_secret(store: &Store, ns: &str, name: &str) -> bool {
    store.namespace().as_deref() == Some(ns)
        && store
            .spec
            .credentials_ref
            .as_ref()
            .is_some_and(|c| c.name == name)
}

/// The stores to check again because their credentials Secret `namespace/name` changed.
///
/// The kept copy of that Secret is dropped first: this watch is not the one that feeds the SecretSyncs'
/// reconciles, and when it delivers the change before that one does, a check reading the cache would send the old
/// credentials, fail, and not run again until [`stores::check::CHECK_EVERY`]. Whichever watch sees a change first, the
/// work it triggers reads the Secret anew.
fn checks_for_secret<K>(
    credentials: &stores::credentials_cache::CredentialsCache,
    stores: &reflector::Store<K>,
    namespace: &str,
    name: &str,
    uses_secret: fn(&K, &str, &str) -> bool,
) -> Vec<ObjectRef<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    credentials.touched(namespace, name);
    stores
        .state()
        .into_iter()
        .filter(|store| uses_secret(store, namespace, name))
        .map(|store| ObjectRef::from_obj(&*store))
        .collect()
}

/// How long a shutdown waits for running reconciles. A leader waits less: see `leadership::Timing::shutdown_grace`.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// A hash of what the user changes on a SecretSync (not its status).
fn user_changes(sync: &SecretSync) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    sync.metadata.generation.hash(&mut h);
    sync.metadata.finalizers.hash(&mut h);
    sync.metadata.deletion_timestamp.is_some().hash(&mut h);
    Some(h.finish())
}

/// Whether a SecretSync names the store.
fn uses_store(sync: &SecretSync, kind: StoreKind, name: &str) -> bool {
    sync.spec
        .target
        .store_ref
        .as_ref()
        .is_some_and(|r| r.kind == kind && r.name == name)
}

/// Whether a SecretSync reads the named Secret of its namespace (as its source or its inline credentials).
fn references(sync: &SecretSync, secret: &str) -> bool {
    sync.spec.source.secret_ref.name == secret
        || sync
            .spec
            .target
            .credentials_ref
            .as_ref()
            .is_some_and(|c| c.name == secret)
}

/// How long to wait before polling a store that is still creating a secret.
pub const CREATING_POLL: Duration = Duration::from_secs(3);

/// What this process keeps per SecretSync (its first look, its failure count) goes when the watch sees it deleted:
/// one deleted without a finalizer (`Retain`) is never reconciled again to forget it, and SecretSyncs made and
/// deleted in a loop would otherwise grow both maps for the life of the process.
fn forget_deleted(
    event: &Result<watcher::Event<SecretSync>, watcher::Error>,
    first_looks: &pacing::startup_spread::FirstLooks,
    backoff: &pacing::backoff::Backoff,
) {
    if let Ok(watcher::Event::Delete(obj)) = event {
        if let Some(uid) = obj.uid() {
            first_looks.forget(&uid);
        }
        backoff.reset(&sync::reconcile::key(obj));
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn sync(name: &str, uid: &str) -> SecretSync {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "secretsync.io/v1alpha1", "kind": "SecretSync",
            "metadata": {"name": name, "namespace": "team-a", "uid": uid},
            "spec": {"source": {"secretRef": {"name": "s", "key": "k"}},
                     "target": {"storeRef": {"kind": "Store", "name": "vault"}}}
        }))
        .expect("a SecretSync")
    }

    #[test]
    fn a_deleted_secret_sync_leaves_nothing_behind() {
        let (looks, backoff) = (
            pacing::startup_spread::FirstLooks::default(),
            pacing::backoff::Backoff::default(),
        );
        let minute = Some(Duration::from_secs(60));
        let now = Instant::now();
        let (gone, kept) = (sync("gone", "uid-gone"), sync("kept", "uid-kept"));
        for obj in [&gone, &kept] {
            // Looked at (the store was read), and failing for a while.
            let uid = obj.uid().expect("uid");
            assert_eq!(looks.wait(&uid, false, minute, now, 0.5), None);
            for _ in 0..6 {
                backoff.next(&sync::reconcile::key(obj));
            }
        }
        let applied = Ok(watcher::Event::Apply(kept.clone()));
        forget_deleted(&applied, &looks, &backoff);
        forget_deleted(&Ok(watcher::Event::Delete(gone.clone())), &looks, &backoff);

        // The deleted one starts over: a first look is moved again, and its next failure waits the first delay.
        assert_eq!(
            looks.wait("uid-gone", true, minute, now, 0.5),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            backoff.next(&sync::reconcile::key(&gone)),
            pacing::backoff::BASE
        );
        // The other one is untouched.
        assert_eq!(looks.wait("uid-kept", true, minute, now, 0.5), None);
        assert!(backoff.next(&sync::reconcile::key(&kept)) >= Duration::from_secs(32));
    }

    /// The store-check watch may deliver a credentials change before the SecretSyncs' watch drops the kept copy
    /// (seen as a Store left `Unauthorized` for five minutes after its token was fixed): the check it triggers must
    /// not find the old credentials kept.
    #[test]
    fn a_store_check_triggered_by_a_credentials_change_reads_them_anew() {
        use kube::runtime::watcher::Event;
        use stores::credentials_cache::{CredentialsCache, Lookup};
        let store: Store = serde_json::from_value(serde_json::json!({
            "apiVersion": "secretsync.io/v1alpha1", "kind": "Store",
            "metadata": {"name": "sf", "namespace": "team-a"},
            "spec": {"dialect": "ServiceFabricMesh", "endpoint": "http://sf:19080",
                     "credentialsRef": {"name": "sf-token"}}
        }))
        .expect("a store");
        let (stores, mut writer) = reflector::store::<Store>();
        writer.apply_watcher_event(&Event::Apply(store));
        let cache = CredentialsCache::new(vec![]);
        let Lookup::Read { epoch } = cache.lookup("team-a", "sf-token") else {
            panic!("nothing kept yet")
        };
        let old = std::collections::BTreeMap::from([(
            "token".to_owned(),
            crate::value::SecretValue::from("refused"),
        )]);
        cache.keep("team-a", "sf-token", epoch, &old);

        let checks = checks_for_secret(&cache, &stores, "team-a", "sf-token", store_uses_secret);
        assert_eq!(checks.len(), 1, "the store using the Secret is checked");
        assert!(
            matches!(cache.lookup("team-a", "sf-token"), Lookup::Read { .. }),
            "the check must read the changed Secret, not the copy kept before the change"
        );
        // Another Secret of the namespace triggers nothing.
        assert!(
            checks_for_secret(&cache, &stores, "team-a", "other", store_uses_secret).is_empty()
        );
    }

    #[test]
    fn a_secret_the_store_keeps_creating_is_polled_less_and_less_often() {
        let backoff = pacing::backoff::Backoff::default();
        let polls: Vec<Duration> = (0..12)
            .map(|_| sync::reconcile::creating_poll(&backoff, "team-a/db"))
            .collect();
        assert_eq!(polls[0], CREATING_POLL);
        assert!(
            polls
                .iter()
                .all(|p| *p >= CREATING_POLL && *p <= pacing::backoff::CAP)
        );
        assert!(polls[11] >= pacing::backoff::CAP / 2, "{polls:?}");
        // Ready at last: the backoff is reset, and the next Creating starts at 3 s again.
        backoff.reset("team-a/db");
        assert_eq!(
            sync::reconcile::creating_poll(&backoff, "team-a/db"),
            CREATING_POLL
        );
    }
}
