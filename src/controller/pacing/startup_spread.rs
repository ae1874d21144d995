//! Spreading the store reads of a controller that has just started (or a new leader).
//!
//! When the controller starts it reconciles every SecretSync at once. Reading the store for each would put all of
//! them on the same phase of their refresh interval: N store reads in one block (bound only by the store's rate
//! limit), then silence, again every interval. A SecretSync whose status already shows the current source value
//! synced to the current place needs no store read to be correct now; its first look is instead moved to a random
//! moment within its refresh interval, so the reads are spread evenly from then on. Any other reconcile (a change
//! of the source, the spec or the store's place, a failure, or the moved look itself) reads the store as always.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::api::{Phase, SecretSync, UsedStore};
use crate::plan::moved::Placement;

/// Where a SecretSync stands since the controller started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Look {
    /// Its first store read is moved to this moment. Reconciles before it (the Secret watch's first listing
    /// triggers one for every SecretSync) read nothing while the status still shows it in sync.
    MovedTo(Instant),
    /// Its store was read (or had to be) since the start: reconciles read the store as always.
    Done,
}

/// The SecretSyncs (by uid) this process has reconciled, and when each may first read its store.
#[derive(Default)]
pub struct FirstLooks {
    /// Keyed by a digest of the uid: one entry per SecretSync for the controller's lifetime, and the uid's own
    /// text would double the entry's size. Two uids sharing a digest (2⁻⁶⁴) would only share their first look.
    looks: Mutex<HashMap<u64, Look>>,
    hasher: std::hash::RandomState,
}

impl FirstLooks {
    /// How long the reconcile of `uid` may wait before reading its store, if at all: `in_sync` says its status
    /// shows the current value synced to the current place, `interval` is its refresh interval (none: reads only
    /// on changes), `fraction` is uniform in [0, 1).
    pub fn wait(
        &self,
        uid: &str,
        in_sync: bool,
        interval: Option<Duration>,
        now: Instant,
        fraction: f64,
    ) -> Option<Duration> {
        let key = self.hasher.hash_one(uid);
        let mut looks = self.looks.lock().unwrap_or_else(|e| e.into_inner());
        let look = looks.get(&key).copied();
        match (look, interval) {
            (None, Some(interval)) if in_sync => {
                let wait = spread(interval, fraction);
                looks.insert(key, Look::MovedTo(now + wait));
                Some(wait)
            }
            (Some(Look::MovedTo(at)), _) if in_sync && now < at => Some(at - now),
            (Some(Look::Done), _) => None,
            _ => {
                looks.insert(key, Look::Done);
                None
            }
        }
    }

    /// Forgets a SecretSync that is gone.
    pub fn forget(&self, uid: &str) {
        self.looks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.hasher.hash_one(uid));
    }
}

/// The status is Ready for the current spec.
fn ready_for_spec(obj: &SecretSync) -> Option<&crate::api::SecretSyncStatus> {
    let status = obj.status.as_ref()?;
    let ready = status
        .conditions
        .iter()
        .any(|c| c.type_ == crate::controller::sync::status::READY && c.status == "True");
    (status.phase == Some(Phase::Ready)
        && ready
        && status.observed_generation == obj.metadata.generation)
        .then_some(status)
}

/// Whether the status already shows every wanted remote secret (name, digest) in sync, and no other, in the store
/// it names: then the first look after a start can wait, as for one remote secret.
pub fn all_in_sync_by_status(obj: &SecretSync, store: &UsedStore, wanted: &[(&str, &str)]) -> bool {
    let Some(status) = ready_for_spec(obj) else {
        return false;
    };
    status.store.as_ref() == Some(store)
        && status.remotes.len() == wanted.len()
        && wanted.iter().all(|(name, digest)| {
            status
                .remotes
                .iter()
                .any(|r| r.name == *name && r.in_sync && r.digest.as_deref() == Some(*digest))
        })
}

/// Whether the status already shows `digest` synced to `place` for the current spec, Ready: then the first look
/// after a start can wait.
pub fn in_sync_by_status(obj: &SecretSync, digest: &str, place: &Placement) -> bool {
    let Some(status) = ready_for_spec(obj) else {
        return false;
    };
    status.synced_digest.as_deref() == Some(digest)
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
                type_: crate::controller::sync::status::READY.into(),
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
    fn the_first_read_waits_once_for_its_moment_and_every_trigger_before_it_waits_too() {
        let looks = FirstLooks::default();
        let t0 = Instant::now();
        let minute = Some(Duration::from_secs(60));
        let secs = Duration::from_secs;
        // The start: moved to half the interval.
        assert_eq!(looks.wait("a", true, minute, t0, 0.5), Some(secs(30)));
        // The Secret watch's first listing triggers it again: it waits for the same moment.
        assert_eq!(
            looks.wait("a", true, minute, t0 + secs(10), 0.9),
            Some(secs(20))
        );
        // The moment comes: the store is read, and from then on always.
        assert_eq!(looks.wait("a", true, minute, t0 + secs(30), 0.1), None);
        assert_eq!(looks.wait("a", true, minute, t0 + secs(31), 0.1), None);
        // A change before the moment reads at once, and so does everything after it.
        assert_eq!(looks.wait("b", true, minute, t0, 0.5), Some(secs(30)));
        assert_eq!(looks.wait("b", false, minute, t0 + secs(1), 0.5), None);
        assert_eq!(looks.wait("b", true, minute, t0 + secs(2), 0.5), None);
        // Not in sync at the start, or no periodic refresh: read at once.
        assert_eq!(looks.wait("c", false, minute, t0, 0.5), None);
        assert_eq!(looks.wait("c", true, minute, t0 + secs(1), 0.5), None);
        assert_eq!(looks.wait("d", true, None, t0, 0.5), None);
        // A SecretSync gone and made again (same uid only in this test) starts over.
        looks.forget("a");
        assert_eq!(
            looks.wait("a", true, minute, t0 + secs(40), 0.0),
            Some(secs(0))
        );
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
