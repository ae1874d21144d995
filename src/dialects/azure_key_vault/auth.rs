//! Microsoft Entra ID access tokens for Key Vault: the client-credentials grant with a client secret, a client
//! certificate (signed JWT assertion) or a federated workload-identity token, a pre-issued bearer token, the
//! Key Vault 401 challenge, and a token cache shared by every SecretSync that uses the same credentials. [`Bearer`]
//! is how the dialect kit's transport puts them on each request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use zeroize::Zeroizing;

use super::DIALECT;
use crate::dialects::DialectError;
use crate::dialects::kit::{self, Exchange, Reply, Transport, credentials};
use crate::value::{Credentials, SERVICE_ACCOUNT_TOKEN_KEY};

/// Public-cloud Entra ID.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// The scope of the public cloud's Key Vault data plane.
pub const DEFAULT_SCOPE: &str = "https://vault.azure.net/.default";
/// Vault DNS suffixes and the Key Vault resource each sovereign cloud issues tokens for.
const CLOUD_SUFFIXES: [&str; 4] = [
    "vault.azure.net",
    "vault.azure.cn",
    "vault.usgovcloudapi.net",
    "vault.microsoftazure.de",
];
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Tokens are renewed this long before they expire (or at half their life, when that is later).
const RENEW_BEFORE: Duration = Duration::from_secs(300);
/// The longest lifetime believed from a token endpoint's `expires_in`.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Client-certificate assertions are valid this long.
const ASSERTION_LIFETIME: u64 = 600;
/// Token slots kept at most; past it the least recently used goes (see [`kit::bounded`]).
const MAX_CACHED: usize = 1024;
/// Vaults whose challenge scopes are kept at most.
const MAX_SCOPES: usize = 1024;

/// How the client proves who it is to Entra ID.
pub enum Grant {
    ClientSecret(Zeroizing<String>),
    /// A certificate registered on the app, and its RSA private key (PEM).
    Certificate {
        thumbprint_sha1: [u8; 20],
        thumbprint_sha256: [u8; 32],
        key_pem: Zeroizing<String>,
    },
    /// Workload identity: a federated token projected into the controller's pod, read at every renewal.
    Federated(std::path::PathBuf),
    /// Workload identity through a store's ServiceAccount: the token the controller requested for it.
    ServiceAccount(Zeroizing<String>),
}

/// An app registration (or managed identity) and its proof.
pub struct Identity {
    pub tenant: String,
    pub client_id: String,
    pub grant: Grant,
    /// Identity of the credentials, for caching tokens per credential set without keeping them.
    pub fingerprint: String,
}

/// Where a bearer token comes from.
pub enum Credential {
    /// `token` in the credentials Secret: sent as is, never renewed.
    Static(Zeroizing<String>),
    Entra {
        identity: Identity,
        /// `https://login.microsoftonline.com` or the configured authority host, without a trailing slash.
        authority: String,
    },
}

/// A tenant ID (GUID) or a verified domain name: letters, digits, '.', '-'.
fn valid_tenant(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

/// The environment of an Azure workload-identity pod (set by the workload-identity webhook).
#[derive(Default, Clone)]
pub struct WorkloadEnv {
    pub token_file: Option<String>,
    pub client_id: Option<String>,
    pub tenant_id: Option<String>,
    pub authority_host: Option<String>,
}

impl WorkloadEnv {
    pub fn from_process() -> Self {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.trim().is_empty());
        WorkloadEnv {
            token_file: var("AZURE_FEDERATED_TOKEN_FILE"),
            client_id: var("AZURE_CLIENT_ID"),
            tenant_id: var("AZURE_TENANT_ID"),
            authority_host: var("AZURE_AUTHORITY_HOST"),
        }
    }
}

/// Reads the credentials Secret. `authority` is the configured authority host, if any.
pub fn auth_from(
    creds: &Credentials,
    authority: Option<&str>,
    workload: &WorkloadEnv,
) -> Result<Credential, DialectError> {
    if let Some(token) = credentials::text(creds, "token")? {
        return Ok(Credential::Static(Zeroizing::new(token.to_owned())));
    }
    let workload_identity = match credentials::text(creds, "workloadIdentity")? {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(_) => {
            return Err(DialectError::credentials(
                "InvalidCredentials",
                "credentials key workloadIdentity must be \"true\" or \"false\"",
            ));
        }
    };
    let from_env = |v: &Option<String>| if workload_identity { v.clone() } else { None };
    let tenant = credentials::text(creds, "tenantId")?
        .map(str::to_owned)
        .or_else(|| from_env(&workload.tenant_id))
        .ok_or_else(|| {
            credentials::missing(
                "tenantId",
                "the app registration's tenant, with clientId and clientSecret, clientCertificate or \
                 workloadIdentity; or give a pre-issued token",
            )
        })?;
    if !valid_tenant(&tenant) {
        return Err(DialectError::credentials(
            "InvalidCredentials",
            "credentials key tenantId must be a tenant ID or domain (letters, digits, '.', '-')",
        ));
    }
    let client_id = credentials::text(creds, "clientId")?
        .map(str::to_owned)
        .or_else(|| from_env(&workload.client_id))
        .ok_or_else(|| credentials::missing("clientId", "the app registration's client ID"))?;
    let secret = credentials::text(creds, "clientSecret")?;
    let certificate = credentials::text(creds, "clientCertificate")?;
    let service_account = credentials::text(creds, SERVICE_ACCOUNT_TOKEN_KEY)?;
    let grants = [
        secret.is_some(),
        certificate.is_some(),
        workload_identity,
        service_account.is_some(),
    ]
    .iter()
    .filter(|g| **g)
    .count();
    if grants > 1 {
        return Err(DialectError::credentials(
            "InvalidCredentials",
            "only one of clientSecret, clientCertificate, workloadIdentity and the store's serviceAccountRef may be used",
        ));
    }
    let grant = if let Some(s) = secret {
        Grant::ClientSecret(Zeroizing::new(s.to_owned()))
    } else if let Some(pem_text) = certificate {
        let key = credentials::text(creds, "clientCertificateKey")?;
        certificate_grant(pem_text, key)?
    } else if let Some(token) = service_account {
        Grant::ServiceAccount(Zeroizing::new(token.to_owned()))
    } else if workload_identity {
        let file = workload.token_file.clone().ok_or_else(|| {
            DialectError::credentials(
                "WorkloadIdentityUnavailable",
                "workloadIdentity is set but the controller has no AZURE_FEDERATED_TOKEN_FILE (its pod is not \
                 set up for Azure workload identity)",
            )
        })?;
        Grant::Federated(file.into())
    } else {
        return Err(DialectError::credentials(
            "MissingCredentials",
            "the credentials Secret needs clientSecret, clientCertificate (PEM) or workloadIdentity: \"true\" \
             next to tenantId and clientId; they are missing or empty",
        ));
    };
    let authority = if workload_identity {
        authority
            .map(str::to_owned)
            .or(workload.authority_host.clone())
    } else {
        authority.map(str::to_owned)
    }
    .unwrap_or_else(|| DEFAULT_AUTHORITY.to_owned());
    let authority = check_authority(&authority)?;
    Ok(Credential::Entra {
        identity: Identity {
            tenant,
            client_id,
            grant,
            fingerprint: creds.fingerprint(),
        },
        authority,
    })
}

/// The authority host as an `https://` URL without a trailing slash.
pub fn check_authority(authority: &str) -> Result<String, DialectError> {
    let url = url::Url::parse(authority).map_err(|e| {
        DialectError::permanent(
            "InvalidSpec",
            format!("azureKeyVault.authorityHost is not a URL: {e}"),
        )
    })?;
    if url.scheme() != "https" || url.host_str().is_none() || url.query().is_some() {
        return Err(DialectError::permanent(
            "InvalidSpec",
            "azureKeyVault.authorityHost must be an https:// URL without a query, such as \
             https://login.microsoftonline.com",
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Splits a PEM bundle into the first certificate and an RSA private key (from the bundle or `key`).
fn certificate_grant(pem_text: &str, key: Option<&str>) -> Result<Grant, DialectError> {
    let bad = |what: &str| {
        DialectError::credentials("InvalidCredentials", format!("clientCertificate {what}"))
    };
    let mut blocks = pem::parse_many(pem_text.as_bytes())
        .map_err(|_| bad("is not PEM (a certificate and its RSA private key)"))?;
    if let Some(k) = key {
        blocks.extend(
            pem::parse_many(k.as_bytes())
                .map_err(|_| bad("key (clientCertificateKey) is not PEM"))?,
        );
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
    // Entra ID accepts RSA certificates only; refuse other keys now rather than at every renewal.
    jsonwebtoken::EncodingKey::from_rsa_pem(key_pem.as_bytes())
        .map_err(|_| bad("key is not an RSA private key"))?;
    let sha1: [u8; 20] = sha1::Sha1::digest(cert.contents()).into();
    let sha256: [u8; 32] = sha2::Sha256::digest(cert.contents()).into();
    Ok(Grant::Certificate {
        thumbprint_sha1: sha1,
        thumbprint_sha256: sha256,
        key_pem,
    })
}

/// The `.default` scope for a vault host, by its cloud's DNS suffix (public cloud when unknown).
pub fn scope_for_host(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    CLOUD_SUFFIXES
        .iter()
        .find(|s| host.ends_with(&format!(".{s}")))
        .map(|s| format!("https://{s}/.default"))
        .unwrap_or_else(|| DEFAULT_SCOPE.to_owned())
}

/// What a Key Vault 401 says about where to get a token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Challenge {
    pub tenant: Option<String>,
    pub resource: Option<String>,
    pub scope: Option<String>,
}

/// Parses `WWW-Authenticate: Bearer authorization="https://login.windows.net/{tenant}", resource="..."` (also
/// `authorization_uri` and `scope`).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let rest = header.trim();
    let rest = rest
        .strip_prefix("Bearer")
        .or_else(|| rest.strip_prefix("bearer"))?;
    let mut params: HashMap<String, String> = HashMap::new();
    for part in rest.split(',') {
        let Some((k, v)) = part.split_once('=') else {
            continue;
        };
        params.insert(
            k.trim().to_ascii_lowercase(),
            v.trim().trim_matches('"').to_owned(),
        );
    }
    let authorization = params
        .get("authorization")
        .or_else(|| params.get("authorization_uri"));
    let tenant = authorization.and_then(|a| {
        let url = url::Url::parse(a).ok()?;
        let seg = url.path_segments()?.rfind(|s| !s.is_empty())?.to_owned();
        valid_tenant(&seg).then_some(seg)
    });
    Some(Challenge {
        tenant,
        resource: params.get("resource").cloned(),
        scope: params.get("scope").cloned(),
    })
}

/// The scope a challenge asks for, if the vault is entitled to ask for it: as the Azure SDKs check, the vault's
/// host must lie under the resource's host, so a vault cannot obtain a token meant for another service.
pub fn challenge_scope(challenge: &Challenge, vault_host: &str) -> Option<String> {
    let resource = challenge
        .scope
        .as_deref()
        .map(|s| s.trim_end_matches("/.default").to_owned())
        .or_else(|| challenge.resource.clone())?;
    let host = url::Url::parse(&resource)
        .ok()?
        .host_str()?
        .to_ascii_lowercase();
    let vault = vault_host.to_ascii_lowercase();
    vault
        .ends_with(&format!(".{host}"))
        .then(|| format!("{}/.default", resource.trim_end_matches('/')))
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: u64,
    iat: u64,
    exp: u64,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A signed client assertion for the certificate grant (RFC 7523), with the certificate's thumbprints.
pub fn client_assertion(
    token_url: &str,
    client_id: &str,
    sha1: &[u8; 20],
    sha256: &[u8; 32],
    key_pem: &str,
) -> Result<Zeroizing<String>, DialectError> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.x5t = Some(b64.encode(sha1));
    header.x5t_s256 = Some(b64.encode(sha256));
    let now = now_secs();
    let claims = AssertionClaims {
        aud: token_url,
        iss: client_id,
        sub: client_id,
        jti: hex::encode(rand::random::<[u8; 16]>()),
        nbf: now,
        iat: now,
        exp: now + ASSERTION_LIFETIME,
    };
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key_pem.as_bytes()).map_err(|_| {
        DialectError::credentials(
            "InvalidCredentials",
            "clientCertificate key is not an RSA private key",
        )
    })?;
    jsonwebtoken::encode(&header, &claims, &key)
        .map(Zeroizing::new)
        .map_err(|_| {
            DialectError::credentials(
                "InvalidCredentials",
                "cannot sign a client assertion with the clientCertificate key",
            )
        })
}

/// A token endpoint's reply (success or error).
#[derive(Deserialize, Default)]
struct TokenReply {
    access_token: Option<String>,
    #[serde(default, deserialize_with = "number_or_string")]
    expires_in: Option<u64>,
    error: Option<String>,
    error_description: Option<String>,
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

/// The OAuth 2.0 `error` codes (RFC 6749 5.2) Entra ID sends: the only ones shown.
const KNOWN_OAUTH_ERRORS: &[&str] = &[
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

/// The first `AADSTS<digits>` of an Entra `error_description`, rebuilt from its digits: Entra's documented error
/// number names the cause (AADSTS7000215: wrong client secret, AADSTS700016: unknown application), and digits
/// carry nothing of the answer. The description itself is free text and never shown.
fn aadsts_code(description: &str) -> Option<String> {
    let at = description.find("AADSTS")?;
    let digits: String = description[at + "AADSTS".len()..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .take(9)
        .collect();
    (!digits.is_empty()).then(|| format!("AADSTS{digits}"))
}

/// Maps a refused token request: the HTTP status, the OAuth `error` when it is a known one, and the AADSTS
/// number of `error_description` (see [`aadsts_code`]); nothing else of the answer.
pub fn token_error(
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
    tenant: &str,
    client_id: &str,
) -> DialectError {
    let reply: TokenReply = serde_json::from_slice(body).unwrap_or_default();
    let error = reply
        .error
        .as_deref()
        .and_then(|e| kit::text::known_code(e, KNOWN_OAUTH_ERRORS));
    let aadsts = reply.error_description.as_deref().and_then(aadsts_code);
    let detail = match (error, aadsts) {
        (Some(e), Some(n)) => format!(": {e} ({n})"),
        (Some(e), None) => format!(": {e}"),
        (None, Some(n)) => format!(": {n}"),
        (None, None) => String::new(),
    };
    let text = format!(
        "Entra ID refused a token for client {client_id} in tenant {tenant} (HTTP {status}){detail}"
    );
    match status {
        429 => DialectError::retry("TokenThrottled", text).with_retry_after(retry_after),
        500..=599 => DialectError::retry("TokenEndpointError", text).with_retry_after(retry_after),
        400 | 401 | 403 | 404 => DialectError::credentials("TokenRefused", text),
        _ => DialectError::retry("TokenEndpointError", text),
    }
}

/// Whether `text` is a GUID (`8-4-4-4-12` hex digits), as Entra tenant IDs are.
fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

struct Cached {
    token: Zeroizing<String>,
    renew_at: Instant,
    expires_at: Instant,
}

/// Tokens by (authority, tenant, client, credentials, scope); the credentials include the store they are for, so
/// stores never share a token. Each entry has its own async lock, so that many SecretSyncs sharing credentials
/// fetch one token between them.
pub struct TokenCache {
    entries: kit::bounded::Lru<String, Arc<tokio::sync::Mutex<Option<Cached>>>>,
    /// Tokens fetched from Entra ID, for tests and metrics.
    pub fetched: std::sync::atomic::AtomicU64,
}

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache {
            entries: kit::bounded::Lru::new(MAX_CACHED),
            fetched: Default::default(),
        }
    }
}

/// What a token is asked for: at which authority, for which identity and scope, under which trust.
#[derive(Clone, Copy)]
pub struct SignIn<'a> {
    pub authority: &'a str,
    pub identity: &'a Identity,
    pub scope: &'a str,
    /// A namespaced Store's sign-in (fewer CAs trusted): its tokens are kept apart.
    pub namespaced: bool,
}

impl TokenCache {
    fn slot(&self, key: &str) -> Arc<tokio::sync::Mutex<Option<Cached>>> {
        self.entries
            .get_or_insert_with(key.to_owned(), Default::default)
    }

    /// A token is reused only under the trust it was obtained with: a namespaced Store's sign-in trusts fewer CAs
    /// than a ClusterStore's, so a token a ClusterStore obtained (same credentials, same authority host) is not one
    /// the Store could have, and the Store's behaviour must not depend on which of them signed in first.
    fn key(want: &SignIn<'_>) -> String {
        let mut h = sha2::Sha256::new();
        for part in [
            if want.namespaced {
                "namespaced"
            } else {
                "cluster"
            },
            want.authority,
            &want.identity.tenant,
            &want.identity.client_id,
            &want.identity.fingerprint,
            want.scope,
        ] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        hex::encode(h.finalize())
    }

    /// A valid token for the scope; `stale` is a token the vault just refused, which is then not reused.
    pub async fn token(
        &self,
        transport: &Transport,
        client: &reqwest::Client,
        want: &SignIn<'_>,
        stale: Option<&str>,
    ) -> Result<Zeroizing<String>, DialectError> {
        let SignIn {
            authority,
            identity,
            scope,
            ..
        } = *want;
        let slot = self.slot(&Self::key(want));
        let mut cached = slot.lock().await;
        let now = Instant::now();
        if let Some(c) = cached.as_ref()
            && now < c.renew_at
            && now < c.expires_at
            && stale != Some(c.token.as_str())
        {
            return Ok(c.token.clone());
        }
        let (token, lifetime) = self
            .fetch(transport, client, authority, identity, scope)
            .await?;
        let renew_in = std::cmp::max(lifetime / 2, lifetime.saturating_sub(RENEW_BEFORE));
        *cached = Some(Cached {
            token: token.clone(),
            renew_at: now + renew_in,
            expires_at: now + lifetime,
        });
        Ok(token)
    }

    /// One token request. It is not retried here: a failure reaches the transport as a failed `authorize`,
    /// which nothing was sent for, and [`kit::RetryPolicy`] tries the whole attempt again when the failure is
    /// transient (a token request is safe to repeat). Retrying here too would multiply the attempts.
    async fn fetch(
        &self,
        transport: &Transport,
        client: &reqwest::Client,
        authority: &str,
        identity: &Identity,
        scope: &str,
    ) -> Result<(Zeroizing<String>, Duration), DialectError> {
        let token_url = format!("{authority}/{}/oauth2/v2.0/token", identity.tenant);
        let assertion = match &identity.grant {
            Grant::ClientSecret(_) => None,
            Grant::Certificate {
                thumbprint_sha1,
                thumbprint_sha256,
                key_pem,
            } => Some(client_assertion(
                &token_url,
                &identity.client_id,
                thumbprint_sha1,
                thumbprint_sha256,
                key_pem,
            )?),
            Grant::ServiceAccount(token) => Some(token.clone()),
            Grant::Federated(path) => {
                let text = Zeroizing::new(tokio::fs::read_to_string(path).await.map_err(|e| {
                    DialectError::credentials(
                        "WorkloadIdentityUnavailable",
                        format!(
                            "cannot read the federated token file {}: {e}",
                            path.display()
                        ),
                    )
                })?);
                Some(Zeroizing::new(text.trim().to_owned()))
            }
        };
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials")
                .append_pair("client_id", &identity.client_id)
                .append_pair("scope", scope);
            if let Grant::ClientSecret(secret) = &identity.grant {
                form.append_pair("client_secret", secret);
            }
            if let Some(a) = &assertion {
                form.append_pair("client_assertion_type", ASSERTION_TYPE)
                    .append_pair("client_assertion", a);
            }
            Zeroizing::new(form.finish())
        };
        drop(assertion);
        // Paced as the store's own requests to this identity provider (see `EndpointLimiter`): one store's failing
        // sign-ins never hold up another's.
        transport.shared().limiter.acquire(authority).await;
        let response = client
            .post(&token_url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body.as_bytes().to_vec())
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                transport.record("get_token", "retry");
                let mut err = DialectError::transport(e);
                err.message = format!("cannot reach the Entra ID token endpoint: {}", err.message);
                return Err(err);
            }
        };
        let status = response.status().as_u16();
        let after = kit::http::retry_after(response.headers());
        let bytes = kit::read_body(response).await?;
        if !(200..300).contains(&status) {
            let err = token_error(status, &bytes, after, &identity.tenant, &identity.client_id);
            transport.record("get_token", err.class.as_str());
            return Err(err);
        }
        let reply: TokenReply = serde_json::from_slice(&bytes).map_err(|_| {
            DialectError::retry(
                "TokenEndpointError",
                "the Entra ID token endpoint sent an unreadable reply",
            )
        })?;
        let token = reply.access_token.map(Zeroizing::new).ok_or_else(|| {
            DialectError::retry(
                "TokenEndpointError",
                "the Entra ID token endpoint sent no access_token",
            )
        })?;
        transport.record("get_token", "ok");
        self.fetched
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok((token, token_lifetime(reply.expires_in)))
    }
}

/// How long a token is believed to live: `expires_in` seconds (an hour when absent), within 1 s and a day. Entra
/// ID's tokens live about an hour; an endpoint may claim any u64, and an `Instant` plus `u64::MAX` seconds panics.
fn token_lifetime(expires_in: Option<u64>) -> Duration {
    Duration::from_secs(
        expires_in
            .unwrap_or(3599)
            .clamp(1, MAX_TOKEN_LIFETIME.as_secs()),
    )
}

/// Scopes learned from vault challenges, by vault URL (`https://host[:port]`).
pub struct Scopes(kit::bounded::Lru<String, String>);

impl Default for Scopes {
    fn default() -> Self {
        Scopes(kit::bounded::Lru::new(MAX_SCOPES))
    }
}

impl Scopes {
    fn get(&self, vault: &str) -> Option<String> {
        self.0.get(vault)
    }

    fn learn(&self, vault: &str, scope: String) {
        self.0.put(vault.to_owned(), scope);
    }
}

/// The bearer token of every request to one vault, as the dialect kit's [`kit::Auth`]: a pre-issued token as
/// it is, or an Entra ID token from the [`TokenCache`] for the vault's scope. On a 401 the vault's challenge is
/// followed (a vault of another tenant is an error; a scope the vault may ask for is learned) and the refused
/// token is not used again, so the one more attempt the transport makes carries a fresh token.
pub struct Bearer<'a> {
    credential: Credential,
    tokens: &'a TokenCache,
    scopes: &'a Scopes,
    /// For the token endpoint's pacing and metrics.
    transport: &'a Transport,
    /// The client for the token endpoint: trusting `ca.crt` like the vault's for a ClusterStore; for a namespaced
    /// Store the public roots and the operator's identity-provider CAs only.
    client: reqwest::Client,
    /// Whether a namespace admin wrote the store, whose CA is then not trusted for the token endpoint.
    namespaced: bool,
    /// The vault, `https://host[:port]`, and its host.
    vault: String,
    host: String,
    /// The token of the last attempt, and the one the vault refused.
    sent: Mutex<Option<Zeroizing<String>>>,
    stale: Mutex<Option<Zeroizing<String>>>,
}

impl<'a> Bearer<'a> {
    pub fn new(
        credential: Credential,
        tokens: &'a TokenCache,
        scopes: &'a Scopes,
        transport: &'a Transport,
        client: reqwest::Client,
        namespaced: bool,
        vault: &url::Url,
    ) -> Self {
        Bearer {
            credential,
            tokens,
            scopes,
            transport,
            client,
            namespaced,
            vault: vault.as_str().trim_end_matches('/').to_owned(),
            host: vault.host_str().unwrap_or_default().to_owned(),
            sent: Mutex::new(None),
            stale: Mutex::new(None),
        }
    }

    async fn token(&self) -> Result<Zeroizing<String>, DialectError> {
        match &self.credential {
            Credential::Static(t) => Ok(t.clone()),
            Credential::Entra {
                identity,
                authority,
            } => {
                let scope = self
                    .scopes
                    .get(&self.vault)
                    .unwrap_or_else(|| scope_for_host(&self.host));
                let stale = self.stale.lock().unwrap_or_else(|e| e.into_inner()).clone();
                self.tokens
                    .token(
                        self.transport,
                        &self.client,
                        &SignIn {
                            authority,
                            identity,
                            scope: &scope,
                            namespaced: self.namespaced,
                        },
                        stale.as_ref().map(|s| s.as_str()),
                    )
                    .await
                    .map_err(|e| self.explained(e))
            }
        }
    }
}

impl Bearer<'_> {
    /// An untrusted token endpoint of a namespaced Store: its own CA is not the fix, so the message says what is.
    fn explained(&self, mut err: DialectError) -> DialectError {
        if self.namespaced && err.reason == "CertificateUntrusted" {
            err.message = UNTRUSTED_AUTHORITY.to_owned();
        }
        err
    }
}

/// Why a namespaced Store cannot sign in at an authority host with a private certificate.
pub const UNTRUSTED_AUTHORITY: &str = "the Entra ID authority host's TLS certificate is not trusted: a namespaced \
     Store's caBundle (and ca.crt) vouch for its vault only, never for where it sends its client secret or token; \
     use an authority host with a publicly trusted certificate, ask the operator to trust its CA \
     (--identity-provider-ca-file), or use a ClusterStore";

#[async_trait]
impl kit::Auth for Bearer<'_> {
    async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
        _: &Exchange<'_>,
    ) -> Result<reqwest::RequestBuilder, DialectError> {
        let token = self.token().await?;
        let request = request.bearer_auth(token.as_str());
        *self.sent.lock().unwrap_or_else(|e| e.into_inner()) = Some(token);
        Ok(request)
    }

    /// A pre-issued token cannot be renewed: `false`, and the 401 is decoded as `Unauthorized`.
    async fn refused(&self, reply: &Reply) -> Result<bool, DialectError> {
        let Credential::Entra { identity, .. } = &self.credential else {
            return Ok(false);
        };
        let challenge = reply
            .headers
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_challenge);
        if let Some(challenge) = challenge {
            if let Some(tenant) = &challenge.tenant {
                let generic = ["common", "organizations", "consumers"];
                if !tenant.eq_ignore_ascii_case(&identity.tenant)
                    && !generic.contains(&tenant.to_ascii_lowercase().as_str())
                {
                    // The challenge is a header the vault wrote: its tenant is named only when it is a GUID.
                    let theirs = if is_guid(tenant) {
                        format!("tenant {tenant}")
                    } else {
                        "another tenant".to_owned()
                    };
                    return Err(DialectError::credentials(
                        "WrongTenant",
                        format!(
                            "the vault belongs to {theirs}, but the credentials name tenant {}",
                            identity.tenant
                        ),
                    ));
                }
            }
            if let Some(scope) = challenge_scope(&challenge, &self.host) {
                self.scopes.learn(&self.vault, scope);
            }
        }
        let refused = self.sent.lock().unwrap_or_else(|e| e.into_inner()).take();
        *self.stale.lock().unwrap_or_else(|e| e.into_inner()) = refused;
        tracing::debug!(
            dialect = DIALECT,
            "the vault refused the token; renewing it once"
        );
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialects::ErrorClass;
    use crate::dialects::fixtures::creds;

    #[test]
    fn challenge_parsing_follows_the_sdk_shapes() {
        let c = parse_challenge(
            r#"Bearer authorization="https://login.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47", resource="https://vault.azure.net""#,
        )
        .unwrap();
        assert_eq!(
            c.tenant.as_deref(),
            Some("72f988bf-86f1-41af-91ab-2d7cd011db47")
        );
        assert_eq!(c.resource.as_deref(), Some("https://vault.azure.net"));
        assert_eq!(
            challenge_scope(&c, "myvault.vault.azure.net").as_deref(),
            Some("https://vault.azure.net/.default")
        );
        // A host outside the resource's domain gets no say over the scope.
        assert_eq!(challenge_scope(&c, "127.0.0.1"), None);
        assert_eq!(challenge_scope(&c, "evilvault.azure.net"), None);
        let c = parse_challenge(
            r#"Bearer authorization_uri="https://login.microsoftonline.com/contoso.com/", scope="https://vault.azure.cn/.default""#,
        )
        .unwrap();
        assert_eq!(c.tenant.as_deref(), Some("contoso.com"));
        assert_eq!(
            challenge_scope(&c, "v.vault.azure.cn").as_deref(),
            Some("https://vault.azure.cn/.default")
        );
        assert_eq!(parse_challenge("Basic realm=x"), None);
    }

    #[test]
    fn scope_follows_the_cloud_of_the_vault() {
        assert_eq!(
            scope_for_host("a.vault.azure.net"),
            "https://vault.azure.net/.default"
        );
        assert_eq!(
            scope_for_host("a.VAULT.usgovcloudapi.net"),
            "https://vault.usgovcloudapi.net/.default"
        );
        assert_eq!(scope_for_host("127.0.0.1"), DEFAULT_SCOPE);
    }

    #[test]
    fn credentials_keys_pick_one_grant() {
        let env = WorkloadEnv::default();
        let a = auth_from(
            &creds(&[
                ("tenantId", "t1"),
                ("clientId", "c1"),
                ("clientSecret", "s"),
            ]),
            None,
            &env,
        )
        .unwrap();
        match a {
            Credential::Entra {
                identity,
                authority,
            } => {
                assert_eq!(authority, DEFAULT_AUTHORITY);
                assert_eq!(
                    (identity.tenant.as_str(), identity.client_id.as_str()),
                    ("t1", "c1")
                );
                assert!(matches!(identity.grant, Grant::ClientSecret(_)));
            }
            Credential::Static(_) => panic!("expected Entra"),
        }
        assert!(matches!(
            auth_from(&creds(&[("token", "abc")]), None, &env).unwrap(),
            Credential::Static(_)
        ));
        let reason = |c: Credentials| auth_from(&c, None, &env).err().expect("refused").reason;
        // Missing keys, and (the kit's one rule) empty or blank ones, are MissingCredentials naming the key.
        assert_eq!(
            reason(creds(&[("clientSecret", "s")])),
            "MissingCredentials"
        );
        assert_eq!(
            reason(creds(&[("tenantId", "t"), ("clientId", "c")])),
            "MissingCredentials"
        );
        let blank = auth_from(
            &creds(&[
                ("tenantId", "t"),
                ("clientId", " \n"),
                ("clientSecret", "s"),
            ]),
            None,
            &env,
        )
        .err()
        .expect("blank clientId");
        assert_eq!(blank.reason, "MissingCredentials");
        assert!(blank.message.contains("clientId"), "{blank}");
        // An empty token is no token: the app registration's keys are used.
        assert!(matches!(
            auth_from(
                &creds(&[
                    ("token", ""),
                    ("tenantId", "t"),
                    ("clientId", "c"),
                    ("clientSecret", "s")
                ]),
                None,
                &env
            )
            .unwrap(),
            Credential::Entra { .. }
        ));
        assert_eq!(
            reason(creds(&[
                ("tenantId", "../x"),
                ("clientId", "c"),
                ("clientSecret", "s")
            ])),
            "InvalidCredentials"
        );
        assert_eq!(
            reason(creds(&[
                ("tenantId", "t"),
                ("clientId", "c"),
                ("clientSecret", "s"),
                ("workloadIdentity", "true")
            ])),
            "InvalidCredentials"
        );
        assert_eq!(
            reason(creds(&[
                ("tenantId", "t"),
                ("clientId", "c"),
                ("workloadIdentity", "true")
            ])),
            "WorkloadIdentityUnavailable"
        );
        let garbage = auth_from(
            &creds(&[
                ("tenantId", "t"),
                ("clientId", "c"),
                ("clientCertificate", "not-pem-SENTINEL"),
            ]),
            None,
            &env,
        )
        .err()
        .expect("garbage certificate");
        assert_eq!(garbage.class, ErrorClass::Credentials);
        assert!(!garbage.to_string().contains("SENTINEL"));
        let http = auth_from(
            &creds(&[("tenantId", "t"), ("clientId", "c"), ("clientSecret", "s")]),
            Some("http://login.example"),
            &env,
        );
        assert_eq!(http.err().unwrap().reason, "InvalidSpec");
    }

    #[test]
    fn workload_identity_takes_ids_and_authority_from_the_pod() {
        let env = WorkloadEnv {
            token_file: Some("/var/run/secrets/azure/tokens/azure-identity-token".into()),
            client_id: Some("pod-client".into()),
            tenant_id: Some("pod-tenant".into()),
            authority_host: Some("https://login.microsoftonline.us/".into()),
        };
        match auth_from(&creds(&[("workloadIdentity", "true")]), None, &env).unwrap() {
            Credential::Entra {
                identity,
                authority,
            } => {
                assert_eq!(identity.tenant, "pod-tenant");
                assert_eq!(identity.client_id, "pod-client");
                assert_eq!(authority, "https://login.microsoftonline.us");
                assert!(matches!(identity.grant, Grant::Federated(_)));
            }
            Credential::Static(_) => panic!("expected Entra"),
        }
        // Without workloadIdentity the pod's IDs are never borrowed.
        assert!(auth_from(&creds(&[("clientSecret", "s")]), None, &env).is_err());
    }

    #[test]
    fn a_stores_service_account_token_is_a_federated_grant_with_the_stores_ids_only() {
        let env = WorkloadEnv {
            token_file: Some("/controller/token".into()),
            client_id: Some("pod-client".into()),
            tenant_id: Some("pod-tenant".into()),
            authority_host: Some("https://pod-authority.example".into()),
        };
        let with_ids = creds(&[
            ("tenantId", "t"),
            ("clientId", "c"),
            (SERVICE_ACCOUNT_TOKEN_KEY, "sa-token"),
        ]);
        match auth_from(&with_ids, None, &env).unwrap() {
            Credential::Entra {
                identity,
                authority,
            } => {
                assert_eq!(
                    (identity.tenant.as_str(), identity.client_id.as_str()),
                    ("t", "c")
                );
                assert_eq!(
                    authority, DEFAULT_AUTHORITY,
                    "the pod's authority is not borrowed"
                );
                assert!(
                    matches!(&identity.grant, Grant::ServiceAccount(t) if t.as_str() == "sa-token")
                );
            }
            Credential::Static(_) => panic!("expected Entra"),
        }
        // The controller pod's IDs are never borrowed for a store's ServiceAccount.
        assert!(auth_from(&creds(&[(SERVICE_ACCOUNT_TOKEN_KEY, "x")]), None, &env).is_err());
        let two = creds(&[
            ("tenantId", "t"),
            ("clientId", "c"),
            ("clientSecret", "s"),
            (SERVICE_ACCOUNT_TOKEN_KEY, "x"),
        ]);
        assert_eq!(
            auth_from(&two, None, &env).err().unwrap().reason,
            "InvalidCredentials"
        );
    }

    #[test]
    fn token_errors_keep_the_oauth_error_and_aadsts_number_only() {
        let body = serde_json::to_vec(&serde_json::json!({
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1\r\nCorrelation ID: 2",
        }))
        .unwrap();
        let e = token_error(401, &body, None, "t1", "c1");
        assert_eq!(
            (e.class, e.reason),
            (ErrorClass::Credentials, "TokenRefused")
        );
        assert_eq!(
            e.message,
            "Entra ID refused a token for client c1 in tenant t1 (HTTP 401): invalid_client (AADSTS7000215)"
        );
        // Unknown error codes and every description's text are not shown.
        let canary = serde_json::to_vec(&serde_json::json!({
            "error": "CANARY-1",
            "error_description": "CANARY-2 AADSTS12CANARY-3",
        }))
        .unwrap();
        let e = token_error(400, &canary, None, "t", "c");
        assert_eq!(
            e.message,
            "Entra ID refused a token for client c in tenant t (HTTP 400): AADSTS12"
        );
        let e = token_error(429, b"", Some(Duration::from_secs(4)), "t", "c");
        assert_eq!(
            (e.class, e.retry_after),
            (ErrorClass::Retry, Some(Duration::from_secs(4)))
        );
        assert_eq!(
            token_error(503, b"<html>", None, "t", "c").class,
            ErrorClass::Retry
        );
    }

    #[test]
    fn only_a_guid_tenant_is_named() {
        assert!(is_guid("72f988bf-86f1-41af-91ab-2d7cd011db47"));
        assert!(!is_guid("CANARY-72f988bf"));
        assert!(!is_guid("contoso.onmicrosoft.com"));
        assert!(!is_guid("72f988bf-86f1-41af-91ab-2d7cd011db4Z"));
    }

    #[test]
    fn expires_in_may_be_a_string() {
        let r: TokenReply =
            serde_json::from_str(r#"{"access_token":"a","expires_in":"3599"}"#).unwrap();
        assert_eq!(r.expires_in, Some(3599));
        let r: TokenReply =
            serde_json::from_str(r#"{"access_token":"a","expires_in":60}"#).unwrap();
        assert_eq!(r.expires_in, Some(60));
    }

    #[test]
    fn a_token_lifetime_is_kept_within_a_second_and_a_day() {
        assert_eq!(token_lifetime(None), Duration::from_secs(3599));
        assert_eq!(token_lifetime(Some(0)), Duration::from_secs(1));
        assert_eq!(token_lifetime(Some(4000)), Duration::from_secs(4000));
        let claimed = token_lifetime(Some(u64::MAX));
        assert_eq!(claimed, MAX_TOKEN_LIFETIME);
        // What the cache computes with it must not overflow.
        let now = Instant::now();
        assert!(now.checked_add(claimed).is_some());
        assert!(now.checked_add(Duration::from_secs(u64::MAX)).is_none());
    }
}
