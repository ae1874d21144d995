//! Counts SecretSyncs for `secretsync_syncs` and `secretsync_out_of_sync` every few seconds, from the caches.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::reflector;

use crate::api::SecretSync;
use crate::controller::run::synced;
use crate::controller::{sync, telemetry};
use crate::metrics::Metrics;

/// Keeps `secretsync_syncs` up to date from the caches, every [`CENSUS_EVERY`], and removes the series of stores
/// that are gone.
pub(crate) async fn count_syncs(
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
            |s| telemetry::census::counted(sync::names::store_label(s), &existing),
            sync::names::dialect_label,
        );
        for (row, count) in &rows {
            metrics.syncs.get_or_create(&labels(row)).set(*count);
        }
        for gone in shown.iter().filter(|r| !rows.contains_key(*r)) {
            metrics.syncs.remove(&labels(gone));
        }
        shown = rows.into_keys().collect();
        let mut out_of_sync = telemetry::census::out_of_sync(objects.iter().map(|o| &**o), |s| {
            telemetry::census::counted(sync::names::store_label(s), &existing)
        });
        // Every store has its series from the start, at 0: dashboards and `increase()` see the first one.
        for label in &existing {
            out_of_sync.entry(label.clone()).or_insert(0);
            metrics.touch_drift_repairs(label);
        }
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
