//! One adapter per dialect: how to reach its test-bed store, and how to look at the store from outside.

mod aws_secrets_manager;
mod azure_key_vault;
mod barbican;
mod docker_swarm;
mod service_fabric_mesh;
mod tencent_ssm;
mod vault;

pub use aws_secrets_manager::AwsSecretsManager;
pub use azure_key_vault::AzureKeyVault;
pub use barbican::Barbican;
pub use docker_swarm::DockerSwarm;
pub use service_fabric_mesh::ServiceFabricMesh;
pub use tencent_ssm::TencentSsm;
pub use vault::Vault;

use secretsync::value::{Credentials, SecretValue};

pub fn env(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: run `make testbed` first, then `set -a; source .testbed/env; set +a`"
        )
    })
}

/// A test-bed file named by an environment variable.
pub fn file(var: &str) -> Vec<u8> {
    let path = env(var);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn credentials(pairs: &[(&str, Vec<u8>)]) -> Credentials {
    Credentials::new(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), SecretValue::new(v.clone())))
            .collect(),
    )
}

/// A client for looking at a store; no pooled connection outlives the test's runtime.
pub fn http(ca: Option<&[u8]>) -> reqwest::Client {
    let mut b = reqwest::Client::builder().pool_max_idle_per_host(0);
    if let Some(ca) = ca {
        b = b.add_root_certificate(reqwest::Certificate::from_pem(ca).expect("CA PEM"));
    }
    b.build().expect("client")
}
