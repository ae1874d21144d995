//! Spreading the store reads of a controller that has just started (or a new leader).
//!
//! When the controller starts it reconciles every SecretSync at once. Reading the store for each would put all of
//! them on the same phase of their refresh interval: N store reads in one block (bound only by the store's rate
//! limit), then silence, again every interval. A SecretSync whose status already shows the current source value
//! synced to the current place needs no store read to be correct now; its first look is instead moved to a random
//! moment within its refresh interval, so the reads are spread evenly from then on. Any other reconcile (a change
//! of the source, the spec or the store's place, a failure, or the moved look itself) reads the store as always.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use crate::api::{Phase, SecretSync};
use crate::plan::moved::Placement;

/// The SecretSyncs (by uid) this process has already looked at.
#[derive(Default)]
pub struct FirstLooks {
    seen: Mutex<HashSet<String>>,
}

impl FirstLooks {
    /// Whether this is the first reconcile of `uid` since the controller started; it no longer is afterwards.
    pub fn first(&self, uid: &str) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uid.to_owned())
    }

    /// Forgets a SecretSync that is gone.
    pub fn forget(&self, uid: &str) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid);
    }
}

/// Whether the status already shows `digest` synced to `place` for the current spec, Ready: then the first look
/// after a start can wait.
pub fn in_sync_by_status(obj: &SecretSync, digest: &str, place: &Placement) -> bool {
    let Some(status) = &obj.status else {
        return false;
    };
    let ready = status
        .conditions
        .iter()
        .any(|c| c.type_ == super::status::READY && c.status == "True");
    status.phase == Some(Phase::Ready)
        && ready
        && status.observed_generation == obj.metadata.generation
        && status.synced_digest.as_deref() == Some(digest)
        && status.synced_target.as_ref().is_some_and(|t| {
            t.dialect == place.dialect
                && t.endpoint == place.endpoint
                && t.remote_name == place.remote_name
        })
}

/// When the moved first look happens: `fraction` (uniform in [0, 1)) of the refresh interval from now.
pub fn spread(interval: Duration, fraction: f64) -> Duration {
    interval.mul_f64(fraction.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DialectKind, SecretSyncStatus, SyncedTarget};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    fn place() -> Placement {
        Placement {
            dialect: DialectKind::ServiceFabricMesh,
            endpoint: Some("http://sf:19080".into()),
            remote_name: "db".into(),
        }
    }

    fn synced(generation: i64, observed: i64, digest: &str, ready: bool) -> SecretSync {
        let mut obj: SecretSync = serde_json::from_value(serde_json::json!({
            "apiVersion": "secretsync.io/v1alpha1", "kind": "SecretSync",
            "metadata": {"name": "s", "namespace": "n", "generation": generation, "uid": "u"},
            "spec": {"source": {"secretRef": {"name": "src", "key": "k"}},
                     "target": {"storeRef": {"kind": "Store", "name": "sf"}, "remoteName": "db"}}
        }))
        .expect("a SecretSync");
        obj.status = Some(SecretSyncStatus {
            phase: Some(if ready { Phase::Ready } else { Phase::Failed }),
            observed_generation: Some(observed),
            conditions: vec![Condition {
                type_: super::super::status::READY.into(),
                status: if ready { "True" } else { "False" }.into(),
                reason: "Synced".into(),
                message: String::new(),
                observed_generation: Some(observed),
                last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
            }],
            synced_digest: Some(digest.into()),
            synced_target: Some(SyncedTarget {
                dialect: DialectKind::ServiceFabricMesh,
                endpoint: Some("http://sf:19080".into()),
                remote_name: "db".into(),
            }),
            ..Default::default()
        });
        obj
    }

    #[test]
    fn only_a_ready_status_of_the_current_spec_value_and_place_lets_the_first_look_wait() {
        assert!(in_sync_by_status(&synced(2, 2, "d", true), "d", &place()));
        // The source changed since.
        assert!(!in_sync_by_status(&synced(2, 2, "d", true), "d2", &place()));
        // The spec changed since.
        assert!(!in_sync_by_status(&synced(3, 2, "d", true), "d", &place()));
        // Not Ready.
        assert!(!in_sync_by_status(&synced(2, 2, "d", false), "d", &place()));
        // The store's endpoint or the remote name changed.
        let moved = Placement {
            endpoint: Some("http://other:19080".into()),
            ..place()
        };
        assert!(!in_sync_by_status(&synced(2, 2, "d", true), "d", &moved));
        let renamed = Placement {
            remote_name: "db2".into(),
            ..place()
        };
        assert!(!in_sync_by_status(&synced(2, 2, "d", true), "d", &renamed));
        // Never synced.
        let mut fresh = synced(1, 1, "d", true);
        fresh.status = None;
        assert!(!in_sync_by_status(&fresh, "d", &place()));
    }

    #[test]
    fn each_object_is_first_once_until_forgotten() {
        let looks = FirstLooks::default();
        assert!(looks.first("a"));
        assert!(!looks.first("a"));
        assert!(looks.first("b"));
        looks.forget("a");
        assert!(looks.first("a"));
    }

    #[test]
    fn moved_looks_fall_within_the_interval() {
        let interval = Duration::from_secs(60);
        assert_eq!(spread(interval, 0.0), Duration::ZERO);
        assert_eq!(spread(interval, 0.5), Duration::from_secs(30));
        assert!(spread(interval, 0.999) < interval);
        assert_eq!(spread(interval, 7.0), interval);
    }
}
