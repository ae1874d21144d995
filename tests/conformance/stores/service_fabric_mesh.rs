//! Service Fabric: the emulator's bearer-token listener for the dialect, its plain listener to look.

use std::sync::Arc;

use async_trait::async_trait;
use secretsync::api::Target;
use secretsync::dialects::{Dialect, Shared};
use secretsync::plan::digest::short;
use secretsync::value::Credentials;
use serde_json::{Value, json};

use super::{credentials, env, file, http};
use crate::case::Store;

pub struct ServiceFabricMesh;

async fn raw(method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = format!("{}{path}?api-version=6.4-preview", env("SF_ENDPOINT"));
    let mut req = http(None).request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("emulator reachable");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[async_trait]
impl Store for ServiceFabricMesh {
    fn dialect(&self, shared: Shared) -> Arc<dyn Dialect> {
        Arc::new(secretsync::dialects::service_fabric_mesh::ServiceFabricMesh::new(shared))
    }

    fn target(&self) -> Target {
        serde_json::from_value(
            json!({"dialect": "ServiceFabricMesh", "endpoint": env("SF_TOKEN_ENDPOINT")}),
        )
        .expect("target")
    }

    fn credentials(&self) -> Credentials {
        let token = String::from_utf8(file("SF_TOKEN_FILE")).expect("token text");
        credentials(&[
            ("token", token.trim().as_bytes().to_vec()),
            ("ca.crt", file("SF_CA_CERT")),
        ])
    }

    fn wrong_credentials(&self, secret: &str) -> Credentials {
        credentials(&[
            ("token", secret.as_bytes().to_vec()),
            ("ca.crt", file("SF_CA_CERT")),
        ])
    }

    fn requests_per_change(&self) -> u64 {
        // GET the resource (observe; the status names its current version, so that is not read), PUT the new
        // version, PUT the marker.
        3
    }

    async fn holds(&self, name: &str, value: &[u8], digest: &str) -> bool {
        // SecretSync names versions by the value's digest; a foreign value lives under any name.
        let (_, listed) = raw(
            reqwest::Method::GET,
            &format!("/Resources/Secrets/{name}/values"),
            None,
        )
        .await;
        let mut versions: Vec<String> = listed["Items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["name"].as_str().map(str::to_owned))
            .collect();
        versions.insert(0, short(digest, 20).to_owned());
        for version in versions {
            let (status, body) = raw(
                reqwest::Method::POST,
                &format!("/Resources/Secrets/{name}/values/{version}/list_value"),
                None,
            )
            .await;
            if status == 200 && body["value"].as_str().map(str::as_bytes) == Some(value) {
                return true;
            }
        }
        false
    }

    async fn exists(&self, name: &str) -> bool {
        raw(
            reqwest::Method::GET,
            &format!("/Resources/Secrets/{name}"),
            None,
        )
        .await
        .0 == 200
    }

    async fn remove(&self, name: &str) {
        let (status, _) = raw(
            reqwest::Method::DELETE,
            &format!("/Resources/Secrets/{name}"),
            None,
        )
        .await;
        assert!(matches!(status, 200 | 202 | 204 | 404), "{status}");
    }

    async fn count(&self, name: &str) -> usize {
        usize::from(self.exists(name).await)
    }

    async fn create_foreign(&self, name: &str, value: &[u8]) {
        let (status, body) = raw(
            reqwest::Method::PUT,
            &format!("/Resources/Secrets/{name}"),
            Some(json!({"name": name, "properties": {"kind": "inlinedValue",
                "description": "made by hand"}})),
        )
        .await;
        assert!((200..=202).contains(&status), "{status} {body}");
        // The resource may still be Creating; the value can be added once it is Ready.
        for _ in 0..50 {
            let (_, r) = raw(
                reqwest::Method::GET,
                &format!("/Resources/Secrets/{name}"),
                None,
            )
            .await;
            if r["properties"]["status"] == "Ready" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let text = std::str::from_utf8(value).expect("text");
        let (status, body) = raw(
            reqwest::Method::PUT,
            &format!("/Resources/Secrets/{name}/values/handmade"),
            Some(json!({"name": "handmade", "properties": {"value": text}})),
        )
        .await;
        assert!((200..=202).contains(&status), "{status} {body}");
    }
}
