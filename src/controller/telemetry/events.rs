//! Kubernetes Events (`events.k8s.io/v1`) for what users should see in `kubectl describe`.
//!
//! Not kube-runtime's `Recorder`: it keeps every Event it published, whole, in a map it prunes only when it
//! publishes the next one, so a controller at rest holds one complete Event per SecretSync for ever (measured with
//! `make bench HEAP_PROFILE=1`: 3.3 KiB of the 6.9 KiB held per SecretSync at 2,000). Here a repeat of the same
//! Event within [`SERIES_WINDOW`] still counts in the first one's `series`, as Kubernetes' own recorders do, but
//! only a digest of the Event and its name are remembered, at most [`MAX_REMEMBERED`] of them: the memory is
//! bounded whatever the number of SecretSyncs.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as KubeEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};

pub use kube::runtime::events::{Event, EventType};

/// How long a repeat counts in the earlier Event's series rather than making a new Event (client-go's window).
pub const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);

/// Events remembered for their series at most; past it the oldest is forgotten (its next repeat is a new Event).
pub const MAX_REMEMBERED: usize = 4096;

/// Longest object name an Event's own name may start with: the name is `<object>.<16 hex digits>` and must stay
/// within Kubernetes' 253 characters.
const MAX_NAME_PREFIX: usize = 253 - 17;

pub struct Recorder {
    client: Client,
    controller: String,
    instance: String,
    recent: Mutex<Recent>,
}

impl Recorder {
    pub fn new(client: Client, controller: &str, instance: &str) -> Self {
        Recorder {
            client,
            controller: controller.to_owned(),
            instance: instance.to_owned(),
            recent: Mutex::new(Recent::default()),
        }
    }

    /// Creates the Event in the namespace of `regarding` (`default` for a cluster-scoped object), or counts it in
    /// the series of the same Event published within [`SERIES_WINDOW`].
    pub async fn publish(
        &self,
        ev: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let api: Api<KubeEvent> = Api::namespaced(self.client.clone(), namespace);
        let key = self.recent().hasher.hash_one((
            &regarding.uid,
            &regarding.namespace,
            &regarding.name,
            &regarding.kind,
            event_type(&ev.type_),
            &ev.reason,
            &ev.action,
            &ev.note,
        ));
        let now = k8s_openapi::jiff::Timestamp::now();
        let repeat = self.recent().repeat(key, Instant::now());
        if let Some((name, count)) = repeat {
            let series = serde_json::json!({
                "series": EventSeries { count, last_observed_time: MicroTime(now) }
            });
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&series))
                .await
            {
                Ok(_) => return Ok(()),
                // Gone from the API server (its event TTL) while remembered here: start a new one.
                Err(kube::Error::Api(e)) if e.code == 404 => {
                    self.recent().forget(key);
                }
                Err(e) => return Err(e),
            }
        }
        let prefix: String = regarding
            .name
            .as_deref()
            .unwrap_or("object")
            .chars()
            .take(MAX_NAME_PREFIX)
            .collect();
        let name = format!(
            "{prefix}.{:016x}",
            now.as_nanosecond().unsigned_abs() as u64
        );
        let event = KubeEvent {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.to_owned()),
                ..ObjectMeta::default()
            },
            action: Some(ev.action.clone()),
            reason: Some(ev.reason.clone()),
            note: ev.note.clone(),
            type_: Some(event_type(&ev.type_).to_owned()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            related: ev.secondary.clone(),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..KubeEvent::default()
        };
        api.create(&PostParams::default(), &event).await?;
        self.recent().remember(key, name, Instant::now());
        Ok(())
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn event_type(t: &EventType) -> &'static str {
    match t {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    }
}

/// The Events published within the series window: digest → the Event's name, its count, when it was last seen.
/// Two different Events with the same 64-bit digest (about 2⁻⁶⁴ a pair, with a per-process random key) would
/// share a series: the second would be counted on the first's Event instead of being published. Harmless enough to
/// keep eight bytes per Event rather than the Event itself.
#[derive(Default)]
struct Recent {
    hasher: std::hash::RandomState,
    seen: HashMap<u64, Seen>,
}

struct Seen {
    name: String,
    count: i32,
    last: Instant,
}

impl Recent {
    /// The name of the Event this one repeats and the count its series reaches with it, if it repeats one seen
    /// within the window.
    fn repeat(&mut self, key: u64, now: Instant) -> Option<(String, i32)> {
        let seen = self.seen.get_mut(&key)?;
        if now.duration_since(seen.last) >= SERIES_WINDOW {
            self.seen.remove(&key);
            return None;
        }
        // A first Event without a series counts as one occurrence, so its first repeat makes a series of two.
        seen.count = seen.count.saturating_add(1);
        seen.last = now;
        Some((seen.name.clone(), seen.count))
    }

    fn remember(&mut self, key: u64, name: String, now: Instant) {
        if self.seen.len() >= MAX_REMEMBERED && !self.seen.contains_key(&key) {
            self.seen
                .retain(|_, s| now.duration_since(s.last) < SERIES_WINDOW);
            if self.seen.len() >= MAX_REMEMBERED {
                let oldest = self
                    .seen
                    .iter()
                    .min_by_key(|(_, s)| s.last)
                    .map(|(k, _)| *k);
                if let Some(oldest) = oldest {
                    self.seen.remove(&oldest);
                }
            }
            // A burst's worth of entries gone: give their memory back rather than keeping the table's peak size.
            if self.seen.len() < MAX_REMEMBERED / 4 {
                self.seen.shrink_to_fit();
            }
        }
        self.seen.insert(
            key,
            Seen {
                name,
                count: 1,
                last: now,
            },
        );
    }

    fn forget(&mut self, key: u64) {
        self.seen.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeat_within_the_window_counts_in_the_first_events_series() {
        let mut recent = Recent::default();
        let t0 = Instant::now();
        assert_eq!(recent.repeat(1, t0), None, "nothing published yet");
        recent.remember(1, "sync.a".into(), t0);
        assert_eq!(
            recent.repeat(1, t0 + Duration::from_secs(10)),
            Some(("sync.a".into(), 2))
        );
        // The window counts from the last repeat, as a series' lastObservedTime does.
        assert_eq!(
            recent.repeat(
                1,
                t0 + Duration::from_secs(10) + SERIES_WINDOW - Duration::from_secs(1)
            ),
            Some(("sync.a".into(), 3))
        );
        assert_eq!(recent.repeat(2, t0), None, "another Event is not a repeat");
    }

    #[test]
    fn past_the_window_a_repeat_is_a_new_event_and_the_old_one_is_forgotten() {
        let mut recent = Recent::default();
        let t0 = Instant::now();
        recent.remember(1, "sync.a".into(), t0);
        assert_eq!(recent.repeat(1, t0 + SERIES_WINDOW), None);
        assert!(recent.seen.is_empty());
    }

    #[test]
    fn at_most_max_remembered_events_are_kept_the_oldest_going_first() {
        let mut recent = Recent::default();
        let t0 = Instant::now();
        for k in 0..MAX_REMEMBERED as u64 {
            recent.remember(k, format!("e{k}"), t0 + Duration::from_millis(k));
        }
        assert_eq!(recent.seen.len(), MAX_REMEMBERED);
        let later = t0 + Duration::from_secs(60);
        recent.remember(u64::MAX, "new".into(), later);
        assert_eq!(recent.seen.len(), MAX_REMEMBERED);
        assert!(!recent.seen.contains_key(&0), "the oldest is forgotten");
        assert!(recent.seen.contains_key(&1));
        assert_eq!(recent.repeat(u64::MAX, later), Some(("new".into(), 2)));
    }

    #[test]
    fn expired_events_make_room_before_any_live_one_is_forgotten() {
        let mut recent = Recent::default();
        let t0 = Instant::now();
        for k in 0..MAX_REMEMBERED as u64 {
            recent.remember(k, format!("e{k}"), t0);
        }
        let later = t0 + SERIES_WINDOW;
        recent.remember(u64::MAX, "new".into(), later);
        assert_eq!(recent.seen.len(), 1, "every expired one went");
        assert!(
            recent.seen.capacity() < MAX_REMEMBERED,
            "and the table gave its memory back"
        );
    }

    #[test]
    fn a_forgotten_event_is_no_longer_repeated() {
        let mut recent = Recent::default();
        let t0 = Instant::now();
        recent.remember(7, "sync.a".into(), t0);
        recent.forget(7);
        assert_eq!(recent.repeat(7, t0), None);
    }
}
