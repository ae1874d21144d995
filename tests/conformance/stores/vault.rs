//! Vault: the test bed's real Vault (KV version 2 at `secret/`), looked at with the `vault` CLI of the same build.

use std::sync::Arc;

use async_trait::async_trait;
use secretsync::api::Target;
use secretsync::dialects::{Dialect, Shared};
use secretsync::value::Credentials;
use serde_json::json;

use super::{credentials, env, file};
use crate::case::Store;
use crate::vault_cli;

pub struct Vault;

#[async_trait]
impl Store for Vault {
    fn dialect(&self, shared: Shared) -> Arc<dyn Dialect> {
        Arc::new(secretsync::dialects::vault::Vault::new(shared))
    }

    fn target(&self) -> Target {
        serde_json::from_value(json!({"dialect": "Vault", "endpoint": env("VAULT_ENDPOINT")}))
            .expect("target")
    }

    fn credentials(&self) -> Credentials {
        self.wrong_credentials(&env("VAULT_POLICY_TOKEN"))
    }

    fn wrong_credentials(&self, secret: &str) -> Credentials {
        credentials(&[
            ("token", secret.as_bytes().to_vec()),
            ("ca.crt", file("VAULT_CA_CERT")),
        ])
    }

    fn fresh_name(&self) -> String {
        // A path of two segments: remote names are paths under the mount.
        format!("conformance/c-{:08x}", rand::random::<u32>())
    }

    fn requests_per_change(&self) -> u64 {
        // Metadata read (observe), the value with check-and-set, the metadata with the digest and its version.
        3
    }

    async fn holds(&self, name: &str, value: &[u8], digest: &str) -> bool {
        let text = std::str::from_utf8(value).expect("text");
        let (Some(current), Some(meta)) = (vault_cli::kv_get(name), vault_cli::kv_metadata(name))
        else {
            return false;
        };
        // A JSON object of strings (a whole Secret, or keys as properties) as the KV map itself; any other value
        // as the one field `value`. Where SecretSync recorded a digest for the current version, it is this
        // value's.
        let fields = match serde_json::from_str::<serde_json::Value>(text) {
            Ok(object)
                if object
                    .as_object()
                    .is_some_and(|o| o.values().all(|v| v.is_string())) =>
            {
                object
            }
            _ => json!({"value": text}),
        };
        let custom = &meta["custom_metadata"];
        let recorded =
            custom["secretsync-version"].as_str() == Some(&meta["current_version"].to_string());
        current["data"] == fields
            && (!recorded || custom["secretsync-digest"].as_str() == Some(digest))
    }

    async fn exists(&self, name: &str) -> bool {
        vault_cli::kv_metadata(name).is_some()
    }

    async fn remove(&self, name: &str) {
        vault_cli::kv_metadata_delete(name);
    }

    async fn count(&self, name: &str) -> usize {
        usize::from(self.exists(name).await)
    }

    async fn create_foreign(&self, name: &str, value: &[u8]) {
        let text = std::str::from_utf8(value).expect("text");
        vault_cli::kv_put(name, &json!({"value": text}));
    }
}
