//! The `Dialect` interface every store implements, and what dialects share: the HTTP client, the per-endpoint
//! rate limiter, error classification and metrics.
//!
//! The controller only ever sees `dyn Dialect`; [`Registry::standard`] is the one place the five are named.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub mod azure_key_vault;
pub mod barbican;
pub mod docker_swarm;
#[cfg(test)]
mod fixtures;
pub mod kit;
pub mod service_fabric_mesh;
pub mod tencent_ssm;

use async_trait::async_trait;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::api::{DialectKind, RateLimit, Target};
use crate::metrics::Metrics;
use crate::plan::{Capabilities, Desired, Observed, Plan, RemoteRef};
use crate::value::{Credentials, SecretValue};

use kit::http::http_client;

/// How an error should be handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Transient: retry with backoff (or after `retry_after`).
    Retry,
    /// Another writer or a state clash; retried slowly, reported as `Conflict`.
    Conflict,
    /// The credentials are missing, wrong or lack a permission; wait for a change.
    Credentials,
    /// Will not succeed until the spec, the source or the store changes; wait for a change.
    Permanent,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Retry => "retry",
            ErrorClass::Conflict => "conflict",
            ErrorClass::Credentials => "credentials",
            ErrorClass::Permanent => "permanent",
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error from a dialect. Its message is shown in conditions, Events and logs, so it must never contain a secret
/// value or credential, nor anything a store answered: build it from HTTP statuses, store error codes from the
/// dialect's closed list ([`kit::text::known_code`]) and SecretSync's own words. A `source` is shown too (Debug,
/// logs): never one whose text quotes an answer (serde's errors do).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DialectError {
    pub class: ErrorClass,
    /// CamelCase reason for the `Ready` condition, such as `BackendUnavailable` or `PayloadTooLarge`.
    pub reason: &'static str,
    pub message: String,
    /// The store's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
    #[source]
    pub source: Option<BoxError>,
}

impl DialectError {
    pub fn new(class: ErrorClass, reason: &'static str, message: impl Into<String>) -> Self {
        DialectError {
            class,
            reason,
            message: message.into(),
            retry_after: None,
            source: None,
        }
    }

    pub fn retry(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Retry, reason, message)
    }

    pub fn conflict(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Conflict, reason, message)
    }

    pub fn credentials(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Credentials, reason, message)
    }

    pub fn permanent(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Permanent, reason, message)
    }

    pub fn with_retry_after(mut self, after: Option<Duration>) -> Self {
        self.retry_after = after;
        self
    }

    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// A transport failure (connect, TLS, timeout). reqwest's messages name the URL but never the body.
    pub fn transport(err: reqwest::Error) -> Self {
        if err.is_timeout() {
            let message = format!(
                "the store did not answer in time (the answer's body included): {}",
                without_url_query(&err)
            );
            return Self::retry("BackendTimeout", message).with_source(err);
        }
        if kit::tls::identity_refused(&err) {
            let message = "the store refused the client certificate (tls.crt and tls.key)";
            return Self::credentials("CertificateRefused", message).with_source(err);
        }
        // Still retried: a server may be between certificates; the reason tells a CA to add from a store down.
        if let Some(why) = kit::tls::server_untrusted(&err) {
            let message = format!(
                "the store's TLS certificate is not trusted ({why}): give the CA that signed it as ca.crt in the \
                 credentials Secret or as the store's caBundle, where the dialect reads one"
            );
            return Self::retry("CertificateUntrusted", message).with_source(err);
        }
        let message = format!("cannot reach the store: {}", without_url_query(&err));
        Self::retry("BackendUnreachable", message).with_source(err)
    }

    /// A 3xx: SecretSync never follows a redirect (it would carry credentials and values to a host no store names).
    pub fn redirected(status: u16) -> Self {
        Self::permanent(
            "Redirected",
            format!(
                "store answered HTTP {status} (a redirect); SecretSync does not follow redirects: set the store's endpoint to the final URL"
            ),
        )
    }

    /// The usual mapping of an HTTP status without a more specific store code. `detail` is SecretSync's own words
    /// or a code from the dialect's closed list, never the store's text.
    pub fn from_status(status: u16, detail: &str, retry_after: Option<Duration>) -> Self {
        let mut message = format!("store answered HTTP {status}");
        let words = kit::text::status_words(status);
        if !words.is_empty() {
            message.push_str(&format!(" ({words})"));
        }
        if !detail.is_empty() {
            message.push_str(&format!(": {detail}"));
        }
        match status {
            300..=399 => Self::redirected(status),
            401 => Self::credentials("Unauthorized", message),
            403 => Self::credentials("Forbidden", message),
            409 => Self::conflict("Conflict", message),
            429 => Self::retry(kit::retry::THROTTLED, message).with_retry_after(retry_after),
            500..=599 => Self::retry("BackendError", message).with_retry_after(retry_after),
            _ => Self::permanent("BackendRejected", message),
        }
    }
}

fn without_url_query(err: &reqwest::Error) -> String {
    // Query strings can carry signatures; keep only the error text without the URL.
    let text = err.to_string();
    match err.url() {
        Some(url) => text.replace(url.as_str(), url.path()),
        None => text,
    }
}

/// Everything a dialect needs to act on one SecretSync.
#[derive(Debug)]
pub struct Request<'a> {
    pub target: &'a Target,
    /// `spec.target.remoteName` or the object's name.
    pub remote_name: &'a str,
    /// The store's own rate limit, when its admin set one; otherwise the controller's defaults apply.
    pub rate_limit: Option<RateLimit>,
    pub credentials: &'a Credentials,
    pub desired: &'a Desired,
    /// What the status recorded last time, if anything: a hint, never trusted over what the store says.
    pub last: Option<&'a RemoteRef>,
}

/// What a dialect reports after carrying out a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The remote secret now matches.
    Ready(RemoteRef),
    /// The store accepted the write but is still creating the secret.
    Creating(RemoteRef),
}

/// One secret store API.
#[async_trait]
pub trait Dialect: Send + Sync + 'static {
    fn kind(&self) -> DialectKind;

    /// Which metadata fields the store keeps and whether they can change in place.
    fn capabilities(&self, target: &Target) -> Capabilities;

    /// Whether the store's settings allow a secret whose immutable field must change to be deleted and
    /// created again (the planner's `Replace`). No store allows it unless its dialect says so.
    fn allows_replace(&self, _target: &Target) -> bool {
        false
    }

    /// Every URL a connection through `target` sends requests to: the store's endpoint (or the dialect's
    /// default) and where it signs in. `credentials` are the store's credentials Secret, which may name a sign-in
    /// URL of its own (Barbican's `authUrl`). The controller checks each against the operator's limits before it
    /// sends anything, a token or a credential included.
    fn destinations(&self, target: &Target, _credentials: &Credentials) -> Vec<String> {
        target.endpoint.iter().cloned().collect()
    }

    /// Whether a connection through `target` also sends requests to a URL the store's own answers name (Barbican's
    /// Keystone catalog), which no check of the store's spec can see: a namespaced Store must then name its
    /// endpoint itself.
    fn endpoint_from_answers(&self, _target: &Target) -> bool {
        false
    }

    /// Host patterns (see [`kit::endpoint::host_matches`]) of the vendor's public service, which a namespaced
    /// Store may reach without the operator listing them. Self-hosted stores have none.
    fn public_hosts(&self) -> &'static [&'static str] {
        &[]
    }

    /// Checks what can be checked before any call: name rules, size limits, required settings and
    /// credential keys. The errors are `Permanent` or `Credentials`.
    fn check(&self, req: &Request<'_>, value: &SecretValue) -> Result<(), DialectError>;

    /// Reads the remote secret.
    async fn observe(&self, req: &Request<'_>) -> Result<Observed, DialectError>;

    /// Carries out a writing plan (`Create`, `NewVersion`, `UpdateMetadata`, `Replace`).
    async fn apply(
        &self,
        req: &Request<'_>,
        plan: &Plan,
        observed: &Observed,
        value: &SecretValue,
    ) -> Result<Outcome, DialectError>;

    /// Deletes the remote secret that `observe` found.
    async fn delete(&self, req: &Request<'_>, observed: &Observed) -> Result<(), DialectError>;
}

/// A token bucket per store endpoint (and optionally per action), shared by every dialect.
pub struct EndpointLimiter {
    per_second: NonZeroU32,
    burst: NonZeroU32,
    buckets: Mutex<HashMap<String, Arc<DefaultDirectRateLimiter>>>,
    metrics: Arc<Metrics>,
}

impl EndpointLimiter {
    pub fn new(per_second: u32, burst: u32, metrics: Arc<Metrics>) -> Self {
        EndpointLimiter {
            per_second: NonZeroU32::new(per_second.max(1)).expect("at least 1"),
            burst: NonZeroU32::new(burst.max(1)).expect("at least 1"),
            buckets: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    /// Waits for a token of the bucket `key` (an endpoint URL, optionally with an action name).
    pub async fn acquire(&self, key: &str) {
        self.acquire_with(key, self.per_second, self.burst).await
    }

    /// Waits for a token of the bucket `key` at the store's own rate when it has one. A store's bucket is keyed
    /// by its rate too, so a new rate takes effect at once instead of keeping the first one seen.
    pub async fn acquire_for(&self, rate: Option<RateLimit>, key: &str) {
        match rate.and_then(|r| {
            let per_second = NonZeroU32::new(r.requests_per_second)?;
            let burst = NonZeroU32::new(r.burst.unwrap_or(r.requests_per_second))?;
            Some((per_second, burst))
        }) {
            Some((per_second, burst)) => {
                let key = format!("{key}|{per_second}/s|{burst}");
                self.acquire_with(&key, per_second, burst).await
            }
            None => self.acquire(key).await,
        }
    }

    /// Waits for a token of a bucket with its own rate (for stores that publish per-action limits).
    pub async fn acquire_with(&self, key: &str, per_second: NonZeroU32, burst: NonZeroU32) {
        let bucket = {
            let mut buckets = self.buckets.lock().expect("limiter lock poisoned");
            buckets
                .entry(key.to_owned())
                .or_insert_with(|| {
                    Arc::new(RateLimiter::direct(
                        Quota::per_second(per_second).allow_burst(burst),
                    ))
                })
                .clone()
        };
        if bucket.check().is_ok() {
            return;
        }
        self.metrics.queue_depth.inc();
        bucket.until_ready().await;
        self.metrics.queue_depth.dec();
    }
}

/// What every dialect is built with.
#[derive(Clone)]
pub struct Shared {
    /// The default client (no extra CA, no client certificate), bounded by `deadline`.
    pub http: reqwest::Client,
    pub limiter: Arc<EndpointLimiter>,
    pub metrics: Arc<Metrics>,
    /// The longest one attempt of a store call may take, from connecting to the last byte of the answer
    /// ([`kit::http::ATTEMPT_DEADLINE`] unless set with [`Shared::with_deadline`]).
    pub deadline: Duration,
}

impl Shared {
    pub fn new(rate_per_second: u32, burst: u32, metrics: Arc<Metrics>) -> Self {
        Shared {
            http: Self::client(kit::http::ATTEMPT_DEADLINE),
            limiter: Arc::new(EndpointLimiter::new(
                rate_per_second,
                burst,
                metrics.clone(),
            )),
            metrics,
            deadline: kit::http::ATTEMPT_DEADLINE,
        }
    }

    /// The same, with another deadline per attempt (tests of stores that hang use a short one).
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.http = Self::client(deadline);
        self.deadline = deadline;
        self
    }

    fn client(deadline: Duration) -> reqwest::Client {
        http_client(deadline)
            .build()
            .expect("the HTTP client's TLS backend initialises")
    }
}

/// The dialects a controller can use, by kind.
#[derive(Clone, Default)]
pub struct Registry {
    dialects: HashMap<DialectKind, Arc<dyn Dialect>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the dialect for its kind.
    pub fn with(mut self, dialect: Arc<dyn Dialect>) -> Self {
        self.dialects.insert(dialect.kind(), dialect);
        self
    }

    pub fn get(&self, kind: DialectKind) -> Option<&Arc<dyn Dialect>> {
        self.dialects.get(&kind)
    }

    /// Every dialect SecretSync ships.
    pub fn standard(shared: &Shared) -> Self {
        Registry::new()
            .with(Arc::new(service_fabric_mesh::ServiceFabricMesh::new(
                shared.clone(),
            )))
            .with(Arc::new(azure_key_vault::AzureKeyVault::new(
                shared.clone(),
            )))
            .with(Arc::new(barbican::Barbican::new(shared.clone())))
            .with(Arc::new(docker_swarm::DockerSwarm::new(shared.clone())))
            .with(Arc::new(tencent_ssm::TencentSsm::new(shared.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_statuses_map_to_classes() {
        assert_eq!(
            DialectError::from_status(401, "", None).class,
            ErrorClass::Credentials
        );
        assert_eq!(
            DialectError::from_status(403, "", None).class,
            ErrorClass::Credentials
        );
        assert_eq!(
            DialectError::from_status(409, "", None).class,
            ErrorClass::Conflict
        );
        let throttled = DialectError::from_status(429, "", Some(Duration::from_secs(7)));
        assert_eq!(throttled.class, ErrorClass::Retry);
        assert_eq!(throttled.retry_after, Some(Duration::from_secs(7)));
        assert_eq!(
            DialectError::from_status(503, "", None).class,
            ErrorClass::Retry
        );
        assert_eq!(
            DialectError::from_status(400, "", None).class,
            ErrorClass::Permanent
        );
        let redirect = DialectError::from_status(307, "", None);
        assert_eq!(
            (redirect.class, redirect.reason),
            (ErrorClass::Permanent, "Redirected")
        );
    }

    #[tokio::test]
    async fn limiter_spaces_requests_beyond_the_burst() {
        let limiter = EndpointLimiter::new(20, 1, Metrics::new());
        let start = tokio::time::Instant::now();
        for _ in 0..3 {
            limiter.acquire("https://a").await;
        }
        // 1 immediate + 2 waits of 50 ms at 20/s: at least ~100 ms. A lower bound only, never an upper one.
        assert!(start.elapsed() >= Duration::from_millis(90));
    }
}
