//! Per-object exponential backoff with full jitter.
//!
//! Stores throttle whole accounts, so a failing object must not hammer them: the first retry waits at least a
//! second and each failure doubles the ceiling up to five minutes. Jitter keeps many failing objects from
//! retrying in lockstep.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rand::RngExt;

pub const BASE: Duration = Duration::from_secs(1);
pub const CAP: Duration = Duration::from_secs(300);

/// The delay before retry number `failures` (1 = first failure): uniformly in [ceiling/2, ceiling], where the
/// ceiling is `BASE * 2^(failures-1)` capped at `CAP`.
pub fn delay(failures: u32, jitter: f64) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    let ceiling = BASE.saturating_mul(1 << exp).min(CAP);
    let jitter = jitter.clamp(0.0, 1.0);
    ceiling.mul_f64(0.5 + 0.5 * jitter).max(BASE)
}

/// Failure counts by object key.
#[derive(Default)]
pub struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// Records a failure and returns how long to wait before the next attempt.
    pub fn next(&self, key: &str) -> Duration {
        let n = {
            let mut map = self.lock();
            let n = map.entry(key.to_owned()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        delay(n, rand::rng().random::<f64>())
    }

    /// Forgets the failures of an object that succeeded.
    pub fn reset(&self, key: &str) {
        self.lock().remove(key);
    }

    /// A count left half-updated by a panic elsewhere is still a count: use a poisoned map as it is, rather than
    /// turning one panic into a panic of every later reconcile.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `interval` plus up to 10% jitter, so refreshes of many objects spread out.
pub fn with_jitter(interval: Duration, jitter: f64) -> Duration {
    interval + interval.mul_f64(0.1 * jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_retry_waits_at_least_a_second() {
        assert_eq!(delay(1, 0.0), BASE);
        assert_eq!(delay(1, 1.0), BASE);
        assert_eq!(delay(0, 0.0), BASE);
    }

    #[test]
    fn ceiling_doubles_then_caps() {
        assert_eq!(delay(2, 1.0), Duration::from_secs(2));
        assert_eq!(delay(4, 1.0), Duration::from_secs(8));
        assert_eq!(delay(4, 0.0), Duration::from_secs(4));
        assert_eq!(delay(30, 1.0), CAP);
        assert_eq!(delay(u32::MAX, 1.0), CAP);
    }

    #[test]
    fn counts_are_per_object_and_reset_on_success() {
        let b = Backoff::default();
        for _ in 0..5 {
            b.next("a");
        }
        // "b" is on its first failure: at most one second.
        assert_eq!(b.next("b"), BASE);
        assert!(b.next("a") >= Duration::from_secs(16));
        b.reset("a");
        assert_eq!(b.next("a"), BASE);
    }

    #[test]
    fn refresh_jitter_is_at_most_ten_percent() {
        let h = Duration::from_secs(3600);
        assert_eq!(with_jitter(h, 0.0), h);
        assert_eq!(with_jitter(h, 1.0), Duration::from_secs(3960));
    }
}
