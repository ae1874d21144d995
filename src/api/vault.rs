use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A path of Vault (a mount or a prefix): segments of letters, digits and `_.@+=-` separated by single `/`.
const PATH: &str = r"^[A-Za-z0-9_.@+=-]+(/[A-Za-z0-9_.@+=-]+)*$";

/// Vault connection settings, the same on a store and (inline targets only) on a SecretSync's target.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultStoreSettings {
    /// Where the KV version 2 engine is mounted (default `secret`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = PATH), length(min = 1, max = 255))]
    pub mount: Option<String>,
    /// The Vault Enterprise or OpenBao namespace, sent as `X-Vault-Namespace` with every request, the login
    /// included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = PATH), length(min = 1, max = 255))]
    pub namespace: Option<String>,
    /// Put in front of every remote name (`<pathPrefix>/<remoteName>`), so that this store writes under one
    /// subtree of the mount only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = PATH), length(min = 1, max = 255))]
    pub path_prefix: Option<String>,
    /// AppRole sign-in (with `roleId` and `secretId` in the credentials Secret): where the method is mounted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_role: Option<VaultAppRole>,
    /// Kubernetes sign-in with the store's `serviceAccountRef`: the token of that ServiceAccount is sent to
    /// Vault's Kubernetes auth method as this role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<VaultKubernetes>,
}

/// Vault's AppRole auth method.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultAppRole {
    /// Where the AppRole method is mounted (default `approle`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = PATH), length(min = 1, max = 255))]
    pub mount: Option<String>,
}

/// Vault's Kubernetes auth method.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultKubernetes {
    /// The Vault role the ServiceAccount signs in as; the role names the ServiceAccounts and namespaces it
    /// accepts and its audience.
    #[schemars(length(min = 1, max = 255))]
    pub role: String,
    /// Where the Kubernetes method is mounted (default `kubernetes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = PATH), length(min = 1, max = 255))]
    pub mount: Option<String>,
}

/// Settings for HashiCorp Vault (and OpenBao) KV version 2.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultSettings {
    /// Inline targets only (with `storeRef` the store sets them): `mount`, `namespace`, `pathPrefix`, `appRole`
    /// and `kubernetes`, as on a store.
    #[serde(flatten)]
    pub connection: VaultStoreSettings,
    /// The versions Vault keeps of this path (written to the path's metadata, `max_versions`); without it the
    /// mount's setting (Vault's default: 10). Older versions are removed as new ones are written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_versions: Option<u32>,
}

/// Whether `text` is a path as [`PATH`] describes it (mounts, prefixes and remote names).
pub fn valid_path(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 512
        && text.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.@+=-".contains(&b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_camel_case_with_the_connection_flattened() {
        let s: VaultSettings = serde_json::from_value(serde_json::json!({
            "mount": "kv",
            "pathPrefix": "team-a",
            "appRole": {"mount": "ar"},
            "kubernetes": {"role": "secretsync"},
            "maxVersions": 3,
        }))
        .expect("parses");
        assert_eq!(s.connection.mount.as_deref(), Some("kv"));
        assert_eq!(s.connection.path_prefix.as_deref(), Some("team-a"));
        assert_eq!(
            s.connection.app_role.and_then(|a| a.mount).as_deref(),
            Some("ar")
        );
        assert_eq!(
            s.connection.kubernetes.map(|k| k.role).as_deref(),
            Some("secretsync")
        );
        assert_eq!(s.max_versions, Some(3));
        let schema = serde_json::to_value(schemars::schema_for!(VaultSettings)).unwrap();
        assert_eq!(schema["properties"]["mount"]["pattern"], PATH);
        assert_eq!(schema["properties"]["maxVersions"]["maximum"], 1000);
    }

    #[test]
    fn paths_are_segments_without_dots_alone() {
        for ok in ["a", "team-a/db", "x.y/z@1", "a=b+c"] {
            assert!(valid_path(ok), "{ok}");
        }
        for bad in [
            "", "/a", "a/", "a//b", "a/../b", ".", "a/./b", "a b", "a?b", "a%2fb", "a#b",
        ] {
            assert!(!valid_path(bad), "{bad}");
        }
    }
}
