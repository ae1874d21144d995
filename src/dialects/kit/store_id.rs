//! Which store a dialect call is made through, as the controller tells the dialect in [`crate::dialects::Request`]
//! (never through the credentials: what a store's author puts in a Secret cannot claim another store).
//!
//! Two things depend on it: trust (a namespace admin wrote a `Store`, and their CA must not vouch for the identity
//! provider that receives a token or a client secret) and pacing (rate buckets and token requests belong to a
//! store, and a ClusterStore's to each namespace using it; see [`crate::dialects::EndpointLimiter`]).

use crate::api::StoreKind;

/// The store a call goes through, as far as trust and pacing go.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StoreId {
    /// A namespace admin's Store.
    Namespaced { namespace: String, name: String },
    /// A platform admin's ClusterStore, used from `tenant` (the SecretSync's namespace; empty for its own check).
    Cluster { name: String, tenant: String },
}

impl StoreId {
    /// The store `kind`/`name` used from `namespace`: a Store's own namespace (it serves no other), or the tenant
    /// of a ClusterStore.
    pub fn new(kind: StoreKind, name: &str, namespace: &str) -> StoreId {
        match kind {
            StoreKind::Store => StoreId::Namespaced {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            },
            StoreKind::ClusterStore => StoreId::Cluster {
                name: name.to_owned(),
                tenant: namespace.to_owned(),
            },
        }
    }

    /// The store's own name for keys: `Store/<namespace>/<name>` or `ClusterStore/<name>`, without the tenant.
    pub fn store_key(&self) -> String {
        match self {
            StoreId::Namespaced { namespace, name } => format!("Store/{namespace}/{name}"),
            StoreId::Cluster { name, .. } => format!("ClusterStore/{name}"),
        }
    }
}

/// Whether a namespace admin wrote the store of a call: their `caBundle` and `ca.crt` then vouch for the store's
/// own endpoint only. Without a store (an inline target, which only the operator allows) no.
pub fn namespace_admin_wrote(store: Option<&StoreId>) -> bool {
    matches!(store, Some(StoreId::Namespaced { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_is_keyed_without_its_tenant_and_its_author_is_known() {
        let store = StoreId::new(StoreKind::Store, "kv", "team-a");
        assert!(namespace_admin_wrote(Some(&store)));
        assert_eq!(store.store_key(), "Store/team-a/kv");
        let cluster = StoreId::new(StoreKind::ClusterStore, "kv", "team-a");
        assert!(!namespace_admin_wrote(Some(&cluster)));
        assert_eq!(
            cluster,
            StoreId::Cluster {
                name: "kv".into(),
                tenant: "team-a".into()
            }
        );
        assert_eq!(
            StoreId::new(StoreKind::ClusterStore, "kv", "team-b").store_key(),
            "ClusterStore/kv"
        );
        assert!(!namespace_admin_wrote(None));
    }
}
