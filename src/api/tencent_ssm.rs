use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Settings for Tencent Cloud Secrets Manager.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TencentSsmSettings {
    /// Inline targets only (with `storeRef` the store sets it). Region, sent as `X-TC-Region` (for example
    /// `ap-guangzhou`).
    #[schemars(length(min = 1, max = 64))]
    pub region: Option<String>,
    /// `Overwrite` (default) rewrites the current version with `UpdateSecret`; `History` adds a version per
    /// change with `PutSecretValue`, deleting the oldest SecretSync-created version at the 10-version cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_policy: Option<TencentVersionPolicy>,
    /// The version `Overwrite` writes and rewrites (default `SSM_Current`, the name of a secret's initial
    /// version). Up to 64 letters, digits, '.', '_' and '-', starting with a letter or digit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"),
        length(max = 64)
    )]
    pub version_id: Option<String>,
    /// Inline targets only (with `storeRef`, the store's `rateLimit.requestsPerSecond`). The store's limit in
    /// requests a second per action (default 50, the published figure). SecretSync
    /// paces each action of each endpoint at 90% of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub requests_per_second: Option<u32>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_camel_case_and_validate_in_the_schema() {
        let s: TencentSsmSettings = serde_json::from_value(serde_json::json!({
            "region": "ap-guangzhou",
            "versionPolicy": "History",
            "versionId": "v1",
            "requestsPerSecond": 100,
        }))
        .expect("parses");
        assert_eq!(s.version_policy, Some(TencentVersionPolicy::History));
        assert_eq!(s.requests_per_second, Some(100));
        let schema = serde_json::to_value(schemars::schema_for!(TencentSsmSettings)).unwrap();
        let props = &schema["properties"];
        assert_eq!(props["requestsPerSecond"]["minimum"], 1);
        assert_eq!(
            props["versionId"]["pattern"],
            "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
        );
    }
}
