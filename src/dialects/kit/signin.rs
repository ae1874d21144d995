//! A token obtained by signing in, on every request to a store: taken from the kit's token cache (one sign-in per
//! key and token lifetime, shared by every SecretSync), and forgotten when the store refuses it, so that the one
//! more attempt the transport makes carries a fresh one.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::token_cache::TokenCache;
use super::{Auth, Exchange, Reply};
use crate::dialects::DialectError;

/// A dialect's way of signing in.
#[async_trait]
pub trait SignIn: Send + Sync {
    type Token: Send + Sync + 'static;

    /// The cache key: everything that decides whose token it is and what it is good for.
    fn key(&self) -> String;

    /// One sign-in: the token and how long to keep it.
    async fn fetch(&self) -> Result<(Self::Token, Duration), DialectError>;

    /// Puts the token on one attempt.
    fn apply(
        &self,
        request: reqwest::RequestBuilder,
        token: &Self::Token,
    ) -> Result<reqwest::RequestBuilder, DialectError>;

    /// Reads the store's 401 before the token is renewed: an error when it shows the credentials cannot work.
    async fn refused(&self, _reply: &Reply) -> Result<(), DialectError> {
        Ok(())
    }

    /// Whether a failed exchange's `error` (not a 401, which always renews) shows the token to be stale, so that
    /// the next reconcile signs in again: Vault refuses a revoked token with 403. Never by default.
    fn stale_after(&self, _error: &DialectError) -> bool {
        false
    }
}

/// [`SignIn`] as the kit's [`Auth`].
pub struct Renewing<'a, S: SignIn> {
    cache: &'a TokenCache<S::Token>,
    pub sign_in: S,
    /// The token of the last attempt, with its key: a refusal forgets that one only.
    sent: Mutex<Option<(String, Arc<S::Token>)>>,
}

impl<'a, S: SignIn> Renewing<'a, S> {
    pub fn new(cache: &'a TokenCache<S::Token>, sign_in: S) -> Self {
        Renewing {
            cache,
            sign_in,
            sent: Mutex::new(None),
        }
    }

    /// The cached token, or a new one (one sign-in per key at a time: concurrent reconciles wait for it).
    pub async fn token(&self) -> Result<Arc<S::Token>, DialectError> {
        let key = self.sign_in.key();
        let token = (self.cache)
            .get_or_fetch(&key, || self.sign_in.fetch())
            .await?;
        *self.sent.lock().unwrap_or_else(|e| e.into_inner()) = Some((key, token.clone()));
        Ok(token)
    }
}

#[async_trait]
impl<S: SignIn> Auth for Renewing<'_, S> {
    async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
        _: &Exchange<'_>,
    ) -> Result<reqwest::RequestBuilder, DialectError> {
        self.sign_in.apply(request, &*self.token().await?)
    }

    async fn refused(&self, reply: &Reply) -> Result<bool, DialectError> {
        self.sign_in.refused(reply).await?;
        self.forget_sent();
        tracing::debug!("the store refused the token; renewing it once");
        Ok(true)
    }

    fn failed(&self, error: &DialectError) {
        if self.sign_in.stale_after(error) {
            self.forget_sent();
        }
    }
}

impl<S: SignIn> Renewing<'_, S> {
    /// Forgets the token of the last attempt (only that one: another reconcile may have renewed it already).
    fn forget_sent(&self) {
        if let Some((key, token)) = self.sent.lock().unwrap_or_else(|e| e.into_inner()).take() {
            self.cache.forget_if(&key, &token);
        }
    }
}

/// A sign-in error of a namespaced Store whose identity provider presented a certificate it does not trust:
/// the Store's own CA is not the fix (see [`super::tls::sign_in`]), so the message becomes `explanation`, which
/// says what is.
pub fn explain_untrusted(
    namespaced: bool,
    explanation: &str,
    mut err: DialectError,
) -> DialectError {
    let untrusted = (err.source.as_deref())
        .and_then(|s| s.downcast_ref::<reqwest::Error>())
        .is_some_and(|e| super::tls::server_untrusted(e).is_some());
    if namespaced && untrusted {
        err.message = explanation.to_owned();
    }
    err
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// Counts its sign-ins; each token names the sign-in that made it.
    struct Counting(AtomicU32);

    #[async_trait]
    impl SignIn for Counting {
        type Token = String;

        fn key(&self) -> String {
            "k".into()
        }

        async fn fetch(&self) -> Result<(String, Duration), DialectError> {
            let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
            Ok((format!("t{n}"), Duration::from_secs(600)))
        }

        fn apply(
            &self,
            request: reqwest::RequestBuilder,
            token: &String,
        ) -> Result<reqwest::RequestBuilder, DialectError> {
            Ok(request.bearer_auth(token))
        }
    }

    #[tokio::test]
    async fn a_token_is_reused_until_the_store_refuses_it() {
        let cache = TokenCache::default();
        let auth = Renewing::new(&cache, Counting(AtomicU32::new(0)));
        assert_eq!(auth.token().await.unwrap().as_str(), "t1");
        assert_eq!(auth.token().await.unwrap().as_str(), "t1", "cached");
        let refused = crate::dialects::fixtures::reply(401, "");
        assert!(auth.refused(&refused).await.unwrap(), "worth one more try");
        assert_eq!(auth.token().await.unwrap().as_str(), "t2", "renewed");
        assert_eq!(auth.sign_in.0.load(Ordering::SeqCst), 2);
    }

    /// Signs in as [`Counting`] does, and takes a credentials error as a sign of a stale token (as Vault does).
    struct StaleOnCredentials(Counting);

    #[async_trait]
    impl SignIn for StaleOnCredentials {
        type Token = String;

        fn key(&self) -> String {
            self.0.key()
        }

        async fn fetch(&self) -> Result<(String, Duration), DialectError> {
            self.0.fetch().await
        }

        fn apply(
            &self,
            request: reqwest::RequestBuilder,
            token: &String,
        ) -> Result<reqwest::RequestBuilder, DialectError> {
            self.0.apply(request, token)
        }

        fn stale_after(&self, error: &DialectError) -> bool {
            error.class == crate::dialects::ErrorClass::Credentials
        }
    }

    #[tokio::test]
    async fn a_failure_forgets_the_token_only_where_the_sign_in_says_it_is_stale() {
        let cache = TokenCache::default();
        let auth = Renewing::new(&cache, StaleOnCredentials(Counting(AtomicU32::new(0))));
        assert_eq!(auth.token().await.unwrap().as_str(), "t1");
        auth.failed(&DialectError::retry("BackendError", "HTTP 503"));
        assert_eq!(auth.token().await.unwrap().as_str(), "t1", "kept");
        auth.failed(&DialectError::credentials("Forbidden", "HTTP 403"));
        assert_eq!(auth.token().await.unwrap().as_str(), "t2", "forgotten");
        // A sign-in that never calls a token stale keeps it whatever fails.
        let plain = Renewing::new(&cache, Counting(AtomicU32::new(0)));
        let before = plain.token().await.unwrap();
        plain.failed(&DialectError::credentials("Forbidden", "HTTP 403"));
        assert!(Arc::ptr_eq(&before, &plain.token().await.unwrap()));
    }

    #[test]
    fn only_an_untrusted_certificate_of_a_namespaced_store_is_explained() {
        let err = || DialectError::retry("BackendUnreachable", "cannot reach the store");
        assert_eq!(
            explain_untrusted(true, "why", err()).message,
            "cannot reach the store"
        );
        assert_eq!(
            explain_untrusted(false, "why", err()).message,
            "cannot reach the store"
        );
    }
}
