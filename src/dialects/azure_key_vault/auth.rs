//! Who SecretSync is to a vault: a pre-issued bearer token, or a Microsoft Entra ID token of the
//! client-credentials grant (a client secret, a client certificate's signed assertion, or a federated
//! workload-identity token), obtained through the kit's transport and kept in the kit's token cache; and the
//! vault's 401 challenge. [`Bearer`] puts them on each request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use zeroize::Zeroizing;

use super::{DIALECT, wire};
use crate::dialects::kit::bounded::Lru;
use crate::dialects::kit::oauth::{self, Grant};
use crate::dialects::kit::signin::{SignIn, explain_untrusted};
use crate::dialects::kit::token_cache::TokenCache;
use crate::dialects::kit::{self, Reply, RetryPolicy, Transport, credentials};
use crate::dialects::{DialectError, Shared};
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
/// Tokens are renewed this long before they expire (or at half their life, when that is later).
const RENEW_BEFORE: Duration = Duration::from_secs(300);
/// Vaults whose challenge scopes are kept at most.
const MAX_SCOPES: usize = 1024;

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

    /// Where tokens are asked for: the store's authority host, else the pod's when the credentials use the pod's
    /// workload identity, else public Entra ID.
    pub fn authority(&self, configured: Option<&str>, workload_identity: bool) -> String {
        let pod = self.authority_host.as_deref().filter(|_| workload_identity);
        configured.or(pod).unwrap_or(DEFAULT_AUTHORITY).to_owned()
    }
}

fn invalid(message: &str) -> DialectError {
    DialectError::credentials("InvalidCredentials", message)
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
    let workload_identity = credentials::flag(creds, "workloadIdentity")?;
    // The controller pod's identity is borrowed only where the credentials ask for it.
    let from_pod = |v: &Option<String>| v.clone().filter(|_| workload_identity);
    let tenant = credentials::text(creds, "tenantId")?
        .map(str::to_owned)
        .or_else(|| from_pod(&workload.tenant_id))
        .ok_or_else(|| {
            credentials::missing(
                "tenantId",
                "the app registration's tenant, with clientId and clientSecret, clientCertificate or \
                 workloadIdentity; or give a pre-issued token",
            )
        })?;
    if !valid_tenant(&tenant) {
        return Err(invalid(
            "credentials key tenantId must be a tenant ID or domain (letters, digits, '.', '-')",
        ));
    }
    let client_id = credentials::text(creds, "clientId")?
        .map(str::to_owned)
        .or_else(|| from_pod(&workload.client_id))
        .ok_or_else(|| credentials::missing("clientId", "the app registration's client ID"))?;
    let secret = credentials::text(creds, "clientSecret")?;
    let certificate = credentials::text(creds, "clientCertificate")?;
    let service_account = credentials::text(creds, SERVICE_ACCOUNT_TOKEN_KEY)?;
    let grants = [
        secret.is_some(),
        certificate.is_some(),
        workload_identity,
        service_account.is_some(),
    ];
    if grants.iter().filter(|g| **g).count() > 1 {
        return Err(invalid(
            "only one of clientSecret, clientCertificate, workloadIdentity and the store's serviceAccountRef may be used",
        ));
    }
    let grant = if let Some(s) = secret {
        Grant::ClientSecret(Zeroizing::new(s.to_owned()))
    } else if let Some(pem) = certificate {
        let key = credentials::text(creds, "clientCertificateKey")?;
        Grant::Certificate(oauth::Certificate::from_pem(pem, key, "clientCertificate")?)
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
    let authority = workload.authority(authority, workload_identity);
    Ok(Credential::Entra {
        identity: Identity {
            tenant,
            client_id,
            grant,
            fingerprint: creds.fingerprint(),
        },
        authority: check_authority(&authority)?,
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
    let params = oauth::challenge_params(header)?;
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

/// Whether `text` is a GUID (`8-4-4-4-12` hex digits), as Entra tenant IDs are.
fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Sign-ins to Entra ID, shared by every SecretSync of the dialect: tokens by who asked, under which trust and
/// for which scope, and the scopes vaults named in their challenges (by vault URL).
pub struct SignIns {
    /// The token endpoint's transport, tried once: a failed sign-in fails the vault request's attempt, which the
    /// vault's transport repeats where that is safe (a token request is); retrying here too would multiply them.
    transport: Transport,
    pub tokens: TokenCache<Zeroizing<String>>,
    scopes: Lru<String, String>,
    /// Tokens fetched from Entra ID, for tests.
    pub fetched: AtomicU64,
}

impl SignIns {
    pub fn new(shared: Shared) -> Self {
        let once = RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        };
        SignIns {
            transport: Transport::new(DIALECT, shared, wire::decode_token).with_policy(once),
            tokens: TokenCache::default(),
            scopes: Lru::new(MAX_SCOPES),
            fetched: AtomicU64::new(0),
        }
    }
}

/// Why a namespaced Store cannot sign in at an authority host with a private certificate.
const UNTRUSTED_AUTHORITY: &str = "the Entra ID authority host's TLS certificate is not trusted: a namespaced \
     Store's caBundle (and ca.crt) vouch for its vault only, never for where it sends its client secret or token; \
     use an authority host with a publicly trusted certificate, ask the operator to trust its CA \
     (--identity-provider-ca-file), or use a ClusterStore";

/// The Entra ID token of every request to one vault, for the vault's scope. On a 401 the vault's challenge is
/// followed (a vault of another tenant is an error; a scope the vault may ask for is learned) before the kit
/// renews the token.
pub struct Bearer<'a> {
    pub sign_ins: &'a SignIns,
    pub identity: Identity,
    pub authority: String,
    /// The client for the token endpoint (see [`kit::tls::sign_in`]).
    pub client: reqwest::Client,
    /// Whether a namespace admin wrote the store: its tokens are kept apart, its CA not trusted for sign-ins.
    pub namespaced: bool,
    /// The vault, `https://host[:port]`, and its host.
    pub vault: String,
    pub host: String,
}

impl Bearer<'_> {
    fn scope(&self) -> String {
        (self.sign_ins.scopes.get(self.vault.as_str()))
            .unwrap_or_else(|| scope_for_host(&self.host))
    }
}

#[async_trait]
impl SignIn for Bearer<'_> {
    type Token = Zeroizing<String>;

    /// A token is reused only under the trust it was obtained with: a namespaced Store's sign-in trusts fewer CAs
    /// than a ClusterStore's, and its behaviour must not depend on which of them signed in first. The
    /// credentials' fingerprint includes the store they are for, so stores never share a token.
    fn key(&self) -> String {
        let id = &self.identity;
        let who = (&id.tenant, &id.client_id, &id.fingerprint);
        format!(
            "{:?}",
            (self.namespaced, &self.authority, who, self.scope())
        )
    }

    /// One token request, renewed half-way through the token's life or five minutes before it ends, whichever is
    /// later.
    async fn fetch(&self) -> Result<(Zeroizing<String>, Duration), DialectError> {
        let id = &self.identity;
        let url = format!("{}/{}/oauth2/v2.0/token", self.authority, id.tenant);
        let doing = format!(
            "signing in to Entra ID as client {} of tenant {}",
            id.client_id, id.tenant
        );
        let transport = &self.sign_ins.transport;
        let (authority, scope) = (&self.authority, &self.scope());
        let (token, lifetime) = oauth::request_token(
            transport,
            &self.client,
            authority,
            &url,
            &id.client_id,
            &id.grant,
            scope,
        )
        .await
        .map_err(|e| {
            let e = kit::text::during(&doing, e);
            explain_untrusted(self.namespaced, UNTRUSTED_AUTHORITY, e)
        })?;
        self.sign_ins.fetched.fetch_add(1, Ordering::Relaxed);
        Ok((
            token,
            (lifetime / 2).max(lifetime.saturating_sub(RENEW_BEFORE)),
        ))
    }

    fn apply(
        &self,
        request: reqwest::RequestBuilder,
        token: &Zeroizing<String>,
    ) -> Result<reqwest::RequestBuilder, DialectError> {
        Ok(request.bearer_auth(token.as_str()))
    }

    async fn refused(&self, reply: &Reply) -> Result<(), DialectError> {
        let challenge = (reply.headers.get(reqwest::header::WWW_AUTHENTICATE))
            .and_then(|v| v.to_str().ok())
            .and_then(parse_challenge);
        let Some(challenge) = challenge else {
            return Ok(());
        };
        let ours = &self.identity.tenant;
        let generic = ["common", "organizations", "consumers"];
        if let Some(tenant) = challenge.tenant.as_deref().filter(|t| {
            !t.eq_ignore_ascii_case(ours) && !generic.contains(&t.to_ascii_lowercase().as_str())
        }) {
            // The challenge is a header the vault wrote: its tenant is named only when it is a GUID.
            let theirs = match is_guid(tenant) {
                true => format!("tenant {tenant}"),
                false => "another tenant".to_owned(),
            };
            return Err(DialectError::credentials(
                "WrongTenant",
                format!("the vault belongs to {theirs}, but the credentials name tenant {ours}"),
            ));
        }
        if let Some(scope) = challenge_scope(&challenge, &self.host) {
            self.sign_ins.scopes.put(self.vault.clone(), scope);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::wire::token_error;
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
        let e = token_error(401, &body, None);
        assert_eq!(
            (e.class, e.reason),
            (ErrorClass::Credentials, "TokenRefused")
        );
        assert_eq!(
            e.message,
            "the token endpoint refused the request (HTTP 401): invalid_client (AADSTS7000215)"
        );
        // Unknown error codes and every description's text are not shown.
        let canary = serde_json::to_vec(&serde_json::json!({
            "error": "CANARY-1",
            "error_description": "CANARY-2 AADSTS12CANARY-3",
        }))
        .unwrap();
        let e = token_error(400, &canary, None);
        assert_eq!(
            e.message,
            "the token endpoint refused the request (HTTP 400): AADSTS12"
        );
        let e = token_error(429, b"", Some(Duration::from_secs(4)));
        assert_eq!(
            (e.class, e.retry_after),
            (ErrorClass::Retry, Some(Duration::from_secs(4)))
        );
        assert_eq!(token_error(503, b"<html>", None).class, ErrorClass::Retry);
    }

    #[test]
    fn only_a_guid_tenant_is_named() {
        assert!(is_guid("72f988bf-86f1-41af-91ab-2d7cd011db47"));
        assert!(!is_guid("CANARY-72f988bf"));
        assert!(!is_guid("contoso.onmicrosoft.com"));
        assert!(!is_guid("72f988bf-86f1-41af-91ab-2d7cd011db4Z"));
    }
}
