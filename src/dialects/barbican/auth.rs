//! Who SecretSync is to Barbican: Keystone v3 tokens (password or application credential), kept in the kit's
//! token cache until half-way through their life, or the no-auth headers of development deployments.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;
use zeroize::Zeroizing;

use super::wire::answered;
use super::{DIALECT, settings};
use crate::api::Target;
use crate::dialects::DialectError;
use crate::dialects::kit::credentials::{missing, required, secret_json, text};
use crate::dialects::kit::endpoint::versioned_root;
use crate::dialects::kit::signin::SignIn;
use crate::dialects::kit::{
    Auth, Endpoint, Exchange, Idempotency, NoAuth, Reply, Transport, Verdict,
};
use crate::value::Credentials;

/// A token is renewed once less than half of its life is left, and at most this long before it expires.
const RENEW_MARGIN_MAX: Duration = Duration::from_secs(300);
/// The user ID sent as `X-User-Id` in no-auth mode, so Barbican records a creator SecretSync can recognise.
pub(super) const NOAUTH_USER: &str = "secretsync";

/// Keystone credentials from the credentials Secret.
pub(super) struct Keystone {
    /// `…/v3`, without a trailing slash.
    pub auth_url: String,
    /// The body of `POST /v3/auth/tokens`. It holds the password or secret, so it is wiped when dropped.
    body: Zeroizing<Vec<u8>>,
    /// The token cache's key: the auth URL and a fingerprint of every credential key.
    cache_key: String,
}

/// How requests are authenticated.
pub(super) enum Access {
    Keystone(Keystone),
    NoAuth { project_id: String },
}

/// Reads the access mode from the credentials and settings; every error names the key to fix, never a value.
pub(super) fn access(target: &Target, creds: &Credentials) -> Result<Access, DialectError> {
    let Some(auth_url) = text(creds, "authUrl")? else {
        return no_auth(target, creds);
    };
    let auth_url = versioned_root(auth_url, "/v3").map_err(|why| {
        DialectError::credentials(
            "InvalidCredentials",
            format!("credentials key authUrl {why}"),
        )
    })? + "/v3";
    let app_id = text(creds, "applicationCredentialId")?;
    let app_secret = text(creds, "applicationCredentialSecret")?;
    let identity = match (app_id, app_secret) {
        // An application credential carries its own project scope.
        (Some(id), Some(secret)) => json!({"identity": {
            "methods": ["application_credential"],
            "application_credential": {"id": id, "secret": secret}
        }}),
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
            let user_keys = ["userId", "username", "userDomainId", "userDomainName"];
            let mut user = named(creds, user_keys)?.ok_or_else(|| {
                missing(
                    "username",
                    "the Keystone user, or userId; with password, or else applicationCredentialId and \
                     applicationCredentialSecret",
                )
            })?;
            user["password"] = required(creds, "password", "the Keystone user's password")?.into();
            let project_keys = [
                "projectId",
                "projectName",
                "projectDomainId",
                "projectDomainName",
            ];
            let project = named(creds, project_keys)?.ok_or_else(|| {
                missing(
                    "projectName",
                    "or projectId: Barbican needs a project-scoped token",
                )
            })?;
            json!({
                "identity": {"methods": ["password"], "password": {"user": user}},
                "scope": {"project": project}
            })
        }
    };
    let body = secret_json(json!({ "auth": identity }));
    let cache_key = format!("{auth_url}#{}", creds.fingerprint());
    Ok(Access::Keystone(Keystone {
        auth_url,
        body,
        cache_key,
    }))
}

/// Without `authUrl`: no-auth mode, which takes no credentials at all (no credentialsRef: only the controller's
/// own keys) and needs the store's project ID and endpoint.
fn no_auth(target: &Target, creds: &Credentials) -> Result<Access, DialectError> {
    if !creds.has_no_secret_keys() {
        return Err(missing(
            "authUrl",
            "the Keystone URL, e.g. https://keystone:5000/v3",
        ));
    }
    let Some(project_id) = settings(target).project_id.filter(|p| !p.trim().is_empty()) else {
        return Err(DialectError::permanent(
            "InvalidSpec",
            "Barbican needs the store's credentialsRef (Keystone credentials) or barbican.projectId (on the \
             store) (no-auth mode)",
        ));
    };
    if target.endpoint.is_none() {
        return Err(DialectError::permanent(
            "InvalidSpec",
            "Barbican in no-auth mode (barbican.projectId, no credentialsRef) needs the store's endpoint",
        ));
    }
    Ok(Access::NoAuth {
        project_id: project_id.trim().to_owned(),
    })
}

/// A Keystone user or project from its keys `[id, name, domain id, domain name]`: `{"id"}`, or `{"name",
/// "domain"}` with the domain `Default` unless one is named; `None` when neither the ID nor the name is set.
fn named(
    creds: &Credentials,
    [id, name, domain_id, domain_name]: [&str; 4],
) -> Result<Option<Value>, DialectError> {
    if let Some(id) = text(creds, id)? {
        return Ok(Some(json!({ "id": id })));
    }
    let Some(name) = text(creds, name)? else {
        return Ok(None);
    };
    let domain = match (text(creds, domain_id)?, text(creds, domain_name)?) {
        (Some(id), _) => json!({ "id": id }),
        (None, name) => json!({ "name": name.unwrap_or("Default") }),
    };
    Ok(Some(json!({ "name": name, "domain": domain })))
}

#[derive(Deserialize)]
struct TokenReply {
    token: TokenBody,
}

#[derive(Deserialize)]
struct TokenBody {
    expires_at: String,
    issued_at: Option<String>,
    user: Option<IdOnly>,
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
    region: Option<String>,
    region_id: Option<String>,
    url: String,
}

/// A project-scoped token and what came with it.
pub(super) struct Token {
    value: Zeroizing<String>,
    pub user_id: Option<String>,
    /// The catalog's key-manager endpoints: (interface, region, url).
    endpoints: Vec<(String, Option<String>, String)>,
}

impl Token {
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

/// When to renew a token with this lifetime: half-way, and at most [`RENEW_MARGIN_MAX`] before expiry (the kit's
/// default keeps the last minute unused, which would never reuse the short tokens some clouds issue).
pub(super) fn renew_after(lifetime: Duration) -> Duration {
    let margin = (lifetime / 2).min(RENEW_MARGIN_MAX);
    lifetime.saturating_sub(margin)
}

/// Parses a token reply, with how long to keep the token. `sent` is when the request went out: the token's
/// lifetime (expires - issued, both server clock) is counted from then, so a skewed local clock cannot keep an
/// expired token.
pub(super) fn parse_token(
    subject: Option<&str>,
    body: &[u8],
    sent: Instant,
) -> Result<(Token, Duration), DialectError> {
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
        .map_err(|e| bad(&crate::dialects::kit::text::json_position(&e)))?;
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
    let token = Token {
        value: Zeroizing::new(subject.to_owned()),
        user_id: t.user.map(|u| u.id),
        endpoints,
    };
    Ok((token, renew_after(lifetime).saturating_sub(sent.elapsed())))
}

/// Keystone's reading of a token request's answer: 200 or 201 with the token, anything else a failure.
pub(super) fn decode_keystone(reply: &Reply) -> Verdict {
    match reply.status {
        200 | 201 => Verdict::Success,
        s => Verdict::Error(map_keystone_error(s, &reply.body, reply.retry_after())),
    }
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

/// Keystone mode: a token from `POST /v3/auth/tokens`, sent as `X-Auth-Token`.
pub(super) struct KeystoneSignIn<'a> {
    pub keystone: &'a Transport,
    pub ks: Keystone,
}

#[async_trait]
impl SignIn for KeystoneSignIn<'_> {
    type Token = Token;

    fn key(&self) -> String {
        self.ks.cache_key.clone()
    }

    async fn fetch(&self) -> Result<(Token, Duration), DialectError> {
        let ks = &self.ks;
        let url = format!("{}/auth/tokens", ks.auth_url);
        let client = &self.keystone.shared().http;
        let endpoint = Endpoint::store(client, &ks.auth_url, None, &NoAuth);
        // Asking Keystone for a token twice only issues two tokens (the first one is never used), so the request
        // is safe to repeat whatever became of an attempt.
        let exchange = Exchange::new("token", &Method::POST, &url)
            .json(&ks.body)
            .idempotency(Idempotency::Idempotent);
        let sent = Instant::now();
        let reply = self.keystone.send(&endpoint, &exchange).await?;
        tracing::debug!(dialect = DIALECT, auth_url = %ks.auth_url, "fetched a Keystone token");
        let subject = reply.headers.get("x-subject-token");
        parse_token(subject.and_then(|v| v.to_str().ok()), &reply.body, sent)
    }

    fn apply(
        &self,
        request: reqwest::RequestBuilder,
        token: &Token,
    ) -> Result<reqwest::RequestBuilder, DialectError> {
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
}

/// No-auth mode (development deployments): the project and role headers Barbican's `barbican_api` pipeline
/// trusts. Nothing can be renewed, so a 401 is final.
pub(super) struct ProjectHeaders(pub String);

#[async_trait]
impl Auth for ProjectHeaders {
    async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
        _: &Exchange<'_>,
    ) -> Result<reqwest::RequestBuilder, DialectError> {
        Ok(request
            .header("X-Project-Id", self.0.as_str())
            .header("X-Roles", "member")
            .header("X-User-Id", NOAUTH_USER))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialects::ErrorClass;
    use crate::dialects::fixtures::{creds, target};

    /// The auth URL (`…/v3`) that credentials with this `authUrl` sign in at.
    fn auth_url(raw: &str) -> Result<String, DialectError> {
        let c = creds(&[
            ("authUrl", raw),
            ("applicationCredentialId", "a"),
            ("applicationCredentialSecret", "s"),
        ]);
        match access(&target(serde_json::json!({"dialect": "Barbican"})), &c)? {
            Access::Keystone(ks) => Ok(ks.auth_url),
            Access::NoAuth { .. } => panic!("keystone mode"),
        }
    }

    #[test]
    fn auth_url_gets_v3() {
        assert_eq!(auth_url("http://k:5000").unwrap(), "http://k:5000/v3");
        assert_eq!(auth_url("http://k:5000/v3/").unwrap(), "http://k:5000/v3");
        assert_eq!(
            auth_url("https://k/identity").unwrap(),
            "https://k/identity/v3"
        );
        assert!(auth_url("ftp://k").is_err());
        assert!(auth_url("not a url").is_err());
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
        let body: serde_json::Value = serde_json::from_slice(&ks.body).unwrap();
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
        let body: serde_json::Value = serde_json::from_slice(&ks.body).unwrap();
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
        let (t, keep) = parse_token(Some("tok"), body.to_string().as_bytes(), now).unwrap();
        assert_eq!(t.user_id.as_deref(), Some("u1"));
        assert_eq!(t.endpoint("public", None), Some("http://one"));
        assert_eq!(t.endpoint("public", Some("R2")), Some("http://two"));
        assert_eq!(t.endpoint("internal", None), Some("http://internal"));
        assert_eq!(t.endpoint("admin", None), None);
        // An hour's token, although its timestamps are long past on the local clock.
        assert!(keep > Duration::from_secs(3200) && keep <= Duration::from_secs(3300));
        assert_eq!(t.value.as_str(), "tok");
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
