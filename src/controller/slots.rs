//! Fair shares of the reconcile workers: per store, and per namespace.
//!
//! Each store is paced by its rate limiter, and a reconcile waiting for a token (or for a store that hangs) holds
//! one of the controller's workers. Without a cap, a thousand SecretSyncs queued for one throttled store would take
//! every worker and a SecretSync for another store would wait minutes behind them; and a namespace whose tenants
//! point many SecretSyncs at many slow stores would do the same to every other namespace. So at most a share of the
//! workers work on one key (a store, or a namespace) at a time; the others are put back in the queue, without any
//! call to Kubernetes or the store, and come back after a delay that grows with the number waiting for that key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A deferred object not seen again for this long was deleted (or admitted elsewhere): it leaves the backlog.
const FORGET_AFTER: Duration = Duration::from_secs(150);

#[derive(Default)]
struct Share {
    busy: usize,
    /// Objects sent back and not admitted since, with when they were last sent back: the key's backlog.
    waiting: HashMap<String, Instant>,
}

type Ledger = Arc<Mutex<HashMap<String, Share>>>;

/// Slots per key: at most `per_key` holders of one key at once.
pub struct Slots {
    per_key: usize,
    shares: Ledger,
}

/// A worker's hold on one of its key's slots, given back when dropped.
pub struct Slot {
    key: String,
    shares: Ledger,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut shares = lock(&self.shares);
        if let Some(s) = shares.get_mut(&self.key) {
            s.busy = s.busy.saturating_sub(1);
            if s.busy == 0 && s.waiting.is_empty() {
                shares.remove(&self.key);
            }
        }
    }
}

/// How many workers one namespace and one store may hold at once, out of `concurrency`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shares {
    pub per_namespace: usize,
    pub per_store: usize,
}

impl Shares {
    /// A namespace gets at most half the workers (at least one), so that a tenant's two namespaces of hanging
    /// stores cannot take them all; a store gets fewer than its namespace (at least one), so that a throttled store
    /// cannot take every worker its own namespace has either (with equal shares, one busy store filled its
    /// namespace's share and the namespace's other stores waited behind it).
    pub fn of(concurrency: usize) -> Shares {
        let concurrency = concurrency.max(1);
        let per_namespace = (concurrency / 2).max(1);
        let per_store = concurrency
            .div_ceil(2)
            .min(per_namespace.saturating_sub(1))
            .max(1);
        Shares {
            per_namespace,
            per_store,
        }
    }
}

/// The map stays consistent under a panic elsewhere (every change is one statement), so a poisoned lock is used
/// as it is rather than turning one panic into a panic of every later reconcile.
fn lock(shares: &Ledger) -> std::sync::MutexGuard<'_, HashMap<String, Share>> {
    shares
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A deferred object's wait before its next try: 1 s, plus 10 ms for every other object waiting for the same
/// key (so a long backlog does not spin), at most 60 s, spread by `jitter` in [0, 1) over ±50%.
pub fn defer_delay(backlog: usize, jitter: f64) -> Duration {
    let base = Duration::from_millis(1000 + 10 * backlog as u64).min(Duration::from_secs(60));
    base.mul_f64(0.5 + jitter.clamp(0.0, 1.0))
}

impl Slots {
    pub fn new(per_key: usize) -> Self {
        Slots {
            per_key: per_key.max(1),
            shares: Arc::default(),
        }
    }

    /// A slot for `object` on `key`, or the key's backlog (including `object`) when every slot is taken.
    pub fn try_enter(&self, key: &str, object: &str) -> Result<Slot, usize> {
        self.try_enter_at(key, object, Instant::now())
    }

    fn try_enter_at(&self, key: &str, object: &str, now: Instant) -> Result<Slot, usize> {
        let mut shares = lock(&self.shares);
        let s = shares.entry(key.to_owned()).or_default();
        if s.busy >= self.per_key {
            s.waiting
                .retain(|_, at| now.saturating_duration_since(*at) < FORGET_AFTER);
            s.waiting.insert(object.to_owned(), now);
            return Err(s.waiting.len());
        }
        s.busy += 1;
        s.waiting.remove(object);
        Ok(Slot {
            key: key.to_owned(),
            shares: self.shares.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_store_sends_objects_back_and_other_stores_still_get_slots() {
        let slots = Slots::new(2);
        let a1 = slots.try_enter("sf|a", "ns/1").unwrap();
        let _a2 = slots.try_enter("sf|a", "ns/2").unwrap();
        assert_eq!(slots.try_enter("sf|a", "ns/3").err(), Some(1));
        assert_eq!(slots.try_enter("sf|a", "ns/4").err(), Some(2));
        // The same object deferred twice counts once.
        assert_eq!(slots.try_enter("sf|a", "ns/3").err(), Some(2));
        let _b = slots
            .try_enter("akv|b", "ns/5")
            .expect("another store is not blocked");

        drop(a1);
        let _a3 = slots
            .try_enter("sf|a", "ns/3")
            .expect("a freed slot is taken");
        assert_eq!(
            slots.try_enter("sf|a", "ns/6").err(),
            Some(2),
            "ns/3 left the backlog"
        );
    }

    #[test]
    fn objects_not_seen_for_long_leave_the_backlog_and_idle_stores_are_dropped() {
        let slots = Slots::new(1);
        let t0 = Instant::now();
        let a = slots.try_enter_at("x", "o1", t0).unwrap();
        assert_eq!(slots.try_enter_at("x", "gone", t0).err(), Some(1));
        assert_eq!(
            slots.try_enter_at("x", "o2", t0 + FORGET_AFTER).err(),
            Some(1)
        );
        let b = {
            drop(a);
            slots.try_enter_at("x", "o2", t0 + FORGET_AFTER).unwrap()
        };
        drop(b);
        assert!(slots.shares.lock().unwrap().is_empty());
    }

    #[test]
    fn a_namespace_gets_at_most_half_the_workers_and_a_store_less_than_its_namespace() {
        let of = |per_namespace, per_store| Shares {
            per_namespace,
            per_store,
        };
        // Too few workers to share: everyone gets the one there is.
        assert_eq!(Shares::of(0), of(1, 1));
        assert_eq!(Shares::of(1), of(1, 1));
        assert_eq!(Shares::of(2), of(1, 1));
        assert_eq!(Shares::of(3), of(1, 1));
        assert_eq!(Shares::of(4), of(2, 1));
        assert_eq!(Shares::of(8), of(4, 3));
        assert_eq!(Shares::of(32), of(16, 15));
        for c in 2..=256 {
            let s = Shares::of(c);
            assert!(s.per_store >= 1, "{c}: {s:?}");
            assert!(2 * s.per_namespace <= c, "{c}: {s:?}");
            assert!(s.per_store <= s.per_namespace, "{c}: {s:?}");
            if c >= 4 {
                assert!(s.per_store < s.per_namespace, "{c}: {s:?}");
            }
        }
    }

    #[test]
    fn the_delay_grows_with_the_backlog_and_is_bounded() {
        assert_eq!(defer_delay(0, 0.5), Duration::from_secs(1));
        assert_eq!(defer_delay(100, 0.5), Duration::from_secs(2));
        assert_eq!(defer_delay(1_000_000, 0.5), Duration::from_secs(60));
        assert_eq!(defer_delay(0, 0.0), Duration::from_millis(500));
        assert!(defer_delay(0, 0.999) < Duration::from_millis(1500));
    }
}
