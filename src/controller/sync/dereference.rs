//! Step 2, dereference: every read one reconcile needs before it talks to the store (the store, the namespace,
//! the source Secret, the credentials and a token), read once into one value.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};

use super::credentials::{Teardown, credentials_in, dialect_for};
use super::error::Error;
use crate::api::{SecretSync, StoreKind, UpdatePolicy};
use crate::controller::Context;
use crate::controller::stores::resolve::{self, Connection, StoreObject};
use crate::controller::sync::source;
use crate::dialects::{Dialect, Request};
use crate::plan::moved::Placement;
use crate::plan::{self, Desired, Metadata, Owner, RemoteRef, WritePolicy};
use crate::value::{Credentials, SecretValue};

/// What one reconcile read: the store's connection and dialect, its credentials, the source value and what the
/// remote secret should be.
pub struct Dereferenced {
    pub connection: Connection,
    pub dialect: Arc<dyn Dialect>,
    pub credentials: Credentials,
    /// The source value; empty for a cleanup, which needs none.
    pub value: SecretValue,
    pub desired: Desired,
    /// The remote secret's name (the store's `remoteNameTemplate` applied).
    pub remote_name: String,
    /// Where this reconcile writes.
    pub placement: Placement,
    /// What the status recorded last time.
    pub last: Option<RemoteRef>,
}

impl Dereferenced {
    /// The dialect's view of one call, borrowed from what was read.
    pub fn request<'a>(&'a self, namespace: &str) -> Request<'a> {
        Request {
            target: &self.connection.target,
            remote_name: &self.remote_name,
            rate_limit: self.connection.rate_limit,
            credentials: &self.credentials,
            desired: &self.desired,
            last: self.last.as_ref(),
            store: self.connection.store_id(namespace),
        }
    }
}

/// Finds the store the SecretSync names and decides whether it may be used (see [`resolve::resolve`]).
pub async fn store(obj: &SecretSync, ctx: &Context, ns: &str) -> Result<Connection, Error> {
    let target = &obj.spec.target;
    let namespace = |labels| resolve::Namespace { name: ns, labels };
    let Some(store_ref) = &target.store_ref else {
        return Ok(resolve::resolve(
            target,
            &namespace(None),
            None,
            ctx.allow_inline,
        )?);
    };
    match store_ref.kind {
        StoreKind::Store => {
            let store = ctx.lookup.store(ns, &store_ref.name).await?;
            Ok(resolve::resolve(
                target,
                &namespace(None),
                store.as_ref().map(|s| StoreObject::Namespaced(&s.spec)),
                ctx.allow_inline,
            )?)
        }
        StoreKind::ClusterStore => {
            let store = ctx.lookup.cluster_store(ns, &store_ref.name).await?;
            let labels = match &store {
                Some(s) if resolve::needs_namespace_labels(&s.spec) => {
                    ctx.lookup.namespace_labels(ns).await?
                }
                _ => None,
            };
            Ok(resolve::resolve(
                target,
                &namespace(labels.as_ref()),
                store.as_ref().map(|s| StoreObject::Cluster(&s.spec)),
                ctx.allow_inline,
            )?)
        }
    }
}

/// The reads of a sync: the source (admitted by the store), the credentials and the owner.
/// `protected`: this reconcile found (or made) its Store protected for cleanups.
pub async fn for_sync(
    obj: &SecretSync,
    ctx: &Context,
    ns: &str,
    connection: Connection,
    protected: bool,
) -> Result<Dereferenced, Error> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let Some(src) = &obj.spec.source.secret_ref else {
        return Err(Error::Incomplete);
    };
    let source = source::read_source(&secrets, &src.name, src.key.as_deref()).await?;
    resolve::source_allowed(&connection, &src.name, &source.labels)?;
    let shared = shared(obj, ctx, ns, &connection, protected).await?;
    let desired = desired(obj, ctx, &connection, &shared, &source.value);
    let Shared {
        dialect,
        credentials,
        ..
    } = shared;
    finish(
        obj,
        ns,
        connection,
        dialect,
        credentials,
        source.value,
        desired,
    )
}

/// What every remote secret of one sync shares: the dialect, the credentials and the owner.
pub struct Shared {
    pub dialect: Arc<dyn Dialect>,
    pub credentials: Credentials,
    pub owner: Owner,
}

impl Shared {
    /// The reads of one of the sync's remote secrets.
    pub fn remote(
        &self,
        connection: &Connection,
        value: SecretValue,
        desired: Desired,
        remote_name: String,
        last: Option<RemoteRef>,
    ) -> Dereferenced {
        Dereferenced::new(
            connection.clone(),
            self.dialect.clone(),
            self.credentials.clone(),
            value,
            desired,
            remote_name,
            last,
        )
    }
}

/// The reads every remote secret of a sync shares.
pub async fn shared(
    obj: &SecretSync,
    ctx: &Context,
    ns: &str,
    connection: &Connection,
    protected: bool,
) -> Result<Shared, Error> {
    let dialect = dialect_for(ctx, connection)?;
    let credentials = credentials_in(ctx, connection, Teardown::Never, protected).await?;
    let owner = owner(obj, ctx, ns).await?;
    Ok(Shared {
        dialect,
        credentials,
        owner,
    })
}

/// What a remote secret holding `value` should be.
pub fn desired(
    obj: &SecretSync,
    ctx: &Context,
    connection: &Connection,
    shared: &Shared,
    value: &SecretValue,
) -> Desired {
    let target = &connection.target;
    let owner = shared.owner.clone();
    Desired {
        digest: ctx
            .digest_key
            .for_namespace(&owner.scope.namespace_uid)
            .digest(value.expose()),
        earlier_digest: Some(ctx.digest_key.digest(value.expose())),
        metadata: Metadata {
            content_type: target.content_type.clone(),
            description: target.description.clone(),
            labels: target.labels.clone(),
        },
        owner,
        policy: match obj.spec.update_policy {
            UpdatePolicy::Replace => WritePolicy::Replace,
            UpdatePolicy::IfNotExists => WritePolicy::IfNotExists,
        },
        adopt_existing: obj.spec.adopt_existing,
        adoption: connection.adoption,
        allow_replace: shared.dialect.allows_replace(target),
    }
}

/// The reads of a cleanup: identity and credentials only. Not the value, and not a source the store would still
/// accept (a Secret relabelled since cannot hold its remote copy hostage).
pub async fn for_cleanup(
    obj: &SecretSync,
    ctx: &Context,
    ns: &str,
    connection: Connection,
) -> Result<Dereferenced, Error> {
    let dialect = dialect_for(ctx, &connection)?;
    let credentials = credentials_in(ctx, &connection, Teardown::MayRecall, false).await?;
    let desired = to_delete(owner(obj, ctx, ns).await?);
    let value = SecretValue::new(Vec::new());
    finish(obj, ns, connection, dialect, credentials, value, desired)
}

/// What a cleanup needs of the desired state: the owner (a remote secret is deleted only if its marker names it).
pub fn to_delete(owner: Owner) -> Desired {
    Desired {
        digest: String::new(),
        earlier_digest: None,
        metadata: Metadata::default(),
        owner,
        policy: WritePolicy::Replace,
        adopt_existing: false,
        adoption: plan::Adoption::Never,
        allow_replace: false,
    }
}

fn finish(
    obj: &SecretSync,
    ns: &str,
    connection: Connection,
    dialect: Arc<dyn Dialect>,
    credentials: Credentials,
    value: SecretValue,
    desired: Desired,
) -> Result<Dereferenced, Error> {
    let remote_name = connection.remote_name(ns, &obj.name_any())?;
    Ok(Dereferenced::new(
        connection,
        dialect,
        credentials,
        value,
        desired,
        remote_name,
        last_remote(obj),
    ))
}

impl Dereferenced {
    /// One remote secret's reads.
    pub fn new(
        connection: Connection,
        dialect: Arc<dyn Dialect>,
        credentials: Credentials,
        value: SecretValue,
        desired: Desired,
        remote_name: String,
        last: Option<RemoteRef>,
    ) -> Dereferenced {
        let placement = Placement {
            dialect: connection.dialect,
            endpoint: connection.target.endpoint.clone(),
            remote_name: remote_name.clone(),
        };
        Dereferenced {
            connection,
            dialect,
            credentials,
            value,
            desired,
            remote_name,
            placement,
            last,
        }
    }
}

/// The remote secret the status recorded last.
pub fn last_remote(obj: &SecretSync) -> Option<RemoteRef> {
    obj.status.as_ref()?.remote.as_ref().map(|r| RemoteRef {
        name: r.name.clone(),
        id: r.id.clone(),
        version: r.version.clone(),
    })
}

/// This SecretSync as its ownership markers name it: in this cluster, in its namespace's current incarnation.
pub async fn owner(obj: &SecretSync, ctx: &Context, ns: &str) -> Result<Owner, Error> {
    let namespace_uid = ctx
        .lookup
        .namespace_uid(ns)
        .await?
        .ok_or_else(|| Error::NamespaceUnseen(ns.to_owned()))?;
    Ok(Owner {
        namespace: ns.to_owned(),
        name: obj.name_any(),
        uid: obj.uid().ok_or(Error::Incomplete)?,
        scope: plan::Scope {
            cluster: ctx.cluster_id.clone(),
            namespace_uid,
        },
    })
}
