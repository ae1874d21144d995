//! How a store's connection settings and a SecretSync's per-secret settings make the target a dialect sees:
//! the one place that names each dialect's settings, so the controller names none.

use super::*;

/// A SecretSync's settings for another dialect than its store's.
#[derive(Debug, thiserror::Error)]
#[error("spec.target has settings for {settings}, but the store's dialect is {dialect}")]
pub struct ForeignSettings {
    pub settings: DialectKind,
    pub dialect: DialectKind,
}

impl From<Adoption> for crate::plan::Adoption {
    fn from(adoption: Adoption) -> Self {
        match adoption {
            Adoption::Never => crate::plan::Adoption::Never,
            Adoption::Unmarked => crate::plan::Adoption::Unmarked,
            Adoption::UnmarkedOrOrphaned => crate::plan::Adoption::UnmarkedOrOrphaned,
        }
    }
}

impl StoreSpec {
    /// The SecretSync's per-secret shape on top of the store's connection settings.
    pub fn target_for(&self, target: &Target) -> Result<Target, ForeignSettings> {
        let store = self;
        let dialect = store.dialect;
        let foreign = [
            (target.azure_key_vault.is_some(), DialectKind::AzureKeyVault),
            (
                target.service_fabric_mesh.is_some(),
                DialectKind::ServiceFabricMesh,
            ),
            (target.barbican.is_some(), DialectKind::Barbican),
            (target.docker_swarm.is_some(), DialectKind::DockerSwarm),
            (target.tencent_ssm.is_some(), DialectKind::TencentSsm),
            (
                target.aws_secrets_manager.is_some(),
                DialectKind::AwsSecretsManager,
            ),
            (target.vault.is_some(), DialectKind::Vault),
        ]
        .into_iter()
        .find(|(set, kind)| *set && *kind != dialect);
        if let Some((_, kind)) = foreign {
            return Err(ForeignSettings {
                settings: kind,
                dialect,
            });
        }
        let mut out = target.clone();
        out.store_ref = None;
        out.dialect = Some(dialect);
        out.endpoint = store.endpoint.clone();
        out.credentials_ref = None;
        match dialect {
            DialectKind::AzureKeyVault => {
                let own = *target.azure_key_vault.clone().unwrap_or_default();
                let conn = store.azure_key_vault.clone().unwrap_or_default();
                out.azure_key_vault = Some(Box::new(AzureKeyVaultSettings {
                    authority_host: conn.authority_host,
                    api_version: conn.api_version,
                    allow_purge: conn.allow_purge,
                    ..own
                }));
            }
            DialectKind::ServiceFabricMesh => {
                let own = *target.service_fabric_mesh.clone().unwrap_or_default();
                let conn = store.service_fabric_mesh.clone().unwrap_or_default();
                out.service_fabric_mesh = Some(Box::new(ServiceFabricMeshSettings {
                    api_version: conn.api_version,
                    ..own
                }));
            }
            DialectKind::Barbican => {
                let own = *target.barbican.clone().unwrap_or_default();
                let conn = store.barbican.clone().unwrap_or_default();
                out.barbican = Some(Box::new(BarbicanSettings {
                    project_id: conn.project_id,
                    interface: conn.interface,
                    region: conn.region,
                    ..own
                }));
            }
            DialectKind::TencentSsm => {
                let own = *target.tencent_ssm.clone().unwrap_or_default();
                let conn = store.tencent_ssm.clone().unwrap_or_default();
                out.tencent_ssm = Some(Box::new(TencentSsmSettings {
                    region: conn.region,
                    requests_per_second: store.rate_limit.map(|r| r.requests_per_second),
                    ..own
                }));
            }
            DialectKind::AwsSecretsManager => {
                let own = *target.aws_secrets_manager.clone().unwrap_or_default();
                let conn = store.aws_secrets_manager.clone().unwrap_or_default();
                out.aws_secrets_manager = Some(Box::new(AwsSecretsManagerSettings {
                    region: conn.region,
                    role_arn: conn.role_arn,
                    sts_endpoint: conn.sts_endpoint,
                    ..own
                }));
            }
            DialectKind::Vault => {
                let own = *target.vault.clone().unwrap_or_default();
                out.vault = Some(Box::new(VaultSettings {
                    connection: store.vault.clone().unwrap_or_default(),
                    ..own
                }));
            }
            DialectKind::DockerSwarm => {}
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target(v: serde_json::Value) -> Target {
        serde_json::from_value(v).expect("target parses")
    }

    fn vault_store() -> StoreSpec {
        serde_json::from_value(json!({
            "dialect": "AzureKeyVault", "endpoint": "https://v.vault.azure.net",
            "azureKeyVault": {"authorityHost": "https://login.example", "allowPurge": true},
        }))
        .expect("store parses")
    }

    #[test]
    fn settings_for_another_dialect_than_the_stores_are_refused() {
        let t = target(
            json!({"storeRef": {"kind": "Store", "name": "s"}, "dockerSwarm": {"pruneSuperseded": false}}),
        );
        let err = vault_store().target_for(&t).unwrap_err();
        assert_eq!(
            (err.settings, err.dialect),
            (DialectKind::DockerSwarm, DialectKind::AzureKeyVault)
        );
        assert!(
            err.to_string().contains("DockerSwarm") && err.to_string().contains("AzureKeyVault")
        );
    }

    #[test]
    fn the_stores_connection_settings_win_over_the_secretsyncs() {
        let t = target(json!({
            "storeRef": {"kind": "Store", "name": "s"}, "endpoint": "https://elsewhere",
            "azureKeyVault": {"authorityHost": "https://tenant.example", "allowPurge": false},
        }));
        let out = vault_store().target_for(&t).expect("same dialect");
        assert_eq!(out.endpoint.as_deref(), Some("https://v.vault.azure.net"));
        assert_eq!(out.dialect, Some(DialectKind::AzureKeyVault));
        assert!(out.store_ref.is_none());
        let akv = out.azure_key_vault.expect("settings");
        assert_eq!(akv.authority_host.as_deref(), Some("https://login.example"));
        assert!(akv.allow_purge);
    }
}
