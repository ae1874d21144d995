//! Fair shares of the reconcile workers: per store, and per namespace.
//!
//! Each store is paced by its rate limiter, and a reconcile waiting for a token (or for a store that hangs) holds
//! one of the controller's workers. Without a cap, a thousand SecretSyncs queued for one throttled store would take
//! every worker and a SecretSync for another store would wait minutes behind them; and a namespace whose tenants
//! point many SecretSyncs at many slow stores would do the same to every other namespace. So at most a share of the
//! workers work on one key (a store, or a namespace) at a time; the others are put back in the queue, without any
//! call to Kubernetes or the store, and come back after a delay that grows with the number waiting for that key.
//!
//! Shares alone do not protect a third namespace: with half the workers each, a tenant's two namespaces of hanging
//! stores hold every worker, and a third namespace's change waits a whole store deadline (30 s) for one to free.
//! So the namespaces' slots also keep a reserve, see [`admits`].

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

/// Every key's share, and how many slots all keys hold together (what the reserve is counted against).
#[derive(Default)]
struct Book {
    keys: HashMap<String, Share>,
    held: usize,
}

type Ledger = Arc<Mutex<Book>>;

/// Slots per key: at most `per_key` holders of one key at once, and with a reserve, never the last of `workers`
/// to a key that already holds one.
pub struct Slots {
    per_key: usize,
    /// The workers the slots share out, when the last of them is kept for keys holding none.
    reserve_of: Option<usize>,
    book: Ledger,
}

/// A worker's hold on one of its key's slots, given back when dropped.
pub struct Slot {
    key: String,
    book: Ledger,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut book = lock(&self.book);
        let mut freed = false;
        if let Some(s) = book.keys.get_mut(&self.key) {
            s.busy = s.busy.saturating_sub(1);
            freed = true;
            if s.busy == 0 && s.waiting.is_empty() {
                book.keys.remove(&self.key);
            }
        }
        if freed {
            book.held = book.held.saturating_sub(1);
        }
    }
}

/// How many workers one namespace and one store may hold at once, out of `workers`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shares {
    /// The runner's workers; 0 is kube's "no limit".
    pub workers: usize,
    pub per_namespace: usize,
    pub per_store: usize,
}

impl Shares {
    /// A namespace gets at most half the workers (at least one), so that one namespace of hanging stores leaves
    /// the other half to everyone else; a store gets fewer than its namespace (at least one), so that a throttled
    /// store cannot take every worker its own namespace has either (with equal shares, one busy store filled its
    /// namespace's share and the namespace's other stores waited behind it).
    pub fn of(concurrency: usize) -> Shares {
        let per_namespace = (concurrency / 2).max(1);
        let per_store = concurrency
            .max(1)
            .div_ceil(2)
            .min(per_namespace.saturating_sub(1))
            .max(1);
        Shares {
            workers: concurrency,
            per_namespace,
            per_store,
        }
    }
}

/// Whether a key holding `held_by_key` slots may take one more, when all keys together hold `held` of `workers`
/// (`None`: no reserve) and a key may hold `per_key`.
///
/// The reserve: a key that already holds a slot may take another only if one worker still stays free after it;
/// the last free worker goes only to a key holding none. Why a reserve and not an order (round robin, least held
/// first) when a worker frees: the controller's runner, not this ledger, decides which object a free worker runs
/// next, and a deferred object comes back only after its delay, so an order could be kept only by leaving workers
/// idle until the favoured namespace's object returns; and it would act only once a worker frees, a store
/// deadline after the hanging requests began. With the reserve, the workers are all held only when the last one
/// went to a namespace that held none, so:
///
/// - two namespaces (at half the workers each) whose stores all hang leave a worker free: a third namespace's
///   change is not delayed at all (from three workers on; with two, each of two namespaces holds one);
/// - when more namespaces hang and every worker is held, a worker that frees cannot go to a namespace that still
///   holds one, only to one that holds none: a namespace holding none waits for at most one store deadline,
///   unless another namespace holding none (one whose only hung worker just freed) takes the worker first.
///
/// The cost: one worker is idle while the busy namespaces have nobody else to share with; with one namespace
/// busy the reserve never applies (it holds at most half).
pub fn admits(held_by_key: usize, held: usize, per_key: usize, workers: Option<usize>) -> bool {
    if held_by_key >= per_key {
        return false;
    }
    match workers {
        Some(workers) if held_by_key > 0 => held + 1 < workers,
        Some(workers) => held < workers,
        None => true,
    }
}

/// The ledger stays consistent under a panic elsewhere (every change is made under the lock without a call that
/// could panic), so a poisoned lock is used as it is rather than turning one panic into a panic of every later
/// reconcile.
fn lock(book: &Ledger) -> std::sync::MutexGuard<'_, Book> {
    book.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A deferred object's wait before its next try: 1 s, plus 10 ms for every other object waiting for the same
/// key (so a long backlog does not spin), at most 60 s, spread by `jitter` in [0, 1) over ±50%.
pub fn defer_delay(backlog: usize, jitter: f64) -> Duration {
    let base = Duration::from_millis(1000 + 10 * backlog as u64).min(Duration::from_secs(60));
    base.mul_f64(0.5 + jitter.clamp(0.0, 1.0))
}

impl Slots {
    /// Slots without a reserve: the stores' (a store is one tenant's; the namespaces' reserve already keeps a
    /// worker for the others).
    pub fn new(per_key: usize) -> Self {
        Slots {
            per_key: per_key.max(1),
            reserve_of: None,
            book: Arc::default(),
        }
    }

    /// The namespaces' slots: `shares.per_namespace` each, with the last worker reserved. `runners` is how many
    /// runners of `shares.workers` workers each the controller has (one per watched namespace with
    /// `--namespace`): every reconcile is counted against all of them, so with several the reserve is never
    /// reached, and needs not be: a namespace's runner is its own, nobody else's objects wait for it.
    /// Without a limit on the workers (`--concurrency 0`) there is no last worker to keep.
    pub fn namespaces(shares: Shares, runners: usize) -> Self {
        Slots {
            per_key: shares.per_namespace.max(1),
            reserve_of: (shares.workers > 0).then(|| shares.workers * runners.max(1)),
            book: Arc::default(),
        }
    }

    /// A slot for `object` on `key`, or the key's backlog (including `object`) when it may not take one.
    pub fn try_enter(&self, key: &str, object: &str) -> Result<Slot, usize> {
        self.try_enter_at(key, object, Instant::now())
    }

    fn try_enter_at(&self, key: &str, object: &str, now: Instant) -> Result<Slot, usize> {
        let mut book = lock(&self.book);
        let held = book.held;
        let s = book.keys.entry(key.to_owned()).or_default();
        if !admits(s.busy, held, self.per_key, self.reserve_of) {
            s.waiting
                .retain(|_, at| now.saturating_duration_since(*at) < FORGET_AFTER);
            s.waiting.insert(object.to_owned(), now);
            return Err(s.waiting.len());
        }
        s.busy += 1;
        s.waiting.remove(object);
        book.held += 1;
        Ok(Slot {
            key: key.to_owned(),
            book: self.book.clone(),
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
        let book = lock(&slots.book);
        assert!(book.keys.is_empty());
        assert_eq!(book.held, 0);
    }

    #[test]
    fn a_namespace_gets_at_most_half_the_workers_and_a_store_less_than_its_namespace() {
        let of = |workers, per_namespace, per_store| Shares {
            workers,
            per_namespace,
            per_store,
        };
        // Too few workers to share: everyone gets the one there is.
        assert_eq!(Shares::of(0), of(0, 1, 1));
        assert_eq!(Shares::of(1), of(1, 1, 1));
        assert_eq!(Shares::of(2), of(2, 1, 1));
        assert_eq!(Shares::of(3), of(3, 1, 1));
        assert_eq!(Shares::of(4), of(4, 2, 1));
        assert_eq!(Shares::of(8), of(8, 4, 3));
        assert_eq!(Shares::of(32), of(32, 16, 15));
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

    /// Every state the namespaces' slots can reach with `namespaces` namespaces and `workers` workers, entering
    /// and leaving in any order, as the holdings per namespace; the runner never runs more than `workers`.
    fn reachable(workers: usize, namespaces: usize) -> Vec<Vec<usize>> {
        let per = Shares::of(workers).per_namespace;
        let mut seen = std::collections::BTreeSet::new();
        let mut todo = vec![vec![0; namespaces]];
        while let Some(state) = todo.pop() {
            if !seen.insert(state.clone()) {
                continue;
            }
            let held: usize = state.iter().sum();
            for i in 0..namespaces {
                if held < workers && admits(state[i], held, per, Some(workers)) {
                    let mut next = state.clone();
                    next[i] += 1;
                    todo.push(next);
                }
                if state[i] > 0 {
                    let mut next = state.clone();
                    next[i] -= 1;
                    todo.push(next);
                }
            }
        }
        seen.into_iter().collect()
    }

    #[test]
    fn two_namespaces_holding_all_they_may_leave_a_worker_for_a_third() {
        for workers in 3..=12 {
            let per = Shares::of(workers).per_namespace;
            for state in reachable(workers, 3) {
                let held: usize = state.iter().sum();
                assert!(state.iter().all(|h| *h <= per), "{workers}: {state:?}");
                assert!(held <= workers, "{workers}: {state:?}");
                // Namespaces 0 and 1 hang; 2 arrives holding nothing.
                if state[2] == 0 {
                    assert!(
                        held < workers && admits(0, held, per, Some(workers)),
                        "{workers} workers, {state:?}: the third namespace waits"
                    );
                }
            }
        }
    }

    #[test]
    fn a_freed_worker_goes_to_a_namespace_holding_none() {
        for workers in 2..=10 {
            let per = Shares::of(workers).per_namespace;
            for state in reachable(workers, 5) {
                let held: usize = state.iter().sum();
                if held < workers {
                    continue;
                }
                // Every worker held (more namespaces hang than the reserve covers): one frees, a store deadline on.
                for freed in (0..state.len()).filter(|i| state[*i] > 0) {
                    let mut after = state.clone();
                    after[freed] -= 1;
                    for (i, h) in after.iter().enumerate() {
                        assert_eq!(
                            admits(*h, held - 1, per, Some(workers)),
                            *h == 0,
                            "{workers} workers, {state:?} then {freed} frees: namespace {i}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_reserve_takes_nothing_from_a_namespace_alone_and_one_worker_from_a_pair() {
        for workers in 1..=64 {
            let per = Shares::of(workers).per_namespace;
            let mut alone = 0;
            while admits(alone, alone, per, Some(workers)) {
                alone += 1;
            }
            assert_eq!(alone, per, "{workers} workers, one namespace");
            let mut second = 0;
            while admits(second, alone + second, per, Some(workers)) {
                second += 1;
            }
            let expected = if workers >= 3 {
                per.min(workers - alone - 1)
            } else {
                per.min(workers - alone)
            };
            assert_eq!(second, expected, "{workers} workers, the second namespace");
        }
        // Without a reserve only the share counts; with kube's unlimited runner (0) there is none.
        assert!(admits(3, 1_000, 4, None));
        assert!(!admits(4, 0, 4, None));
        assert_eq!(Slots::namespaces(Shares::of(0), 1).reserve_of, None);
    }

    #[test]
    fn the_namespaces_slots_keep_the_last_worker_for_a_namespace_holding_none() {
        let slots = Slots::namespaces(Shares::of(8), 1);
        let mut a: Vec<Slot> = (0..4)
            .map(|i| slots.try_enter("a", &format!("a/{i}")).unwrap())
            .collect();
        assert_eq!(
            slots.try_enter("a", "a/4").err(),
            Some(1),
            "a's share is half"
        );
        let b: Vec<Slot> = (0..3)
            .map(|i| slots.try_enter("b", &format!("b/{i}")).unwrap())
            .collect();
        assert_eq!(
            slots.try_enter("b", "b/3").err(),
            Some(1),
            "the eighth worker is kept"
        );
        let c = slots
            .try_enter("c", "c/0")
            .expect("a third namespace gets the kept worker");
        assert_eq!(
            slots.try_enter("d", "d/0").err(),
            Some(1),
            "every worker is held"
        );

        drop(a.pop());
        assert!(
            slots.try_enter("a", "a/4").is_err(),
            "a holds three and would take the last"
        );
        assert!(slots.try_enter("b", "b/3").is_err());
        assert!(slots.try_enter("c", "c/1").is_err());
        let _d = slots
            .try_enter("d", "d/0")
            .expect("the freed worker goes to d");
        drop(c);
        drop(b);
        assert_eq!(lock(&slots.book).held, 4, "a's three and d's one");

        // Each runner of its own (`--namespace a,b`): the shares hold, the reserve is never reached.
        let scoped = Slots::namespaces(Shares::of(4), 2);
        let _a: Vec<Slot> = (0..2)
            .map(|i| scoped.try_enter("a", &format!("a/{i}")).unwrap())
            .collect();
        let _b: Vec<Slot> = (0..2)
            .map(|i| scoped.try_enter("b", &format!("b/{i}")).unwrap())
            .collect();
        assert!(scoped.try_enter("b", "b/2").is_err());
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
