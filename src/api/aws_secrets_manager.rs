use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Settings for AWS Secrets Manager.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsSecretsManagerSettings {
    /// Inline targets only (with `storeRef` the store sets it). The AWS region (for example `eu-west-1`): it
    /// names the default endpoint and is part of every signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z0-9-]+$"), length(min = 1, max = 32))]
    pub region: Option<String>,
    /// Inline targets only (with `storeRef` the store sets it). The IAM role assumed with the store's
    /// ServiceAccount token (web identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 20, max = 2048))]
    pub role_arn: Option<String>,
    /// Inline targets only (with `storeRef` the store sets it). The STS endpoint of web identity (default
    /// `https://sts.<region>.amazonaws.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^https?://[^@?#\s\x00-\x1f\x7f]+$"),
        length(max = 2048)
    )]
    pub sts_endpoint: Option<String>,
    /// The KMS key (ID, ARN or alias) that encrypts the secret's values; without it the account's default key
    /// `aws/secretsmanager`. Changing it writes the value again, encrypted with the new key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub kms_key_id: Option<String>,
    /// With `deletionPolicy: Delete`: the days Secrets Manager keeps the deleted secret recoverable, 7 to 30
    /// (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 7, max = 30))]
    pub recovery_window_days: Option<u8>,
    /// With `deletionPolicy: Delete`: delete the secret at once, with no recovery window. It cannot be undone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force_delete_without_recovery: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_camel_case_and_bound_the_recovery_window() {
        let s: AwsSecretsManagerSettings = serde_json::from_value(serde_json::json!({
            "kmsKeyId": "alias/secrets",
            "recoveryWindowDays": 7,
            "forceDeleteWithoutRecovery": true,
        }))
        .expect("parses");
        assert_eq!(s.kms_key_id.as_deref(), Some("alias/secrets"));
        assert!(s.force_delete_without_recovery);
        let schema =
            serde_json::to_value(schemars::schema_for!(AwsSecretsManagerSettings)).unwrap();
        let days = &schema["properties"]["recoveryWindowDays"];
        assert_eq!(
            (&days["minimum"], &days["maximum"]),
            (&7.into(), &30.into())
        );
    }
}
