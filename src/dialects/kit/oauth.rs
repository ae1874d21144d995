//! The OAuth 2.0 client-credentials grant (RFC 6749 4.4) as identity providers speak it: the token request's
//! form, its reply, the refusals that may be shown, and the signed client assertion of a certificate (RFC 7523).
//! A dialect keeps its provider's flavour: where the token endpoint is, which scope, what else an error may name.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use zeroize::Zeroizing;

use super::http::{Endpoint, Exchange, NoAuth, Reply, Transport};
use super::retry::Idempotency;
use crate::dialects::DialectError;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Client assertions are valid this long.
const ASSERTION_LIFETIME: u64 = 600;
/// The longest lifetime believed from a token endpoint's `expires_in`.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The OAuth 2.0 `error` codes (RFC 6749 5.2, and those providers add): the only ones shown.
const KNOWN_ERRORS: &[&str] = &[
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "access_denied",
    "interaction_required",
    "temporarily_unavailable",
    "server_error",
];

/// The body of a client-credentials token request for `scope`, proven by a client secret or an assertion (a
/// signed JWT, or a federated token). It carries the proof, so it is wiped when dropped.
pub fn token_form(
    client_id: &str,
    scope: &str,
    secret: Option<&str>,
    assertion: Option<&str>,
) -> Zeroizing<String> {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials")
        .append_pair("client_id", client_id)
        .append_pair("scope", scope);
    if let Some(secret) = secret {
        form.append_pair("client_secret", secret);
    }
    if let Some(assertion) = assertion {
        form.append_pair("client_assertion_type", ASSERTION_TYPE)
            .append_pair("client_assertion", assertion);
    }
    Zeroizing::new(form.finish())
}

/// A token endpoint's reply (success or error).
#[derive(Deserialize, Default)]
pub struct TokenReply {
    access_token: Option<String>,
    #[serde(default, deserialize_with = "number_or_string")]
    expires_in: Option<u64>,
    error: Option<String>,
    /// Free text: never shown; a dialect may take a code of its provider's from it.
    pub error_description: Option<String>,
}

fn number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        Num(u64),
        Text(String),
    }
    Ok(match Option::<N>::deserialize(d)? {
        Some(N::Num(n)) => Some(n),
        Some(N::Text(t)) => t.trim().parse().ok(),
        None => None,
    })
}

impl TokenReply {
    /// The reply in `body`; one that cannot be read is an empty reply.
    pub fn read(body: &[u8]) -> TokenReply {
        serde_json::from_slice(body).unwrap_or_default()
    }

    /// The `error` code, when it is a known one.
    pub fn error(&self) -> Option<&'static str> {
        super::text::known_code(self.error.as_deref()?, KNOWN_ERRORS)
    }
}

/// The access token of a successful reply and how long it lives: `expires_in` seconds (an hour when absent),
/// within a second and [`MAX_TOKEN_LIFETIME`] (an endpoint may claim any number).
pub fn access_token(reply: &Reply) -> Result<(Zeroizing<String>, Duration), DialectError> {
    let unreadable = |what: &str| {
        DialectError::retry(
            "TokenEndpointError",
            format!("the token endpoint sent {what}"),
        )
    };
    let reply: TokenReply =
        serde_json::from_slice(&reply.body).map_err(|_| unreadable("an unreadable reply"))?;
    let token = reply
        .access_token
        .map(Zeroizing::new)
        .ok_or_else(|| unreadable("no access_token"))?;
    let lifetime = reply
        .expires_in
        .unwrap_or(3599)
        .clamp(1, MAX_TOKEN_LIFETIME.as_secs());
    Ok((token, Duration::from_secs(lifetime)))
}

/// A refused token request, by its status; `detail` is what of the answer may be shown (known codes only).
pub fn refused(status: u16, detail: &str, retry_after: Option<Duration>) -> DialectError {
    let text = format!("the token endpoint refused the request (HTTP {status}){detail}");
    match status {
        429 => DialectError::retry("TokenThrottled", text).with_retry_after(retry_after),
        500..=599 => DialectError::retry("TokenEndpointError", text).with_retry_after(retry_after),
        400 | 401 | 403 | 404 => DialectError::credentials("TokenRefused", text),
        _ => DialectError::retry("TokenEndpointError", text),
    }
}

/// How a client proves who it is to an identity provider.
pub enum Grant {
    ClientSecret(Zeroizing<String>),
    /// A certificate registered on the app, with its RSA private key.
    Certificate(Certificate),
    /// Workload identity: a federated token projected into the controller's pod, read at every renewal.
    Federated(PathBuf),
    /// Workload identity through a store's ServiceAccount: the token the controller requested for it.
    ServiceAccount(Zeroizing<String>),
}

/// One client-credentials token request for `scope` at `token_url` on `authority` (whose rate it is paced by, as
/// the store's own requests to this identity provider: one store's failing sign-ins never hold up another's).
/// Returns the token and its lifetime (see [`access_token`]).
pub async fn request_token(
    transport: &Transport,
    client: &reqwest::Client,
    authority: &str,
    token_url: &str,
    client_id: &str,
    grant: &Grant,
    scope: &str,
) -> Result<(Zeroizing<String>, Duration), DialectError> {
    let (secret, assertion) = match grant {
        Grant::ClientSecret(s) => (Some(s.as_str()), None),
        Grant::Certificate(c) => (None, Some(c.assertion(token_url, client_id)?)),
        Grant::ServiceAccount(token) => (None, Some(token.clone())),
        Grant::Federated(path) => (None, Some(federated_token(path).await?)),
    };
    let form = token_form(
        client_id,
        scope,
        secret,
        assertion.as_deref().map(|a| a.as_str()),
    );
    drop(assertion);
    let endpoint = Endpoint::store(client, authority, None, &NoAuth);
    let exchange = Exchange::new("get_token", &Method::POST, token_url)
        .body("application/x-www-form-urlencoded", form.as_bytes())
        .idempotency(Idempotency::Idempotent);
    access_token(&transport.send(&endpoint, &exchange).await?)
}

async fn federated_token(path: &std::path::Path) -> Result<Zeroizing<String>, DialectError> {
    let text = Zeroizing::new(tokio::fs::read_to_string(path).await.map_err(|e| {
        DialectError::credentials(
            "WorkloadIdentityUnavailable",
            format!(
                "cannot read the federated token file {}: {e}",
                path.display()
            ),
        )
    })?);
    Ok(Zeroizing::new(text.trim().to_owned()))
}

/// The parameters of a `WWW-Authenticate: Bearer k="v", …` challenge (RFC 6750), keys in lower case; `None` for
/// another scheme.
pub fn challenge_params(header: &str) -> Option<HashMap<String, String>> {
    let rest = header.trim();
    let rest = (rest.strip_prefix("Bearer")).or_else(|| rest.strip_prefix("bearer"))?;
    let pairs = rest.split(',').filter_map(|part| part.split_once('='));
    Some(
        pairs
            .map(|(k, v)| {
                (
                    k.trim().to_ascii_lowercase(),
                    v.trim().trim_matches('"').to_owned(),
                )
            })
            .collect(),
    )
}

/// A client certificate registered with the identity provider: its thumbprints and its RSA private key.
pub struct Certificate {
    sha1: [u8; 20],
    sha256: [u8; 32],
    key_pem: Zeroizing<String>,
}

fn invalid(message: String) -> DialectError {
    DialectError::credentials("InvalidCredentials", message)
}

impl Certificate {
    /// The first certificate of a PEM bundle and an unencrypted RSA private key (from the bundle or `key`).
    /// `what` names the credentials key in messages, which never quote the PEM.
    pub fn from_pem(pem_text: &str, key: Option<&str>, what: &str) -> Result<Self, DialectError> {
        let bad = |why: &str| invalid(format!("{what} {why}"));
        let mut blocks = pem::parse_many(pem_text.as_bytes())
            .map_err(|_| bad("is not PEM (a certificate and its RSA private key)"))?;
        if let Some(k) = key {
            blocks.extend(pem::parse_many(k.as_bytes()).map_err(|_| bad("key is not PEM"))?);
        }
        let cert = blocks
            .iter()
            .find(|b| b.tag() == "CERTIFICATE")
            .ok_or_else(|| bad("holds no CERTIFICATE block"))?;
        let key_block = blocks
            .iter()
            .find(|b| b.tag() == "PRIVATE KEY" || b.tag() == "RSA PRIVATE KEY")
            .ok_or_else(|| {
                bad("holds no unencrypted RSA private key (PRIVATE KEY or RSA PRIVATE KEY block)")
            })?;
        let key_pem = Zeroizing::new(pem::encode(key_block));
        // Providers take RS256 assertions; refuse other keys now rather than at every renewal.
        jsonwebtoken::EncodingKey::from_rsa_pem(key_pem.as_bytes())
            .map_err(|_| bad("key is not an RSA private key"))?;
        Ok(Certificate {
            sha1: sha1::Sha1::digest(cert.contents()).into(),
            sha256: sha2::Sha256::digest(cert.contents()).into(),
            key_pem,
        })
    }

    /// A client assertion for `audience` (the token endpoint's URL), signed with the key and naming the
    /// certificate by its thumbprints (RFC 7523, `x5t` and `x5t#S256`).
    pub fn assertion(
        &self,
        audience: &str,
        client_id: &str,
    ) -> Result<Zeroizing<String>, DialectError> {
        use base64::Engine;
        #[derive(Serialize)]
        struct Claims<'a> {
            aud: &'a str,
            iss: &'a str,
            sub: &'a str,
            jti: String,
            nbf: u64,
            iat: u64,
            exp: u64,
        }
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.x5t = Some(b64.encode(self.sha1));
        header.x5t_s256 = Some(b64.encode(self.sha256));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let claims = Claims {
            aud: audience,
            iss: client_id,
            sub: client_id,
            jti: hex::encode(rand::random::<[u8; 16]>()),
            nbf: now,
            iat: now,
            exp: now + ASSERTION_LIFETIME,
        };
        let key =
            jsonwebtoken::EncodingKey::from_rsa_pem(self.key_pem.as_bytes()).map_err(|_| {
                invalid("the client certificate's key is not an RSA private key".into())
            })?;
        jsonwebtoken::encode(&header, &claims, &key)
            .map(Zeroizing::new)
            .map_err(|_| {
                invalid("cannot sign a client assertion with the client certificate's key".into())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(body: &str) -> Reply {
        crate::dialects::fixtures::reply(200, body)
    }

    #[test]
    fn expires_in_may_be_a_string_and_is_kept_within_a_second_and_a_day() {
        let life = |body: &str| access_token(&reply(body)).unwrap().1;
        assert_eq!(
            life(r#"{"access_token":"a","expires_in":"3599"}"#).as_secs(),
            3599
        );
        assert_eq!(
            life(r#"{"access_token":"a","expires_in":60}"#).as_secs(),
            60
        );
        assert_eq!(life(r#"{"access_token":"a"}"#).as_secs(), 3599);
        assert_eq!(life(r#"{"access_token":"a","expires_in":0}"#).as_secs(), 1);
        let claimed = life(r#"{"access_token":"a","expires_in":18446744073709551615}"#);
        assert_eq!(claimed, MAX_TOKEN_LIFETIME);
        let e = access_token(&reply(r#"{"expires_in":60}"#)).unwrap_err();
        assert_eq!(e.reason, "TokenEndpointError");
    }

    #[test]
    fn only_known_error_codes_are_read() {
        let r = TokenReply::read(br#"{"error":"invalid_client","error_description":"CANARY"}"#);
        assert_eq!(r.error(), Some("invalid_client"));
        assert_eq!(TokenReply::read(br#"{"error":"CANARY"}"#).error(), None);
        assert_eq!(TokenReply::read(b"<html>").error(), None);
    }

    #[test]
    fn the_form_carries_one_proof() {
        let form = token_form("c", "s/.default", None, Some("jwt"));
        assert_eq!(
            form.as_str(),
            "grant_type=client_credentials&client_id=c&scope=s%2F.default&client_assertion_type=urn%3Aietf%3A\
             params%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=jwt"
        );
        assert!(!token_form("c", "s", Some("pw"), None).contains("assertion"));
    }

    #[test]
    fn a_certificate_that_is_not_pem_is_refused_without_quoting_it() {
        let e = Certificate::from_pem("not-pem-SENTINEL", None, "clientCertificate")
            .err()
            .expect("refused");
        assert_eq!(e.reason, "InvalidCredentials");
        assert!(e.message.starts_with("clientCertificate ") && !e.message.contains("SENTINEL"));
    }
}
