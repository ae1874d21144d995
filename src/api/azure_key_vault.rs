use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Settings for Azure Key Vault.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureKeyVaultSettings {
    /// Inline targets only (with `storeRef` the store sets it). Microsoft Entra ID authority host (default
    /// `https://login.microsoftonline.com`); set it for sovereign clouds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub authority_host: Option<String>,
    /// Inline targets only (with `storeRef` the store sets it). Key Vault REST `api-version` (default: the current stable one, `2026-04-01`). Older ones such as `7.5`
    /// work too, for emulators and older private clouds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // Letters, digits, dots and dashes only: it goes into the query string of every request.
    #[schemars(regex(pattern = r"^[0-9A-Za-z.-]+$"), length(max = 32))]
    pub api_version: Option<String>,
    /// After a `Delete`, also purge the soft-deleted secret (unless the vault has purge protection); when
    /// creating over a soft-deleted name, purge it instead of recovering it.
    #[serde(default)]
    pub purge: bool,
    /// Copied from the store's `azureKeyVault.allowPurge` (a SecretSync cannot set it: it is not in the
    /// SecretSync's schema, so the API server drops it). `purge` acts only where it is set.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[schemars(skip)]
    pub allow_purge: bool,
}
