//! AWS Secrets Manager: moto's server on the test bed (a third-party implementation of the AWS APIs, with IAM
//! authentication on), looked at with signed calls of its own.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use secretsync::api::Target;
use secretsync::dialects::{Dialect, Shared};
use secretsync::value::Credentials;
use serde_json::{Value, json};

use super::{credentials, env, file};
use crate::case::Store;

pub struct AwsSecretsManager;

async fn raw(action: &str, body: Value) -> (u16, Value) {
    crate::aws_call::call(action, body).await
}

#[async_trait]
impl Store for AwsSecretsManager {
    fn dialect(&self, shared: Shared) -> Arc<dyn Dialect> {
        Arc::new(secretsync::dialects::aws_secrets_manager::AwsSecretsManager::new(shared))
    }

    fn target(&self) -> Target {
        serde_json::from_value(json!({
            "dialect": "AWSSecretsManager",
            "endpoint": env("AWSSM_ENDPOINT"),
            "awsSecretsManager": {"region": env("AWSSM_REGION")},
        }))
        .expect("target")
    }

    fn credentials(&self) -> Credentials {
        self.wrong_credentials(&env("AWSSM_SECRET_ACCESS_KEY"))
    }

    fn wrong_credentials(&self, secret: &str) -> Credentials {
        credentials(&[
            ("accessKeyId", env("AWSSM_ACCESS_KEY_ID").into_bytes()),
            ("secretAccessKey", secret.as_bytes().to_vec()),
            ("ca.crt", file("AWSSM_CA_CERT")),
        ])
    }

    fn requests_per_change(&self) -> u64 {
        // DescribeSecret (observe), PutSecretValue, TagResource (the digest and version, after the value).
        3
    }

    async fn holds(&self, name: &str, value: &[u8], _digest: &str) -> bool {
        let (status, r) = raw("GetSecretValue", json!({"SecretId": name})).await;
        let held = match (r["SecretString"].as_str(), r["SecretBinary"].as_str()) {
            (Some(text), _) => text.as_bytes().to_vec(),
            (None, Some(b64)) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap_or_default(),
            _ => return false,
        };
        status == 200 && held == value
    }

    async fn exists(&self, name: &str) -> bool {
        // A secret scheduled for deletion is gone for its readers.
        let (status, r) = raw("DescribeSecret", json!({"SecretId": name})).await;
        status == 200 && r["DeletedDate"].is_null()
    }

    async fn remove(&self, name: &str) {
        let (status, r) = raw(
            "DeleteSecret",
            json!({"SecretId": name, "ForceDeleteWithoutRecovery": true}),
        )
        .await;
        assert_eq!(status, 200, "{r}");
    }

    async fn count(&self, name: &str) -> usize {
        usize::from(self.exists(name).await)
    }

    async fn create_foreign(&self, name: &str, value: &[u8]) {
        let text = std::str::from_utf8(value).expect("text");
        let (status, r) = raw("CreateSecret", json!({"Name": name, "SecretString": text})).await;
        assert_eq!(status, 200, "{r}");
    }
}
