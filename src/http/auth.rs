//! Whether a `/metrics` client may read: the API server decides. A TokenReview says whose the bearer token is,
//! and a SubjectAccessReview whether that user may `get` the non-resource URL `/metrics` (the ClusterRole
//! `secretsync-metrics-reader` grants it). Answers are kept a short while, so a Prometheus scraping every 15 s costs
//! the API server two requests a minute, not two per scrape; the cache is bounded, so a flood of made-up tokens
//! costs reviews, never memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, UserInfo};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;
use sha2::{Digest, Sha256};

/// How long an allowed token stays allowed without asking again (a revoked binding takes effect within this).
const ALLOWED_FOR: Duration = Duration::from_secs(60);
/// How long a refused token stays refused (a binding just granted takes effect within this).
const REFUSED_FOR: Duration = Duration::from_secs(10);
/// Tokens remembered at most; about 100 bytes each.
const CAPACITY: usize = 1024;
/// Reviews in flight at once: a flood of tokens waits here instead of becoming a flood of API requests.
const REVIEWS_AT_ONCE: usize = 4;
/// Longer than any ServiceAccount or OIDC token; a longer one is refused without asking.
const MAX_TOKEN: usize = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// No token the API server accepts: 401.
    Unauthenticated,
    /// A known user without the right: 403.
    Forbidden,
}

/// Answers by the token's SHA-256 (the token itself is not kept), with when each expires.
#[derive(Default)]
struct Cache {
    entries: HashMap<[u8; 32], (Verdict, Instant)>,
}

impl Cache {
    fn get(&self, key: &[u8; 32], now: Instant) -> Option<Verdict> {
        self.entries
            .get(key)
            .filter(|(_, until)| *until > now)
            .map(|(v, _)| *v)
    }

    fn put(&mut self, key: [u8; 32], verdict: Verdict, now: Instant) {
        let ttl = if verdict == Verdict::Allowed {
            ALLOWED_FOR
        } else {
            REFUSED_FOR
        };
        if self.entries.len() >= CAPACITY && !self.entries.contains_key(&key) {
            self.entries.retain(|_, (_, until)| *until > now);
            // Still full: the answer nearest its end goes, which is a refusal before any newer allowance.
            if self.entries.len() >= CAPACITY
                && let Some(first) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, until))| *until)
                    .map(|(k, _)| *k)
            {
                self.entries.remove(&first);
            }
        }
        self.entries.insert(key, (verdict, now + ttl));
    }
}

pub struct Reviewer {
    client: kube::Client,
    cache: Mutex<Cache>,
    reviews: tokio::sync::Semaphore,
}

impl Reviewer {
    pub fn new(client: kube::Client) -> Reviewer {
        Reviewer {
            client,
            cache: Mutex::new(Cache::default()),
            reviews: tokio::sync::Semaphore::new(REVIEWS_AT_ONCE),
        }
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Verdict> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(key, Instant::now())
    }

    /// What the API server says of `token`; an error (the API server unreachable) is not remembered.
    pub async fn review(&self, token: &str) -> Result<Verdict, kube::Error> {
        if token.len() > MAX_TOKEN {
            return Ok(Verdict::Unauthenticated);
        }
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(verdict) = self.cached(&key) {
            return Ok(verdict);
        }
        let _turn = self.reviews.acquire().await;
        // A scrape that waited for its turn may find its answer made by the one before it.
        if let Some(verdict) = self.cached(&key) {
            return Ok(verdict);
        }
        let verdict = self.ask(token).await?;
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(key, verdict, Instant::now());
        Ok(verdict)
    }

    async fn ask(&self, token: &str) -> Result<Verdict, kube::Error> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_owned()),
                audiences: None,
            },
            ..Default::default()
        };
        let reviewed = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await?;
        let user = match reviewed.status {
            Some(s) if s.authenticated == Some(true) => s.user.unwrap_or_default(),
            _ => return Ok(Verdict::Unauthenticated),
        };
        let UserInfo {
            username,
            groups,
            uid,
            extra,
        } = user;
        if username.as_deref().is_none_or(str::is_empty) {
            return Ok(Verdict::Unauthenticated);
        }
        let access = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: username,
                groups,
                uid,
                extra,
                non_resource_attributes: Some(NonResourceAttributes {
                    path: Some("/metrics".to_owned()),
                    verb: Some("get".to_owned()),
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let answered = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &access)
            .await?;
        Ok(if answered.status.is_some_and(|s| s.allowed) {
            Verdict::Allowed
        } else {
            Verdict::Forbidden
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: usize) -> [u8; 32] {
        Sha256::digest(i.to_le_bytes()).into()
    }

    #[test]
    fn answers_expire_refusals_first() {
        let mut cache = Cache::default();
        let t0 = Instant::now();
        cache.put(key(1), Verdict::Allowed, t0);
        cache.put(key(2), Verdict::Forbidden, t0);
        let later = t0 + REFUSED_FOR + Duration::from_millis(1);
        assert_eq!(cache.get(&key(1), later), Some(Verdict::Allowed));
        assert_eq!(cache.get(&key(2), later), None, "a refusal is asked again");
        assert_eq!(cache.get(&key(1), t0 + ALLOWED_FOR), None);
    }

    #[test]
    fn a_flood_of_tokens_stays_within_capacity_and_keeps_the_allowed_ones() {
        let mut cache = Cache::default();
        let t0 = Instant::now();
        cache.put(key(0), Verdict::Allowed, t0);
        for i in 1..10 * CAPACITY {
            cache.put(
                key(i),
                Verdict::Unauthenticated,
                t0 + Duration::from_millis(1),
            );
        }
        assert_eq!(cache.entries.len(), CAPACITY);
        assert_eq!(cache.get(&key(0), t0), Some(Verdict::Allowed));
    }
}
