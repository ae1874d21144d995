//! One SecretSync's way from its Secret to its store. A reconcile is this list of steps, each run once:
//!
//! 1. [`admit`]: a worker of the namespace's and the store's fair share (or a deferral);
//! 2. [`dereference`]: every read (store, namespace, source Secret, credentials, token) into one value;
//! 3. [`validate`]: what can be refused before any call (pure);
//! 4. [`observe`]: the dialect's reads of the remote secret, complete;
//! 5. [`decide`]: the planner's plan and what it means (pure);
//! 6. [`apply`]: the dialect's writes (`Observe` mode stops before this one);
//! 7. [`outcome`]: status, Events and the next look, as data (pure);
//! 8. [`commit`]: the one writer of status, Events and metrics.
//!
//! A SecretSync being deleted takes the same steps without a source ([`cleanup`]).

pub mod admit;
pub mod apply;
pub mod cleanup;
pub mod cleanup_deadline;
pub mod commit;
pub mod credentials;
pub mod decide;
pub mod dereference;
pub mod error;
pub mod finalizers;
pub mod names;
pub mod observation;
pub mod observe;
pub mod outcome;
pub mod remotes;
pub mod source;
pub mod status;
pub mod validate;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use tracing::{Instrument, error, info_span};

use crate::api::{Mode, SecretSync};
use crate::controller::Context;
use crate::metrics::{DialectLabels, ReconcileLabels};

use commit::Failure;
pub use error::{Error, error_policy};
use outcome::Effects;

/// One reconcile, as the controller's runner calls it: admitted, timed, counted, and kept from taking the process
/// down with a panic.
pub async fn reconcile(obj: Arc<SecretSync>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _workers = match admit::enter(&ctx, &obj) {
        Ok(workers) => workers,
        Err(wait) => return Ok(Action::requeue(wait)),
    };
    let dialect = names::dialect_label(&obj);
    let span = info_span!(
        "reconcile",
        namespace = %obj.namespace().unwrap_or_default(),
        name = %obj.name_any(),
        store = %names::store_label(&obj),
    );
    let started = Instant::now();
    // A panic must end this reconcile only. kube's runner would re-raise it and take every tenant's sync down
    // with the process (and again after each restart), so it is caught here and reported on this object alone.
    // The shared state a reconcile touches (backoff counts, fair-share slots) stays usable after a panic.
    let result = match AssertUnwindSafe(steps(&obj, &ctx).instrument(span.clone()))
        .catch_unwind()
        .await
    {
        Ok(result) => result,
        Err(panic) => Err(panicked(&obj, &ctx, panic_message(panic.as_ref()))
            .instrument(span)
            .await),
    };
    ctx.metrics
        .reconcile_duration
        .get_or_create(&DialectLabels {
            dialect: dialect.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    ctx.metrics.count_reconcile(ReconcileLabels {
        store: names::counted_store(&obj, &ctx).await,
        dialect,
        result: if result.is_ok() { "ok" } else { "error" }.to_owned(),
    });
    result
}

/// The steps of one reconcile.
async fn steps(obj: &SecretSync, ctx: &Context) -> Result<Action, Error> {
    let ns = obj.namespace().ok_or(Error::Incomplete)?;
    if ctx.panic_on.as_deref() == Some(names::key(obj).as_str()) {
        panic!("test-only panic requested with --test-panic-on");
    }
    if obj.meta().deletion_timestamp.is_some() {
        return cleanup::run(obj, ctx, &ns).await;
    }
    let protected = cleanup::settle_finalizer(obj, ctx, &ns).await?;
    if obj.spec.suspend {
        if let Some(report) = outcome::suspended(obj) {
            commit::publish(obj, ctx, &report).await?;
        }
        return Ok(Action::await_change());
    }
    match store_work(obj, ctx, &ns, protected).await {
        Ok((store, effects)) => commit::effects(obj, ctx, store, effects).await,
        Err(failure) => Err(commit::failure(obj, ctx, failure).await),
    }
}

/// Steps 2 to 7: from the reads to what there is to report.
async fn store_work(
    obj: &SecretSync,
    ctx: &Context,
    ns: &str,
    protected: bool,
) -> Result<(crate::api::UsedStore, Effects), Failure> {
    validate::refresh_interval(obj)?;
    let connection = dereference::store(obj, ctx, ns).await?;
    let store = names::used_store(&connection);
    let with_store = |error: Error| Failure {
        error,
        store: Some(store.clone()),
    };
    if obj.spec.writes_many() {
        let effects = remotes::work(obj, ctx, ns, connection, &store, protected)
            .await
            .map_err(with_store)?;
        return Ok((store, effects));
    }
    let read = dereference::for_sync(obj, ctx, ns, connection, protected)
        .await
        .map_err(with_store)?;
    let effects = async {
        if let Some(wait) = admit::spread(ctx, obj, &read) {
            return Ok(Effects::wait(wait));
        }
        validate::target(&read, ns)?;
        let observed = observe::remote(ctx, &read, ns).await?;
        let decision = decide::decide(obj, &read, &observed);
        if obj.spec.mode == Mode::Observe {
            return Ok(outcome::observed(&decision, &read));
        }
        let written = apply::write(ctx, &read, ns, &decision, &observed).await?;
        let mut effects = outcome::synced(&decision, written.as_ref(), &read);
        if effects.confirms_sync() {
            effects
                .notes
                .extend(apply::settle_previous(obj, &read, ns).await?);
            if let Some(report) = &mut effects.report {
                report.placement = Some(read.placement.clone());
            }
        }
        Ok(effects)
    };
    let effects = effects.await.map_err(with_store)?;
    Ok((store, effects))
}

/// A panic's message when it was written into the code as a literal; a formatted one may carry data read at run
/// time (a value, a credential), so it is withheld.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &'static str {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .unwrap_or("(formatted message withheld)")
}

/// Counts and reports a reconcile that panicked.
async fn panicked(obj: &SecretSync, ctx: &Context, message: &'static str) -> Error {
    ctx.metrics
        .reconcile_panics
        .get_or_create(&DialectLabels {
            dialect: names::dialect_label(obj),
        })
        .inc();
    error!(
        panic = message,
        "a reconcile panicked; the object is retried with backoff"
    );
    commit::failure(obj, ctx, Error::Internal.into()).await
}
