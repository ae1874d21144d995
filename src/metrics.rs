//! Prometheus metrics. Labels carry dialects, operations and outcome classes only: never names of secrets or
//! anything derived from a value.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// The store the SecretSync names (`Store/<namespace>/<name>`, `ClusterStore/<name>`, `inline`).
    pub store: String,
    pub dialect: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DialectLabels {
    pub dialect: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeferLabels {
    pub dialect: String,
    /// `store` or `namespace`: the fair share that was full.
    pub share: String,
}

/// A store as `Store/<namespace>/<name>` or `ClusterStore/<name>` (`inline` for an inline target).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreLabels {
    pub store: String,
}

/// SecretSyncs of one store and dialect in one phase.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SyncLabels {
    pub store: String,
    pub dialect: String,
    /// `Pending` (no status yet), `Creating`, `Ready` or `Failed`.
    pub phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    pub store: String,
    /// `StoreNotFound`, `StoreNotAllowed`, `SourceNotAllowed`, `InlineTargetNotAllowed` or `InvalidSpec`.
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabels {
    pub dialect: String,
    pub operation: String,
    pub outcome: String,
}

/// A series that names a store, kept so that it can go with the store.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
enum StoreSeries {
    Reconciles(ReconcileLabels),
    Refusals(RefusalLabels),
    Ready,
    DriftRepairs,
}

/// Every metric SecretSync exports.
pub struct Metrics {
    registry: Registry,
    // The families labelled by store are written through the methods below, which note each series under its
    // store, so that [`Metrics::remove_store`] finds them all.
    reconciles: Family<ReconcileLabels, Counter>,
    pub reconcile_duration: Family<DialectLabels, Histogram>,
    pub backend_requests: Family<BackendLabels, Counter>,
    pub queue_depth: Gauge,
    pub remote_writes: Family<DialectLabels, Counter>,
    pub deferred: Family<DeferLabels, Counter>,
    pub reconcile_panics: Family<DialectLabels, Counter>,
    pub remote_secrets_left: Family<DialectLabels, Counter>,
    store_refusals: Family<RefusalLabels, Counter>,
    store_ready: Family<StoreLabels, Gauge>,
    pub syncs: Family<SyncLabels, Gauge>,
    pub leader: Gauge,
    pub push_latency: Family<DialectLabels, Histogram>,
    drift_repairs: Family<StoreLabels, Counter>,
    pub out_of_sync: Family<StoreLabels, Gauge>,
    /// The series of `reconciles`, `store_refusals` and `store_ready`, by store label.
    by_store: Mutex<HashMap<String, HashSet<StoreSeries>>>,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("secretsync");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles by store, dialect and result",
            reconciles.clone(),
        );
        let reconcile_duration = Family::<DialectLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
        });
        registry.register(
            "reconcile_duration_seconds",
            "Time taken by one reconcile",
            reconcile_duration.clone(),
        );
        let backend_requests = Family::<BackendLabels, Counter>::default();
        registry.register(
            "backend_requests",
            "Requests to secret stores by dialect, operation and outcome",
            backend_requests.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Requests waiting for a token of their store endpoint's rate limit",
            queue_depth.clone(),
        );
        let remote_writes = Family::<DialectLabels, Counter>::default();
        registry.register(
            "remote_writes",
            "Reconciles that wrote to a secret store (create, new version, metadata update or replace), successful or not",
            remote_writes.clone(),
        );
        let deferred = Family::<DeferLabels, Counter>::default();
        registry.register(
            "reconciles_deferred",
            "Reconciles put back in the queue, untouched, because their store or their namespace already had its share of workers",
            deferred.clone(),
        );
        let reconcile_panics = Family::<DialectLabels, Counter>::default();
        registry.register(
            "reconcile_panics",
            "Reconciles ended by a panic (the object is reported Failed with reason InternalError and retried with backoff)",
            reconcile_panics.clone(),
        );
        let remote_secrets_left = Family::<DialectLabels, Counter>::default();
        registry.register(
            "remote_secrets_left",
            "Remote secrets left in place because their cleanup did not succeed within the cleanup timeout of a namespace being deleted",
            remote_secrets_left.clone(),
        );
        let store_refusals = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "store_refusals",
            "Reconciles that sent nothing because the store was missing, did not admit the namespace or the source Secret, or the target was inline without --allow-inline-targets",
            store_refusals.clone(),
        );
        let store_ready = Family::<StoreLabels, Gauge>::default();
        registry.register(
            "store_ready",
            "1 when a store's last check read its credentials and reached it, 0 otherwise",
            store_ready.clone(),
        );
        let syncs = Family::<SyncLabels, Gauge>::default();
        registry.register(
            "syncs",
            "SecretSyncs by store, dialect and phase (status.phase; Pending before the first status), counted every 15 seconds from the controller's cache",
            syncs.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica reconciles (it holds the leader-election Lease, or runs without leader election), 0 while it waits for the Lease",
            leader.clone(),
        );
        let push_latency = Family::<DialectLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ])
        });
        registry.register(
            "push_latency_seconds",
            "Time from the controller seeing a source Secret change to the store acknowledging the new value",
            push_latency.clone(),
        );
        let drift_repairs = Family::<StoreLabels, Counter>::default();
        registry.register(
            "drift_repairs",
            "Refreshes that found a remote secret changed or removed in the store since SecretSync last wrote it, and put it right",
            drift_repairs.clone(),
        );
        let out_of_sync = Family::<StoreLabels, Gauge>::default();
        registry.register(
            "out_of_sync",
            "SecretSyncs in Observe mode whose store does not match the source (InSync False), counted every 15 seconds from the controller's cache",
            out_of_sync.clone(),
        );
        Arc::new(Metrics {
            registry,
            drift_repairs,
            out_of_sync,
            reconciles,
            reconcile_duration,
            backend_requests,
            queue_depth,
            remote_writes,
            deferred,
            reconcile_panics,
            remote_secrets_left,
            store_refusals,
            store_ready,
            syncs,
            leader,
            push_latency,
            by_store: Mutex::default(),
        })
    }

    /// Counts one reconcile.
    pub fn count_reconcile(&self, labels: ReconcileLabels) {
        self.write(
            &labels.store,
            StoreSeries::Reconciles(labels.clone()),
            || {
                self.reconciles.get_or_create(&labels).inc();
            },
        );
    }

    /// Counts one reconcile refused by its store.
    pub fn count_refusal(&self, labels: RefusalLabels) {
        self.write(&labels.store, StoreSeries::Refusals(labels.clone()), || {
            self.store_refusals.get_or_create(&labels).inc();
        });
    }

    /// Counts one refresh that put right a remote secret changed behind SecretSync's back.
    pub fn count_drift_repair(&self, store: &str) {
        let labels = StoreLabels {
            store: store.to_owned(),
        };
        self.write(store, StoreSeries::DriftRepairs, || {
            self.drift_repairs.get_or_create(&labels).inc();
        });
    }

    /// Creates a store's `drift_repairs` series at 0 if it has none yet.
    pub fn touch_drift_repairs(&self, store: &str) {
        let labels = StoreLabels {
            store: store.to_owned(),
        };
        self.write(store, StoreSeries::DriftRepairs, || {
            let _ = self.drift_repairs.get_or_create(&labels);
        });
    }

    /// Sets `store_ready` of a store after its check.
    pub fn set_store_ready(&self, store: &str, ready: bool) {
        let labels = StoreLabels {
            store: store.to_owned(),
        };
        self.write(store, StoreSeries::Ready, || {
            self.store_ready
                .get_or_create(&labels)
                .set(i64::from(ready));
        });
    }

    /// Writes a series of `store` and notes it under the store, in one go under the index's lock (so that
    /// [`Metrics::remove_store`] never misses a series written while it runs).
    fn write(&self, store: &str, series: StoreSeries, write: impl FnOnce()) {
        let mut by_store = self.by_store();
        write();
        by_store.entry(store.to_owned()).or_default().insert(series);
    }

    /// Every store label that some series of `reconciles`, `store_refusals` or `store_ready` carries.
    pub fn stores(&self) -> BTreeSet<String> {
        self.by_store().keys().cloned().collect()
    }

    /// Removes every series of `reconciles`, `store_refusals` and `store_ready` labelled with `store` (a store
    /// that is gone: its series would otherwise stay for the life of the process).
    pub fn remove_store(&self, store: &str) {
        let mut by_store = self.by_store();
        for series in by_store.remove(store).unwrap_or_default() {
            match series {
                StoreSeries::Reconciles(labels) => self.reconciles.remove(&labels),
                StoreSeries::Refusals(labels) => self.store_refusals.remove(&labels),
                StoreSeries::Ready => self.store_ready.remove(&StoreLabels {
                    store: store.to_owned(),
                }),
                StoreSeries::DriftRepairs => self.drift_repairs.remove(&StoreLabels {
                    store: store.to_owned(),
                }),
            };
        }
    }

    /// The index stays consistent under a panic elsewhere (each change is made under the lock in one go), so a
    /// poisoned lock is used as it is.
    fn by_store(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashSet<StoreSeries>>> {
        self.by_store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts one request to a store. `outcome` is a class such as `ok`, `retry`, `conflict`, `permanent`.
    pub fn backend_request(&self, dialect: &str, operation: &str, outcome: &str) {
        self.backend_requests
            .get_or_create(&BackendLabels {
                dialect: dialect.to_owned(),
                operation: operation.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_requests_are_rendered_with_their_labels() {
        let m = Metrics::new();
        m.backend_request("Barbican", "create", "ok");
        m.backend_request("Barbican", "create", "ok");
        let text = m.render();
        assert!(
            text.contains(
                r#"secretsync_backend_requests_total{dialect="Barbican",operation="create",outcome="ok"} 2"#
            ),
            "{text}"
        );
    }

    #[test]
    fn the_series_of_a_removed_store_are_gone_and_the_others_stay() {
        let m = Metrics::new();
        for store in ["Store/team-a/gone", "ClusterStore/kept"] {
            m.set_store_ready(store, true);
            for result in ["ok", "error"] {
                m.count_reconcile(ReconcileLabels {
                    store: store.to_owned(),
                    dialect: "Barbican".to_owned(),
                    result: result.to_owned(),
                });
            }
            m.count_refusal(RefusalLabels {
                store: store.to_owned(),
                reason: "StoreNotAllowed".to_owned(),
            });
        }
        let text = m.render();
        assert_eq!(text.matches("Store/team-a/gone").count(), 4, "{text}");
        assert_eq!(
            m.stores(),
            BTreeSet::from([
                "ClusterStore/kept".to_owned(),
                "Store/team-a/gone".to_owned()
            ])
        );

        m.remove_store("Store/team-a/gone");
        let text = m.render();
        assert!(
            !text.lines().any(|l| l.contains("Store/team-a/gone")),
            "{text}"
        );
        assert_eq!(text.matches("ClusterStore/kept").count(), 4, "{text}");
        assert_eq!(m.stores(), BTreeSet::from(["ClusterStore/kept".to_owned()]));
    }
}
