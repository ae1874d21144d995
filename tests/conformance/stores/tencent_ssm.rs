//! Tencent SSM: the test bed's SSM emulator (proven against the official SDK), looked at with signed calls of
//! its own.

use std::sync::Arc;

use async_trait::async_trait;
use secretsync::api::Target;
use secretsync::dialects::{Dialect, Shared};
use secretsync::value::Credentials;
use serde_json::{Value, json};

use super::{credentials, env};
use crate::case::Store;

pub struct TencentSsm;

async fn raw(action: &str, body: Value) -> Value {
    crate::ssm_call::call(&env("SSM_SECRET_ID"), &env("SSM_SECRET_KEY"), action, body).await
}

#[async_trait]
impl Store for TencentSsm {
    fn dialect(&self, shared: Shared) -> Arc<dyn Dialect> {
        Arc::new(secretsync::dialects::tencent_ssm::TencentSsm::new(shared))
    }

    fn target(&self) -> Target {
        serde_json::from_value(json!({
            "dialect": "TencentSSM",
            "endpoint": env("SSM_ENDPOINT"),
            // The emulator, like Tencent, allows 50 requests a second per action to the account; each case is a
            // dialect of its own, and two run at once: 20 each keeps them under it.
            "tencentSSM": {"region": env("SSM_REGION"), "requestsPerSecond": 20},
        }))
        .expect("target")
    }

    fn credentials(&self) -> Credentials {
        self.wrong_credentials(&env("SSM_SECRET_KEY"))
    }

    fn wrong_credentials(&self, secret: &str) -> Credentials {
        credentials(&[
            ("secretId", env("SSM_SECRET_ID").into_bytes()),
            ("secretKey", secret.as_bytes().to_vec()),
        ])
    }

    fn requests_per_change(&self) -> u64 {
        // DescribeSecret (observe), UpdateSecret, UpdateDescription (the marker, after the value).
        3
    }

    async fn holds(&self, name: &str, value: &[u8], _digest: &str) -> bool {
        let r = raw(
            "GetSecretValue",
            json!({"SecretName": name, "VersionId": "SSM_Current"}),
        )
        .await;
        r.get("Error").is_none() && r["SecretString"].as_str().map(str::as_bytes) == Some(value)
    }

    async fn exists(&self, name: &str) -> bool {
        raw("DescribeSecret", json!({"SecretName": name}))
            .await
            .get("Error")
            .is_none()
    }

    async fn remove(&self, name: &str) {
        raw("DisableSecret", json!({"SecretName": name})).await;
        let r = raw(
            "DeleteSecret",
            json!({"SecretName": name, "RecoveryWindowInDays": 0}),
        )
        .await;
        assert!(r.get("Error").is_none(), "{r}");
    }

    async fn count(&self, name: &str) -> usize {
        usize::from(self.exists(name).await)
    }

    async fn create_foreign(&self, name: &str, value: &[u8]) {
        let text = std::str::from_utf8(value).expect("text");
        let r = raw(
            "CreateSecret",
            json!({"SecretName": name, "VersionId": "SSM_Current", "SecretString": text}),
        )
        .await;
        assert!(r.get("Error").is_none(), "{r}");
    }
}
