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
    /// One lock per key while a token is fetched (see [`TokenCache::get_or_fetch`]).
    fetching: Lru<String, Arc<tokio::sync::Mutex<()>>>,
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
            fetching: Lru::new(MAX_TOKENS),
        }
    }
}

/// When a token that lives `lifetime` is given up: at two thirds of it, and at least a minute before it ends
/// (a reconcile that starts with it must still finish with it). `None` (a token without expiry) is kept an hour,
/// so that a revoked or rotated one is replaced without a restart.
pub fn renew_after(lifetime: Option<Duration>) -> Duration {
    match lifetime {
        // Divided first: a lifetime a store claims may be near `Duration::MAX`.
        Some(life) => (life / 3 * 2).min(life.saturating_sub(Duration::from_secs(60))),
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
        self.keep(key, token, renew_after(lifetime))
    }

    /// Keeps `token` for `renew_in` from now, for a store with a renewal rule of its own.
    pub fn keep(&self, key: String, token: T, renew_in: Duration) -> Arc<T> {
        let token = Arc::new(token);
        let now = Instant::now();
        // An `Instant` past what the clock can hold panics; such a token is kept a day.
        let renew_at = now
            .checked_add(renew_in)
            .unwrap_or(now + Duration::from_secs(24 * 3600));
        self.tokens.put(
            key,
            Cached {
                token: token.clone(),
                renew_at,
            },
        );
        token
    }

    /// Forgets the token under `key` (the store refused it: revoked, or its policy changed).
    pub fn forget(&self, key: &str) {
        self.tokens.with(|tokens| tokens.pop(key));
    }

    /// Forgets `refused` under `key`, unless another caller has replaced it already (then that one is kept).
    pub fn forget_if(&self, key: &str, refused: &Arc<T>) {
        self.tokens.with(|tokens| {
            if tokens
                .peek(key)
                .is_some_and(|c| Arc::ptr_eq(&c.token, refused))
            {
                tokens.pop(key);
            }
        });
    }

    /// The token under `key`, or the one `fetch` obtains with how long to keep it. One fetch per key at a time:
    /// callers that find no token while another signs in wait for that sign-in and use its token, so many
    /// reconciles starting at once sign in once.
    pub async fn get_or_fetch<E, Fut>(
        &self,
        key: &str,
        fetch: impl FnOnce() -> Fut,
    ) -> Result<Arc<T>, E>
    where
        Fut: std::future::Future<Output = Result<(T, Duration), E>>,
    {
        if let Some(token) = self.get(key) {
            return Ok(token);
        }
        let lock = self
            .fetching
            .get_or_insert_with(key.to_owned(), Default::default);
        let _one_at_a_time = lock.lock().await;
        if let Some(token) = self.get(key) {
            return Ok(token);
        }
        let (token, keep) = fetch().await?;
        Ok(self.keep(key.to_owned(), token, keep))
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

    #[tokio::test]
    async fn callers_of_one_key_fetch_once_and_only_the_refused_token_is_forgotten() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let cache = Arc::new(TokenCache::<String>::default());
        let fetched = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (cache, fetched) = (cache.clone(), fetched.clone());
            tasks.push(tokio::spawn(async move {
                let fetch = || async {
                    fetched.fetch_add(1, Ordering::SeqCst);
                    // The others get their turn while this fetch is under way.
                    tokio::task::yield_now().await;
                    Ok::<_, ()>(("t1".to_owned(), Duration::from_secs(600)))
                };
                cache.get_or_fetch("k", fetch).await
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap().as_str(), "t1");
        }
        assert_eq!(fetched.load(Ordering::SeqCst), 1);
        let refused = cache.get("k").unwrap();
        let renewed = cache.keep("k".into(), "t2".into(), Duration::from_secs(600));
        cache.forget_if("k", &refused);
        assert_eq!(cache.get("k").as_deref().map(String::as_str), Some("t2"));
        cache.forget_if("k", &renewed);
        assert!(cache.get("k").is_none());
        // A lifetime near `Duration::MAX` is kept, not a panic.
        assert_eq!(renew_after(Some(Duration::MAX)), Duration::MAX / 3 * 2);
        cache.put("long".into(), "t3".into(), Some(Duration::MAX));
        assert!(cache.get("long").is_some());
    }
}
