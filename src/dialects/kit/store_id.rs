//! Which store a dialect call is made through, as the controller tells the dialect: the credentials carry it
//! under [`STORE_KEY`] (a `/` cannot occur in a Secret's keys, so no credentials Secret can claim another store),
//! as `Store/<name>` or `ClusterStore/<name>`. The store's namespace is the request owner's: a Store serves its
//! own namespace only, and its check runs as an owner in that namespace.
//!
//! Two things depend on it: trust (a namespaced Store is written by a namespace admin, whose CA must not vouch for
//! the identity provider that receives a token or a client secret) and pacing (rate buckets and token requests
//! belong to a store, and a ClusterStore's to each namespace using it; see [`crate::dialects::EndpointLimiter`]).

use crate::api::StoreKind;
use crate::value::Credentials;

/// The credentials key the controller sets for every store.
pub const STORE_KEY: &str = "secretsync.io/store";

/// The value of [`STORE_KEY`] for a store.
pub fn value(kind: StoreKind, name: &str) -> String {
    match kind {
        StoreKind::Store => format!("Store/{name}"),
        StoreKind::ClusterStore => format!("ClusterStore/{name}"),
    }
}

/// The store a call goes through, as far as trust and pacing go.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StoreId {
    /// A namespace admin's Store.
    Namespaced { namespace: String, name: String },
    /// A platform admin's ClusterStore, used from `tenant` (the SecretSync's namespace; empty for its own check).
    Cluster { name: String, tenant: String },
}

impl StoreId {
    /// The store named in `credentials`, used from `namespace` (the request owner's); `None` without one (an inline
    /// target, allowed only by the operator, or a test).
    pub fn of(credentials: &Credentials, namespace: &str) -> Option<StoreId> {
        let text = credentials.text(STORE_KEY)?;
        let (kind, name) = text.split_once('/')?;
        let name = name.to_owned();
        match kind {
            "Store" => Some(StoreId::Namespaced {
                namespace: namespace.to_owned(),
                name,
            }),
            "ClusterStore" => Some(StoreId::Cluster {
                name,
                tenant: namespace.to_owned(),
            }),
            _ => None,
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

/// Whether a namespace admin wrote the store the credentials are for: their `caBundle` and `ca.crt` then vouch
/// for the store's own endpoint only.
pub fn namespace_admin_wrote(credentials: &Credentials) -> bool {
    credentials
        .text(STORE_KEY)
        .is_some_and(|v| v.starts_with("Store/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::SecretValue;

    fn creds(store: Option<String>) -> Credentials {
        Credentials::new(
            store
                .map(|s| (STORE_KEY.to_owned(), SecretValue::from(s.as_str())))
                .into_iter()
                .collect(),
        )
    }

    #[test]
    fn the_store_and_its_author_come_from_the_controllers_key() {
        let store = creds(Some(value(StoreKind::Store, "kv")));
        assert!(namespace_admin_wrote(&store));
        assert_eq!(
            StoreId::of(&store, "team-a").map(|s| s.store_key()),
            Some("Store/team-a/kv".to_owned())
        );
        let cluster = creds(Some(value(StoreKind::ClusterStore, "kv")));
        assert!(!namespace_admin_wrote(&cluster));
        assert_eq!(
            StoreId::of(&cluster, "team-a"),
            Some(StoreId::Cluster {
                name: "kv".into(),
                tenant: "team-a".into()
            })
        );
        assert_eq!(
            StoreId::of(&cluster, "team-b").map(|s| s.store_key()),
            Some("ClusterStore/kv".to_owned())
        );
        assert_eq!(StoreId::of(&creds(None), "team-a"), None);
        assert!(!namespace_admin_wrote(&creds(None)));
    }
}
