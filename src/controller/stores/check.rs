//! The periodic check behind a store's `Ready` condition: its credentials can be read (and a ServiceAccount token
//! requested), and the store answers a read made with them. The read is of a name no SecretSync uses, so the check
//! never touches a remote secret.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::{debug, error, warn};

use crate::api::{ClusterStore, Store, StoreKind, StoreRef, StoreSpec, StoreStatus};
use crate::controller::Context;
use crate::controller::FIELD_MANAGER;
use crate::controller::stores::protection;
use crate::controller::stores::resolve;
use crate::controller::sync::Error;
use crate::controller::sync::credentials as reconcile;
use crate::dialects::Request;
use crate::plan::{Desired, Metadata, Owner, WritePolicy};

/// How often a store is checked while nothing changes.
pub const CHECK_EVERY: Duration = Duration::from_secs(300);
/// The remote name read by the check.
const PROBE_NAME: &str = "secretsync-store-check";

/// [`check`], with a panic (a bug a store's reply reaches) reported on this store's `Ready` condition. Store checks
/// run outside the reconciles' panic guard, and kube's runner re-raises a panic: uncaught, one hostile store would
/// stop the controller for every tenant, at every restart.
async fn guarded_check(
    ctx: &Context,
    store_ref: &StoreRef,
    spec: &StoreSpec,
    namespace: &str,
) -> Result<(), (String, String)> {
    match AssertUnwindSafe(check(ctx, store_ref, spec, namespace))
        .catch_unwind()
        .await
    {
        Ok(result) => result,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&'static str>()
                .copied()
                .unwrap_or("(formatted message withheld)");
            error!(panic = message, store = %store_ref.name, "a store check panicked");
            let report = Error::Internal.report();
            Err((report.reason, report.message))
        }
    }
}

/// What the check found: `Ok` or the reason and message for `Ready=False`.
async fn check(
    ctx: &Context,
    store_ref: &StoreRef,
    spec: &StoreSpec,
    namespace: &str,
) -> Result<(), (String, String)> {
    if store_ref.kind == StoreKind::Store
        && ctx.panic_on.as_deref() == Some(format!("{namespace}/{}", store_ref.name).as_str())
    {
        panic!("test-only panic requested with --test-panic-on");
    }
    let failed = |e: Error| {
        let report = e.report();
        match &e {
            Error::Refused(refusal) => (refusal.store_reason().to_owned(), report.message),
            _ => (report.reason, report.message),
        }
    };
    let connection =
        resolve::for_store_check(store_ref, spec, namespace).map_err(|e| failed(e.into()))?;
    let dialect = reconcile::dialect_for(ctx, &connection).map_err(failed)?;
    let credentials = reconcile::credentials(ctx, &connection)
        .await
        .map_err(failed)?;
    let desired = Desired {
        digest: String::new(),
        earlier_digest: None,
        metadata: Metadata::default(),
        owner: Owner {
            namespace: namespace.to_owned(),
            name: store_ref.name.clone(),
            uid: String::new(),
            scope: Default::default(),
        },
        policy: WritePolicy::Replace,
        adopt_existing: false,
        adoption: crate::plan::Adoption::Never,
        allow_replace: false,
    };
    // A ClusterStore's own check is no tenant's: it takes no namespace's share of the store's rate.
    let store = connection.store_id(match store_ref.kind {
        StoreKind::Store => namespace,
        StoreKind::ClusterStore => "",
    });
    let req = Request {
        target: &connection.target,
        remote_name: PROBE_NAME,
        rate_limit: connection.rate_limit,
        credentials: &credentials,
        desired: &desired,
        last: None,
        store,
    };
    dialect
        .observe(&req)
        .await
        .map(|_| ())
        .map_err(|e| failed(e.into()))
}

fn condition(
    result: &Result<(), (String, String)>,
    generation: Option<i64>,
    prev: &[Condition],
) -> Condition {
    let (status, reason, message) = match result {
        Ok(()) => (
            "True",
            "Checked".to_owned(),
            "the credentials were read and the store answered a read made with them".to_owned(),
        ),
        Err((reason, message)) => ("False", reason.clone(), message.clone()),
    };
    let since = prev
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| Time(k8s_openapi::jiff::Timestamp::now()));
    Condition {
        type_: "Ready".to_owned(),
        status: status.to_owned(),
        reason,
        message: crate::controller::sync::status::bounded(&message),
        observed_generation: generation,
        last_transition_time: since,
    }
}

async fn write<K>(api: &Api<K>, obj: &K, kind: &str, status: StoreStatus) -> Result<(), Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = json!({"apiVersion": "secretsync.io/v1alpha1", "kind": kind, "status": status});
    match api
        .patch_status(
            &obj.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn record(ctx: &Context, store: String, result: &Result<(), (String, String)>) {
    ctx.metrics.set_store_ready(&store, result.is_ok());
}

/// Checks a namespaced Store and writes its status.
pub async fn store(obj: Arc<Store>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = obj.namespace().ok_or(Error::Incomplete)?;
    let store_ref = StoreRef {
        kind: StoreKind::Store,
        name: obj.name_any(),
    };
    // Being deleted is a change of generation, so this runs then: the store goes at once if nothing needs it.
    // While SecretSyncs still hold it (or the watches have not yet shown the last of them letting go, which a
    // reconcile that has just let go may have missed), it is looked at again soon, without a store read.
    let held = obj.metadata.deletion_timestamp.is_some()
        && protection::release_store_if_unused(&ctx, &obj, None).await?;
    if held {
        return Ok(Action::requeue(RELEASE_RECHECK));
    }
    let result = guarded_check(&ctx, &store_ref, &obj.spec, &ns).await;
    record(&ctx, format!("Store/{ns}/{}", store_ref.name), &result);
    debug!(store = %format!("Store/{ns}/{}", store_ref.name), ok = result.is_ok(), "store checked");
    let prev = obj.status.clone().unwrap_or_default();
    let status = StoreStatus {
        conditions: vec![condition(&result, obj.meta().generation, &prev.conditions)],
    };
    write(
        &Api::namespaced(ctx.client.clone(), &ns),
        &*obj,
        "Store",
        status,
    )
    .await?;
    Ok(Action::requeue(if held {
        RELEASE_RECHECK
    } else {
        CHECK_EVERY
    }))
}

/// How soon a Store being deleted is looked at again while SecretSyncs hold it.
const RELEASE_RECHECK: Duration = Duration::from_secs(5);

/// Checks a ClusterStore and writes its status.
pub async fn cluster_store(obj: Arc<ClusterStore>, ctx: Arc<Context>) -> Result<Action, Error> {
    let store_ref = StoreRef {
        kind: StoreKind::ClusterStore,
        name: obj.name_any(),
    };
    let result = guarded_check(&ctx, &store_ref, &obj.spec.store, "").await;
    record(&ctx, format!("ClusterStore/{}", store_ref.name), &result);
    debug!(store = %format!("ClusterStore/{}", store_ref.name), ok = result.is_ok(), "store checked");
    let prev = obj.status.clone().unwrap_or_default();
    let status = StoreStatus {
        conditions: vec![condition(&result, obj.meta().generation, &prev.conditions)],
    };
    write(&Api::all(ctx.client.clone()), &*obj, "ClusterStore", status).await?;
    Ok(Action::requeue(CHECK_EVERY))
}

/// A status that could not be written is tried again in a minute.
pub fn retry<K>(_obj: Arc<K>, err: &Error, _ctx: Arc<Context>) -> Action {
    warn!(error = %err, "cannot write a store's status");
    Action::requeue(Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ready_condition_keeps_its_transition_time_while_its_status_holds() {
        let first = condition(&Ok(()), Some(1), &[]);
        assert_eq!(
            (first.status.as_str(), first.reason.as_str()),
            ("True", "Checked")
        );
        let mut old = first.clone();
        old.last_transition_time = Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        let again = condition(&Ok(()), Some(2), std::slice::from_ref(&old));
        assert_eq!(again.last_transition_time, old.last_transition_time);
        assert_eq!(again.observed_generation, Some(2));
        let failed = condition(
            &Err(("Unauthorized".into(), "store answered HTTP 401".into())),
            Some(2),
            std::slice::from_ref(&old),
        );
        assert_eq!(
            (failed.status.as_str(), failed.reason.as_str()),
            ("False", "Unauthorized")
        );
        assert_ne!(failed.last_transition_time, old.last_transition_time);
    }
}
