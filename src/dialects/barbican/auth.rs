//! Who SecretSync is to Barbican: Keystone v3 tokens (password or application credential), cached per
//! credential set until shortly before they expire, or the no-auth headers of development deployments.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;
use zeroize::Zeroizing;

use super::wire::answered;
use super::{DIALECT, Shared};
use crate::api::Target;
use crate::dialects::kit::bounded::Lru;
use crate::dialects::kit::credentials::{missing, required, text};
use crate::dialects::kit::http::{read_body, retry_after};
use crate::dialects::kit::{Auth, Exchange, Failure, Idempotency, Reply, RetryPolicy};
use crate::dialects::{DialectError, ErrorClass};
use crate::value::Credentials;

/// A token is renewed once less than this share of its life is left (and at most this long before expiry).
const RENEW_MARGIN_MAX: Duration = Duration::from_secs(300);
/// Token slots are few (one per credential set and store); past the cap the least recently used goes, so a
/// churn of rotated or fake credentials costs no other store its token.
const MAX_CACHED_TOKENS: usize = 256;
/// The user ID sent as `X-User-Id` in no-auth mode, so Barbican records a creator SecretSync can recognise.
pub(super) const NOAUTH_USER: &str = "secretsync";

/// How a Keystone user proves who it is.
pub(super) enum Method {
    Password {
        user: UserRef,
        password: Zeroizing<String>,
        project: ProjectRef,
    },
    ApplicationCredential {
        id: String,
        secret: Zeroizing<String>,
    },
}

pub(super) enum UserRef {
    Id(String),
    Name { name: String, domain: DomainRef },
}

pub(super) enum ProjectRef {
    Id(String),
    Name { name: String, domain: DomainRef },
}

pub(super) enum DomainRef {
    Id(String),
    Name(String),
}

impl DomainRef {
    fn json(&self) -> serde_json::Value {
        match self {
            DomainRef::Id(id) => json!({ "id": id }),
            DomainRef::Name(name) => json!({ "name": name }),
        }
    }
}

/// Keystone credentials from the credentials Secret.
pub(super) struct Keystone {
    /// `…/v3`, without a trailing slash.
    pub auth_url: String,
    pub method: Method,
    /// Cache key: the auth URL and a fingerprint of every credential key.
    pub cache_key: String,
}

/// How requests are authenticated.
pub(super) enum Access {
    Keystone(Keystone),
    NoAuth { project_id: String },
}

/// The credentials Secret keys this dialect reads (anything else is ignored).
pub const CREDENTIAL_KEYS: [&str; 12] = [
    "authUrl",
    "username",
    "userId",
    "password",
    "userDomainName",
    "userDomainId",
    "projectName",
    "projectId",
    "projectDomainName",
    "projectDomainId",
    "applicationCredentialId",
    "applicationCredentialSecret",
];

/// `…/v3` from an auth URL given with or without the version.
pub(super) fn normalize_auth_url(raw: &str) -> Result<String, DialectError> {
    let url = url::Url::parse(raw).map_err(|e| {
        DialectError::credentials(
            "InvalidCredentials",
            format!("credentials key authUrl is not a URL: {e}"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.query().is_some() {
        return Err(DialectError::credentials(
            "InvalidCredentials",
            "credentials key authUrl must be an http:// or https:// URL without a query",
        ));
    }
    let base = url.as_str().trim_end_matches('/');
    Ok(if base.ends_with("/v3") {
        base.to_owned()
    } else {
        format!("{base}/v3")
    })
}

/// Reads the access mode from the credentials and settings; every error names the key to fix, never a value.
pub(super) fn access(target: &Target, creds: &Credentials) -> Result<Access, DialectError> {
    let settings = target.barbican.clone().unwrap_or_default();
    let Some(auth_url) = text(creds, "authUrl")? else {
        // No credentialsRef: only the controller's own keys (the store it acts for).
        if creds.has_no_secret_keys() {
            return match settings.project_id {
                Some(project_id) if !project_id.trim().is_empty() => {
                    if target.endpoint.is_none() {
                        return Err(DialectError::permanent(
                            "InvalidSpec",
                            "Barbican in no-auth mode (barbican.projectId, no credentialsRef) needs \
                             the store's endpoint",
                        ));
                    }
                    Ok(Access::NoAuth {
                        project_id: project_id.trim().to_owned(),
                    })
                }
                _ => Err(DialectError::permanent(
                    "InvalidSpec",
                    "Barbican needs the store's credentialsRef (Keystone credentials) or \
                     barbican.projectId (on the store) (no-auth mode)",
                )),
            };
        }
        return Err(missing(
            "authUrl",
            "the Keystone URL, e.g. https://keystone:5000/v3",
        ));
    };
    let auth_url = normalize_auth_url(auth_url)?;
    let app_id = text(creds, "applicationCredentialId")?;
    let app_secret = text(creds, "applicationCredentialSecret")?;
    let method = match (app_id, app_secret) {
        (Some(id), Some(secret)) => Method::ApplicationCredential {
            id: id.to_owned(),
            secret: Zeroizing::new(secret.to_owned()),
        },
        (Some(_), None) => {
            return Err(missing(
                "applicationCredentialSecret",
                "the secret of the application credential applicationCredentialId names",
            ));
        }
        (None, Some(_)) => {
            return Err(missing(
                "applicationCredentialId",
                "the ID of the application credential applicationCredentialSecret belongs to",
            ));
        }
        (None, None) => {
            let domain = |id_key: &str, name_key: &str| -> Result<DomainRef, DialectError> {
                Ok(match (text(creds, id_key)?, text(creds, name_key)?) {
                    (Some(id), _) => DomainRef::Id(id.to_owned()),
                    (None, Some(name)) => DomainRef::Name(name.to_owned()),
                    (None, None) => DomainRef::Name("Default".to_owned()),
                })
            };
            let user = match (text(creds, "userId")?, text(creds, "username")?) {
                (Some(id), _) => UserRef::Id(id.to_owned()),
                (None, Some(name)) => UserRef::Name {
                    name: name.to_owned(),
                    domain: domain("userDomainId", "userDomainName")?,
                },
                (None, None) => {
                    return Err(missing(
                        "username",
                        "the Keystone user, or userId; with password, or else applicationCredentialId and \
                         applicationCredentialSecret",
                    ));
                }
            };
            let password = required(creds, "password", "the Keystone user's password")?;
            let project = match (text(creds, "projectId")?, text(creds, "projectName")?) {
                (Some(id), _) => ProjectRef::Id(id.to_owned()),
                (None, Some(name)) => ProjectRef::Name {
                    name: name.to_owned(),
                    domain: domain("projectDomainId", "projectDomainName")?,
                },
                (None, None) => {
                    return Err(missing(
                        "projectName",
                        "or projectId: Barbican needs a project-scoped token",
                    ));
                }
            };
            Method::Password {
                user,
                password: Zeroizing::new(password.to_owned()),
                project,
            }
        }
    };
    let cache_key = format!("{auth_url}#{}", creds.fingerprint());
    Ok(Access::Keystone(Keystone {
        auth_url,
        method,
        cache_key,
    }))
}

/// The body of `POST /v3/auth/tokens`. It holds the password or secret, so it is wiped when dropped.
pub(super) fn token_request(method: &Method) -> Zeroizing<Vec<u8>> {
    let auth = match method {
        Method::Password {
            user,
            password,
            project,
        } => {
            let mut user_json = match user {
                UserRef::Id(id) => json!({ "id": id }),
                UserRef::Name { name, domain } => json!({ "name": name, "domain": domain.json() }),
            };
            user_json["password"] = json!(password.as_str());
            let project_json = match project {
                ProjectRef::Id(id) => json!({ "id": id }),
                ProjectRef::Name { name, domain } => {
                    json!({ "name": name, "domain": domain.json() })
                }
            };
            json!({
                "identity": {"methods": ["password"], "password": {"user": user_json}},
                "scope": {"project": project_json}
            })
        }
        // An application credential carries its own project scope.
        Method::ApplicationCredential { id, secret } => json!({
            "identity": {
                "methods": ["application_credential"],
                "application_credential": {"id": id, "secret": secret.as_str()}
            }
        }),
    };
    let mut value = json!({ "auth": auth });
    let body = Zeroizing::new(serde_json::to_vec(&value).expect("token request serializes"));
    wipe(&mut value);
    body
}

/// Overwrites the strings of a JSON value before it is dropped (serde_json does not zeroize).
fn wipe(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => {
            let mut owned = Zeroizing::new(std::mem::take(s));
            owned.clear();
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(wipe),
        serde_json::Value::Object(map) => map.values_mut().for_each(wipe),
        _ => {}
    }
}

#[derive(Deserialize)]
struct TokenReply {
    token: TokenBody,
}

#[derive(Deserialize)]
struct TokenBody {
    expires_at: String,
    #[serde(default)]
    issued_at: Option<String>,
    #[serde(default)]
    user: Option<IdOnly>,
    #[serde(default)]
    project: Option<IdOnly>,
    #[serde(default)]
    catalog: Vec<CatalogEntry>,
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

#[derive(Deserialize)]
struct CatalogEntry {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    endpoints: Vec<CatalogEndpoint>,
}

#[derive(Deserialize)]
struct CatalogEndpoint {
    interface: String,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    region_id: Option<String>,
    url: String,
}

/// A project-scoped token and what came with it.
#[derive(Clone)]
pub(super) struct Token {
    pub value: Arc<Zeroizing<String>>,
    pub user_id: Option<String>,
    /// The catalog's key-manager endpoints: (interface, region, url).
    endpoints: Vec<(String, Option<String>, String)>,
    /// When to fetch a new one (local clock).
    renew_at: Instant,
}

impl Token {
    fn fresh(&self, now: Instant) -> bool {
        now < self.renew_at
    }

    /// The key-manager endpoint for an interface and optional region.
    pub fn endpoint(&self, interface: &str, region: Option<&str>) -> Option<&str> {
        self.endpoints
            .iter()
            .find(|(i, r, _)| {
                i == interface && region.is_none_or(|want| r.as_deref() == Some(want))
            })
            .map(|(_, _, url)| url.as_str())
    }
}

/// When to renew a token with this lifetime: half-way, and at most [`RENEW_MARGIN_MAX`] before expiry.
pub(super) fn renew_after(lifetime: Duration) -> Duration {
    let margin = (lifetime / 2).min(RENEW_MARGIN_MAX);
    lifetime.saturating_sub(margin)
}

/// Parses a token reply. `sent` is when the request went out: the token's lifetime (expires - issued, both
/// server clock) is counted from then, so a skewed local clock cannot keep an expired token.
pub(super) fn parse_token(
    subject: Option<&str>,
    body: &[u8],
    sent: Instant,
) -> Result<Token, DialectError> {
    let bad = |what: &str| {
        DialectError::retry(
            "KeystoneError",
            format!("Keystone sent an unusable token reply: {what}"),
        )
    };
    let subject = subject
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("no X-Subject-Token header"))?;
    let reply: TokenReply = serde_json::from_slice(body)
        .map_err(|e| bad(&super::super::kit::text::json_position(&e)))?;
    let t = reply.token;
    let expires = chrono::DateTime::parse_from_rfc3339(&t.expires_at)
        .map_err(|_| bad("expires_at is not a timestamp"))?;
    let issued = match t.issued_at.as_deref() {
        Some(i) => chrono::DateTime::parse_from_rfc3339(i)
            .map_err(|_| bad("issued_at is not a timestamp"))?,
        None => chrono::Utc::now().fixed_offset(),
    };
    let lifetime = (expires - issued).to_std().unwrap_or(Duration::ZERO);
    t.project.ok_or_else(|| {
        DialectError::credentials(
            "Unscoped",
            "Keystone issued a token without a project scope; Barbican needs one (set projectName or projectId)",
        )
    })?;
    let endpoints = t
        .catalog
        .into_iter()
        .filter(|c| c.kind == "key-manager")
        .flat_map(|c| c.endpoints)
        .map(|e| (e.interface, e.region_id.or(e.region), e.url))
        .collect();
    Ok(Token {
        value: Arc::new(Zeroizing::new(subject.to_owned())),
        user_id: t.user.map(|u| u.id),
        endpoints,
        renew_at: sent + renew_after(lifetime),
    })
}

/// Maps a failed token request.
pub(super) fn map_keystone_error(
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
) -> DialectError {
    // Only the status and a known title are shown: never Keystone's message nor anything else of its body.
    let text = answered("Keystone", status, body);
    match status {
        401 => DialectError::credentials(
            "KeystoneUnauthorized",
            format!(
                "{text} (the username, password, domain and project, or the application credential, in the \
                 credentials Secret were refused)"
            ),
        ),
        403 => DialectError::credentials("KeystoneForbidden", text),
        404 => DialectError::permanent(
            "KeystoneNotFound",
            format!("{text} (is authUrl the Keystone v3 URL?)"),
        ),
        429 | 500..=599 => DialectError::retry("KeystoneError", text).with_retry_after(retry_after),
        _ => DialectError::permanent("KeystoneRejected", text),
    }
}

/// Cached tokens by credential set (which includes the store it is for). One fetch per set at a time: concurrent
/// reconciles wait for it.
pub(super) struct TokenCache {
    slots: Lru<String, Arc<tokio::sync::Mutex<Option<Token>>>>,
}

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache {
            slots: Lru::new(MAX_CACHED_TOKENS),
        }
    }
}

impl TokenCache {
    fn slot(&self, key: &str) -> Arc<tokio::sync::Mutex<Option<Token>>> {
        self.slots
            .get_or_insert_with(key.to_owned(), Default::default)
    }

    /// A fresh token for these credentials, fetching one if none is cached or the cached one is due for renewal.
    pub async fn token(&self, shared: &Shared, ks: &Keystone) -> Result<Token, DialectError> {
        let slot = self.slot(&ks.cache_key);
        let mut held = slot.lock().await;
        if let Some(t) = held.as_ref()
            && t.fresh(Instant::now())
        {
            return Ok(t.clone());
        }
        let token = fetch(shared, ks).await?;
        *held = Some(token.clone());
        Ok(token)
    }

    /// Forgets `rejected` (Barbican answered 401 to it), unless another caller already replaced it.
    pub async fn invalidate(&self, ks: &Keystone, rejected: &Token) {
        let slot = self.slot(&ks.cache_key);
        let mut held = slot.lock().await;
        if held
            .as_ref()
            .is_some_and(|t| Arc::ptr_eq(&t.value, &rejected.value))
        {
            *held = None;
        }
    }
}

/// `POST /v3/auth/tokens`, retried by the kit's policy. Asking Keystone for a token twice only issues two tokens
/// (the first one is never used), so the request is safe to repeat whatever became of an attempt.
async fn fetch(shared: &Shared, ks: &Keystone) -> Result<Token, DialectError> {
    let url = format!("{}/auth/tokens", ks.auth_url);
    let request_body = token_request(&ks.method);
    let record = |outcome: &str| shared.metrics.backend_request(DIALECT, "token", outcome);
    let (url, body, record) = (&url, &request_body, &record);
    let (subject, bytes, sent) = RetryPolicy::default()
        .run(
            Idempotency::Idempotent,
            |_| async move {
                shared.limiter.acquire(&ks.auth_url).await;
                let sent = Instant::now();
                let response = shared
                    .http
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(reqwest::header::ACCEPT, "application/json")
                    .body(body.to_vec())
                    .send()
                    .await
                    .map_err(|e| {
                        record(ErrorClass::Retry.as_str());
                        Failure::maybe_applied(DialectError::transport(e))
                    })?;
                let status = response.status().as_u16();
                let after = retry_after(response.headers());
                let subject = response
                    .headers()
                    .get("x-subject-token")
                    .and_then(|v| v.to_str().ok())
                    .map(|s| Zeroizing::new(s.to_owned()));
                let bytes = read_body(response).await.map_err(|e| {
                    let e = DialectError::from(e);
                    record(e.class.as_str());
                    Failure::maybe_applied(e)
                })?;
                if status != 201 && status != 200 {
                    let err = map_keystone_error(status, &bytes, after);
                    record(err.class.as_str());
                    return Err(Failure::answered(err));
                }
                record("ok");
                Ok((subject, bytes, sent))
            },
            |attempt, failure| {
                tracing::debug!(
                    dialect = DIALECT,
                    attempt,
                    reason = failure.error.reason,
                    "retrying the Keystone token request"
                );
            },
        )
        .await?;
    drop(request_body);
    tracing::debug!(dialect = DIALECT, auth_url = %ks.auth_url, "fetched a Keystone token");
    parse_token(subject.as_deref().map(|s| s.as_str()), &bytes, sent)
}

/// Keystone mode: the current token as `X-Auth-Token`; a 401 from Barbican makes the token cache forget the
/// refused token and fetch a new one for one more attempt.
pub(super) struct KeystoneToken<'a> {
    tokens: &'a TokenCache,
    shared: &'a Shared,
    ks: Keystone,
    current: Mutex<Token>,
}

impl<'a> KeystoneToken<'a> {
    pub fn new(tokens: &'a TokenCache, shared: &'a Shared, ks: Keystone, token: Token) -> Self {
        KeystoneToken {
            tokens,
            shared,
            ks,
            current: Mutex::new(token),
        }
    }

    fn current(&self) -> Token {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[async_trait]
impl Auth for KeystoneToken<'_> {
    async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
        _: &Exchange<'_>,
    ) -> Result<reqwest::RequestBuilder, DialectError> {
        let token = self.current();
        let mut value =
            reqwest::header::HeaderValue::from_str(token.value.as_str()).map_err(|_| {
                DialectError::retry(
                    "KeystoneError",
                    "Keystone issued a token that cannot be sent as an HTTP header",
                )
            })?;
        value.set_sensitive(true);
        Ok(request.header("X-Auth-Token", value))
    }

    async fn refused(&self, _: &Reply) -> Result<bool, DialectError> {
        let rejected = self.current();
        self.tokens.invalidate(&self.ks, &rejected).await;
        let fresh = self.tokens.token(self.shared, &self.ks).await?;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
        tracing::info!(
            dialect = DIALECT,
            "Barbican refused the token; fetched a new one"
        );
        Ok(true)
    }
}

/// No-auth mode (development deployments): the project and role headers Barbican's `barbican_api` pipeline
/// trusts. Nothing can be renewed, so a 401 is final.
pub(super) struct ProjectHeaders {
    project_id: String,
}

impl ProjectHeaders {
    pub fn new(project_id: String) -> Self {
        ProjectHeaders { project_id }
    }
}

#[async_trait]
impl Auth for ProjectHeaders {
    async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
        _: &Exchange<'_>,
    ) -> Result<reqwest::RequestBuilder, DialectError> {
        Ok(request
            .header("X-Project-Id", self.project_id.as_str())
            .header("X-Roles", "member")
            .header("X-User-Id", NOAUTH_USER))
    }

    async fn refused(&self, _: &Reply) -> Result<bool, DialectError> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialects::fixtures::{creds, target};

    #[test]
    fn auth_url_gets_v3() {
        assert_eq!(
            normalize_auth_url("http://k:5000").unwrap(),
            "http://k:5000/v3"
        );
        assert_eq!(
            normalize_auth_url("http://k:5000/v3/").unwrap(),
            "http://k:5000/v3"
        );
        assert_eq!(
            normalize_auth_url("https://k/identity").unwrap(),
            "https://k/identity/v3"
        );
        assert!(normalize_auth_url("ftp://k").is_err());
        assert!(normalize_auth_url("not a url").is_err());
    }

    #[test]
    fn password_request_has_the_keystone_shape_and_defaults_domains() {
        let t = target(serde_json::json!({"dialect": "Barbican"}));
        let c = creds(&[
            ("authUrl", "http://k:5000"),
            ("username", "u"),
            ("password", "p@ss"),
            ("projectName", "demo"),
        ]);
        let Access::Keystone(ks) = access(&t, &c).unwrap() else {
            panic!("keystone mode")
        };
        let body: serde_json::Value = serde_json::from_slice(&token_request(&ks.method)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": "u", "domain": {"name": "Default"}, "password": "p@ss"}}},
                "scope": {"project": {"name": "demo", "domain": {"name": "Default"}}}
            }})
        );
    }

    #[test]
    fn application_credential_request_is_unscoped() {
        let t = target(serde_json::json!({"dialect": "Barbican"}));
        let c = creds(&[
            ("authUrl", "http://k:5000/v3"),
            ("applicationCredentialId", "abc"),
            ("applicationCredentialSecret", "s3"),
        ]);
        let Access::Keystone(ks) = access(&t, &c).unwrap() else {
            panic!("keystone mode")
        };
        let body: serde_json::Value = serde_json::from_slice(&token_request(&ks.method)).unwrap();
        assert_eq!(
            body["auth"]["identity"],
            serde_json::json!({"methods": ["application_credential"],
                "application_credential": {"id": "abc", "secret": "s3"}})
        );
        assert!(body["auth"].get("scope").is_none());
    }

    #[test]
    fn incomplete_credentials_name_the_missing_key_and_never_a_value() {
        let t = target(serde_json::json!({"dialect": "Barbican"}));
        let reason = |pairs: &[(&str, &str)]| match access(&t, &creds(pairs)) {
            Err(e) => {
                assert!(!e.message.contains("SENTINEL"), "{}", e.message);
                (e.class, e.message)
            }
            Ok(_) => panic!("accepted {pairs:?}"),
        };
        let (class, msg) = reason(&[("username", "u"), ("password", "SENTINEL")]);
        assert_eq!(class, ErrorClass::Credentials);
        assert!(msg.contains("authUrl"));
        let (_, msg) = reason(&[
            ("authUrl", "http://k"),
            ("username", "u"),
            ("projectName", "p"),
        ]);
        assert!(msg.contains("password"));
        let (_, msg) = reason(&[
            ("authUrl", "http://k"),
            ("username", "u"),
            ("password", "SENTINEL"),
        ]);
        assert!(msg.contains("projectName"));
        let (_, msg) = reason(&[("authUrl", "http://k"), ("applicationCredentialId", "x")]);
        assert!(msg.contains("applicationCredentialSecret"));
        // One rule with every dialect: a blank key is a missing key.
        let e = access(
            &t,
            &creds(&[
                ("authUrl", "http://k"),
                ("username", "u"),
                ("password", " \n"),
                ("projectName", "p"),
            ]),
        )
        .err()
        .unwrap();
        assert_eq!(e.reason, "MissingCredentials");
        assert!(e.message.contains("password"), "{}", e.message);
        // Neither credentials nor a project ID.
        let e = access(&t, &Credentials::default()).err().unwrap();
        assert_eq!(e.class, ErrorClass::Permanent);
    }

    #[test]
    fn no_auth_needs_project_and_endpoint() {
        let ok = target(
            serde_json::json!({"dialect": "Barbican", "endpoint": "http://b:9311",
            "barbican": {"projectId": "p1"}}),
        );
        assert!(matches!(
            access(&ok, &Credentials::default()),
            Ok(Access::NoAuth { project_id }) if project_id == "p1"
        ));
        let no_endpoint =
            target(serde_json::json!({"dialect": "Barbican", "barbican": {"projectId": "p1"}}));
        assert_eq!(
            access(&no_endpoint, &Credentials::default())
                .err()
                .unwrap()
                .reason,
            "InvalidSpec"
        );
    }

    #[test]
    fn token_reply_is_parsed_with_lifetime_from_server_clock() {
        let body = serde_json::json!({"token": {
            "issued_at": "2020-01-01T00:00:00.000000Z",
            "expires_at": "2020-01-01T01:00:00.000000Z",
            "user": {"id": "u1"}, "project": {"id": "p1"},
            "catalog": [
                {"type": "identity", "endpoints": [{"interface": "public", "url": "http://k"}]},
                {"type": "key-manager", "endpoints": [
                    {"interface": "internal", "region_id": "R1", "url": "http://internal"},
                    {"interface": "public", "region_id": "R1", "url": "http://one"},
                    {"interface": "public", "region_id": "R2", "url": "http://two"}
                ]}
            ]
        }});
        let now = Instant::now();
        let t = parse_token(Some("tok"), body.to_string().as_bytes(), now).unwrap();
        assert_eq!(t.user_id.as_deref(), Some("u1"));
        assert_eq!(t.endpoint("public", None), Some("http://one"));
        assert_eq!(t.endpoint("public", Some("R2")), Some("http://two"));
        assert_eq!(t.endpoint("internal", None), Some("http://internal"));
        assert_eq!(t.endpoint("admin", None), None);
        // An hour's token, although its timestamps are long past on the local clock.
        assert!(t.fresh(now + Duration::from_secs(3000)));
        assert!(!t.fresh(now + Duration::from_secs(3301)));
        assert!(parse_token(None, body.to_string().as_bytes(), now).is_err());
        let unscoped = serde_json::json!({"token": {"expires_at": "2020-01-01T01:00:00Z"}});
        let e = parse_token(Some("t"), unscoped.to_string().as_bytes(), now)
            .err()
            .unwrap();
        assert_eq!(e.class, ErrorClass::Credentials);
    }

    #[test]
    fn renewal_is_half_way_or_five_minutes_before_expiry() {
        assert_eq!(
            renew_after(Duration::from_secs(20)),
            Duration::from_secs(10)
        );
        assert_eq!(
            renew_after(Duration::from_secs(3600)),
            Duration::from_secs(3300)
        );
        assert_eq!(renew_after(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn keystone_errors_map_to_classes() {
        let body = br#"{"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}}"#;
        let e = map_keystone_error(401, body, None);
        assert_eq!(e.class, ErrorClass::Credentials);
        assert!(!e.message.contains("requires authentication"), "{e}");
        assert!(
            e.message
                .starts_with("Keystone answered HTTP 401 (Unauthorized)")
        );
        assert!(e.message.contains("refused"));
        assert_eq!(map_keystone_error(503, b"", None).class, ErrorClass::Retry);
        assert_eq!(
            map_keystone_error(404, b"", None).class,
            ErrorClass::Permanent
        );
        assert_eq!(
            map_keystone_error(400, b"", None).class,
            ErrorClass::Permanent
        );
    }
}
