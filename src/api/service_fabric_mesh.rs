use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Settings for Service Fabric secret resources.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceFabricMeshSettings {
    /// Inline targets only (with `storeRef` the store sets it). `api-version` query parameter (default `6.4-preview`, the only one the secret resource API accepts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // Letters, digits, dots and dashes only: it goes into the query string of every request.
    #[schemars(regex(pattern = r"^[0-9A-Za-z.-]+$"), length(max = 32))]
    pub api_version: Option<String>,
    /// How many superseded value versions to keep next to the current one (default 2). Older versions that
    /// SecretSync wrote are deleted after each new value; versions written by others are never touched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub retain_versions: Option<u32>,
    /// Delete and re-create the secret resource when its kind or content type must change (they are immutable
    /// in Service Fabric). Without it such a change is reported and nothing is written.
    #[serde(default)]
    pub allow_replace: bool,
    /// Check the current value version on every read of the store with the privileged `list_value` call (it
    /// reads the plaintext back), proving that applications can read it. Without it a version is checked with a
    /// metadata `GET` only when this SecretSync's status does not already name it (versions are immutable and
    /// named by the value's keyed digest), so a refresh at rest costs one request; a version deleted behind
    /// SecretSync's back while the resource still names it is then written again at the next change.
    #[serde(default)]
    pub verify_values: bool,
}
