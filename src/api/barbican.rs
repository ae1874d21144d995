use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Settings for OpenStack Barbican.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BarbicanSettings {
    /// Inline targets only (with `storeRef` the store sets it). Project ID sent as `X-Project-Id` in no-auth mode (development deployments without Keystone). Used only
    /// when there is no credentialsRef; `spec.target.endpoint` is then required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub project_id: Option<String>,
    /// How many superseded secrets to keep after a rotation (default 0: delete them). Barbican payloads are
    /// write-once, so every value change makes a new secret; the newest `keepSuperseded` older ones written by
    /// this SecretSync are kept for consumers still holding their references.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub keep_superseded: Option<u32>,
    /// Largest payload accepted, in bytes (default 20000, Barbican's own default `max_allowed_secret_in_bytes`).
    /// Larger values fail before any call. Raise it only if the server's limit was raised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_payload_bytes: Option<u32>,
    /// Inline targets only (with `storeRef` the store sets it). Keystone catalog interface of the key-manager endpoint: `public` (default), `internal` or `admin`.
    /// Ignored when `spec.target.endpoint` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(public|internal|admin)$"), length(max = 8))]
    pub interface: Option<String>,
    /// Inline targets only (with `storeRef` the store sets it). Keystone catalog region of the key-manager endpoint (default: the first one listed). Ignored when
    /// `spec.target.endpoint` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub region: Option<String>,
}
