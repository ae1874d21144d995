//! A store's dialect and credentials: the credentials Secret's keys (cached between its changes), the store's CA
//! bundle and a ServiceAccount token, checked against the operator's limits before anything leaves.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use tracing::info;

use super::error::Error;
use crate::api::StoreKind;
use crate::controller::Context;
use crate::controller::stores::credentials_cache::Lookup as CachedCredentials;
use crate::controller::stores::protection;
use crate::controller::stores::resolve::{self, Connection, Refusal};
use crate::controller::sync::source::{self, SourceError};
use crate::dialects::Dialect;
use crate::value::{Credentials, SecretValue};

pub fn dialect_for(ctx: &Context, connection: &Connection) -> Result<Arc<dyn Dialect>, Error> {
    ctx.registry
        .get(connection.dialect)
        .cloned()
        .ok_or_else(|| Error::NoDialect(connection.dialect.to_string()))
}

/// The store's credentials: its Secret's keys, the store's CA bundle as `ca.crt`, and a ServiceAccount token when
/// the store federates one.
pub async fn credentials(ctx: &Context, connection: &Connection) -> Result<Credentials, Error> {
    credentials_in(ctx, connection, Teardown::Never, false).await
}

/// Whether credentials whose Secret is gone may be recalled from memory (see [`store_protection`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Teardown {
    Never,
    /// Only a remote cleanup may, and only in a namespace being deleted.
    MayRecall,
}

/// `protected`: the caller knows the Store to be protected, which the watch may not show yet.
pub async fn credentials_in(
    ctx: &Context,
    connection: &Connection,
    teardown: Teardown,
    protected: bool,
) -> Result<Credentials, Error> {
    let map = match &connection.credentials {
        Some((namespace, name)) => {
            let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
            let read = match ctx.credentials.lookup(namespace, name) {
                CachedCredentials::Kept(map) => Ok(map),
                CachedCredentials::Read { epoch } => {
                    source::read_credentials(&secrets, name).await.map(|read| {
                        let map = read.into_map();
                        ctx.credentials.keep(namespace, name, epoch, &map);
                        map
                    })
                }
                CachedCredentials::Uncached => source::read_credentials(&secrets, name)
                    .await
                    .map(Credentials::into_map),
            };
            match read {
                Ok(map) => {
                    if protected || store_is_protected(ctx, connection).await? {
                        ctx.remembered.keep(namespace, name, &map);
                    }
                    map
                }
                Err(SourceError::CredentialsNotFound(missing))
                    if teardown == Teardown::MayRecall
                        && ctx.lookup.namespace_terminating(namespace).await? =>
                {
                    match ctx.remembered.recall(namespace, name) {
                        Some(map) => {
                            info!(
                                "the store's credentials Secret was deleted with its namespace; cleaning up with the credentials last read"
                            );
                            map
                        }
                        None => return Err(SourceError::CredentialsNotFound(missing).into()),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        None => Default::default(),
    };
    if !connection.may_use_controller_identity && map.contains_key(CONTROLLER_IDENTITY_KEY) {
        return Err(Refusal::StoreNotAllowed(format!(
            "{} asks for the controller's own identity ({CONTROLLER_IDENTITY_KEY} in its credentials), which only a ClusterStore may use: name a ServiceAccount in spec.serviceAccountRef instead",
            resolve::store_name(connection)
        ))
        .into());
    }
    // Before anything leaves: no token is requested and nothing is sent for a store that names a place outside the
    // operator's limits (its spec, or a sign-in URL in its credentials).
    let read = Credentials::new(map);
    let dialect = dialect_for(ctx, connection)?;
    ctx.limits.admit(
        author(connection),
        &dialect.destinations(&connection.target, &read),
        dialect.public_hosts(),
        dialect.endpoint_from_answers(&connection.target),
    )?;
    let mut map = read.into_map();
    if let Some(pem) = &connection.ca_bundle {
        map.insert("ca.crt".to_owned(), SecretValue::from(pem.as_str()));
    }
    if let Some((namespace, name, audience)) = &connection.service_account {
        let token = crate::controller::stores::token_request::token(
            ctx,
            namespace,
            name,
            audience.as_deref(),
        )
        .await?;
        map.insert(crate::value::SERVICE_ACCOUNT_TOKEN_KEY.to_owned(), token);
    }
    Ok(Credentials::new(map))
}

/// Who wrote where the connection goes: a namespace admin for a Store, else a platform admin or the operator.
fn author(connection: &Connection) -> crate::controller::stores::limits::Author {
    match &connection.store {
        Some(store) if store.kind == StoreKind::Store => {
            crate::controller::stores::limits::Author::NamespaceAdmin
        }
        _ => crate::controller::stores::limits::Author::Platform,
    }
}

/// Whether the connection goes through a namespaced Store that [`store_protection`] keeps for its cleanups.
async fn store_is_protected(ctx: &Context, connection: &Connection) -> Result<bool, Error> {
    let (Some(store), Some((namespace, _))) = (&connection.store, &connection.credentials) else {
        return Ok(false);
    };
    if store.kind != StoreKind::Store {
        return Ok(false);
    }
    Ok(ctx
        .lookup
        .store(namespace, &store.name)
        .await?
        .is_some_and(|s| protection::is_protected(&s)))
}

/// The credentials key that makes AzureKeyVault use the controller pod's own federated identity.
const CONTROLLER_IDENTITY_KEY: &str = "workloadIdentity";
