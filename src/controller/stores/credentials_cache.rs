//! Store credentials Secrets, kept between reconciles so that a change or a refresh costs one Kubernetes read (the
//! source Secret), not two.
//!
//! Only credentials Secrets are kept (one per store, not every Secret of the cluster), and only in namespaces the
//! controller's Secret watch covers: every event of that watch for a kept Secret (a change, a deletion, a relist)
//! drops it, and the next reconcile reads it again; a relist of the watch drops everything (a Secret deleted while
//! the watch was away has no event of its own). A read that raced with such an event is not kept: each Secret
//! has an epoch, bumped by every event, and a read is kept only if the epoch did not move while it was made.
//!
//! At most [`MAX_KEPT`] Secrets are known; past it the least recently looked up is forgotten (its next lookup
//! reads it again). Epochs come from one counter for the whole cache, so a read begun before its Secret was
//! forgotten can never match the epoch of the Secret known anew, whatever happened in between.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::dialects::kit::bounded::Lru;
use crate::value::SecretValue;

/// Credentials Secrets known at most.
pub const MAX_KEPT: usize = 4096;

type Key = (String, String);
type Keys = BTreeMap<String, SecretValue>;

struct Slot {
    epoch: u64,
    keys: Option<Keys>,
}

/// What a lookup found: the kept keys, or the epoch to hand back to [`CredentialsCache::keep`] after a read.
pub enum Lookup {
    Kept(Keys),
    Read {
        epoch: u64,
    },
    /// Outside the watched namespaces: read every time, never kept.
    Uncached,
}

pub struct CredentialsCache {
    /// The namespaces the Secret watch covers; empty means all.
    watched: Vec<String>,
    slots: Lru<Key, Slot>,
    /// The last epoch handed out.
    epochs: AtomicU64,
}

impl CredentialsCache {
    pub fn new(watched: Vec<String>) -> Self {
        Self::with_capacity(watched, MAX_KEPT)
    }

    fn with_capacity(watched: Vec<String>, capacity: usize) -> Self {
        CredentialsCache {
            watched,
            slots: Lru::new(capacity),
            epochs: AtomicU64::new(0),
        }
    }

    fn next_epoch(&self) -> u64 {
        self.epochs.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn covers(&self, namespace: &str) -> bool {
        self.watched.is_empty() || self.watched.iter().any(|n| n == namespace)
    }

    pub fn lookup(&self, namespace: &str, name: &str) -> Lookup {
        if !self.covers(namespace) {
            return Lookup::Uncached;
        }
        self.slots.with(|slots| {
            let slot = slots.get_or_insert((namespace.to_owned(), name.to_owned()), || Slot {
                epoch: self.next_epoch(),
                keys: None,
            });
            match &slot.keys {
                Some(keys) => Lookup::Kept(keys.clone()),
                None => Lookup::Read { epoch: slot.epoch },
            }
        })
    }

    /// Keeps what a read returned, unless an event for the Secret arrived since `epoch` was handed out.
    pub fn keep(&self, namespace: &str, name: &str, epoch: u64, keys: &Keys) {
        self.slots.with(|slots| {
            if let Some(slot) = slots.get_mut(&(namespace.to_owned(), name.to_owned()))
                && slot.epoch == epoch
            {
                slot.keys = Some(keys.clone());
            }
        })
    }

    /// The Secret changed, was deleted or was listed again: drop what is kept of it.
    pub fn touched(&self, namespace: &str, name: &str) {
        let epoch = self.next_epoch();
        self.slots.with(|slots| {
            if let Some(slot) = slots.peek_mut(&(namespace.to_owned(), name.to_owned())) {
                slot.epoch = epoch;
                slot.keys = None;
            }
        })
    }
}

impl CredentialsCache {
    /// The Secret watch lists again (after a gap, its resourceVersion too old): a Secret deleted during the gap
    /// gets no event of its own, so nothing kept may be trusted. Drops everything, and no read in flight is kept.
    pub fn relisted(&self) {
        let epoch = self.next_epoch();
        self.slots.with(|slots| {
            for (_, slot) in slots.iter_mut() {
                slot.epoch = epoch;
                slot.keys = None;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &str) -> Keys {
        BTreeMap::from([("token".to_owned(), SecretValue::from(v))])
    }

    fn kept(cache: &CredentialsCache, ns: &str, name: &str) -> Option<Keys> {
        match cache.lookup(ns, name) {
            Lookup::Kept(k) => Some(k),
            _ => None,
        }
    }

    #[test]
    fn a_read_is_kept_until_the_secret_is_touched() {
        let cache = CredentialsCache::new(vec![]);
        let Lookup::Read { epoch } = cache.lookup("a", "creds") else {
            panic!("nothing kept yet")
        };
        cache.keep("a", "creds", epoch, &keys("one"));
        assert_eq!(kept(&cache, "a", "creds"), Some(keys("one")));
        cache.touched("a", "creds");
        assert_eq!(kept(&cache, "a", "creds"), None);
        // Another namespace's Secret of the same name is another entry.
        assert_eq!(kept(&cache, "b", "creds"), None);
    }

    #[test]
    fn a_relist_drops_everything_kept_and_every_read_in_flight() {
        let cache = CredentialsCache::new(vec![]);
        let Lookup::Read { epoch } = cache.lookup("a", "creds") else {
            panic!("nothing kept yet")
        };
        cache.keep("a", "creds", epoch, &keys("one"));
        let Lookup::Read { epoch: in_flight } = cache.lookup("b", "creds") else {
            panic!("nothing kept yet")
        };
        cache.relisted();
        // Deleted during the watch's gap, for all the cache can tell: read again.
        assert_eq!(kept(&cache, "a", "creds"), None);
        cache.keep("b", "creds", in_flight, &keys("stale"));
        assert_eq!(kept(&cache, "b", "creds"), None);
    }

    #[test]
    fn a_read_that_raced_with_a_change_is_not_kept() {
        let cache = CredentialsCache::new(vec![]);
        let Lookup::Read { epoch } = cache.lookup("a", "creds") else {
            panic!("nothing kept yet")
        };
        // The Secret changes while the (old) read is in flight.
        cache.touched("a", "creds");
        cache.keep("a", "creds", epoch, &keys("stale"));
        assert_eq!(kept(&cache, "a", "creds"), None);
        let Lookup::Read { epoch } = cache.lookup("a", "creds") else {
            panic!("nothing kept")
        };
        cache.keep("a", "creds", epoch, &keys("fresh"));
        assert_eq!(kept(&cache, "a", "creds"), Some(keys("fresh")));
    }

    #[test]
    fn past_its_capacity_the_cache_forgets_the_least_recent_secret_and_no_read_of_it_is_kept() {
        let cache = CredentialsCache::with_capacity(vec![], 2);
        let read = |ns: &str| match cache.lookup(ns, "creds") {
            Lookup::Read { epoch } => epoch,
            _ => panic!("nothing kept of {ns}"),
        };
        let a = read("a");
        cache.keep("a", "creds", a, &keys("a"));
        let b = read("b");
        cache.keep("b", "creds", b, &keys("b"));
        assert_eq!(kept(&cache, "a", "creds"), Some(keys("a")));
        // "b" is now the least recent: a third Secret forgets it, and only it.
        let stale = read("c");
        assert_eq!(kept(&cache, "a", "creds"), Some(keys("a")));
        let b_again = read("b");
        assert_ne!(b_again, b, "a Secret known anew has an epoch of its own");
        // "c" was forgotten meanwhile: its read in flight is not kept, even once it is known again.
        let c_again = read("c");
        cache.keep("c", "creds", stale, &keys("stale"));
        assert_eq!(kept(&cache, "c", "creds"), None);
        cache.keep("c", "creds", c_again, &keys("fresh"));
        assert_eq!(kept(&cache, "c", "creds"), Some(keys("fresh")));
    }

    #[test]
    fn secrets_outside_the_watched_namespaces_are_never_kept() {
        let cache = CredentialsCache::new(vec!["team-a".into()]);
        assert!(matches!(
            cache.lookup("platform", "creds"),
            Lookup::Uncached
        ));
        cache.keep("platform", "creds", 0, &keys("x"));
        assert!(matches!(
            cache.lookup("platform", "creds"),
            Lookup::Uncached
        ));
        assert!(matches!(
            cache.lookup("team-a", "creds"),
            Lookup::Read { .. }
        ));
    }
}
