use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Settings for OpenStack Barbican.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BarbicanSettings {
    /// Project ID sent as `X-Project-Id` in no-auth mode (development deployments without Keystone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// How many superseded secrets to keep after a rotation (default 0: delete them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub keep_superseded: Option<u32>,
    /// Largest payload accepted, in bytes (default 20000, Barbican's own default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_payload_bytes: Option<u32>,
}
