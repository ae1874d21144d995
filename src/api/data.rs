//! What a SecretSync pushes when it is more than one key to one remote secret: `spec.data` (keys to remote
//! secrets and their properties), `spec.template` (values composed from several keys) and the status of each
//! remote secret it writes.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Keys of the source Secret and the remote secret (and property) they go to.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.secretKey) != has(self.secretKeyRegex)", "message": "set secretKey (one key) or secretKeyRegex (every matching key), not both"}
]))]
pub struct DataRule {
    /// One key of the source Secret (after `spec.template`, when there is one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub secret_key: Option<String>,

    /// Every key matching this pattern (RE2 syntax, anchored at both ends: `db_.*` takes `db_user`, not
    /// `my_db_user`). A key no rule selects is not pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub secret_key_regex: Option<String>,

    /// The remote secret the key goes to (default: `spec.target.remoteName`, or the object's name). `{key}` is
    /// replaced by the key; with `spec.source.selector`, `{secret}` by the Secret's name. The store's
    /// `remoteNameTemplate` applies to the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub remote_name: Option<String>,

    /// Makes the key one field of a JSON object in the remote secret (`{key}` is replaced by the key). Rules
    /// with the same remote name and different properties build one object. Without it, the key's value is the
    /// remote secret's whole value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub property: Option<String>,
}

/// Values composed from the source's keys before `spec.data` selects keys.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretTemplate {
    /// Key → template text (Jinja syntax, rendered by minijinja). `data` holds the source Secret's keys, so
    /// `postgres://{{ data.user | uri_component }}:{{ data.password | uri_component }}@db:5432/app` composes a
    /// URL. A template reads no file, environment or network; its output is at most 1 MiB and its work is
    /// bounded. An error names the template's key and line, never a value.
    #[serde(default)]
    #[schemars(extend(
        "maxProperties" = 64,
        "additionalProperties" = {"type": "string", "maxLength": 65536},
        "x-kubernetes-validations" = [
            {"rule": "self.all(k, size(k) <= 253)", "message": "template keys are at most 253 characters"}
        ]
    ))]
    pub data: BTreeMap<String, String>,

    /// `Replace` (default): the templated keys are the only keys. `Merge`: the source's keys and the templated
    /// ones (a templated key wins).
    #[serde(default)]
    pub merge_policy: MergePolicy,
}

/// Which keys there are after `spec.template`.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum MergePolicy {
    /// Only the templated keys.
    #[default]
    Replace,
    /// The source's keys plus the templated ones.
    Merge,
}

impl From<MergePolicy> for crate::plan::template::Merge {
    fn from(policy: MergePolicy) -> Self {
        match policy {
            MergePolicy::Replace => crate::plan::template::Merge::Replace,
            MergePolicy::Merge => crate::plan::template::Merge::Merge,
        }
    }
}

/// One remote secret a SecretSync with `spec.data`, a selector or a template writes.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemoteEntryStatus {
    /// Name of the remote secret in the store.
    #[schemars(length(max = 512))]
    pub name: String,
    /// The store's identifier for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub id: Option<String>,
    /// Version last written, where the store versions values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    pub version: Option<String>,
    /// Keyed HMAC-SHA256 of the value last confirmed in the store; absent while it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub digest: Option<String>,
    /// When SecretSync last wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_write: Option<Time>,
    /// The Secret its value comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub secret: Option<String>,
    /// Whether the store holds the source's value.
    #[serde(default)]
    pub in_sync: bool,
}
