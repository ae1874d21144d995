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
#[path = "fair_share_tests.rs"]
mod tests;
