//! Azure Key Vault: the test bed's vault and Entra ID token endpoint, the dialect as the "officer" app.

use std::sync::Arc;

use async_trait::async_trait;
use secretsync::api::Target;
use secretsync::dialects::azure_key_vault::WorkloadEnv;
use secretsync::dialects::{Dialect, Shared};
use secretsync::value::Credentials;
use serde_json::{Value, json};

use super::{credentials, env, file, http};
use crate::case::Store;

pub struct AzureKeyVault;

fn officer(secret: &str) -> Credentials {
    credentials(&[
        ("tenantId", env("AZUREKV_TENANT_ID").into_bytes()),
        ("clientId", env("AZUREKV_CLIENT_ID").into_bytes()),
        ("clientSecret", secret.as_bytes().to_vec()),
        ("ca.crt", file("AZUREKV_CA_CERT")),
    ])
}

async fn token(client: &reqwest::Client) -> String {
    let url = format!(
        "{}/{}/oauth2/v2.0/token",
        env("AZUREKV_AUTHORITY"),
        env("AZUREKV_TENANT_ID")
    );
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", &env("AZUREKV_CLIENT_ID"))
        .append_pair("client_secret", &env("AZUREKV_CLIENT_SECRET"))
        .append_pair("scope", "https://vault.azure.net/.default")
        .finish();
    let reply: Value = client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .expect("token endpoint reachable")
        .json()
        .await
        .expect("token JSON");
    reply["access_token"].as_str().expect("token").to_owned()
}

async fn raw(method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let client = http(Some(&file("AZUREKV_CA_CERT")));
    let url = format!("{}{path}?api-version=2026-04-01", env("AZUREKV_ENDPOINT"));
    let mut req = client
        .request(method, url)
        .bearer_auth(token(&client).await);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("vault reachable");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[async_trait]
impl Store for AzureKeyVault {
    fn dialect(&self, shared: Shared) -> Arc<dyn Dialect> {
        Arc::new(
            secretsync::dialects::azure_key_vault::AzureKeyVault::with_workload_env(
                shared,
                WorkloadEnv::default(),
            ),
        )
    }

    fn target(&self) -> Target {
        serde_json::from_value(json!({
            "dialect": "AzureKeyVault",
            "endpoint": env("AZUREKV_ENDPOINT"),
            "azureKeyVault": {"authorityHost": env("AZUREKV_AUTHORITY")},
        }))
        .expect("target")
    }

    fn credentials(&self) -> Credentials {
        officer(&env("AZUREKV_CLIENT_SECRET"))
    }

    fn wrong_credentials(&self, secret: &str) -> Credentials {
        officer(secret)
    }

    fn requests_per_change(&self) -> u64 {
        // GET the secret (observe), PUT the new version with its tags.
        2
    }

    async fn holds(&self, name: &str, value: &[u8], _digest: &str) -> bool {
        let (status, body) = raw(reqwest::Method::GET, &format!("/secrets/{name}/"), None).await;
        status == 200 && body["value"].as_str().map(str::as_bytes) == Some(value)
    }

    async fn exists(&self, name: &str) -> bool {
        raw(reqwest::Method::GET, &format!("/secrets/{name}/"), None)
            .await
            .0
            == 200
    }

    async fn remove(&self, name: &str) {
        let (status, body) = raw(reqwest::Method::DELETE, &format!("/secrets/{name}"), None).await;
        assert!(matches!(status, 200 | 404), "{status} {body}");
    }

    async fn count(&self, name: &str) -> usize {
        usize::from(self.exists(name).await)
    }

    async fn create_foreign(&self, name: &str, value: &[u8]) {
        let text = std::str::from_utf8(value).expect("text");
        let (status, body) = raw(
            reqwest::Method::PUT,
            &format!("/secrets/{name}"),
            Some(json!({"value": text})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
}
