//! The controller's run: its watches, the reconciles they wake, the store checks and the census, until shutdown.

use std::sync::Arc;
use std::sync::atomic::Ordering;
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
use crate::controller::telemetry::census_task::count_syncs;
use crate::controller::watch::store_checks::{store_checks, store_uses_secret};
use crate::controller::*;
use crate::dialects::Registry;

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
                    let source = sync_ns == ns && reads_source(s, &name, secret.labels());
                    if source {
                        is_source.set(true);
                    }
                    source
                        || (sync_ns == ns && references(s, &name))
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
            .run(sync::reconcile, sync::error_policy, ctx.clone())
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
pub(crate) async fn synced<K>(cache: &reflector::Store<K>) -> bool
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

/// How long a shutdown waits for running reconciles. A leader waits less: see `leadership::Timing::shutdown_grace`.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// A hash of what the user changes on a SecretSync (not its status).
pub(crate) fn user_changes(sync: &SecretSync) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    sync.metadata.generation.hash(&mut h);
    sync.metadata.finalizers.hash(&mut h);
    sync.metadata.deletion_timestamp.is_some().hash(&mut h);
    Some(h.finish())
}

/// Whether a SecretSync names the store.
pub(crate) fn uses_store(sync: &SecretSync, kind: StoreKind, name: &str) -> bool {
    sync.spec
        .target
        .store_ref
        .as_ref()
        .is_some_and(|r| r.kind == kind && r.name == name)
}

/// Whether a SecretSync reads the named Secret of its namespace (as its source or its inline credentials).
pub(crate) fn references(sync: &SecretSync, secret: &str) -> bool {
    sync.spec
        .source
        .secret_ref
        .as_ref()
        .is_some_and(|r| r.name == secret)
        || sync
            .spec
            .target
            .credentials_ref
            .as_ref()
            .is_some_and(|c| c.name == secret)
}

/// Whether a Secret of the SecretSync's namespace is (or was, at its last sync) one of its sources: the one it
/// names, one its selector matches now, or one a remote secret in its status came from (a Secret that stopped
/// matching is let go by the next reconcile).
pub(crate) fn reads_source(
    sync: &SecretSync,
    secret: &str,
    labels: &std::collections::BTreeMap<String, String>,
) -> bool {
    let source = &sync.spec.source;
    if source.secret_ref.as_ref().is_some_and(|r| r.name == secret) {
        return true;
    }
    let Some(selector) = &source.selector else {
        return false;
    };
    let matches = kube::core::Selector::try_from(selector.clone())
        .is_ok_and(|s| kube::core::SelectorExt::matches(&s, labels));
    matches
        || sync.status.as_ref().is_some_and(|st| {
            st.remotes
                .iter()
                .any(|r| r.secret.as_deref() == Some(secret))
        })
}

/// What this process keeps per SecretSync (its first look, its failure count) goes when the watch sees it deleted:
/// one deleted without a finalizer (`Retain`) is never reconciled again to forget it, and SecretSyncs made and
/// deleted in a loop would otherwise grow both maps for the life of the process.
pub(crate) fn forget_deleted(
    event: &Result<watcher::Event<SecretSync>, watcher::Error>,
    first_looks: &pacing::startup_spread::FirstLooks,
    backoff: &pacing::backoff::Backoff,
) {
    if let Ok(watcher::Event::Delete(obj)) = event {
        if let Some(uid) = obj.uid() {
            first_looks.forget(&uid);
        }
        backoff.reset(&sync::names::key(obj));
    }
}
