//! How many SecretSyncs each store has in each phase, for `secretsync_syncs`: counted from the controller's
//! cache, so it costs no API request and holds nothing per object. The same pass removes the series of stores that
//! are gone.

use std::collections::{BTreeMap, BTreeSet};

use kube::ResourceExt;
use kube::runtime::reflector::Store as Cache;

use crate::api::{ClusterStore, Phase, SecretSync, Store};

/// The store labels that name no store: they stay whatever stores exist.
const NOT_A_STORE: [&str; 2] = ["inline", "unresolved"];

/// The controller's caches of stores: those of its SecretSyncs' watches and those of its store checks.
#[derive(Default)]
pub struct Stores {
    pub stores: Vec<Cache<Store>>,
    pub cluster_stores: Vec<Cache<ClusterStore>>,
}

impl Stores {
    /// The label of every store that one of the caches holds (`Store/<namespace>/<name>`, `ClusterStore/<name>`).
    pub fn labels(&self) -> BTreeSet<String> {
        let stores = self.stores.iter().flat_map(|c| c.state()).map(|s| {
            format!(
                "Store/{}/{}",
                s.namespace().unwrap_or_default(),
                s.name_any()
            )
        });
        let cluster_stores = self
            .cluster_stores
            .iter()
            .flat_map(|c| c.state())
            .map(|s| format!("ClusterStore/{}", s.name_any()));
        stores.chain(cluster_stores).collect()
    }
}

/// A SecretSync's store label as metrics show it: `label` when that store exists (or it names none), `unresolved`
/// when it does not, so that names written in SecretSyncs cannot add series without bound.
pub fn counted(label: String, existing: &BTreeSet<String>) -> String {
    if existing.contains(&label) || NOT_A_STORE.contains(&label.as_str()) {
        label
    } else {
        NOT_A_STORE[1].to_owned()
    }
}

/// The store labels in `shown` whose store no longer exists.
pub fn gone<'a>(
    shown: &'a BTreeSet<String>,
    existing: &'a BTreeSet<String>,
) -> impl Iterator<Item = &'a String> {
    shown
        .iter()
        .filter(|s| !existing.contains(*s) && !NOT_A_STORE.contains(&s.as_str()))
}

/// One row of the census: a store (as metrics name it), the dialect and the phase.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row {
    pub store: String,
    pub dialect: String,
    pub phase: &'static str,
}

/// Counts SecretSyncs by store, dialect and phase; an object without a status yet is `Pending`.
pub fn count<'a>(
    syncs: impl IntoIterator<Item = &'a SecretSync>,
    store_label: impl Fn(&SecretSync) -> String,
    dialect_label: impl Fn(&SecretSync) -> String,
) -> BTreeMap<Row, i64> {
    let mut rows = BTreeMap::new();
    for sync in syncs {
        let phase = sync
            .status
            .as_ref()
            .and_then(|s| s.phase)
            .unwrap_or(Phase::Pending);
        let row = Row {
            store: store_label(sync),
            dialect: dialect_label(sync),
            phase: phase_name(phase),
        };
        *rows.entry(row).or_insert(0) += 1;
    }
    rows
}

/// Counts the SecretSyncs in `Observe` mode that are not in sync, by store.
pub fn out_of_sync<'a>(
    syncs: impl IntoIterator<Item = &'a SecretSync>,
    store_label: impl Fn(&SecretSync) -> String,
) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    for sync in syncs {
        if crate::controller::sync::observation::out_of_sync(sync.spec.mode, sync.status.as_ref()) {
            *counts.entry(store_label(sync)).or_insert(0) += 1;
        }
    }
    counts
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Pending => "Pending",
        Phase::Creating => "Creating",
        Phase::Ready => "Ready",
        Phase::Failed => "Failed",
        Phase::Observing => "Observing",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sync(name: &str, store: &str, phase: Option<&str>) -> SecretSync {
        let mut json = serde_json::json!({
            "apiVersion": "secretsync.io/v1alpha1", "kind": "SecretSync",
            "metadata": {"name": name, "namespace": "team-a"},
            "spec": {"source": {"secretRef": {"name": "s", "key": "k"}},
                     "target": {"storeRef": {"kind": "Store", "name": store}}}
        });
        if let Some(p) = phase {
            json["status"] = serde_json::json!({"phase": p});
        }
        serde_json::from_value(json).expect("a SecretSync")
    }

    #[test]
    fn syncs_are_counted_per_store_and_phase_with_pending_for_no_status() {
        let syncs = [
            sync("a", "vault", Some("Ready")),
            sync("b", "vault", Some("Ready")),
            sync("c", "vault", Some("Failed")),
            sync("d", "barbican", None),
        ];
        let rows = count(
            &syncs,
            |s| {
                s.spec
                    .target
                    .store_ref
                    .as_ref()
                    .map(|r| r.name.clone())
                    .unwrap_or_default()
            },
            |_| "AzureKeyVault".to_owned(),
        );
        let row = |store: &str, phase| Row {
            store: store.into(),
            dialect: "AzureKeyVault".into(),
            phase,
        };
        assert_eq!(rows.get(&row("vault", "Ready")), Some(&2));
        assert_eq!(rows.get(&row("vault", "Failed")), Some(&1));
        assert_eq!(rows.get(&row("barbican", "Pending")), Some(&1));
        assert_eq!(rows.len(), 3);
    }

    #[test]
    fn a_store_that_does_not_exist_is_unresolved_and_its_series_go() {
        let existing = BTreeSet::from(["Store/team-a/vault".to_owned()]);
        assert_eq!(
            counted("Store/team-a/vault".into(), &existing),
            "Store/team-a/vault"
        );
        assert_eq!(counted("Store/team-a/nope".into(), &existing), "unresolved");
        assert_eq!(counted("ClusterStore/nope".into(), &existing), "unresolved");
        assert_eq!(counted("inline".into(), &existing), "inline");

        let shown = BTreeSet::from([
            "Store/team-a/vault".to_owned(),
            "Store/team-a/deleted".to_owned(),
            "inline".to_owned(),
            "unresolved".to_owned(),
        ]);
        assert_eq!(
            gone(&shown, &existing).collect::<Vec<_>>(),
            ["Store/team-a/deleted"]
        );
    }

    #[test]
    fn the_stores_of_every_cache_are_known() {
        use kube::runtime::reflector::store;
        use kube::runtime::watcher::Event;
        let (stores, mut writer) = store::<Store>();
        writer.apply_watcher_event(&Event::Apply(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "secretsync.io/v1alpha1", "kind": "Store",
                "metadata": {"name": "vault", "namespace": "team-a"},
                "spec": {"dialect": "Barbican", "endpoint": "http://b:9311"}
            }))
            .expect("a Store"),
        ));
        let (cluster_stores, mut writer) = store::<ClusterStore>();
        writer.apply_watcher_event(&Event::Apply(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "secretsync.io/v1alpha1", "kind": "ClusterStore",
                "metadata": {"name": "shared"},
                "spec": {"dialect": "Barbican", "endpoint": "http://b:9311"}
            }))
            .expect("a ClusterStore"),
        ));
        let all = Stores {
            stores: vec![stores, store::<Store>().0],
            cluster_stores: vec![cluster_stores],
        };
        assert_eq!(
            all.labels(),
            BTreeSet::from([
                "ClusterStore/shared".to_owned(),
                "Store/team-a/vault".to_owned()
            ])
        );
    }
}
