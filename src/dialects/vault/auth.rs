//! Who SecretSync is to Vault: a token from the credentials Secret, or one obtained by signing in with AppRole
//! (`roleId`, `secretId`) or with the store's ServiceAccount token (Kubernetes auth).

use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use zeroize::Zeroizing;

use super::super::kit::session::Session;
use super::super::kit::signin::SignIn;
use super::super::kit::token_cache::renew_after;
use super::super::kit::{Auth, Exchange, Idempotency, credentials};
use crate::dialects::{DialectError, ErrorClass};
use crate::value::{Credentials, SERVICE_ACCOUNT_TOKEN_KEY};

/// A Vault token from the credentials Secret, sent as `X-Vault-Token` with each attempt.
pub struct VaultToken<'a>(pub &'a str);

#[async_trait]
impl Auth for VaultToken<'_> {
    async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
        _: &Exchange<'_>,
    ) -> Result<reqwest::RequestBuilder, DialectError> {
        Ok(request.header("x-vault-token", self.0))
    }
}

/// A sign-in at `auth/{mount}/login` on the store's own endpoint (no other host receives a credential).
pub struct Login<'a> {
    /// The store's endpoint, without the login's own credentials (the body carries them).
    pub http: Session<'a>,
    pub namespace: Option<(&'static str, &'a str)>,
    pub mount: &'a str,
    pub fields: [(&'static str, &'a str); 2],
    /// Whose token it is: store, endpoint, namespace, mount and the credentials' fingerprint.
    pub key: String,
}

#[async_trait]
impl SignIn for Login<'_> {
    type Token = Zeroizing<String>;

    fn key(&self) -> String {
        self.key.clone()
    }

    async fn fetch(&self) -> Result<(Zeroizing<String>, Duration), DialectError> {
        let url = self.http.url(&format!("/v1/auth/{}/login", self.mount));
        let body = login_body(&self.fields);
        let exchange = Exchange::new("Login", &Method::POST, &url)
            .headers(self.namespace.as_slice())
            .idempotency(Idempotency::Idempotent)
            .json(&body);
        let reply = self.http.send(exchange).await;
        let reply = reply.map_err(|e| super::super::kit::text::during("Login", e))?;
        let login = (reply.json::<super::wire::Login>("Login")?)
            .filter(|l| !l.auth.client_token.0.is_empty())
            .ok_or_else(|| {
                DialectError::retry("BadResponse", "Vault login: no token in the answer")
            })?;
        let lease = login.auth.lease_duration;
        let lease = (lease > 0).then(|| Duration::from_secs(lease));
        Ok((login.auth.client_token.0, renew_after(lease)))
    }

    fn apply(
        &self,
        request: reqwest::RequestBuilder,
        token: &Zeroizing<String>,
    ) -> Result<reqwest::RequestBuilder, DialectError> {
        Ok(request.header("x-vault-token", token.as_str()))
    }

    /// Vault refuses a revoked token with 403, not 401: the next reconcile signs in again.
    fn stale_after(&self, error: &DialectError) -> bool {
        error.class == ErrorClass::Credentials
    }
}

/// The `X-Vault-Namespace` header of every request, sign-ins included, when the store names a namespace.
pub fn namespace(s: &crate::api::VaultStoreSettings) -> Option<(&'static str, &str)> {
    s.namespace.as_deref().map(|n| ("x-vault-namespace", n))
}

/// How a request proves who it is, read from the credentials before any call.
pub enum Identity<'a> {
    Token(&'a str),
    /// A sign-in: the auth method's mount and the login body's fields (role ID and secret ID, or role and JWT).
    Login {
        mount: &'a str,
        fields: [(&'static str, &'a str); 2],
    },
}

/// The identity the store's settings and credentials name: Kubernetes auth when `vault.kubernetes` is set,
/// AppRole when the credentials hold `roleId`, else the credentials' `token`.
pub fn identity<'a>(
    creds: &'a Credentials,
    s: &'a crate::api::VaultStoreSettings,
) -> Result<Identity<'a>, DialectError> {
    if let Some(k8s) = &s.kubernetes {
        let jwt = credentials::text(creds, SERVICE_ACCOUNT_TOKEN_KEY)?.ok_or_else(|| {
            DialectError::credentials(
                "MissingCredentials",
                "vault.kubernetes signs in with the store's ServiceAccount token: set the store's serviceAccountRef",
            )
        })?;
        return Ok(Identity::Login {
            mount: k8s.mount.as_deref().unwrap_or("kubernetes"),
            fields: [("role", k8s.role.as_str()), ("jwt", jwt)],
        });
    }
    if let Some(role_id) = credentials::text(creds, "roleId")? {
        let secret_id = credentials::required(creds, "secretId", "the AppRole's secret ID")?;
        let mount = s
            .app_role
            .as_ref()
            .and_then(|a| a.mount.as_deref())
            .unwrap_or("approle");
        return Ok(Identity::Login {
            mount,
            fields: [("role_id", role_id), ("secret_id", secret_id)],
        });
    }
    let what = "a Vault token, or roleId and secretId for AppRole";
    let token = credentials::ascii(creds, "token")?;
    Ok(Identity::Token(
        token.ok_or_else(|| credentials::missing("token", what))?,
    ))
}

/// The body of a sign-in, wiped when dropped.
pub fn login_body(fields: &[(&'static str, &str); 2]) -> Zeroizing<Vec<u8>> {
    let body: serde_json::Map<String, serde_json::Value> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
        .collect();
    // A map of strings always serializes.
    Zeroizing::new(serde_json::to_vec(&body).unwrap_or_default())
}
