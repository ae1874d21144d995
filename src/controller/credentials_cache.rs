//! Store credentials Secrets, kept between reconciles so that a change or a refresh costs one Kubernetes read (the
//! source Secret), not two.
//!
//! Only credentials Secrets are kept (one per store, not every Secret of the cluster), and only in namespaces the
//! controller's Secret watch covers: every event of that watch for a kept Secret (a change, a deletion, a relist)
//! drops it, and the next reconcile reads it again; a relist of the watch drops everything (a Secret deleted while
//! the watch was away has no event of its own). A read that raced with such an event is not kept: each Secret
//! has an epoch, bumped by every event, and a read is kept only if the epoch did not move while it was made.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::value::SecretValue;

type Key = (String, String);
type Keys = BTreeMap<String, SecretValue>;

#[derive(Default)]
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
    slots: Mutex<HashMap<Key, Slot>>,
}

impl CredentialsCache {
    pub fn new(watched: Vec<String>) -> Self {
        CredentialsCache {
            watched,
            slots: Mutex::default(),
        }
    }

    fn covers(&self, namespace: &str) -> bool {
        self.watched.is_empty() || self.watched.iter().any(|n| n == namespace)
    }

    pub fn lookup(&self, namespace: &str, name: &str) -> Lookup {
        if !self.covers(namespace) {
            return Lookup::Uncached;
        }
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let slot = slots
            .entry((namespace.to_owned(), name.to_owned()))
            .or_default();
        match &slot.keys {
            Some(keys) => Lookup::Kept(keys.clone()),
            None => Lookup::Read { epoch: slot.epoch },
        }
    }

    /// Keeps what a read returned, unless an event for the Secret arrived since `epoch` was handed out.
    pub fn keep(&self, namespace: &str, name: &str, epoch: u64, keys: &Keys) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = slots.get_mut(&(namespace.to_owned(), name.to_owned()))
            && slot.epoch == epoch
        {
            slot.keys = Some(keys.clone());
        }
    }

    /// The Secret changed, was deleted or was listed again: drop what is kept of it.
    pub fn touched(&self, namespace: &str, name: &str) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = slots.get_mut(&(namespace.to_owned(), name.to_owned())) {
            slot.epoch += 1;
            slot.keys = None;
        }
    }
}

impl CredentialsCache {
    /// The Secret watch lists again (after a gap, its resourceVersion too old): a Secret deleted during the gap
    /// gets no event of its own, so nothing kept may be trusted. Drops everything, and no read in flight is kept.
    pub fn relisted(&self) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        for slot in slots.values_mut() {
            slot.epoch += 1;
            slot.keys = None;
        }
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
