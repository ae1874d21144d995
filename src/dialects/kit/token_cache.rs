//! Tokens a dialect obtained by signing in, kept per store (and whatever else decides who the token is), shared
//! by every SecretSync of the store, and given up before they expire: a store is signed in to once per token
//! lifetime, not once per reconcile.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::bounded::Lru;

/// Tokens kept at most (one per store and identity); past it the least recently used goes.
const MAX_TOKENS: usize = 1024;

/// Cached tokens of type `T` (wiped on drop if `T` zeroizes), by key.
pub struct TokenCache<T> {
    tokens: Lru<String, Cached<T>>,
}

struct Cached<T> {
    token: Arc<T>,
    renew_at: Instant,
}

impl<T> Clone for Cached<T> {
    fn clone(&self) -> Self {
        Cached {
            token: self.token.clone(),
            renew_at: self.renew_at,
        }
    }
}

impl<T> Default for TokenCache<T> {
    fn default() -> Self {
        TokenCache {
            tokens: Lru::new(MAX_TOKENS),
        }
    }
}

/// When a token that lives `lifetime` is given up: at two thirds of it, and at least a minute before it ends
/// (a reconcile that starts with it must still finish with it). `None` (a token without expiry) is kept an hour,
/// so that a revoked or rotated one is replaced without a restart.
pub fn renew_after(lifetime: Option<Duration>) -> Duration {
    match lifetime {
        Some(life) => (life * 2 / 3).min(life.saturating_sub(Duration::from_secs(60))),
        None => Duration::from_secs(3600),
    }
}

impl<T> TokenCache<T> {
    /// The token under `key`, while it is not due for renewal.
    pub fn get(&self, key: &str) -> Option<Arc<T>> {
        self.tokens
            .get(key)
            .filter(|c| Instant::now() < c.renew_at)
            .map(|c| c.token)
    }

    /// Keeps `token`, obtained just now and living `lifetime` (see [`renew_after`]).
    pub fn put(&self, key: String, token: T, lifetime: Option<Duration>) -> Arc<T> {
        let token = Arc::new(token);
        self.tokens.put(
            key,
            Cached {
                token: token.clone(),
                renew_at: Instant::now() + renew_after(lifetime),
            },
        );
        token
    }

    /// Forgets the token under `key` (the store refused it: revoked, or its policy changed).
    pub fn forget(&self, key: &str) {
        self.tokens.with(|tokens| tokens.pop(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_renewed_before_they_expire() {
        assert_eq!(
            renew_after(Some(Duration::from_secs(3600))),
            Duration::from_secs(2400)
        );
        // A short lease still leaves the last minute unused; a lease under a minute is renewed every time.
        assert_eq!(
            renew_after(Some(Duration::from_secs(120))),
            Duration::from_secs(60)
        );
        assert_eq!(renew_after(Some(Duration::from_secs(30))), Duration::ZERO);
        assert_eq!(renew_after(None), Duration::from_secs(3600));
    }

    #[test]
    fn a_token_is_kept_until_its_renewal_and_can_be_forgotten() {
        let cache = TokenCache::<String>::default();
        cache.put("a".into(), "t1".into(), Some(Duration::from_secs(3600)));
        assert_eq!(cache.get("a").as_deref().map(String::as_str), Some("t1"));
        assert!(cache.get("b").is_none());
        // A lease of under a minute is due for renewal as soon as it is obtained.
        cache.put("short".into(), "t2".into(), Some(Duration::from_secs(30)));
        assert!(cache.get("short").is_none());
        cache.forget("a");
        assert!(cache.get("a").is_none());
    }
}
