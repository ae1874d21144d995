//! What a store adapter provides, and cases built from it on the shared harness (`support/dialect_case.rs`).

use std::sync::Arc;

use async_trait::async_trait;
use secretsync::api::Target;
use secretsync::dialects::{Dialect, Shared};
use secretsync::plan::Owner;
use secretsync::value::Credentials;

pub use crate::dialect_case::{Case, key};

/// What only the store can show, and how to reach it. Everything else is the same for every dialect.
#[async_trait]
pub trait Store: Send + Sync {
    /// The dialect under test, built on `shared`.
    fn dialect(&self, shared: Shared) -> Arc<dyn Dialect>;
    /// A target and credentials the store accepts.
    fn target(&self) -> Target;
    fn credentials(&self) -> Credentials;
    /// Credentials the store refuses; `secret` is a string that must never show up in an error.
    fn wrong_credentials(&self, secret: &str) -> Credentials;
    /// A fresh remote name this store accepts.
    fn fresh_name(&self) -> String {
        format!("conf-{:08x}", rand::random::<u32>())
    }
    /// The store requests one value change takes at most (observe and apply, one reconcile), as the dialect
    /// documents them.
    fn requests_per_change(&self) -> u64;
    /// The store requests a reconcile that finds the store in step makes at most (every refresh at rest).
    fn requests_at_rest(&self) -> u64 {
        1
    }
    /// Whether the store holds `value` as the current value under `name`, read from the store itself (where
    /// the store cannot show a value, from what it can show that only this value produces).
    async fn holds(&self, name: &str, value: &[u8], digest: &str) -> bool;
    /// Whether any secret (SecretSync's or not) is left under `name`.
    async fn exists(&self, name: &str) -> bool;
    /// Removes what is under `name` behind SecretSync's back.
    async fn remove(&self, name: &str);
    /// Creates a secret under `name` holding `value`, without SecretSync's markers.
    async fn create_foreign(&self, name: &str, value: &[u8]);
    /// How many secret objects the store keeps under `name` (a store that names its secrets uniquely has at
    /// most one; Barbican and Docker could have several).
    async fn count(&self, name: &str) -> usize;
}

/// A SecretSync `team-conformance/<name>` with a uid of its own, in one cluster's namespace (markers carry the
/// scope, so a later object of the same namespace and name recognises its secret).
pub fn owner(name: &str) -> Owner {
    Owner {
        namespace: "team-conformance".into(),
        name: name.into(),
        uid: format!("uid-{:08x}", rand::random::<u32>()),
        scope: secretsync::plan::Scope {
            cluster: "conformance-cluster".into(),
            namespace_uid: "team-conformance-uid".into(),
        },
    }
}

/// A case on a fresh name of the store, owned by `team-conformance/app`.
pub fn case(store: &dyn Store, value: &str) -> Case {
    let name = store.fresh_name();
    case_named(store, &name, owner("app"), value)
}

/// A case for `name` owned by `owner` (two cases on one name are two SecretSyncs).
pub fn case_named(store: &dyn Store, name: &str, owner: Owner, value: &str) -> Case {
    let mut case = Case::new(
        |shared| store.dialect(shared),
        store.target(),
        store.credentials(),
        name,
        value.as_bytes(),
    );
    case.desired.owner = owner;
    case
}

/// Whether the store holds `value` under the case's name, by the store's own account.
pub async fn holds(store: &dyn Store, case: &Case, value: &str) -> bool {
    store
        .holds(
            &case.name,
            value.as_bytes(),
            &key().digest(value.as_bytes()),
        )
        .await
}
