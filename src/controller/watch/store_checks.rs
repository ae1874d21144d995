//! The periodic store checks' own controller: its watch of the stores and of the credentials Secrets they read.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::utils::PredicateConfig;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};

use crate::api::Store;
use crate::controller::{Context, Error, stores, watch};

/// A controller running a store kind's periodic check (see [`store_check`]), and its cache of the stores.
pub(crate) fn store_checks<K, F>(
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
pub(crate) fn store_uses_secret(store: &Store, ns: &str, name: &str) -> bool {
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
pub(crate) fn checks_for_secret<K>(
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
