//! The `Dialect` interface every store implements, and what dialects share: the HTTP client, the rate limiter
//! (buckets per store, fair shares per namespace), error classification and metrics.
//!
//! The controller only ever sees `dyn Dialect`; [`Registry::standard`] is the one place the five are named.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod aws_secrets_manager;
pub mod azure_key_vault;
pub mod barbican;
pub mod docker_swarm;
#[cfg(test)]
mod fixtures;
pub mod kit;
pub mod service_fabric_mesh;
pub mod tencent_ssm;
pub mod vault;

use async_trait::async_trait;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::api::{DialectKind, RateLimit, Target};
use crate::metrics::Metrics;
use crate::plan::{Capabilities, Desired, Observed, RemoteRef, Write};
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
    /// The store the call goes through, as the controller resolved it; `None` for an inline target.
    pub store: Option<kit::store_id::StoreId>,
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
        write: &Write,
        observed: &Observed,
        value: &SecretValue,
    ) -> Result<Outcome, DialectError>;

    /// Reads the value of a remote secret `observe` found without SecretSync's digest (one written outside
    /// SecretSync), so that taking it over writes no new value when it already holds the source's. Called only
    /// when the planner would take the secret over (the store's `adoption` and the SecretSync allow it). `None`:
    /// the dialect cannot tell, and adopting writes the value.
    async fn read_value(
        &self,
        _req: &Request<'_>,
        _remote: &crate::plan::Remote,
    ) -> Result<Option<SecretValue>, DialectError> {
        Ok(None)
    }

    /// Deletes the remote secret that `observe` found.
    async fn delete(&self, req: &Request<'_>, observed: &Observed) -> Result<(), DialectError>;
}

/// Rate buckets. Each belongs to a store (its kind, namespace and name) and to what the caller names (`key`: the
/// endpoint, an action, the identity provider), so a tenant's Store copying a ClusterStore's endpoint, or 200
/// Stores signing in at one identity provider, spend their own budgets and no one else's. A ClusterStore's budget
/// is shared fairly between the namespaces using it: each request waits for its namespace's sub-bucket, at the
/// store's rate divided by the namespaces that used the store in the last [`ACTIVE_WINDOW`] (and its burst
/// likewise, at least one), then for the store's bucket; a busy namespace gets its share and no more while others
/// are active, and the whole rate when alone (the store's own check counts as no namespace). Calls made outside a store (inline targets, the operator's own, and
/// tests of one dialect) are paced by `key` alone, as before stores existed. Buckets and namespace counts are kept
/// in bounded LRU maps: those of stores and namespaces that are gone fall out as others are used.
pub struct EndpointLimiter {
    per_second: NonZeroU32,
    burst: NonZeroU32,
    buckets: kit::bounded::Lru<String, Bucket>,
    /// When each namespace last used each ClusterStore, by the store's key.
    tenants: kit::bounded::Lru<String, Arc<Mutex<HashMap<String, Instant>>>>,
    metrics: Arc<Metrics>,
}

/// How long a namespace counts as using a ClusterStore after its last request.
pub const ACTIVE_WINDOW: Duration = Duration::from_secs(60);
/// Buckets kept at most (a few hundred bytes each).
const MAX_BUCKETS: usize = 16_384;
/// ClusterStores whose namespaces are counted at most.
const MAX_COUNTED_STORES: usize = 1_024;

#[derive(Clone)]
struct Bucket {
    quota: Quota,
    limiter: Arc<DefaultDirectRateLimiter>,
}

tokio::task_local! {
    /// The store that the dialect call running on this task is made through (see [`Registry`]): the limiter is
    /// called deep in the kit's transport and in each dialect's sign-in, none of which sees the request, so the
    /// store travels with the task rather than through every dialect's code.
    static PACED_FOR: kit::store_id::StoreId;
}

impl EndpointLimiter {
    pub fn new(per_second: u32, burst: u32, metrics: Arc<Metrics>) -> Self {
        EndpointLimiter {
            per_second: NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN),
            burst: NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN),
            buckets: kit::bounded::Lru::new(MAX_BUCKETS),
            tenants: kit::bounded::Lru::new(MAX_COUNTED_STORES),
            metrics,
        }
    }

    /// Waits for a token of the bucket `key` (an endpoint URL, optionally with an action name) at the
    /// controller's default rate.
    pub async fn acquire(&self, key: &str) {
        self.acquire_for(None, key).await
    }

    /// Waits for a token of the bucket `key` at the store's own rate when it has one.
    pub async fn acquire_for(&self, rate: Option<RateLimit>, key: &str) {
        let (per_second, burst) = rate
            .and_then(|r| {
                let per_second = NonZeroU32::new(r.requests_per_second)?;
                let burst = NonZeroU32::new(r.burst.unwrap_or(r.requests_per_second))?;
                Some((per_second, burst))
            })
            .unwrap_or((self.per_second, self.burst));
        self.acquire_with(key, per_second, burst).await
    }

    /// Waits for a token of a bucket with its own rate (for stores that publish per-action limits).
    pub async fn acquire_with(&self, key: &str, per_second: NonZeroU32, burst: NonZeroU32) {
        for bucket in self.buckets_for(key, per_second, burst) {
            if bucket.check().is_ok() {
                continue;
            }
            self.metrics.queue_depth.inc();
            bucket.until_ready().await;
            self.metrics.queue_depth.dec();
        }
    }

    /// The buckets a request waits for, in order: its namespace's share of a ClusterStore, then the store's.
    fn buckets_for(
        &self,
        key: &str,
        per_second: NonZeroU32,
        burst: NonZeroU32,
    ) -> Vec<Arc<DefaultDirectRateLimiter>> {
        let whole = Quota::per_second(per_second).allow_burst(burst);
        let Ok(store) = PACED_FOR.try_with(Clone::clone) else {
            return vec![self.bucket(key.to_owned(), whole)];
        };
        let store_key = format!("{}|{key}", store.store_key());
        let mut out = Vec::with_capacity(2);
        // The store's own check has no namespace: it is not a tenant and takes no namespace's share.
        if let kit::store_id::StoreId::Cluster { tenant, .. } = &store
            && !tenant.is_empty()
        {
            let active = self.active_tenants(&store_key, tenant);
            out.push(self.bucket(
                format!("{store_key}|{tenant}"),
                share(per_second, burst, active),
            ));
        }
        out.push(self.bucket(store_key, whole));
        out
    }

    /// The bucket `key` with `quota`; one of another quota (the store's rate or its namespaces changed) is
    /// replaced, so a new rate takes effect at once.
    fn bucket(&self, key: String, quota: Quota) -> Arc<DefaultDirectRateLimiter> {
        self.buckets.with(|buckets| {
            let bucket = buckets.get_or_insert_mut(key, || Bucket {
                quota,
                limiter: Arc::new(RateLimiter::direct(quota)),
            });
            if bucket.quota != quota {
                *bucket = Bucket {
                    quota,
                    limiter: Arc::new(RateLimiter::direct(quota)),
                };
            }
            bucket.limiter.clone()
        })
    }

    /// Notes that `tenant` uses the ClusterStore `store_key`, and counts the namespaces that used it lately.
    fn active_tenants(&self, store_key: &str, tenant: &str) -> u32 {
        let seen = self
            .tenants
            .get_or_insert_with(store_key.to_owned(), Default::default);
        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        seen.retain(|_, last| now.duration_since(*last) < ACTIVE_WINDOW);
        seen.insert(tenant.to_owned(), now);
        u32::try_from(seen.len()).unwrap_or(u32::MAX)
    }
}

/// A namespace's share of a store's rate when `active` namespaces use it: the rate and the burst divided by them,
/// the burst at least one request.
fn share(per_second: NonZeroU32, burst: NonZeroU32, active: u32) -> Quota {
    let active = active.max(1);
    let burst = NonZeroU32::new(burst.get() / active).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(Duration::from_secs_f64(
        f64::from(active) / f64::from(per_second.get()),
    ))
    .unwrap_or_else(|| Quota::per_second(per_second))
    .allow_burst(burst)
}

/// Runs a dialect's call for `req` with its store known to the limiter (see [`PACED_FOR`]).
async fn paced<T>(req: &Request<'_>, call: impl std::future::Future<Output = T>) -> T {
    match &req.store {
        Some(store) => PACED_FOR.scope(store.clone(), call).await,
        None => call.await,
    }
}

/// A registered dialect: every store call it makes is paced as its store's (see [`EndpointLimiter`]).
struct Paced(Arc<dyn Dialect>);

#[async_trait]
impl Dialect for Paced {
    fn kind(&self) -> DialectKind {
        self.0.kind()
    }

    fn capabilities(&self, target: &Target) -> Capabilities {
        self.0.capabilities(target)
    }

    fn allows_replace(&self, target: &Target) -> bool {
        self.0.allows_replace(target)
    }

    fn destinations(&self, target: &Target, credentials: &Credentials) -> Vec<String> {
        self.0.destinations(target, credentials)
    }

    fn endpoint_from_answers(&self, target: &Target) -> bool {
        self.0.endpoint_from_answers(target)
    }

    fn public_hosts(&self) -> &'static [&'static str] {
        self.0.public_hosts()
    }

    fn check(&self, req: &Request<'_>, value: &SecretValue) -> Result<(), DialectError> {
        self.0.check(req, value)
    }

    async fn observe(&self, req: &Request<'_>) -> Result<Observed, DialectError> {
        paced(req, self.0.observe(req)).await
    }

    async fn apply(
        &self,
        req: &Request<'_>,
        write: &Write,
        observed: &Observed,
        value: &SecretValue,
    ) -> Result<Outcome, DialectError> {
        paced(req, self.0.apply(req, write, observed, value)).await
    }

    async fn read_value(
        &self,
        req: &Request<'_>,
        remote: &crate::plan::Remote,
    ) -> Result<Option<SecretValue>, DialectError> {
        paced(req, self.0.read_value(req, remote)).await
    }

    async fn delete(&self, req: &Request<'_>, observed: &Observed) -> Result<(), DialectError> {
        paced(req, self.0.delete(req, observed)).await
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
    /// CAs (PEM) the operator trusts, next to the public roots, for the identity providers that namespaced Stores
    /// sign in at (a private cloud's, a test bed's); a namespaced Store's own CA never vouches for one.
    pub identity_provider_ca: Option<Arc<str>>,
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
            identity_provider_ca: None,
        }
    }

    /// The same, trusting `pem` for the identity providers of namespaced Stores (see
    /// [`Shared::identity_provider_ca`]).
    pub fn with_identity_provider_ca(mut self, pem: impl Into<Arc<str>>) -> Self {
        self.identity_provider_ca = Some(pem.into());
        self
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

    /// Adds (or replaces) the dialect for its kind; its store calls are paced per store (see [`EndpointLimiter`]).
    pub fn with(mut self, dialect: Arc<dyn Dialect>) -> Self {
        self.dialects
            .insert(dialect.kind(), Arc::new(Paced(dialect)));
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
            .with(Arc::new(aws_secrets_manager::AwsSecretsManager::new(
                shared.clone(),
            )))
            .with(Arc::new(vault::Vault::new(shared.clone())))
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

    use kit::store_id::StoreId;

    /// The buckets a request for `store` to `key` waits for, at the limiter's default rate.
    fn buckets(
        limiter: &EndpointLimiter,
        store: Option<StoreId>,
        key: &str,
    ) -> Vec<Arc<DefaultDirectRateLimiter>> {
        let get = || limiter.buckets_for(key, limiter.per_second, limiter.burst);
        match store {
            Some(store) => PACED_FOR.sync_scope(store, get),
            None => get(),
        }
    }

    fn cluster(tenant: &str) -> StoreId {
        StoreId::Cluster {
            name: "platform".into(),
            tenant: tenant.into(),
        }
    }

    fn shares_any(
        a: &[Arc<DefaultDirectRateLimiter>],
        b: &[Arc<DefaultDirectRateLimiter>],
    ) -> bool {
        a.iter().any(|x| b.iter().any(|y| Arc::ptr_eq(x, y)))
    }

    #[test]
    fn a_store_copying_a_cluster_stores_endpoint_spends_its_own_budget() {
        let limiter = EndpointLimiter::new(1, 1, Metrics::new());
        let endpoint = "https://vault.example";
        let platform = buckets(&limiter, Some(cluster("team-a")), endpoint);
        assert_eq!(platform.len(), 2, "a namespace's share, then the store's");
        assert!(platform.iter().all(|b| b.check().is_ok()));
        let again = buckets(&limiter, Some(cluster("team-a")), endpoint);
        assert!(
            again.iter().zip(&platform).all(|(x, y)| Arc::ptr_eq(x, y)),
            "one store's requests share its buckets"
        );
        let copy = StoreId::Namespaced {
            namespace: "team-b".into(),
            name: "platform".into(),
        };
        let copied = buckets(&limiter, Some(copy), endpoint);
        assert_eq!(copied.len(), 1);
        assert!(!shares_any(&copied, &platform));
        assert!(
            copied[0].check().is_ok(),
            "the copy waited for the platform's budget"
        );
        // Another namespace's Store of the same name is another store.
        let other = StoreId::Namespaced {
            namespace: "team-c".into(),
            name: "platform".into(),
        };
        assert!(!shares_any(
            &buckets(&limiter, Some(other), endpoint),
            &copied
        ));
        // Without a store (an inline target), the endpoint alone, shared with no store.
        let unscoped = buckets(&limiter, None, endpoint);
        assert!(!shares_any(&unscoped, &platform) && !shares_any(&unscoped, &copied));
    }

    #[test]
    fn namespaces_of_one_cluster_store_do_not_starve_each_other() {
        let limiter = EndpointLimiter::new(1, 8, Metrics::new());
        let endpoint = "https://vault.example";
        // Both namespaces have used the store lately.
        for tenant in ["team-a", "team-b", "team-a"] {
            buckets(&limiter, Some(cluster(tenant)), endpoint);
        }
        let take = |tenant: &str| {
            buckets(&limiter, Some(cluster(tenant)), endpoint)
                .iter()
                .all(|b| b.check().is_ok())
        };
        // A busy namespace takes what it can get at once: its half of the burst (a token more if the clock moves).
        let mut taken = 0;
        while taken < 100 && take("team-a") {
            taken += 1;
        }
        assert!(taken >= 4, "team-a got {taken} of its share of 4");
        assert!(taken < 8, "team-a took the whole burst ({taken})");
        // The other namespace still has its share of the store's budget.
        assert!(take("team-b"), "team-a's requests spent team-b's budget");
        // Alone, a namespace has the store's whole rate.
        let alone = EndpointLimiter::new(1, 8, Metrics::new());
        let mut taken = 0;
        while taken < 100
            && buckets(&alone, Some(cluster("team-a")), endpoint)
                .iter()
                .all(|b| b.check().is_ok())
        {
            taken += 1;
        }
        assert!(
            taken >= 8,
            "a namespace alone got {taken} of the burst of 8"
        );
        // The store's own check takes no namespace's share.
        let check = buckets(&alone, Some(cluster("")), endpoint);
        assert_eq!(
            check.len(),
            1,
            "the check waits for the store's bucket only"
        );
    }

    #[test]
    fn a_share_divides_the_rate_and_the_burst() {
        let n = |v| NonZeroU32::new(v).unwrap();
        let quarter = share(n(20), n(40), 4);
        assert_eq!(quarter.replenish_interval(), Duration::from_millis(200));
        assert_eq!(quarter.burst_size(), n(10));
        let crowded = share(n(2), n(4), 10);
        assert_eq!(crowded.replenish_interval(), Duration::from_secs(5));
        assert_eq!(crowded.burst_size(), n(1), "at least one request");
        assert_eq!(share(n(5), n(5), 0), Quota::per_second(n(5)));
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
