use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Settings for Service Fabric secret resources.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceFabricMeshSettings {
    /// `api-version` query parameter (default `6.4-preview`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// How many superseded value versions to keep (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub retain_versions: Option<u32>,
    /// Delete and re-create the secret resource when its kind or content type must change (they are immutable
    /// in Service Fabric). Without it such a change is reported and nothing is written.
    #[serde(default)]
    pub allow_replace: bool,
    /// Read values back with the privileged `list_value` call to detect drift of the value itself.
    #[serde(default)]
    pub verify_values: bool,
}
