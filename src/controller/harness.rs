//! The controller's reconcile in-process, for tests that need no test bed: a [`Context`] on any kube `Client` (a
//! mocked API server, as kube's `tower-test` pattern builds one) whose caches of Stores, ClusterStores and
//! Namespaces the test writes itself, instead of watches.
//!
//! Only what a watch would do is replaced: every reconcile runs the same steps, reads and writes as in the
//! controller, through the client for what the controller reads from the API server (Secrets, status, Events,
//! finalizers, TokenRequests) and through the registry's dialects for the stores.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher::Event;

use crate::api::{ClusterStore, SecretSync, Store};
use crate::controller::Config;
use crate::controller::Context;
use crate::controller::sync as reconcile;
use crate::dialects::Registry;

/// A controller's shared state with caches the test fills.
pub struct Harness {
    pub ctx: Arc<Context>,
    stores: Writer<Store>,
    cluster_stores: Writer<ClusterStore>,
    namespaces: Writer<PartialObjectMeta<Namespace>>,
}

/// What a reconcile ended with, as the controller's runner would act on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Next {
    /// When the object is looked at again without a change; `None`: only on a change.
    pub requeue_after: Option<Duration>,
    /// The reason the reconcile failed with (as the `Ready` condition shows it); `None` when it succeeded.
    pub failed: Option<String>,
}

impl Harness {
    /// A controller's context on `client`, watching every namespace (`config.namespaces` empty) or the first
    /// of `config.namespaces`, with empty caches that have listed.
    pub fn new(client: Client, config: &Config, registry: Registry) -> Harness {
        let ctx = Context::new(client, config, registry);
        let scope = config.namespaces.first().cloned();
        let (stores, mut store_writer) = reflector::store();
        let (cluster_stores, mut cluster_store_writer) = reflector::store();
        let (namespaces, mut namespace_writer) = reflector::store();
        listed(&mut store_writer);
        listed(&mut cluster_store_writer);
        listed(&mut namespace_writer);
        ctx.lookup.add_stores(stores);
        ctx.lookup.add_cluster_stores(scope.clone(), cluster_stores);
        ctx.lookup.add_namespaces(scope, namespaces);
        Harness {
            ctx: Arc::new(ctx),
            stores: store_writer,
            cluster_stores: cluster_store_writer,
            namespaces: namespace_writer,
        }
    }

    pub fn put_store(&mut self, store: Store) {
        self.stores.apply_watcher_event(&Event::Apply(store));
    }

    pub fn delete_store(&mut self, store: Store) {
        self.stores.apply_watcher_event(&Event::Delete(store));
    }

    pub fn put_cluster_store(&mut self, store: ClusterStore) {
        self.cluster_stores
            .apply_watcher_event(&Event::Apply(store));
    }

    pub fn delete_cluster_store(&mut self, store: ClusterStore) {
        self.cluster_stores
            .apply_watcher_event(&Event::Delete(store));
    }

    /// A namespace as the controller's metadata watch sees it (name, uid, labels, deletion).
    pub fn put_namespace(&mut self, namespace: PartialObjectMeta<Namespace>) {
        self.namespaces
            .apply_watcher_event(&Event::Apply(namespace));
    }

    pub fn delete_namespace(&mut self, namespace: PartialObjectMeta<Namespace>) {
        self.namespaces
            .apply_watcher_event(&Event::Delete(namespace));
    }

    /// One reconcile of `obj` as the controller's runner makes it: the reconcile, then on an error the error
    /// policy that decides the retry.
    pub async fn reconcile(&self, obj: SecretSync) -> Next {
        let obj = Arc::new(obj);
        match reconcile::reconcile(obj.clone(), self.ctx.clone()).await {
            Ok(action) => Next {
                requeue_after: requeue_after(&action),
                failed: None,
            },
            Err(e) => {
                let action = reconcile::error_policy(obj, &e, self.ctx.clone());
                Next {
                    requeue_after: requeue_after(&action),
                    failed: Some(e.report().reason),
                }
            }
        }
    }
}

/// A cache whose watch has listed (empty): reads of it no longer wait.
fn listed<K>(writer: &mut Writer<K>)
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    writer.apply_watcher_event(&Event::Init);
    writer.apply_watcher_event(&Event::InitDone);
}

/// kube's `Action` keeps its delay to itself; its `Debug` shows it (`Some(1.5s)`), which is all a test needs.
fn requeue_after(action: &Action) -> Option<Duration> {
    if *action == Action::await_change() {
        return None;
    }
    let text = format!("{action:?}");
    let inner = text.split("Some(").nth(1)?.split(')').next()?;
    parse_debug_duration(inner)
}

fn parse_debug_duration(text: &str) -> Option<Duration> {
    let units = [("ns", 1e-9), ("µs", 1e-6), ("ms", 1e-3), ("s", 1.0)];
    units.iter().find_map(|(unit, scale)| {
        let number = text.strip_suffix(unit)?;
        number
            .parse::<f64>()
            .ok()
            .map(|n| Duration::from_secs_f64(n * scale))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requeue_is_read_back_from_the_action() {
        assert_eq!(requeue_after(&Action::await_change()), None);
        assert_eq!(
            requeue_after(&Action::requeue(Duration::from_millis(1500))),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            requeue_after(&Action::requeue(Duration::from_secs(3600))),
            Some(Duration::from_secs(3600))
        );
    }
}
