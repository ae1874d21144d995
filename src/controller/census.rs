//! How many SecretSyncs each store has in each phase, for `secretsync_syncs`: counted from the controller's
//! cache, so it costs no API request and holds nothing per object.

use std::collections::BTreeMap;

use crate::api::{Phase, SecretSync};

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

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Pending => "Pending",
        Phase::Creating => "Creating",
        Phase::Ready => "Ready",
        Phase::Failed => "Failed",
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
}
