use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Settings for Tencent Cloud Secrets Manager.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TencentSsmSettings {
    /// Region, sent as `X-TC-Region` (for example `ap-guangzhou`).
    #[schemars(length(min = 1))]
    pub region: Option<String>,
    /// `Overwrite` (default) rewrites the current version with `UpdateSecret`; `History` adds a version per
    /// change with `PutSecretValue`, deleting the oldest SecretSync-created version at the 10-version cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_policy: Option<TencentVersionPolicy>,
}

/// How value changes are written to Tencent SSM.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum TencentVersionPolicy {
    /// Overwrite the content of the current version.
    #[default]
    Overwrite,
    /// Keep a history: one new version per change.
    History,
}
