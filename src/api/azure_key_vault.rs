use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Settings for Azure Key Vault.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureKeyVaultSettings {
    /// Microsoft Entra ID authority host (default `https://login.microsoftonline.com`); set it for sovereign
    /// clouds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority_host: Option<String>,
    /// Key Vault REST `api-version` (default: the current stable one, `7.5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// After a `Delete`, also purge the soft-deleted secret; when creating over a soft-deleted name, purge it
    /// instead of recovering it.
    #[serde(default)]
    pub purge: bool,
}
