//! One HTTP exchange with a store, the same for every HTTP dialect: paced by the store's rate limit, authorised
//! per attempt, never redirected, its answer capped, metered, decoded by the dialect, and retried by
//! [`RetryPolicy`] only where that cannot do anything twice.

use std::num::NonZeroU32;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use reqwest::header::HeaderMap;
use zeroize::Zeroizing;

use super::retry::{Applied, Failure, Idempotency, RetryPolicy};
use crate::api::RateLimit;
use crate::dialects::{DialectError, ErrorClass, Shared};

/// Every HTTP client a dialect uses starts here: bounded connect and total time (the body included), and no
/// redirects, ever (reqwest's default follows up to 10, to any host and from https to http, replaying bodies and
/// keeping auth headers).
pub fn http_client(deadline: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(Duration::from_secs(10).min(deadline))
        .timeout(deadline)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("secretsync/", env!("CARGO_PKG_VERSION")))
}

/// The longest one attempt may take, from connecting to the last byte of the answer, unless the controller
/// is built with another (see [`Shared::with_deadline`]).
pub const ATTEMPT_DEADLINE: Duration = Duration::from_secs(30);

/// The largest store answer read (1 MiB). Stores answer with metadata and one secret at most; a larger body is
/// refused as it arrives instead of being held in memory (a store streaming gigabytes must not take the
/// controller, and every tenant with it, out of memory).
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Why a response body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
    #[error("the store's answer is larger than {MAX_RESPONSE_BYTES} bytes; it was not read")]
    TooLarge,
}

impl From<BodyError> for DialectError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::Transport(e) => DialectError::transport(e),
            BodyError::TooLarge => DialectError::permanent("ResponseTooLarge", e.to_string()),
        }
    }
}

/// Reads a response body, at most [`MAX_RESPONSE_BYTES`]; wiped when dropped (it may hold a value).
pub async fn read_body(mut response: reqwest::Response) -> Result<Zeroizing<Vec<u8>>, BodyError> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Err(BodyError::TooLarge);
    }
    let mut body = Zeroizing::new(Vec::new());
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Parses a `Retry-After` header given in seconds.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// An answer whose content is not needed, only that it is one (an object, or nothing).
#[derive(serde::Deserialize, Default, Debug)]
pub struct Ignored {}

/// A store's answer, read whole (within the cap) and wiped when dropped.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Zeroizing<Vec<u8>>,
    /// The dialect's decoder said the answer means "no such secret".
    pub absent: bool,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn retry_after(&self) -> Option<Duration> {
        retry_after(&self.headers)
    }

    /// The answer read as `T`: `None` when the decoder called it absent, `T::default()` when it is empty. One that
    /// cannot be read is `BadResponse` (retried), saying only where it failed (see [`super::text::json_position`]).
    pub fn json<T: serde::de::DeserializeOwned + Default>(
        &self,
        operation: &str,
    ) -> Result<Option<T>, DialectError> {
        if self.absent {
            return Ok(None);
        }
        if self.body.is_empty() {
            return Ok(Some(T::default()));
        }
        serde_json::from_slice(&self.body).map(Some).map_err(|e| {
            let at = super::text::json_position(&e);
            DialectError::retry(
                "BadResponse",
                format!("{operation}: unexpected answer ({at})"),
            )
        })
    }
}

/// What a dialect's decoder makes of an answer.
#[derive(Debug)]
pub enum Verdict {
    /// The request did what it asked.
    Success,
    /// The secret (or version) asked for does not exist; the caller decides what that means.
    Absent,
    /// A failure, classified.
    Error(DialectError),
}

/// One store's reading of its answers: its error format and codes mapped to [`ErrorClass`] and reasons.
pub type Decoder = fn(&Reply) -> Verdict;

/// A store's reading of a failed answer (status, body, `Retry-After`).
pub type ErrorMap = fn(u16, &[u8], Option<Duration>) -> DialectError;

/// The decoder of an HTTP API whose 404 means "no such secret": 2xx success, 404 absent, the rest as the
/// store's `map` reads them.
pub fn decode_with(reply: &Reply, map: ErrorMap) -> Verdict {
    match reply.status {
        200..=299 => Verdict::Success,
        404 => Verdict::Absent,
        s => Verdict::Error(map(s, &reply.body, reply.retry_after())),
    }
}

/// The usual decoder of an HTTP API without codes of its own: 2xx success, 404 absent, the rest by status.
pub fn decode_by_status(reply: &Reply) -> Verdict {
    decode_with(reply, |status, _, after| {
        DialectError::from_status(status, "", after)
    })
}

/// Which rate limit an exchange waits for.
#[derive(Clone, Copy, Debug)]
pub enum Pace<'a> {
    /// The store's own limit when its admin set one, else the controller's default, per `key` (the endpoint).
    Store {
        key: &'a str,
        rate: Option<RateLimit>,
    },
    /// A limit the store publishes for this kind of request (`key` names the endpoint and the action), within
    /// the store's own limit when its admin set one (`store_key`, the endpoint).
    PerAction {
        key: &'a str,
        per_second: NonZeroU32,
        burst: NonZeroU32,
        store_key: &'a str,
        rate: Option<RateLimit>,
    },
}

/// One request, as data, so that each attempt can be built (and signed) afresh.
#[derive(Clone, Copy, Debug)]
pub struct Exchange<'a> {
    /// The operation's name in metrics and logs.
    pub operation: &'static str,
    pub method: &'a Method,
    pub url: &'a str,
    pub accept: &'static str,
    /// Content type and bytes. The bytes may hold a value: they are never logged or shown.
    pub body: Option<(&'static str, &'a [u8])>,
    /// Non-secret headers (action names, versions); credentials come from [`Auth`].
    pub headers: &'a [(&'static str, &'a str)],
    pub idempotency: Idempotency,
}

impl<'a> Exchange<'a> {
    /// A request without a body, idempotent unless it is a POST.
    pub fn new(operation: &'static str, method: &'a Method, url: &'a str) -> Self {
        Exchange {
            operation,
            method,
            url,
            accept: "application/json",
            body: None,
            headers: &[],
            idempotency: if *method == Method::POST {
                Idempotency::NotIdempotent
            } else {
                Idempotency::Idempotent
            },
        }
    }

    pub fn body(mut self, content_type: &'static str, bytes: &'a [u8]) -> Self {
        self.body = Some((content_type, bytes));
        self
    }

    pub fn json(self, bytes: &'a [u8]) -> Self {
        self.body("application/json", bytes)
    }

    pub fn accept(mut self, accept: &'static str) -> Self {
        self.accept = accept;
        self
    }

    pub fn headers(mut self, headers: &'a [(&'static str, &'a str)]) -> Self {
        self.headers = headers;
        self
    }

    /// Says how safe the request is to repeat when the method alone does not (a POST that only reads).
    pub fn idempotency(mut self, idempotency: Idempotency) -> Self {
        self.idempotency = idempotency;
        self
    }
}

/// How a dialect proves who it is: a bearer token with renewal after a 401 challenge, `X-Auth-Token` with
/// renewal, a request signature, or nothing (client certificates live in the client, see [`super::tls`]).
#[async_trait]
pub trait Auth: Send + Sync {
    /// Adds the credentials to one attempt (called for each, so signatures and tokens are fresh).
    async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
        exchange: &Exchange<'_>,
    ) -> Result<reqwest::RequestBuilder, DialectError>;

    /// The store answered 401. Renew what can be renewed and return `true` when the request is worth one more
    /// attempt; an error when the answer shows the credentials cannot work.
    async fn refused(&self, _reply: &Reply) -> Result<bool, DialectError> {
        Ok(false)
    }

    /// An exchange sent with these credentials failed with `error` (after any renewal): forget what the error
    /// shows to be stale. Nothing by default.
    fn failed(&self, _error: &DialectError) {}
}

/// No credentials (a store that trusts its network, or client certificates only).
pub struct NoAuth;

#[async_trait]
impl Auth for NoAuth {
    async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
        _: &Exchange<'_>,
    ) -> Result<reqwest::RequestBuilder, DialectError> {
        Ok(request)
    }
}

/// A bearer token that cannot be renewed (it comes from the credentials Secret as it is).
pub struct StaticBearer(pub Zeroizing<String>);

#[async_trait]
impl Auth for StaticBearer {
    async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
        _: &Exchange<'_>,
    ) -> Result<reqwest::RequestBuilder, DialectError> {
        Ok(request.bearer_auth(self.0.as_str()))
    }
}

/// Where one call goes: the client (with its TLS settings), the rate limit it waits for, and its credentials.
pub struct Endpoint<'a> {
    pub client: &'a reqwest::Client,
    pub pace: Pace<'a>,
    pub auth: &'a dyn Auth,
}

impl<'a> Endpoint<'a> {
    /// The usual one: paced by the store's own rate (or the controller's default) per `key`, its endpoint.
    pub fn store(
        client: &'a reqwest::Client,
        key: &'a str,
        rate: Option<RateLimit>,
        auth: &'a dyn Auth,
    ) -> Self {
        Endpoint {
            client,
            pace: Pace::Store { key, rate },
            auth,
        }
    }
}

/// How an answer is counted in `secretsync_backend_requests_total`: `ok`, `not_found` or the error's class,
/// unless the dialect's documented outcomes say more (see [`Transport::with_outcome`]).
pub fn outcome(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Success => "ok",
        Verdict::Absent => "not_found",
        Verdict::Error(e) => e.class.as_str(),
    }
}

/// A dialect's HTTP transport: its name for metrics and logs, what it shares with the others, and its decoder.
#[derive(Clone)]
pub struct Transport {
    dialect: &'static str,
    shared: Shared,
    decode: Decoder,
    policy: RetryPolicy,
    outcome: fn(&Verdict) -> &'static str,
}

impl Transport {
    pub fn new(dialect: &'static str, shared: Shared, decode: Decoder) -> Self {
        Transport {
            dialect,
            shared,
            decode,
            policy: RetryPolicy::default(),
            outcome,
        }
    }

    /// Counts answers with the dialect's own outcome names (Docker's `in_use`) where [`outcome`] says too little.
    pub fn with_outcome(mut self, outcome: fn(&Verdict) -> &'static str) -> Self {
        self.outcome = outcome;
        self
    }

    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Counts one request in `secretsync_backend_requests_total`.
    pub fn record(&self, operation: &str, outcome: &str) {
        self.shared
            .metrics
            .backend_request(self.dialect, operation, outcome);
    }

    /// Sends `exchange` to `endpoint`. Returns the answer when the decoder calls it a success or absent (see
    /// [`Reply::absent`]); otherwise the decoded error, after the retries [`RetryPolicy`] allows.
    pub async fn send(
        &self,
        endpoint: &Endpoint<'_>,
        exchange: &Exchange<'_>,
    ) -> Result<Reply, DialectError> {
        self.policy
            .run(
                exchange.idempotency,
                |_| self.attempt(endpoint, exchange),
                |attempt, failure| {
                    tracing::debug!(
                        dialect = self.dialect,
                        operation = exchange.operation,
                        attempt,
                        reason = failure.error.reason,
                        "retrying after a transient store error"
                    );
                },
            )
            .await
    }

    /// One attempt, plus one more at once when the store refused the credentials and they could be renewed.
    async fn attempt(
        &self,
        endpoint: &Endpoint<'_>,
        exchange: &Exchange<'_>,
    ) -> Result<Reply, Failure> {
        let mut renewed = false;
        loop {
            let mut reply = self.once(endpoint, exchange).await?;
            if reply.status == 401 && !renewed {
                let retry = endpoint.auth.refused(&reply).await.map_err(|e| {
                    self.record(exchange.operation, e.class.as_str());
                    Failure::not_applied(e)
                })?;
                if retry {
                    self.record(exchange.operation, "renewed_credentials");
                    renewed = true;
                    continue;
                }
            }
            // No dialect's decoder gets to treat a redirect as anything but a failure.
            let verdict = if (300..400).contains(&reply.status) {
                Verdict::Error(DialectError::redirected(reply.status))
            } else {
                (self.decode)(&reply)
            };
            self.record(exchange.operation, (self.outcome)(&verdict));
            return match verdict {
                Verdict::Success => Ok(reply),
                Verdict::Absent => {
                    reply.absent = true;
                    Ok(reply)
                }
                Verdict::Error(e) => Err(Failure::answered(e)),
            };
        }
    }

    /// Sends once and reads the answer; transport failures are recorded here, answers by the caller.
    async fn once(
        &self,
        endpoint: &Endpoint<'_>,
        exchange: &Exchange<'_>,
    ) -> Result<Reply, Failure> {
        let limiter = &self.shared.limiter;
        match endpoint.pace {
            Pace::Store { key, rate } => limiter.acquire_for(rate, key).await,
            Pace::PerAction {
                key,
                per_second,
                burst,
                store_key,
                rate,
            } => {
                if rate.is_some() {
                    limiter.acquire_for(rate, store_key).await;
                }
                limiter.acquire_with(key, per_second, burst).await
            }
        }
        let mut request = endpoint
            .client
            .request(exchange.method.clone(), exchange.url)
            .header(reqwest::header::ACCEPT, exchange.accept);
        for (name, value) in exchange.headers {
            request = request.header(*name, *value);
        }
        request = match exchange.body {
            Some((content_type, bytes)) => request
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(bytes.to_vec()),
            None if *exchange.method == Method::POST => {
                request.header(reqwest::header::CONTENT_LENGTH, "0")
            }
            None => request,
        };
        let request = endpoint
            .auth
            .authorize(request, exchange)
            .await
            .map_err(Failure::not_applied)?;
        let response = request.send().await.map_err(|e| {
            self.record(exchange.operation, ErrorClass::Retry.as_str());
            // A connection never made carried nothing; anything later may have reached the store.
            let applied = if e.is_connect() {
                Applied::No
            } else {
                Applied::Maybe
            };
            Failure {
                error: DialectError::transport(e),
                applied,
            }
        })?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = read_body(response).await.map_err(|e| {
            let error = DialectError::from(e);
            self.record(exchange.operation, error.class.as_str());
            Failure::maybe_applied(error)
        })?;
        Ok(Reply {
            status,
            headers,
            body,
            absent: false,
        })
    }
}
