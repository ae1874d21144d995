//! Who SecretSync is to Vault: a token from the credentials Secret, or one obtained by signing in with AppRole
//! (`roleId`, `secretId`) or with the store's ServiceAccount token (Kubernetes auth).

use async_trait::async_trait;
use zeroize::Zeroizing;

use super::super::kit::{Auth, Exchange, credentials};
use crate::dialects::DialectError;
use crate::value::{Credentials, SERVICE_ACCOUNT_TOKEN_KEY};

/// A Vault token, sent as `X-Vault-Token` with each attempt.
pub struct VaultToken(pub std::sync::Arc<Zeroizing<String>>);

#[async_trait]
impl Auth for VaultToken {
    async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
        _: &Exchange<'_>,
    ) -> Result<reqwest::RequestBuilder, DialectError> {
        Ok(request.header("x-vault-token", self.0.as_str()))
    }
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
    let token = credentials::required(
        creds,
        "token",
        "a Vault token, or roleId and secretId for AppRole",
    )?;
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(DialectError::credentials(
            "InvalidCredentials",
            "credentials key token must be printable ASCII",
        ));
    }
    Ok(Identity::Token(token))
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
