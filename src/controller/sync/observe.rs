//! Step 4, observe: the dialect's reads of the remote secret, completed with what only Kubernetes knows (whether
//! a marked owner still exists) before anything decides on it. Never patched afterwards.

use kube::{Api, ResourceExt};

use super::dereference::Dereferenced;
use super::error::Error;
use crate::api::SecretSync;
use crate::controller::Context;
use crate::plan::{self, Observed, Owner};

/// The remote secret as the store holds it.
pub async fn remote(
    ctx: &Context,
    read: &Dereferenced,
    namespace: &str,
) -> Result<Observed, Error> {
    let req = read.request(namespace);
    let desired = &read.desired;
    let mut observed = read.dialect.observe(&req).await?;
    if let Observed::Present(remote) = &mut observed {
        if let Some(owner) = &remote.owner
            && !desired.owner.owns(Some(owner))
        {
            remote.owner_exists = owner_exists(ctx, owner).await?;
        }
        // A secret written outside SecretSync carries no digest: its value tells whether taking it over needs a
        // new value, or only SecretSync's marker (a move from another tool rewrites nothing that is equal).
        if remote.digest.is_none()
            && plan::adopts(desired, remote)
            && let Some(found) = read.dialect.read_value(&req, remote).await?
        {
            let key = ctx
                .digest_key
                .for_namespace(&desired.owner.scope.namespace_uid);
            remote.digest = Some(key.digest(found.expose()));
        }
    }
    Ok(observed)
}

/// Whether the SecretSync a marker names still exists. Unknown counts as existing (a conflict, never an
/// overwrite): an owner in another cluster cannot be looked up. An owner whose namespace has since been deleted
/// (or deleted and created again: another uid) is gone, and so is one whose object was replaced by a new one of
/// the same name under a marker from before scopes (it is matched by uid only).
async fn owner_exists(ctx: &Context, owner: &Owner) -> Result<bool, Error> {
    if !owner.scope.is_empty() {
        if owner.scope.cluster != ctx.cluster_id {
            return Ok(true);
        }
        if ctx.lookup.namespace_uid(&owner.namespace).await?.as_deref()
            != Some(owner.scope.namespace_uid.as_str())
        {
            return Ok(false);
        }
    }
    let api: Api<SecretSync> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    Ok(match api.get_opt(&owner.name).await? {
        Some(other) => owner.uid.is_empty() || other.uid().as_deref() == Some(owner.uid.as_str()),
        None => false,
    })
}
