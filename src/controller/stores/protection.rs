//! Keeps what a remote cleanup needs until the cleanup is done, when a namespace is deleted as a whole.
//!
//! Kubernetes deletes every object of a deleted namespace at once. A SecretSync with `deletionPolicy: Delete`
//! waits (its finalizer) to delete its remote secret, but its Store and the Store's credentials Secret would be
//! gone before it could. So:
//!
//! - a namespaced Store that such SecretSyncs use carries the finalizer [`STORE_FINALIZER`], added by the first
//!   of them and removed once the Store is being deleted and none of them holds its own finalizer any more (like
//!   Kubernetes' own `kubernetes.io/pvc-protection`);
//! - the credentials read for a protected Store are remembered in memory, and used only by a cleanup in a
//!   namespace being deleted once the Secret is gone. They are forgotten when the Store's protection ends. A
//!   controller that restarts during the teardown has no copy: the cleanup is then blocked and, after
//!   `--cleanup-timeout-seconds`, the remote secret is left in place with a `RemoteSecretLeft` Event, as before.
//!
//! ClusterStores are not protected: a namespace's deletion does not delete them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use kube::api::ListParams;
use kube::{Api, ResourceExt};
use tracing::{debug, info};

use crate::api::{SecretSync, Store, StoreKind};
use crate::controller::Context;
use crate::controller::FINALIZER;
use crate::controller::sync::Error;
use crate::value::SecretValue;

/// The finalizer on a namespaced Store that SecretSyncs with `deletionPolicy: Delete` use.
pub const STORE_FINALIZER: &str = "secretsync.io/store-in-use";

/// What to do with a Store's protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Protect,
    Release,
    Nothing,
}

/// A store's protection from what is known of it: whether it is being deleted, whether it carries
/// [`STORE_FINALIZER`], and how many SecretSyncs still hold their cleanup finalizer through it.
///
/// An unused Store keeps a protection it has until it is deleted (no write when the last user goes but the
/// Store stays), and a Store being deleted is never protected anew (the API server refuses new finalizers then).
pub fn decide(deleting: bool, protected: bool, users: usize) -> Step {
    match (deleting, protected, users) {
        (false, false, 1..) => Step::Protect,
        (true, true, 0) => Step::Release,
        _ => Step::Nothing,
    }
}

/// Protects the namespaced Store `namespace/name`, which a SecretSync holding its cleanup finalizer names.
/// Returns whether the Store is protected now: the watch may not show a protection just added for a while, and
/// credentials read meanwhile must already be remembered.
pub async fn protect(ctx: &Context, namespace: &str, name: &str) -> Result<bool, Error> {
    let Some(store) = ctx.lookup.store(namespace, name).await? else {
        return Ok(false);
    };
    if decide(is_deleting(&store), is_protected(&store), 1) == Step::Protect {
        info!(store = %format!("Store/{namespace}/{name}"), "protecting the store until its SecretSyncs' remote secrets are deleted");
        return set(ctx, &store, true).await;
    }
    Ok(is_protected(&store))
}

/// Releases the namespaced Store `namespace/name` if it is being deleted and no SecretSync but `finished` (one
/// that has just let go of its own finalizer, which the watch may not show yet) still needs it. Returns whether
/// a Store being deleted is still held.
pub async fn release_if_unused(
    ctx: &Context,
    namespace: &str,
    name: &str,
    finished: Option<&str>,
) -> Result<bool, Error> {
    let Some(store) = ctx.lookup.store(namespace, name).await? else {
        return Ok(false);
    };
    release_store_if_unused(ctx, &store, finished).await
}

/// [`release_if_unused`] for a Store as its caller's own watch shows it. The store check is woken by its own
/// Store watch when the Store is deleted; the SecretSyncs' Store cache may not show the deletion yet, and a check
/// that read it there would find nothing to release and not look again for minutes.
pub async fn release_store_if_unused(
    ctx: &Context,
    store: &Store,
    finished: Option<&str>,
) -> Result<bool, Error> {
    let namespace = store.namespace().unwrap_or_default();
    let namespace = namespace.as_str();
    let name = store.name_any();
    let name = name.as_str();
    // Only a protected Store being deleted can be released: no list of SecretSyncs for any other.
    if !(is_deleting(store) && is_protected(store)) {
        return Ok(false);
    }
    let users = holding(ctx, namespace, name, finished).await?;
    if decide(is_deleting(store), is_protected(store), users) == Step::Release {
        info!(store = %format!("Store/{namespace}/{name}"), "no SecretSync needs the store being deleted any more; releasing it");
        set(ctx, store, false).await?;
        if let Some(secret) = &store.spec.credentials_ref {
            let stores = ctx.lookup.stores_in(namespace).await?;
            if !still_needed(&secret.name, name, &stores) {
                ctx.remembered.forget(namespace, &secret.name);
            }
        }
        return Ok(false);
    }
    debug!(store = %format!("Store/{namespace}/{name}"), users, "store protection unchanged");
    Ok(true)
}

/// The SecretSyncs of `namespace` that name its Store `store` and still hold their cleanup finalizer, but
/// `finished`. Read from the API server, not from this controller's watch: a controller running with `--selector`
/// (one shard of several) sees only its own SecretSyncs, and would release a Store another shard's SecretSyncs
/// still need; and a watch may lag behind a finalizer just added (the #36 shape). A Store being deleted is rare, so
/// one list of its namespace's SecretSyncs is cheap.
async fn holding(
    ctx: &Context,
    namespace: &str,
    store: &str,
    finished: Option<&str>,
) -> Result<usize, Error> {
    let syncs: Api<SecretSync> = Api::namespaced(ctx.client.clone(), namespace);
    let list = syncs.list(&ListParams::default()).await?;
    Ok(list
        .items
        .iter()
        .filter(|s| s.metadata.uid.as_deref() != finished && uses(s, store))
        .count())
}

/// Whether a SecretSync holds its cleanup finalizer through the namespaced Store `store`.
fn uses(sync: &SecretSync, store: &str) -> bool {
    sync.finalizers().iter().any(|f| f == FINALIZER)
        && sync
            .spec
            .target
            .store_ref
            .as_ref()
            .is_some_and(|r| r.kind == StoreKind::Store && r.name == store)
}

/// Whether the remembered credentials of Secret `secret` are still needed once Store `released` lets them go:
/// another protected Store of the namespace reads the same Secret (remembered credentials are kept per Secret).
fn still_needed(secret: &str, released: &str, stores: &[std::sync::Arc<Store>]) -> bool {
    stores.iter().any(|s| {
        s.name_any() != released
            && is_protected(s)
            && s.spec
                .credentials_ref
                .as_ref()
                .is_some_and(|c| c.name == secret)
    })
}

pub fn is_protected(store: &Store) -> bool {
    store.finalizers().iter().any(|f| f == STORE_FINALIZER)
}

fn is_deleting(store: &Store) -> bool {
    store.metadata.deletion_timestamp.is_some()
}

/// Adds or removes [`STORE_FINALIZER`] (a compare-and-swap on the cached copy: see [`crate::controller::sync::finalizers::set`]).
/// Returns whether the Store now carries it as asked (false when it was gone meanwhile).
async fn set(ctx: &Context, store: &Store, present: bool) -> Result<bool, Error> {
    let api: Api<Store> =
        Api::namespaced(ctx.client.clone(), &store.namespace().unwrap_or_default());
    match crate::controller::sync::finalizers::set(&api, store, STORE_FINALIZER, present).await {
        Ok(()) => Ok(true),
        // Gone meanwhile: nothing left to protect or release.
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The last credentials read for protected Stores, by the credentials Secret's `(namespace, name)`. Values are
/// wiped from memory when replaced or forgotten ([`SecretValue`] zeroizes on drop).
#[derive(Default)]
pub struct Remembered {
    secrets: Mutex<HashMap<(String, String), BTreeMap<String, SecretValue>>>,
}

impl Remembered {
    pub fn keep(&self, namespace: &str, name: &str, keys: &BTreeMap<String, SecretValue>) {
        self.secrets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((namespace.to_owned(), name.to_owned()), keys.clone());
    }

    pub fn recall(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, SecretValue>> {
        self.secrets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    pub fn forget(&self, namespace: &str, name: &str) {
        self.secrets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(namespace.to_owned(), name.to_owned()));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.secrets.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_is_protected_while_used_and_released_only_once_deleted_and_unused() {
        // (deleting, protected, users) -> step, every combination that matters.
        let cases = [
            ((false, false, 0), Step::Nothing),
            ((false, false, 1), Step::Protect),
            ((false, false, 7), Step::Protect),
            ((false, true, 0), Step::Nothing),
            ((false, true, 3), Step::Nothing),
            ((true, false, 0), Step::Nothing),
            // The API server refuses a new finalizer on an object being deleted.
            ((true, false, 2), Step::Nothing),
            ((true, true, 1), Step::Nothing),
            ((true, true, 0), Step::Release),
        ];
        for ((deleting, protected, users), step) in cases {
            assert_eq!(
                decide(deleting, protected, users),
                step,
                "deleting {deleting}, protected {protected}, {users} users"
            );
        }
    }

    #[test]
    fn credentials_two_stores_read_stay_remembered_while_the_other_is_protected() {
        let store = |name: &str, secret: &str, protected: bool| {
            let mut json = serde_json::json!({
                "apiVersion": "secretsync.io/v1alpha1", "kind": "Store",
                "metadata": {"name": name, "namespace": "team-a"},
                "spec": {"dialect": "ServiceFabricMesh", "endpoint": "https://sf.example",
                         "credentialsRef": {"name": secret}}
            });
            if protected {
                json["metadata"]["finalizers"] = serde_json::json!([STORE_FINALIZER]);
            }
            std::sync::Arc::new(serde_json::from_value::<Store>(json).expect("a Store"))
        };
        let stores = [
            store("other", "creds", false),
            store("tls", "creds", true),
            store("elsewhere", "more-creds", true),
        ];
        // "other" is released, "tls" still cleans up with the same Secret: keep it.
        assert!(still_needed("creds", "other", &stores));
        // "tls" is released too: nothing else needs "creds"; the released store itself does not count.
        let released = [store("other", "creds", false), store("tls", "creds", true)];
        assert!(!still_needed("creds", "tls", &released));
        assert!(!still_needed(
            "more-creds",
            "tls",
            &[store("tls", "more-creds", true)]
        ));
    }

    #[test]
    fn remembered_credentials_are_replaced_and_forgotten_per_secret() {
        let remembered = Remembered::default();
        let keys = |v: &str| BTreeMap::from([("token".to_owned(), SecretValue::from(v))]);
        remembered.keep("team-a", "creds", &keys("one"));
        remembered.keep("team-a", "creds", &keys("two"));
        remembered.keep("team-b", "creds", &keys("three"));
        assert_eq!(remembered.len(), 2);
        assert_eq!(remembered.recall("team-a", "creds"), Some(keys("two")));
        remembered.forget("team-a", "creds");
        assert_eq!(remembered.recall("team-a", "creds"), None);
        assert_eq!(remembered.recall("team-b", "creds"), Some(keys("three")));
    }
}
