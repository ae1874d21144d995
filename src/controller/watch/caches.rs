//! Stores, ClusterStores and namespaces as the controller's watches hold them, so that a reconcile reads no more
//! of them from the API server: a change to any of them reaches the cache before it requeues the SecretSyncs that
//! use it, so a reconcile never acts on a store older than the change that woke it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Namespace;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store as Cache};

use crate::api::{ClusterStore, Store};

/// The caches, filled in as the controller starts its watches (one of each per watched scope).
///
/// Every scope watches every ClusterStore and namespace, and a scope's reconciles are woken by its own watches: a
/// reconcile reads the ClusterStore and namespace caches of its own scope (the one that woke it), never another
/// scope's, which may not have seen the change yet.
#[derive(Default)]
pub struct Lookup {
    stores: Mutex<Vec<Cache<Store>>>,
    cluster_stores: Scoped<ClusterStore>,
    namespaces: Scoped<PartialObjectMeta<Namespace>>,
}

/// Caches by the scope that watches them: `None` for the one scope of a controller that watches every namespace,
/// else the one namespace it watches.
struct Scoped<K: kube::Resource<DynamicType = ()> + Clone + 'static>(
    Mutex<Vec<(Option<String>, Cache<K>)>>,
);

impl<K: kube::Resource<DynamicType = ()> + Clone + 'static> Default for Scoped<K> {
    fn default() -> Self {
        Scoped(Mutex::default())
    }
}

impl<K: kube::Resource<DynamicType = ()> + Clone + 'static> Scoped<K> {
    fn add(&self, scope: Option<String>, cache: Cache<K>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((scope, cache));
    }

    /// The cache of the scope that watches `namespace` (the only one when every namespace is watched).
    fn of(&self, namespace: &str) -> Result<Cache<K>, Stopping> {
        let caches = self.0.lock().unwrap_or_else(|e| e.into_inner());
        caches
            .iter()
            .find(|(scope, _)| scope.as_deref().is_none_or(|s| s == namespace))
            .or_else(|| caches.first())
            .map(|(_, cache)| cache.clone())
            .ok_or(Stopping)
    }
}

/// A cache whose watch has stopped: the controller is shutting down.
#[derive(Debug, thiserror::Error)]
#[error("the controller is stopping (its watches have ended)")]
pub struct Stopping;

impl Lookup {
    pub fn add_stores(&self, cache: Cache<Store>) {
        self.stores
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(cache);
    }

    /// The ClusterStores as `scope` (see [`Scoped`]) watches them.
    pub fn add_cluster_stores(&self, scope: Option<String>, cache: Cache<ClusterStore>) {
        self.cluster_stores.add(scope, cache);
    }

    /// The namespaces as `scope` watches them.
    pub fn add_namespaces(
        &self,
        scope: Option<String>,
        cache: Cache<PartialObjectMeta<Namespace>>,
    ) {
        self.namespaces.add(scope, cache);
    }

    /// The Store `namespace/name`, once every store watch has listed.
    pub async fn store(&self, namespace: &str, name: &str) -> Result<Option<Arc<Store>>, Stopping> {
        let caches = self
            .stores
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let key = ObjectRef::new(name).within(namespace);
        for cache in &caches {
            ready(cache).await?;
            if let Some(store) = cache.get(&key) {
                return Ok(Some(store));
            }
        }
        Ok(None)
    }

    /// Every Store of `namespace`, once every store watch has listed.
    pub async fn stores_in(&self, namespace: &str) -> Result<Vec<Arc<Store>>, Stopping> {
        let caches = self
            .stores
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut out = Vec::new();
        for cache in &caches {
            ready(cache).await?;
            out.extend(
                cache
                    .state()
                    .into_iter()
                    .filter(|s| s.metadata.namespace.as_deref() == Some(namespace)),
            );
        }
        Ok(out)
    }

    /// The ClusterStore `name`, as the scope of a SecretSync in `namespace` sees it.
    pub async fn cluster_store(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<ClusterStore>>, Stopping> {
        let cache = self.cluster_stores.of(namespace)?;
        ready(&cache).await?;
        Ok(cache.get(&ObjectRef::new(name)))
    }

    /// A namespace's labels; `None` when it does not exist.
    pub async fn namespace_labels(
        &self,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, Stopping> {
        let cache = self.namespaces.of(name)?;
        ready(&cache).await?;
        Ok(cache
            .get(&ObjectRef::new(name))
            .map(|n| n.metadata.labels.clone().unwrap_or_default()))
    }

    /// A namespace's uid; `None` when the watch has not seen it (yet).
    pub async fn namespace_uid(&self, name: &str) -> Result<Option<String>, Stopping> {
        let cache = self.namespaces.of(name)?;
        ready(&cache).await?;
        Ok(cache
            .get(&ObjectRef::new(name))
            .and_then(|n| n.metadata.uid.clone()))
    }

    /// Whether a namespace is being deleted (one already gone counts as being deleted).
    pub async fn namespace_terminating(&self, name: &str) -> Result<bool, Stopping> {
        let cache = self.namespaces.of(name)?;
        ready(&cache).await?;
        Ok(cache
            .get(&ObjectRef::new(name))
            .is_none_or(|n| n.metadata.deletion_timestamp.is_some()))
    }
}

/// Waits for the cache's first listing. kube's readiness signal wakes only its latest waiter, and many reconciles
/// wait at once when a controller starts (a new leader): each looks again every 100 ms instead of waiting for a
/// wake-up that may go to another waiter (found by clean-clone run 13: a reconcile after a failover hung).
async fn ready<K>(cache: &Cache<K>) -> Result<(), Stopping>
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    loop {
        match tokio::time::timeout(RECHECK, cache.wait_until_ready()).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(_)) => return Err(Stopping),
            Err(_) => continue,
        }
    }
}

const RECHECK: std::time::Duration = std::time::Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::reflector::store;
    use kube::runtime::watcher::Event;

    fn store_named(ns: &str, name: &str) -> Store {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "secretsync.io/v1alpha1", "kind": "Store",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"dialect": "Barbican", "endpoint": "http://b:9311"}
        }))
        .expect("a store")
    }

    #[tokio::test]
    async fn stores_are_found_in_whichever_scope_watches_their_namespace() {
        let lookup = Lookup::default();
        let (a, mut a_writer) = store::<Store>();
        let (b, mut b_writer) = store::<Store>();
        lookup.add_stores(a);
        lookup.add_stores(b);
        for (writer, ns) in [(&mut a_writer, "team-a"), (&mut b_writer, "team-b")] {
            writer.apply_watcher_event(&Event::Init);
            writer.apply_watcher_event(&Event::InitApply(store_named(ns, "vault")));
            writer.apply_watcher_event(&Event::InitDone);
        }
        let found = lookup.store("team-b", "vault").await.expect("ready");
        assert_eq!(
            found.and_then(|s| s.metadata.namespace.clone()).as_deref(),
            Some("team-b")
        );
        assert!(
            lookup
                .store("team-c", "vault")
                .await
                .expect("ready")
                .is_none()
        );
        assert!(
            lookup
                .store("team-a", "other")
                .await
                .expect("ready")
                .is_none()
        );
    }

    #[tokio::test]
    async fn every_waiter_is_answered_once_the_cache_has_listed() {
        let lookup = Arc::new(Lookup::default());
        let (cache, mut writer) = store::<Store>();
        lookup.add_stores(cache);
        let waiters: Vec<_> = (0..8)
            .map(|_| {
                let lookup = lookup.clone();
                tokio::spawn(async move { lookup.store("team-a", "vault").await })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        writer.apply_watcher_event(&Event::Init);
        writer.apply_watcher_event(&Event::InitApply(store_named("team-a", "vault")));
        writer.apply_watcher_event(&Event::InitDone);
        for waiter in waiters {
            let found = tokio::time::timeout(std::time::Duration::from_secs(2), waiter)
                .await
                .expect("a waiter was never woken")
                .expect("joined")
                .expect("ready");
            assert!(found.is_some());
        }
    }

    #[tokio::test]
    async fn a_lookup_waits_for_the_first_listing_and_fails_once_the_watch_is_gone() {
        let lookup = Lookup::default();
        let (cache, mut writer) = store::<Store>();
        lookup.add_stores(cache);
        let pending = tokio::spawn({
            let lookup = Arc::new(lookup);
            async move { lookup.store("team-a", "vault").await }
        });
        tokio::task::yield_now().await;
        assert!(!pending.is_finished(), "answered before the cache listed");
        writer.apply_watcher_event(&Event::Init);
        writer.apply_watcher_event(&Event::InitApply(store_named("team-a", "vault")));
        writer.apply_watcher_event(&Event::InitDone);
        assert!(pending.await.expect("joined").expect("ready").is_some());

        let lookup = Lookup::default();
        let (cache, writer) = store::<Store>();
        lookup.add_stores(cache);
        drop(writer);
        assert!(lookup.store("team-a", "vault").await.is_err());
        assert!(
            Lookup::default()
                .cluster_store("team-a", "x")
                .await
                .is_err(),
            "no cache yet"
        );
    }

    fn cluster_store_named(name: &str, endpoint: &str) -> ClusterStore {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "secretsync.io/v1alpha1", "kind": "ClusterStore",
            "metadata": {"name": name},
            "spec": {"dialect": "Barbican", "endpoint": endpoint}
        }))
        .expect("a cluster store")
    }

    /// With `--namespace a,b` each scope watches every ClusterStore: a reconcile of scope b, woken by b's watch,
    /// reads b's cache, which has seen the change that woke it, not a's, which may not have yet.
    #[tokio::test]
    async fn a_reconcile_reads_the_cluster_stores_of_the_scope_that_woke_it() {
        let lookup = Lookup::default();
        let (a, mut a_writer) = store::<ClusterStore>();
        let (b, mut b_writer) = store::<ClusterStore>();
        lookup.add_cluster_stores(Some("team-a".into()), a);
        lookup.add_cluster_stores(Some("team-b".into()), b);
        for writer in [&mut a_writer, &mut b_writer] {
            writer.apply_watcher_event(&Event::Init);
            writer.apply_watcher_event(&Event::InitApply(cluster_store_named(
                "vault",
                "http://old",
            )));
            writer.apply_watcher_event(&Event::InitDone);
        }
        // b's watch sees the new endpoint first.
        b_writer.apply_watcher_event(&Event::Apply(cluster_store_named("vault", "http://new")));
        let endpoint = |s: Option<Arc<ClusterStore>>| s.and_then(|s| s.spec.store.endpoint.clone());
        assert_eq!(
            endpoint(
                lookup
                    .cluster_store("team-b", "vault")
                    .await
                    .expect("ready")
            )
            .as_deref(),
            Some("http://new")
        );
        assert_eq!(
            endpoint(
                lookup
                    .cluster_store("team-a", "vault")
                    .await
                    .expect("ready")
            )
            .as_deref(),
            Some("http://old")
        );
    }
}
