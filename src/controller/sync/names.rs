//! How an object is named in keys, logs, Events and metrics, and when it is looked at again when all is well.

use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::controller::Action;

use crate::api::duration::{self, Refresh};
use crate::api::{SecretSync, StoreKind, UsedStore};
use crate::controller::Context;
use crate::controller::stores::resolve::Connection;

/// `namespace/name`: the key of an object's backoff, fair-share slots and startup spread.
pub fn key(obj: &SecretSync) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// The store an object talks to, for sharing workers fairly between stores.
pub fn store_key(obj: &SecretSync) -> String {
    let target = &obj.spec.target;
    match (&target.store_ref, target.dialect) {
        (Some(r), _) if r.kind == StoreKind::Store => {
            format!("Store/{}/{}", obj.namespace().unwrap_or_default(), r.name)
        }
        (Some(r), _) => format!("ClusterStore/{}", r.name),
        (None, dialect) => format!(
            "{}|{}",
            dialect.map_or("", |d| d.as_str()),
            target.endpoint.as_deref().unwrap_or_default()
        ),
    }
}

/// The dialect label of an object's metrics: the inline one, or the one its store had last time.
pub fn dialect_label(obj: &SecretSync) -> String {
    obj.spec
        .target
        .dialect
        .or_else(|| obj.status.as_ref()?.store.as_ref().map(|s| s.dialect))
        .map_or("unresolved", |d| d.as_str())
        .to_owned()
}

/// The store a SecretSync names, as logs, Events and metrics name it: `Store/<namespace>/<name>`,
/// `ClusterStore/<name>` or `inline`.
pub fn store_label(obj: &SecretSync) -> String {
    match &obj.spec.target.store_ref {
        Some(r) if r.kind == StoreKind::Store => {
            format!("Store/{}/{}", obj.namespace().unwrap_or_default(), r.name)
        }
        Some(r) => format!("ClusterStore/{}", r.name),
        None => "inline".to_owned(),
    }
}

/// The `store` label of the counters: [`store_label`] when that store exists, `unresolved` when it does not. A
/// store name a SecretSync merely mentions is its author's choice, and a counter's series lives as long as the
/// process: a tenant renaming a reference in a loop would otherwise grow `/metrics` (and Prometheus) without bound.
pub async fn counted_store(obj: &SecretSync, ctx: &Context) -> String {
    let exists = match &obj.spec.target.store_ref {
        Some(r) if r.kind == StoreKind::Store => {
            let ns = obj.namespace().unwrap_or_default();
            matches!(ctx.lookup.store(&ns, &r.name).await, Ok(Some(_)))
        }
        Some(r) => {
            let ns = obj.namespace().unwrap_or_default();
            matches!(ctx.lookup.cluster_store(&ns, &r.name).await, Ok(Some(_)))
        }
        None => true,
    };
    if exists {
        store_label(obj)
    } else {
        "unresolved".to_owned()
    }
}

/// When to look again at an object that needs nothing now: its refresh interval with jitter, or only on a change
/// (`0s`, or an interval that is not usable and is reported as such).
pub fn refresh_wait(obj: &SecretSync) -> Option<Duration> {
    match duration::parse_refresh(&obj.spec.refresh_interval) {
        Ok(Refresh::Every(interval)) => Some(crate::controller::pacing::backoff::with_jitter(
            interval,
            rand::random::<f64>(),
        )),
        Ok(Refresh::OnChangeOnly) | Err(_) => None,
    }
}

pub fn after(wait: Option<Duration>) -> Action {
    wait.map_or_else(Action::await_change, Action::requeue)
}

/// The namespaced Store the SecretSync names, if it names one.
pub fn namespaced_store(obj: &SecretSync) -> Option<&str> {
    obj.spec
        .target
        .store_ref
        .as_ref()
        .filter(|r| r.kind == StoreKind::Store)
        .map(|r| r.name.as_str())
}

/// The store as the status names it.
pub fn used_store(connection: &Connection) -> UsedStore {
    UsedStore {
        kind: connection.store.as_ref().map(|r| r.kind),
        name: connection.store.as_ref().map(|r| r.name.clone()),
        dialect: connection.dialect,
    }
}
