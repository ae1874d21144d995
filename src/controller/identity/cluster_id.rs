//! This cluster's identity in ownership markers (`--cluster-id`): two clusters writing to one store, or a cluster
//! built again under the same names, must not own each other's remote secrets.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::ListParams;
use kube::{Api, Client};

#[derive(Debug, thiserror::Error)]
pub enum ClusterIdError {
    #[error(
        "--cluster-id must be 1-63 letters, digits, '.', '_' or '-' (it is written into remote ownership markers), got {0:?}"
    )]
    Invalid(String),
    #[error("cannot read the uid of namespace kube-system for the default --cluster-id: {0}")]
    Kube(#[source] kube::Error),
    #[error("namespace kube-system has no uid; set --cluster-id")]
    NoUid,
}

/// The operator's `--cluster-id`, checked; else the uid of `kube-system`, which lives as long as the cluster. Read
/// with `list` (the controller may list and watch namespaces, not get them).
pub async fn resolve(client: Client, given: Option<&str>) -> Result<String, ClusterIdError> {
    if let Some(id) = given {
        return valid(id)
            .then(|| id.to_owned())
            .ok_or_else(|| ClusterIdError::Invalid(id.to_owned()));
    }
    let namespaces: Api<Namespace> = Api::all(client);
    let list = namespaces
        .list_metadata(&ListParams::default().fields("metadata.name=kube-system"))
        .await
        .map_err(ClusterIdError::Kube)?;
    list.items
        .into_iter()
        .find_map(|n| n.metadata.uid)
        .filter(|uid| valid(uid))
        .ok_or(ClusterIdError::NoUid)
}

/// No '/' (the marker's `cluster/namespace-uid` separator) and nothing a store's tag or label value could refuse.
fn valid(id: &str) -> bool {
    (1..=63).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_short_and_cannot_split_a_scope() {
        for good in ["prod-eu-1", "8f1c2a9e-0b7d-4c3e-9a51-2f6d7e8c9b0a", "a.b_c"] {
            assert!(valid(good), "{good}");
        }
        for bad in ["", "a/b", "a b", "ä", &"x".repeat(64), "a\n"] {
            assert!(!valid(bad), "{bad:?}");
        }
    }
}
