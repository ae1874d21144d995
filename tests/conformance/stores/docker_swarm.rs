//! Docker Swarm: the test bed's swarm manager over TCP with mutual TLS for the dialect, its socket to look.
//! Swarm never shows a value again; SecretSync names each value's secret by the value's digest, so the secret of
//! that name, labelled with that digest, is what only this value produces.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bollard::models::{Secret, SecretSpec};
use bollard::query_parameters::ListSecretsOptions;
use bollard::{API_DEFAULT_VERSION, Docker};
use secretsync::api::Target;
use secretsync::dialects::docker_swarm::full_name;
use secretsync::dialects::{Dialect, Shared};
use secretsync::value::Credentials;
use serde_json::json;

use super::{credentials, env, file};
use crate::case::Store;

pub struct DockerSwarm;

async fn docker() -> Docker {
    Docker::connect_with_unix(
        &format!("unix://{}", env("DOCKER_SWARM_SOCKET")),
        30,
        API_DEFAULT_VERSION,
    )
    .expect("socket exists")
    .negotiate_version()
    .await
    .expect("dockerd answers")
}

/// Secrets whose name starts with `name`.
async fn under(name: &str) -> Vec<Secret> {
    let filters = HashMap::from([("name".to_owned(), vec![name.to_owned()])]);
    docker()
        .await
        .list_secrets(Some(ListSecretsOptions {
            filters: Some(filters),
        }))
        .await
        .expect("list secrets")
}

fn name_of(secret: &Secret) -> &str {
    secret
        .spec
        .as_ref()
        .and_then(|s| s.name.as_deref())
        .unwrap_or_default()
}

#[async_trait]
impl Store for DockerSwarm {
    fn dialect(&self, shared: Shared) -> Arc<dyn Dialect> {
        Arc::new(secretsync::dialects::docker_swarm::DockerSwarm::new(shared))
    }

    fn target(&self) -> Target {
        serde_json::from_value(
            json!({"dialect": "DockerSwarm", "endpoint": env("DOCKER_SWARM_TLS_ENDPOINT")}),
        )
        .expect("target")
    }

    fn credentials(&self) -> Credentials {
        credentials(&[
            ("ca.crt", file("DOCKER_SWARM_CA_CERT")),
            ("tls.crt", file("DOCKER_SWARM_CLIENT_CERT")),
            ("tls.key", file("DOCKER_SWARM_CLIENT_KEY")),
        ])
    }

    /// A client identity from a CA the daemon does not trust (the test bed's "stranger").
    fn wrong_credentials(&self, _secret: &str) -> Credentials {
        credentials(&[
            ("ca.crt", file("DOCKER_SWARM_CA_CERT")),
            ("tls.crt", file("SF_STRANGER_CERT")),
            ("tls.key", file("SF_STRANGER_KEY")),
        ])
    }

    fn requests_per_change(&self) -> u64 {
        // List (observe), create the value's secret and read its version back, delete the superseded one
        // (known from observe's list).
        4
    }

    async fn holds(&self, name: &str, _value: &[u8], digest: &str) -> bool {
        let wanted = full_name(name, digest);
        under(name).await.iter().any(|s| {
            name_of(s) == wanted
                && s.spec
                    .as_ref()
                    .and_then(|s| s.labels.as_ref())
                    .and_then(|l| l.get("secretsync.io/digest"))
                    .is_some_and(|d| d == digest)
        }) || {
            // A foreign secret carries no digest label: its name is all there is to check.
            under(name).await.iter().any(|s| {
                name_of(s) == foreign_name(name) && digest == crate::case::key().digest(FOREIGN)
            })
        }
    }

    async fn exists(&self, name: &str) -> bool {
        under(name).await.iter().any(|s| {
            let n = name_of(s);
            n.len() == name.len() + 9 && n.starts_with(name)
        })
    }

    async fn remove(&self, name: &str) {
        let docker = docker().await;
        for secret in under(name).await {
            if let Some(id) = secret.id.as_deref() {
                docker.delete_secret(id).await.expect("delete secret");
            }
        }
    }

    async fn count(&self, name: &str) -> usize {
        under(name)
            .await
            .iter()
            .filter(|s| {
                let n = name_of(s);
                n.len() == name.len() + 9 && n.starts_with(name)
            })
            .count()
    }

    async fn create_foreign(&self, name: &str, value: &[u8]) {
        assert_eq!(value, FOREIGN, "the Docker adapter knows one foreign value");
        docker()
            .await
            .create_secret(SecretSpec {
                name: Some(foreign_name(name)),
                data: Some(base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    value,
                )),
                ..Default::default()
            })
            .await
            .expect("create a foreign secret");
    }
}

/// The value the scenarios give a foreign secret.
const FOREIGN: &[u8] = b"their value";

/// A name SecretSync would give a value of `name` (`<name>-<8 hex>`), as a foreign secret needs to be seen.
fn foreign_name(name: &str) -> String {
    format!("{name}-0badf00d")
}
