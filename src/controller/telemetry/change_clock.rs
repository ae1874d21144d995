//! When the controller first saw each source Secret change that is not pushed yet, for
//! `secretsync_push_latency_seconds`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Changes waiting to be pushed, at most [`SeenChanges::LIMIT`] (beyond that, new changes go unmeasured rather
/// than growing the map: a change whose SecretSync is deleted before it is pushed is never taken out).
#[derive(Default)]
pub struct SeenChanges(Mutex<HashMap<(String, String), Instant>>);

impl SeenChanges {
    pub const LIMIT: usize = 65_536;

    /// The Secret `namespace/name`, the source of at least one SecretSync, changed. An earlier change not
    /// pushed yet keeps its time: the push that follows carries both.
    pub fn saw(&self, namespace: &str, name: &str) {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() < Self::LIMIT {
            seen.entry((namespace.to_owned(), name.to_owned()))
                .or_insert_with(Instant::now);
        }
    }

    /// A reconcile of a SecretSync with this source finished: how long ago its change was first seen, if one
    /// was waiting.
    pub fn settled(&self, namespace: &str, name: &str) -> Option<Duration> {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.remove(&(namespace.to_owned(), name.to_owned()))
            .map(|at| at.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_reports_the_time_since_the_first_unpushed_change_once() {
        let seen = SeenChanges::default();
        seen.saw("ns", "db");
        std::thread::sleep(Duration::from_millis(60));
        seen.saw("ns", "db");
        assert_eq!(seen.settled("ns", "other"), None);
        let waited = seen.settled("ns", "db").expect("a change was waiting");
        assert!(
            waited >= Duration::from_millis(60),
            "timed from the first change: {waited:?}"
        );
        assert_eq!(seen.settled("ns", "db"), None, "reported once");
    }

    #[test]
    fn the_map_stops_growing_at_its_limit() {
        let seen = SeenChanges::default();
        for i in 0..SeenChanges::LIMIT + 10 {
            seen.saw("ns", &i.to_string());
        }
        assert!(seen.settled("ns", "0").is_some());
        assert!(
            seen.settled("ns", &(SeenChanges::LIMIT + 5).to_string())
                .is_none()
        );
    }
}
