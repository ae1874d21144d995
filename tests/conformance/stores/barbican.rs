//! Barbican: real Barbican behind real Keystone; the dialect with an application credential, the outside view
//! with the same project's user.

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Method;
use secretsync::api::Target;
use secretsync::dialects::{Dialect, Shared};
use secretsync::value::Credentials;
use serde_json::{Value, json};

use super::{credentials, env, http};
use crate::case::Store;

pub struct Barbican;

async fn token() -> String {
    let body = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {"name": env("KEYSTONE_USERNAME"),
            "domain": {"id": "default"}, "password": env("KEYSTONE_PASSWORD")}}},
        "scope": {"project": {"name": env("KEYSTONE_PROJECT"), "domain": {"id": "default"}}}
    }});
    let r = http(None)
        .post(format!("{}/auth/tokens", env("KEYSTONE_AUTH_URL")))
        .json(&body)
        .send()
        .await
        .expect("keystone reachable");
    assert_eq!(r.status().as_u16(), 201, "keystone token");
    r.headers()["x-subject-token"]
        .to_str()
        .expect("token")
        .to_owned()
}

async fn send(
    method: Method,
    path: &str,
    body: Option<(&str, Vec<u8>)>,
    accept: &str,
) -> (u16, Vec<u8>) {
    let mut r = http(None)
        .request(method, format!("{}{path}", env("BARBICAN_ENDPOINT")))
        .header("Accept", accept)
        .header("X-Auth-Token", token().await);
    if let Some((content_type, bytes)) = body {
        r = r.header("Content-Type", content_type).body(bytes);
    }
    let resp = r.send().await.expect("barbican reachable");
    let status = resp.status().as_u16();
    (status, resp.bytes().await.expect("body").to_vec())
}

/// The UUIDs of the secrets named exactly `name`, oldest first.
async fn named(name: &str) -> Vec<String> {
    let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
    let (status, body) = send(
        Method::GET,
        &format!("/v1/secrets?name={encoded}&limit=100&sort=created:asc"),
        None,
        "application/json",
    )
    .await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_slice(&body).expect("JSON");
    body["secrets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["name"] == name)
        .filter_map(|s| {
            s["secret_ref"]
                .as_str()?
                .rsplit('/')
                .next()
                .map(str::to_owned)
        })
        .collect()
}

#[async_trait]
impl Store for Barbican {
    fn dialect(&self, shared: Shared) -> Arc<dyn Dialect> {
        Arc::new(secretsync::dialects::barbican::Barbican::new(shared))
    }

    fn target(&self) -> Target {
        serde_json::from_value(json!({"dialect": "Barbican", "endpoint": env("BARBICAN_ENDPOINT")}))
            .expect("target")
    }

    fn credentials(&self) -> Credentials {
        self.wrong_credentials(&env("KEYSTONE_APP_CRED_SECRET"))
    }

    fn wrong_credentials(&self, secret: &str) -> Credentials {
        credentials(&[
            ("authUrl", env("KEYSTONE_AUTH_URL").into_bytes()),
            (
                "applicationCredentialId",
                env("KEYSTONE_APP_CRED_ID").into_bytes(),
            ),
            ("applicationCredentialSecret", secret.as_bytes().to_vec()),
        ])
    }

    /// The listing, then the metadata (markers, digest, labels) of the one secret it names: Barbican's listing
    /// does not return a secret's metadata.
    fn requests_at_rest(&self) -> u64 {
        2
    }

    /// Payloads are write-once: the newest secret of that name is the current one.
    fn requests_per_change(&self) -> u64 {
        // Observe: list and one metadata read. Apply, from that listing: POST, metadata PUT, payload PUT, and
        // the superseded secret's DELETE.
        6
    }

    async fn holds(&self, name: &str, value: &[u8], _digest: &str) -> bool {
        let Some(newest) = named(name).await.pop() else {
            return false;
        };
        let (status, payload) = send(
            Method::GET,
            &format!("/v1/secrets/{newest}/payload"),
            None,
            "application/octet-stream",
        )
        .await;
        status == 200 && payload == value
    }

    async fn exists(&self, name: &str) -> bool {
        !named(name).await.is_empty()
    }

    async fn remove(&self, name: &str) {
        for uuid in named(name).await {
            let (status, _) = send(
                Method::DELETE,
                &format!("/v1/secrets/{uuid}"),
                None,
                "application/json",
            )
            .await;
            assert!(matches!(status, 204 | 404), "{status}");
        }
    }

    async fn count(&self, name: &str) -> usize {
        named(name).await.len()
    }

    async fn create_foreign(&self, name: &str, value: &[u8]) {
        let body = json!({"name": name, "secret_type": "opaque",
            "payload": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, value),
            "payload_content_type": "application/octet-stream",
            "payload_content_encoding": "base64"});
        let (status, body) = send(
            Method::POST,
            "/v1/secrets",
            Some(("application/json", serde_json::to_vec(&body).expect("JSON"))),
            "application/json",
        )
        .await;
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    }
}
