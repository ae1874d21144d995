//! Tencent Cloud Secrets Manager (SSM), API 3.0, version `2019-09-23`. What users set and see (settings,
//! credentials, naming, the marker, pacing, requests, errors) is in `docs/src/dialects/tencent-ssm.md`; this is how
//! it is built.
//!
//! # Why the marker is in the description
//!
//! SSM has no tag API of its own (tags live in Tencent's separate tag service, with its own credentials and
//! permissions), and `DescribeSecret` returns the description, which `UpdateDescription` changes. So the marker is
//! the description's last line (the kit's `ownership::description` codec), and one `DescribeSecret` tells an
//! unchanged value from a changed one without reading the secret. The cost: a value rewritten by another client that
//! leaves the line alone is not noticed, because the digest key stays inside the controller and a read-back could
//! not be compared anyway.
//!
//! # Ordering and versions
//!
//! A value change writes the value first and the marker second: an interruption leaves an old digest, which the
//! next reconcile sees as a difference. `History` names versions `ss-<n>-<12 hex of the digest>`; the counter keeps
//! names unique when a value returns, and the prefix is how SecretSync knows which versions it may delete at the
//! store's cap of 10. Delete disables first because SSM refuses to delete an enabled secret.
//!
//! # Requests and pacing
//!
//! Every request is a signed `POST /` (TC3-HMAC-SHA256, see [`sign`]) with `X-TC-Action`. SSM publishes its limit
//! per action, so the pace is kept per action and endpoint at 90% of `requestsPerSecond`, which leaves room for
//! arrival jitter so SSM's own per-second count never passes the limit; the store's `rateLimit` also bounds all
//! requests to the endpoint together, as for every dialect. A request is repeated only when repeating cannot do
//! anything twice (see `idempotency`): reads and calls that set a state always, `CreateSecret` and `PutSecretValue`
//! only after `RequestLimitExceeded` or a connection never made.

pub mod sign;

use std::num::NonZeroU32;

use async_trait::async_trait;
use base64::Engine;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::kit::ownership::{self, description};
use super::kit::retry::THROTTLED;
use super::kit::session::Session;
use super::kit::tls::ClientCache;
use super::kit::{Auth, Exchange, Idempotency, Ignored, Reply, Transport, Verdict, credentials};
use super::{Dialect, DialectError, Outcome, Request, Shared};
use crate::api::{DialectKind, Target, TencentSsmSettings, TencentVersionPolicy};
use crate::plan::digest::short;
use crate::plan::{
    Capabilities, Desired, Metadata, Observed, Remote, RemoteRef, RemoteState, Support, Write,
};
use crate::value::{Credentials, SecretValue};

const DIALECT: &str = "TencentSSM";
const SERVICE: &str = "ssm";
const API_VERSION: &str = "2019-09-23";
const DEFAULT_ENDPOINT: &str = "https://ssm.tencentcloudapi.com";
/// The published per-action limit (`UpdateSecret`, 2020 documentation).
pub const DEFAULT_REQUESTS_PER_SECOND: u32 = 50;
pub const DEFAULT_VERSION_ID: &str = "SSM_Current";
pub const MAX_VERSIONS: usize = 10;
const MAX_DESCRIPTION: usize = 2048;
pub const MAX_VALUE: usize = 32 * 1024;
const HISTORY_PREFIX: &str = "ss-";
const HISTORY_DIGITS: usize = 12;

pub struct TencentSsm {
    transport: Transport,
    /// Clients trusting an extra CA (`ca.crt`) next to the public roots.
    clients: ClientCache,
}

impl TencentSsm {
    pub fn new(shared: Shared) -> Self {
        TencentSsm {
            clients: ClientCache::new(&shared),
            transport: Transport::new(DIALECT, shared, decode),
        }
    }
}

/// Where and as whom one reconcile's requests go (every call is a signed `POST /`, see [`Tc3`]), their pace
/// per action, and the store's version settings.
struct Ctx<'a> {
    http: Session<'a>,
    region: &'a str,
    pace: NonZeroU32,
    burst: NonZeroU32,
    policy: TencentVersionPolicy,
    version_id: &'a str,
}

/// TC3-HMAC-SHA256 request signing (see [`sign`]): each attempt is signed afresh, with its own timestamp.
struct Tc3<'a> {
    /// `host` or `host:port`, exactly as the `Host` header is sent.
    host: String,
    secret_id: &'a str,
    secret_key: &'a str,
    /// The session token of temporary credentials, sent as `X-TC-Token`.
    token: Option<&'a str>,
}

impl<'a> Tc3<'a> {
    /// The signer for requests to `url` with the credentials' API key.
    fn new(url: &url::Url, creds: &'a Credentials) -> Result<Self, DialectError> {
        let host_name = url.host_str().unwrap_or_default().to_owned();
        let host = match url.port() {
            Some(port) => format!("{host_name}:{port}"),
            None => host_name,
        };
        let secret_id = credentials::ascii(creds, "secretId")?.ok_or_else(|| {
            credentials::missing("secretId", "the SecretId of a Tencent Cloud API key")
        })?;
        let secret_key = credentials::ascii(creds, "secretKey")?.ok_or_else(|| {
            credentials::missing("secretKey", "the SecretKey of a Tencent Cloud API key")
        })?;
        // No (or an empty) token key means permanent credentials, as when a template always renders the key.
        let token = credentials::ascii(creds, "token")?;
        Ok(Tc3 {
            host,
            secret_id,
            secret_key,
            token,
        })
    }
}

#[async_trait]
impl Auth for Tc3<'_> {
    async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
        exchange: &Exchange<'_>,
    ) -> Result<reqwest::RequestBuilder, DialectError> {
        // Every SSM call carries a JSON body; the signature covers it and the content type it is sent with.
        let (content_type, payload) = exchange.body.unwrap_or(("application/json", &[]));
        let timestamp = chrono::Utc::now().timestamp();
        let authorization = sign::Signable {
            method: exchange.method.as_str(),
            query: "",
            content_type,
            host: &self.host,
            payload,
            timestamp,
            service: SERVICE,
        }
        .authorization(self.secret_id, self.secret_key);
        let mut request = request
            .header(reqwest::header::AUTHORIZATION, authorization)
            .header("X-TC-Timestamp", timestamp.to_string());
        if let Some(token) = self.token {
            request = request.header("X-TC-Token", token);
        }
        Ok(request)
    }
    // A 401 is not renewed: SSM refuses credentials with HTTP 200 and an `AuthFailure.*` code (see [`map_code`]),
    // so a 401 can only come from something in front of it, and a signature has nothing to renew.
}

fn settings(target: &Target) -> Result<&TencentSsmSettings, DialectError> {
    target.tencent_ssm.as_deref().ok_or_else(|| {
        DialectError::permanent(
            "MissingSetting",
            "TencentSSM needs tencentSSM.region (on the store)",
        )
    })
}

/// Letters, digits, '-' and '_', starting with a letter or digit, at most 128 bytes.
pub fn valid_secret_name(name: &str) -> bool {
    super::kit::names::plain(name, 128, b"-_")
}

/// Letters, digits, '-', '_' and '.', starting with a letter or digit, at most 64 bytes.
pub fn valid_version_id(id: &str) -> bool {
    super::kit::names::plain(id, 64, b"-_.")
}

impl TencentSsm {
    fn context<'a>(&'a self, req: &'a Request<'a>) -> Result<Ctx<'a>, DialectError> {
        let s = settings(req.target)?;
        let region = s
            .region
            .as_deref()
            .filter(|r| !r.is_empty())
            .ok_or_else(|| {
                DialectError::permanent(
                    "MissingSetting",
                    "TencentSSM needs tencentSSM.region (on the store)",
                )
            })?;
        // It is sent in a header.
        if !region.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(DialectError::permanent(
                "InvalidSetting",
                "tencentSSM.region (on the store) is not a region name",
            ));
        }
        let version_id = s.version_id.as_deref().unwrap_or(DEFAULT_VERSION_ID);
        if !valid_version_id(version_id) {
            return Err(DialectError::permanent(
                "InvalidSetting",
                "spec.target.tencentSSM.versionId must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            ));
        }
        let url = super::kit::endpoint::secure_root(
            req.target.endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT),
            "TencentSSM endpoints",
            "https://ssm.ap-guangzhou.tencentcloudapi.com",
        )?;
        let creds = req.credentials;
        // Next to the public roots, as for AzureKeyVault (see the module documentation).
        let client = self
            .clients
            .client(super::kit::tls::store_ca(creds, &url)?)?;
        let auth = Tc3::new(&url, creds)?;
        let limit = s.requests_per_second.unwrap_or(DEFAULT_REQUESTS_PER_SECOND);
        let http = Session {
            transport: &self.transport,
            client,
            base: url.as_str().trim_end_matches('/').to_owned(),
            suffix: String::new(),
            rate: req.rate_limit,
            auth: Box::new(auth),
        };
        Ok(Ctx {
            http,
            region,
            pace: pace_for(limit),
            burst: burst_for(req.rate_limit),
            policy: s.version_policy.unwrap_or_default(),
            version_id,
        })
    }
}

/// 90% of the store's limit: requests paced exactly at the limit can arrive bunched (scheduling, network
/// jitter) and land one too many in a second of the store's counter.
fn pace_for(limit: u32) -> NonZeroU32 {
    NonZeroU32::new((limit.saturating_mul(9) / 10).max(1)).unwrap_or(NonZeroU32::MIN)
}

/// The store's `rateLimit.burst` when its admin set one, else none: requests go out evenly spaced.
fn burst_for(rate: Option<crate::api::RateLimit>) -> NonZeroU32 {
    rate.and_then(|r| r.burst)
        .and_then(NonZeroU32::new)
        .unwrap_or(NonZeroU32::MIN)
}

/// Tencent's own field of the marker line: the version the value was written to.
#[derive(Serialize, Deserialize)]
struct VersionField {
    #[serde(rename = "secretsync.io/version")]
    version: String,
}

/// SecretSync's marker on an SSM secret, the last line of its description: the kit's owner and digest, and
/// the version written.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Marker {
    mark: ownership::Marker,
    version: String,
}

impl Marker {
    fn new(desired: &Desired, version: &str) -> Self {
        Marker {
            mark: ownership::Marker::of(desired),
            version: version.to_owned(),
        }
    }
}

/// SSM keeps no empty description apart from none: an empty user part is none.
fn compose_description(user: Option<&str>, marker: &Marker) -> String {
    description::join(
        user.filter(|d| !d.is_empty()),
        &marker.mark,
        VersionField {
            version: marker.version.clone(),
        },
    )
}

/// Splits a description into the user's part and SecretSync's marker line (the last line, when present).
fn split_description(full: &str) -> (Option<String>, Option<Marker>) {
    let (user, marker) = description::split::<VersionField>(Some(full));
    (
        user.filter(|u| !u.is_empty()),
        marker.map(|(mark, v)| Marker {
            mark,
            version: v.version,
        }),
    )
}

/// `ss-<n>-<hex>`: the counter of a version SecretSync created in `History` mode.
fn history_counter(version: &str) -> Option<u64> {
    let rest = version.strip_prefix(HISTORY_PREFIX)?;
    let (n, hex) = rest.split_once('-')?;
    (hex.len() == HISTORY_DIGITS && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| n.parse().ok())
        .flatten()
}

/// The counter after the highest one listed (1 when none is): `None` past `u64::MAX`, since the counters come
/// from the store and `n + 1` would panic.
fn next_history_counter(highest: Option<u64>) -> Option<u64> {
    highest.map_or(Some(1), |n| n.checked_add(1))
}

fn history_version(n: u64, digest: &str) -> String {
    format!("{HISTORY_PREFIX}{n}-{}", short(digest, HISTORY_DIGITS))
}

/// The value as SSM takes it: text as `SecretString`, other bytes base64-encoded as `SecretBinary`.
enum Payload<'a> {
    Text(&'a str),
    Binary(Zeroizing<String>),
}

impl<'a> Payload<'a> {
    fn of(value: &'a SecretValue) -> Self {
        match value.expose_str() {
            Some(text) => Payload::Text(text),
            None => Payload::Binary(Zeroizing::new(
                base64::engine::general_purpose::STANDARD.encode(value.expose()),
            )),
        }
    }

    fn wire_len(&self) -> usize {
        match self {
            Payload::Text(t) => t.len(),
            Payload::Binary(b) => b.len(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ValueBody<'a> {
    secret_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_string: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_binary: Option<&'a str>,
}

impl<'a> ValueBody<'a> {
    fn new(name: &'a str, version: Option<&'a str>, payload: &'a Payload<'a>) -> Self {
        let (secret_string, secret_binary) = match payload {
            Payload::Text(t) => (Some(*t), None),
            Payload::Binary(b) => (None, Some(b.as_str())),
        };
        ValueBody {
            secret_name: name,
            version_id: version,
            description: None,
            secret_string,
            secret_binary,
        }
    }

    /// The JSON body, wiped from memory when dropped.
    fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(serde_json::to_vec(self).unwrap_or_default())
    }
}

fn json_body(value: serde_json::Value) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(value.to_string().into_bytes())
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
struct DescribeSecretResponse {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
struct ListVersionsResponse {
    #[serde(default)]
    versions: Option<Vec<VersionInfo>>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
struct VersionInfo {
    version_id: String,
}

/// The part of an error code before the first '.', e.g. `AuthFailure` of `AuthFailure.SignatureExpire`.
fn family(code: &str) -> &str {
    code.split('.').next().unwrap_or(code)
}

/// The families (the part before the first '.') of Tencent Cloud API 3.0's documented error codes, common and SSM's.
const KNOWN_FAMILIES: &[&str] = &[
    "AuthFailure",
    "UnauthorizedOperation",
    "OperationDenied",
    "RequestLimitExceeded",
    "LimitExceeded",
    "InternalError",
    "FailedOperation",
    "InvalidParameter",
    "InvalidParameterValue",
    "InvalidAction",
    "InvalidRequest",
    "MissingParameter",
    "UnknownParameter",
    "UnsupportedOperation",
    "UnsupportedRegion",
    "ResourceNotFound",
    "ResourceInUse",
    "ResourceUnavailable",
    "ResourceInsufficient",
    "ResourcesSoldOut",
    "NoSuchVersion",
    "InvalidCredential",
    "UnsupportedProtocol",
    "RequestSizeLimitExceeded",
    "ServiceUnavailable",
];

/// `code` as shown: a documented code's shape (`Family.Detail`, letters and digits, at most 100 characters) in a
/// known family, else `None`.
fn shown_code(code: &str) -> Option<&str> {
    let shaped = code.len() <= 100
        && code.split('.').enumerate().all(|(i, part)| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()))
        });
    (shaped && KNOWN_FAMILIES.contains(&family(code))).then_some(code)
}

/// `RequestId` as shown: only a UUID's characters (SSM's request IDs are UUIDs), at most 64.
fn shown_request_id(id: &str) -> Option<&str> {
    (!id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
        .then_some(id)
}

/// Maps a documented SSM error code to how SecretSync handles it: the code shown only when [`shown_code`] allows
/// it, the request ID only when [`shown_request_id`] does, the store's `Message` never. The action is added by
/// [`TencentSsm::call`].
fn map_code(code: &str, request_id: &str) -> DialectError {
    let mut text = match shown_code(code) {
        Some(code) => format!("Tencent SSM answered {code}"),
        None => "Tencent SSM answered an error code SecretSync does not know".to_owned(),
    };
    if let Some(id) = shown_request_id(request_id) {
        text.push_str(&format!(" (RequestId {id})"));
    }
    match (family(code), code) {
        // Refused before any work: the kit repeats even a create after this.
        ("RequestLimitExceeded", _) => DialectError::retry(THROTTLED, text),
        ("InternalError", _) => DialectError::retry("BackendError", text),
        ("AuthFailure", _) => DialectError::credentials("CredentialsRejected", text),
        ("UnauthorizedOperation", _) => DialectError::credentials("Unauthorized", text),
        (_, "ResourceInUse.SecretExists") => DialectError::conflict("SecretExists", text),
        ("ResourceNotFound", _) => DialectError::retry("RemoteGone", text),
        (_, "ResourceUnavailable.ResourceDisabled")
        | (_, "ResourceUnavailable.ResourcePendingDeleted") => {
            DialectError::permanent("SecretDisabled", text)
        }
        ("LimitExceeded", _) => DialectError::permanent("LimitExceeded", text),
        _ => DialectError::permanent("BackendRejected", text),
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Response")]
    response: serde_json::Value,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(rename = "Code", default)]
    code: String,
}

/// The `Response` object of an API 3.0 answer.
fn envelope(body: &[u8]) -> Result<serde_json::Value, DialectError> {
    serde_json::from_slice::<Envelope>(body)
        .map(|e| e.response)
        .map_err(|e| {
            DialectError::retry(
                "BadResponse",
                format!(
                    "the answer is not an API 3.0 response ({})",
                    super::kit::text::json_position(&e)
                ),
            )
        })
}

/// `Response.Error` as code and request id, when the answer is an error.
fn api_error(response: &serde_json::Value) -> Option<(String, String)> {
    let error = response.get("Error")?;
    let error: ApiError = serde_json::from_value(error.clone()).unwrap_or(ApiError {
        code: "InternalError".into(),
    });
    let request_id = response
        .get("RequestId")
        .and_then(|r| r.as_str())
        .unwrap_or_default()
        .to_owned();
    Some((error.code, request_id))
}

/// SSM's reading of an answer. SSM answers every API call with HTTP 200, errors included, so another status
/// comes from something in front of it and is mapped by status; a `ResourceNotFound*` code is "absent".
fn decode(reply: &Reply) -> Verdict {
    if reply.status != 200 {
        return Verdict::Error(DialectError::from_status(
            reply.status,
            "not from SSM, which answers every call with 200 (a gateway or proxy in front of it?)",
            reply.retry_after(),
        ));
    }
    match envelope(&reply.body).map(|r| api_error(&r)) {
        Err(e) => Verdict::Error(e),
        Ok(None) => Verdict::Success,
        Ok(Some((code, ..))) if family(&code) == "ResourceNotFound" => Verdict::Absent,
        Ok(Some((code, request_id))) => Verdict::Error(map_code(&code, &request_id)),
    }
}

/// Whether an action may be sent again after a failure that may have reached the store. Every SSM call is a
/// POST, so the method says nothing; the action does.
fn idempotency(action: &str) -> Idempotency {
    match action {
        // Reads.
        "GetSecretValue" | "DescribeSecret" | "ListSecretVersionIds" | "ListSecrets" => {
            Idempotency::Idempotent
        }
        // Each sets a state, so a repeat leaves what the first left: UpdateSecret sets the content of one named
        // version (VersionId), UpdateDescription the description, DisableSecret the status (SSM accepts it on a
        // disabled secret). DeleteSecret (RecoveryWindowInDays 0) and DeleteSecretVersion remove one named thing:
        // a repeat finds it gone (ResourceNotFound, "absent"), which their callers take as done. SSM has no tag
        // calls here (ownership is in the description).
        "UpdateSecret"
        | "UpdateDescription"
        | "DisableSecret"
        | "DeleteSecret"
        | "DeleteSecretVersion" => Idempotency::Idempotent,
        // Creates: a CreateSecret repeated after one that was applied fails with ResourceInUse.SecretExists, a
        // PutSecretValue with ResourceInUse.VersionIdExists, failing a write that succeeded. They are repeated
        // only when the store proved it did not act (throttled, no connection); otherwise the next reconcile
        // reads the store. So is any action not named here.
        _ => Idempotency::NotIdempotent,
    }
}

/// The error of a call, with the action it was.
fn in_action(action: &str, e: DialectError) -> DialectError {
    super::kit::text::during(&format!("Tencent SSM {action}"), e)
}

/// What one call found: its answer, or the store's "no such secret (or version)", as the error to give where
/// that is a failure.
enum Found<T> {
    Answer(T),
    Absent(DialectError),
}

impl<T> Found<T> {
    /// The answer; "absent" is an error (`RemoteGone`: the next reconcile observes again).
    fn required(self) -> Result<T, DialectError> {
        match self {
            Found::Answer(t) => Ok(t),
            Found::Absent(e) => Err(e),
        }
    }
}

impl TencentSsm {
    /// One signed request through the kit's transport, paced per action and retried as [`idempotency`] allows.
    async fn call<T: DeserializeOwned>(
        &self,
        ctx: &Ctx<'_>,
        action: &'static str,
        body: &[u8],
    ) -> Result<Found<T>, DialectError> {
        let method = Method::POST;
        let headers = [
            ("X-TC-Action", action),
            ("X-TC-Version", API_VERSION),
            ("X-TC-Region", ctx.region),
            ("X-TC-Language", "en-US"),
        ];
        let url = ctx.http.url("/");
        let exchange = Exchange::new(action, &method, &url)
            .json(body)
            .headers(&headers)
            .idempotency(idempotency(action));
        let reply = ctx
            .http
            .send_per_action(exchange, ctx.pace, ctx.burst)
            .await;
        let reply = reply.map_err(|e| in_action(action, e))?;
        let mut response = envelope(&reply.body).map_err(|e| in_action(action, e))?;
        if reply.absent {
            let (code, request_id) = api_error(&response).unwrap_or_default();
            return Ok(Found::Absent(in_action(
                action,
                map_code(&code, &request_id),
            )));
        }
        if let Some(obj) = response.as_object_mut() {
            obj.remove("RequestId");
        }
        serde_json::from_value(response)
            .map(Found::Answer)
            .map_err(|_| {
                // serde's message can quote the answer: neither it nor the error as a source.
                DialectError::retry(
                    "BadResponse",
                    format!("Tencent SSM {action}: unexpected response shape"),
                )
            })
    }

    async fn update_description(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        description: &str,
    ) -> Result<(), DialectError> {
        let body = json_body(serde_json::json!({
            "SecretName": name,
            "Description": description,
        }));
        self.call::<Ignored>(ctx, "UpdateDescription", &body)
            .await?
            .required()?;
        Ok(())
    }

    /// `Overwrite`: rewrite the configured version, or add it when an adopted secret lacks it.
    async fn overwrite(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        payload: &Payload<'_>,
    ) -> Result<String, DialectError> {
        let body = ValueBody::new(name, Some(ctx.version_id), payload).to_bytes();
        if let Found::Absent(_) = self.call::<Ignored>(ctx, "UpdateSecret", &body).await? {
            self.call::<Ignored>(ctx, "PutSecretValue", &body)
                .await?
                .required()?;
        }
        Ok(ctx.version_id.to_owned())
    }

    /// `History`: a new version, making room at the cap by deleting SecretSync's oldest.
    async fn add_version(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        desired: &Desired,
        current: Option<&str>,
        payload: &Payload<'_>,
    ) -> Result<String, DialectError> {
        let body = json_body(serde_json::json!({ "SecretName": name }));
        let listed = self
            .call::<ListVersionsResponse>(ctx, "ListSecretVersionIds", &body)
            .await?
            .required()?
            .versions
            .unwrap_or_default();
        let mut ours: Vec<(u64, &str)> = listed
            .iter()
            .filter_map(|v| history_counter(&v.version_id).map(|n| (n, v.version_id.as_str())))
            .collect();
        ours.sort();
        let next = next_history_counter(ours.last().map(|(n, _)| *n)).ok_or_else(|| {
            DialectError::permanent(
                "VersionLimit",
                format!("Tencent SSM secret {name} has a SecretSync version numbered {}, the last there can be; delete it", u64::MAX),
            )
        })?;
        if listed.len() >= MAX_VERSIONS {
            // The version readers use now goes last: until the new one exists it is the only good one.
            let victim = ours
                .iter()
                .find(|(_, id)| Some(*id) != current)
                .or(ours.first())
                .map(|(_, id)| *id)
                .ok_or_else(|| {
                    DialectError::permanent(
                        "VersionLimit",
                        format!(
                            "Tencent SSM secret {name} has {} versions, the most it can hold, and none was created by SecretSync; delete one",
                            listed.len()
                        ),
                    )
                })?;
            let body = json_body(serde_json::json!({ "SecretName": name, "VersionId": victim }));
            // Absent: already gone (a repeat after a first attempt that deleted it), which is what was wanted.
            self.call::<Ignored>(ctx, "DeleteSecretVersion", &body)
                .await?;
        }
        let version = history_version(next, &desired.digest);
        let body = ValueBody::new(name, Some(&version), payload).to_bytes();
        self.call::<Ignored>(ctx, "PutSecretValue", &body)
            .await?
            .required()?;
        Ok(version)
    }
}

#[async_trait]
impl Dialect for TencentSsm {
    fn destinations(&self, target: &Target, _credentials: &Credentials) -> Vec<String> {
        vec![
            target
                .endpoint
                .clone()
                .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned()),
        ]
    }

    fn public_hosts(&self) -> &'static [&'static str] {
        // The API hosts: ssm.tencentcloudapi.com, its regional and international forms.
        &["ssm.tencentcloudapi.com", "*.tencentcloudapi.com"]
    }

    fn kind(&self) -> DialectKind {
        DialectKind::TencentSsm
    }

    fn capabilities(&self, _target: &Target) -> Capabilities {
        Capabilities {
            content_type: Support::Unsupported,
            description: Support::Mutable,
            labels: Support::Unsupported,
        }
    }

    fn check(&self, req: &Request<'_>, value: &SecretValue) -> Result<(), DialectError> {
        let ctx = self.context(req)?;
        if !valid_secret_name(req.remote_name) {
            return Err(DialectError::permanent(
                "InvalidName",
                "TencentSSM secret names are 1-128 letters, digits, '-' and '_', starting with a letter or digit",
            ));
        }
        let caps = self.capabilities(req.target);
        super::kit::metadata::refuse_unsupported("Tencent SSM", caps, &req.desired.metadata)?;
        super::kit::metadata::size_at_most(
            Payload::of(value).wire_len(),
            MAX_VALUE,
            "Tencent SSM's limit (on base64 for binary values)",
        )?;
        let version = match ctx.policy {
            TencentVersionPolicy::Overwrite => ctx.version_id.to_owned(),
            TencentVersionPolicy::History => {
                history_version(u64::from(u32::MAX), &req.desired.digest)
            }
        };
        let description = compose_description(
            req.desired.metadata.description.as_deref(),
            &Marker::new(req.desired, &version),
        );
        if description.len() > MAX_DESCRIPTION {
            return Err(DialectError::permanent(
                "DescriptionTooLong",
                format!(
                    "the description and SecretSync's ownership line are {} bytes; Tencent SSM keeps {MAX_DESCRIPTION}",
                    description.len()
                ),
            ));
        }
        Ok(())
    }

    async fn observe(&self, req: &Request<'_>) -> Result<Observed, DialectError> {
        let ctx = self.context(req)?;
        let body = json_body(serde_json::json!({ "SecretName": req.remote_name }));
        let described = match self
            .call::<DescribeSecretResponse>(&ctx, "DescribeSecret", &body)
            .await?
        {
            Found::Answer(d) => d,
            Found::Absent(_) => return Ok(Observed::Absent),
        };
        let (description, marker) =
            split_description(described.description.as_deref().unwrap_or_default());
        let state = match described.status.as_deref().unwrap_or("Enabled") {
            "Enabled" => RemoteState::Ready,
            "Creating" => RemoteState::Creating,
            "PendingDelete" => RemoteState::Failed(
                "the secret is scheduled for deletion in Tencent SSM; restore it (RestoreSecret) or pick another name"
                    .into(),
            ),
            "Disabled" => RemoteState::Failed(
                "the secret is disabled in Tencent SSM; enable it for readers to get its value".into(),
            ),
            // The status is the store's text: not repeated.
            _ => RemoteState::Failed(
                "Tencent SSM reports the secret in a status SecretSync does not know".into(),
            ),
        };
        let owner = marker.as_ref().map(|m| m.mark.owner.clone());
        Ok(Observed::Present(Remote {
            reference: RemoteRef {
                name: req.remote_name.to_owned(),
                id: None,
                version: marker.as_ref().map(|m| m.version.clone()),
            },
            owner,
            owner_exists: true,
            // Under `Overwrite`, a value held in another version than the configured one (the setting changed)
            // counts as unknown, so the value is written where readers now look.
            digest: marker
                .filter(|m| {
                    ctx.policy == TencentVersionPolicy::History || m.version == ctx.version_id
                })
                .and_then(|m| m.mark.digest),
            metadata: Metadata {
                content_type: None,
                description,
                labels: Default::default(),
            },
            state,
            detail: Default::default(),
        }))
    }

    async fn apply(
        &self,
        req: &Request<'_>,
        write: &Write,
        observed: &Observed,
        value: &SecretValue,
    ) -> Result<Outcome, DialectError> {
        let ctx = self.context(req)?;
        let name = req.remote_name;
        let desired = req.desired;
        let user_description = desired.metadata.description.as_deref();
        let current = match observed {
            Observed::Present(remote) => remote.reference.version.as_deref(),
            Observed::Absent => None,
        };
        let version = match write {
            Write::Create => {
                let version = match ctx.policy {
                    TencentVersionPolicy::Overwrite => ctx.version_id.to_owned(),
                    TencentVersionPolicy::History => history_version(1, &desired.digest),
                };
                let description =
                    compose_description(user_description, &Marker::new(desired, &version));
                let payload = Payload::of(value);
                let mut body = ValueBody::new(name, Some(&version), &payload);
                body.description = Some(&description);
                self.call::<Ignored>(&ctx, "CreateSecret", &body.to_bytes())
                    .await?
                    .required()?;
                version
            }
            // The planner asks for a replacement only where `allows_replace`: here it is a new value.
            Write::NewVersion | Write::Replace { .. } => {
                let payload = Payload::of(value);
                let version = match ctx.policy {
                    TencentVersionPolicy::Overwrite => self.overwrite(&ctx, name, &payload).await?,
                    TencentVersionPolicy::History => {
                        self.add_version(&ctx, name, desired, current, &payload)
                            .await?
                    }
                };
                let description =
                    compose_description(user_description, &Marker::new(desired, &version));
                self.update_description(&ctx, name, &description).await?;
                version
            }
            Write::UpdateMetadata => {
                let version = current.unwrap_or(ctx.version_id).to_owned();
                let description =
                    compose_description(user_description, &Marker::new(desired, &version));
                self.update_description(&ctx, name, &description).await?;
                version
            }
        };
        Ok(Outcome::Ready(RemoteRef {
            name: name.to_owned(),
            id: None,
            version: Some(version),
        }))
    }

    async fn delete(&self, req: &Request<'_>, _observed: &Observed) -> Result<(), DialectError> {
        let ctx = self.context(req)?;
        let body = json_body(serde_json::json!({ "SecretName": req.remote_name }));
        // Absent at either step: gone already.
        if let Found::Absent(_) = self.call::<Ignored>(&ctx, "DisableSecret", &body).await? {
            return Ok(());
        }
        let body = json_body(serde_json::json!({
            "SecretName": req.remote_name,
            "RecoveryWindowInDays": 0,
        }));
        self.call::<Ignored>(&ctx, "DeleteSecret", &body).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
