//! The one bounded map of the controller's caches (tokens per credential set, ServiceAccount tokens, credentials
//! Secrets, rate buckets): anything a tenant can make many of (Stores, Secrets, namespaces) must not grow memory
//! without bound, and an overflow must cost only the entry used least recently, never every tenant's entries at
//! once (a cache emptied at its limit lets one tenant with many fake credentials evict everyone's tokens).

use std::borrow::Borrow;
use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::Mutex;

use lru::LruCache;

/// A map of at most `capacity` entries, shared between threads; past the capacity the least recently used entry
/// goes. Reading an entry makes it recent.
pub struct Lru<K: Hash + Eq, V> {
    entries: Mutex<LruCache<K, V>>,
}

impl<K: Hash + Eq, V> Lru<K, V> {
    /// `capacity` of at least one entry.
    pub fn new(capacity: usize) -> Self {
        Lru {
            entries: Mutex::new(LruCache::new(
                NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }

    /// Runs `f` on the map under its lock, for what the shortcuts below do not cover. A lock poisoned by a panic
    /// elsewhere is used as it is: every entry stays a valid value whatever the panic interrupted.
    pub fn with<R>(&self, f: impl FnOnce(&mut LruCache<K, V>) -> R) -> R {
        f(&mut self.entries.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The entry of `key`, made the most recent, or a new one from `make` (evicting the least recent if full).
    pub fn get_or_insert_with(&self, key: K, make: impl FnOnce() -> V) -> V
    where
        V: Clone,
    {
        self.with(|m| m.get_or_insert(key, make).clone())
    }

    /// The entry of `key`, made the most recent.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.with(|m| m.get(key).cloned())
    }

    /// Sets the entry of `key`, the most recent now.
    pub fn put(&self, key: K, value: V) {
        self.with(|m| {
            m.put(key, value);
        })
    }

    pub fn len(&self) -> usize {
        self.with(|m| m.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overflow_evicts_the_least_recently_used_entry_only() {
        let lru = Lru::new(3);
        for k in ["a", "b", "c"] {
            lru.put(k, k.to_uppercase());
        }
        // Reading "a" makes "b" the least recently used.
        assert_eq!(lru.get("a").as_deref(), Some("A"));
        lru.put("d", "D".to_owned());
        assert_eq!(lru.len(), 3);
        assert_eq!(lru.get("b"), None, "the least recently used entry went");
        for k in ["a", "c", "d"] {
            assert!(lru.get(k).is_some(), "{k} was kept");
        }
        // get_or_insert_with reuses what is there and counts as a use.
        assert_eq!(lru.get_or_insert_with("c", || "new".to_owned()), "C");
        lru.put("e", "E".to_owned());
        assert_eq!(lru.get("a"), None);
        assert_eq!(lru.get("c").as_deref(), Some("C"));
    }

    #[test]
    fn a_zero_capacity_still_holds_one_entry() {
        let lru = Lru::new(0);
        lru.put(1, 1);
        assert_eq!(lru.get(&1), Some(1));
        lru.put(2, 2);
        assert_eq!((lru.get(&1), lru.get(&2)), (None, Some(2)));
    }
}
