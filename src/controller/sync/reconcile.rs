//! One reconcile: read the SecretSync and its Secrets, observe the store, plan, act, report.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::controller::telemetry::events::{Event, EventType};
use futures::FutureExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::api::duration::{self, DurationError, Refresh};
use crate::api::{
    DeletionPolicy, Mode, SecretSync, SecretSyncStatus, StoreKind, UpdatePolicy, UsedStore,
};
use crate::controller::CREATING_POLL;
use crate::controller::Context;
use crate::controller::FIELD_MANAGER;
use crate::controller::FINALIZER;
use crate::controller::pacing::startup_spread;
use crate::controller::stores::credentials_cache::Lookup as CachedCredentials;
use crate::controller::stores::protection;
use crate::controller::stores::resolve::{self, Connection, Refusal, StoreObject};
use crate::controller::sync::cleanup_deadline::{self, BlockedCleanup};
use crate::controller::sync::observation;
use crate::controller::sync::source::{self, SourceError};
use crate::controller::sync::status::{self, Report};
use crate::dialects::{Dialect, DialectError, ErrorClass, Request};
use crate::metrics::{DeferLabels, DialectLabels, ReconcileLabels, RefusalLabels};
use crate::plan::moved::{self, LeaveWhy, Moved, Placement};
use crate::plan::{self, DeletePlan, Desired, Metadata, Observed, Owner, WritePolicy};
use crate::value::{Credentials, SecretValue};

/// Why a reconcile did not finish. Every variant's message is safe to show: no values, no credentials.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Dialect(#[from] DialectError),
    #[error("no dialect {0} is registered in this controller")]
    NoDialect(String),
    #[error("Kubernetes API error: {0}")]
    Kube(#[from] kube::Error),
    #[error("the SecretSync has no namespace or uid")]
    Incomplete,
    /// Its namespace is not in the controller's namespace watch yet (just created): tried again shortly.
    #[error("namespace {0:?} is not yet in the controller's watch; retrying")]
    NamespaceUnseen(String),
    #[error(transparent)]
    Stopping(#[from] crate::controller::watch::caches::Stopping),
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("spec.refreshInterval {0}")]
    InvalidRefreshInterval(DurationError),
    /// A panic ended the reconcile; the controller log has where.
    #[error(
        "an internal error interrupted this reconcile; it is retried with backoff (the controller's log says where)"
    )]
    Internal,
    /// The remote cleanup of an object being deleted failed; in a namespace being deleted, `give_up_in` bounds
    /// how long the finalizer is still held.
    #[error("{source}")]
    CleanupBlocked {
        source: Box<Error>,
        give_up_in: Option<Duration>,
    },
}

impl Error {
    pub(crate) fn report(&self) -> Report {
        match self {
            Error::Source(e) => Report::failed(
                e.reason(),
                format!("{e}; SecretSync retries when the Secret changes"),
            ),
            Error::Dialect(e) => status::for_dialect_error(e),
            Error::NoDialect(_) => Report::failed("DialectUnavailable", self.to_string()),
            Error::Refused(e) => Report::failed(e.reason(), e.to_string()),
            Error::Kube(_) => Report::failed("KubernetesError", self.to_string()),
            Error::Incomplete => Report::failed("Invalid", self.to_string()),
            Error::NamespaceUnseen(_) => Report::failed("Pending", self.to_string()),
            Error::Stopping(_) => Report::failed("ControllerStopping", self.to_string()),
            Error::InvalidRefreshInterval(_) => Report::failed(
                "InvalidRefreshInterval",
                format!("{self}; nothing is read or written until it is fixed"),
            ),
            Error::Internal => Report::failed("InternalError", self.to_string()),
            Error::CleanupBlocked { source, give_up_in } => {
                let mut report = source.report();
                report.reason = "DeletionBlocked".into();
                report.message = match give_up_in {
                    None => format!(
                        "cannot delete the remote secret: {source}. Fix the cause, or set spec.deletionPolicy: Retain to let this SecretSync go and keep the remote secret"
                    ),
                    Some(left) => format!(
                        "cannot delete the remote secret: {source}. The namespace is being deleted: SecretSync keeps trying for {}s more, then leaves the remote secret in place and lets this SecretSync go",
                        left.as_secs()
                    ),
                };
                report
            }
        }
    }

    /// In a namespace being deleted, the longest wait before the next look at a blocked cleanup.
    fn give_up_in(&self) -> Option<Duration> {
        match self {
            Error::CleanupBlocked { give_up_in, .. } => *give_up_in,
            _ => None,
        }
    }

    /// What to do next: back off on transient trouble, wait for a change otherwise.
    fn retry(&self) -> Retry {
        match self {
            Error::Source(SourceError::Kube { .. }) | Error::Kube(_) => Retry::Backoff(None),
            Error::Source(_)
            | Error::NoDialect(_)
            | Error::Incomplete
            | Error::InvalidRefreshInterval(_) => Retry::AwaitChange,
            Error::Internal | Error::Stopping(_) | Error::NamespaceUnseen(_) => {
                Retry::Backoff(None)
            }
            // A change to the store, the namespace or the Secret requeues it at once. What is not watched (a
            // ClusterStore's credentials in a namespace outside `--namespace`, a ServiceAccount created later) is
            // looked at again within RECHECK_REFUSED: a few API reads, never a store request.
            Error::Refused(_) => Retry::Recheck(RECHECK_REFUSED),
            Error::CleanupBlocked { source, .. } => source.retry(),
            Error::Dialect(e) => match e.class {
                ErrorClass::Retry | ErrorClass::Conflict => Retry::Backoff(e.retry_after),
                ErrorClass::Credentials | ErrorClass::Permanent => Retry::Refresh,
            },
        }
    }
}

enum Retry {
    Backoff(Option<Duration>),
    /// Like `Refresh`, but at most this long.
    Recheck(Duration),
    /// Only a change can fix it; still look again at the refresh interval (the store side may be fixed).
    Refresh,
    AwaitChange,
}

pub(crate) fn key(obj: &SecretSync) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// The longest wait before a SecretSync its store refused is looked at again, whatever its refresh interval.
const RECHECK_REFUSED: Duration = Duration::from_secs(300);

/// A store's `Retry-After` is honoured up to this; beyond it the store is not believed.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(900);

/// When to look again at an object that needs nothing now: its refresh interval with jitter, or only on a change
/// (`0s`, or an interval that is not usable and is reported as such).
fn refresh_wait(obj: &SecretSync) -> Option<Duration> {
    match duration::parse_refresh(&obj.spec.refresh_interval) {
        Ok(Refresh::Every(interval)) => Some(crate::controller::pacing::backoff::with_jitter(
            interval,
            rand::random::<f64>(),
        )),
        Ok(Refresh::OnChangeOnly) | Err(_) => None,
    }
}

fn after(wait: Option<Duration>) -> Action {
    wait.map_or_else(Action::await_change, Action::requeue)
}

/// The store an object talks to, for sharing workers fairly between stores.
fn store_key(obj: &SecretSync) -> String {
    let target = &obj.spec.target;
    match (&target.store_ref, target.dialect) {
        (Some(r), _) if r.kind == StoreKind::Store => {
            format!("Store/{}/{}", obj.namespace().unwrap_or_default(), r.name)
        }
        (Some(r), _) => format!("ClusterStore/{}", r.name),
        (None, dialect) => format!(
            "{}|{}",
            dialect.map_or("", |d| d.as_str()),
            target.endpoint.as_deref().unwrap_or_default()
        ),
    }
}

/// The dialect label of an object's metrics: the inline one, or the one its store had last time.
pub(crate) fn dialect_label(obj: &SecretSync) -> String {
    obj.spec
        .target
        .dialect
        .or_else(|| obj.status.as_ref()?.store.as_ref().map(|s| s.dialect))
        .map_or("unresolved", |d| d.as_str())
        .to_owned()
}

/// The store a SecretSync names, as logs, Events and metrics name it: `Store/<namespace>/<name>`,
/// `ClusterStore/<name>` or `inline`.
pub(crate) fn store_label(obj: &SecretSync) -> String {
    match &obj.spec.target.store_ref {
        Some(r) if r.kind == StoreKind::Store => {
            format!("Store/{}/{}", obj.namespace().unwrap_or_default(), r.name)
        }
        Some(r) => format!("ClusterStore/{}", r.name),
        None => "inline".to_owned(),
    }
}

/// The `store` label of the counters: [`store_label`] when that store exists, `unresolved` when it does not. A
/// store name a SecretSync merely mentions is its author's choice, and a counter's series lives as long as the
/// process: a tenant renaming a reference in a loop would otherwise grow `/metrics` (and Prometheus) without bound.
async fn counted_store(obj: &SecretSync, ctx: &Context) -> String {
    let exists = match &obj.spec.target.store_ref {
        Some(r) if r.kind == StoreKind::Store => {
            let ns = obj.namespace().unwrap_or_default();
            matches!(ctx.lookup.store(&ns, &r.name).await, Ok(Some(_)))
        }
        Some(r) => {
            let ns = obj.namespace().unwrap_or_default();
            matches!(ctx.lookup.cluster_store(&ns, &r.name).await, Ok(Some(_)))
        }
        None => true,
    };
    if exists {
        store_label(obj)
    } else {
        "unresolved".to_owned()
    }
}

/// Which fair share an object waits for.
enum Share {
    Namespace,
    Store,
}

/// A worker for `obj`: a slot in its namespace's share and one in its store's, or the share that is full with
/// its backlog.
fn enter(
    ctx: &Context,
    obj: &SecretSync,
) -> Result<
    (
        crate::controller::pacing::fair_share::Slot,
        crate::controller::pacing::fair_share::Slot,
    ),
    (Share, usize),
> {
    let object = key(obj);
    let namespace = ctx
        .namespaces
        .try_enter(&obj.namespace().unwrap_or_default(), &object)
        .map_err(|backlog| (Share::Namespace, backlog))?;
    let store = ctx
        .stores
        .try_enter(&store_key(obj), &object)
        .map_err(|backlog| (Share::Store, backlog))?;
    Ok((namespace, store))
}

pub async fn reconcile(obj: Arc<SecretSync>, ctx: Arc<Context>) -> Result<Action, Error> {
    let dialect_label = dialect_label(&obj);
    let _slots = match enter(&ctx, &obj) {
        Ok(slots) => slots,
        Err((share, backlog)) => {
            ctx.metrics
                .deferred
                .get_or_create(&DeferLabels {
                    dialect: dialect_label,
                    share: match share {
                        Share::Namespace => "namespace",
                        Share::Store => "store",
                    }
                    .to_owned(),
                })
                .inc();
            let wait =
                crate::controller::pacing::fair_share::defer_delay(backlog, rand::random::<f64>());
            debug!(object = %key(&obj), backlog, wait_ms = wait.as_millis() as u64, "share busy; deferred");
            return Ok(Action::requeue(wait));
        }
    };
    let span = info_span!(
        "reconcile",
        namespace = %obj.namespace().unwrap_or_default(),
        name = %obj.name_any(),
        store = %store_label(&obj),
    );
    let started = Instant::now();
    // A panic must end this reconcile only. kube's runner would re-raise it and take every tenant's sync down
    // with the process (and again after each restart), so it is caught here and reported on this object alone.
    // The shared state a reconcile touches (backoff counts, fair-share slots) stays usable after a panic.
    let result = match AssertUnwindSafe(reconcile_inner(&obj, &ctx).instrument(span.clone()))
        .catch_unwind()
        .await
    {
        Ok(result) => result,
        Err(panic) => {
            let message = panic_message(panic.as_ref());
            Err(report_panic(&obj, &ctx, message).instrument(span).await)
        }
    };
    ctx.metrics
        .reconcile_duration
        .get_or_create(&DialectLabels {
            dialect: dialect_label.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    let store = counted_store(&obj, &ctx).await;
    ctx.metrics.count_reconcile(ReconcileLabels {
        store,
        dialect: dialect_label,
        result: if result.is_ok() { "ok" } else { "error" }.to_owned(),
    });
    result
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
async fn report_panic(obj: &SecretSync, ctx: &Context, message: &'static str) -> Error {
    ctx.metrics
        .reconcile_panics
        .get_or_create(&DialectLabels {
            dialect: dialect_label(obj),
        })
        .inc();
    error!(
        panic = message,
        "a reconcile panicked; the object is retried with backoff"
    );
    let err = Error::Internal;
    if let Some(ns) = obj.namespace() {
        let syncs: Api<SecretSync> = Api::namespaced(ctx.client.clone(), &ns);
        if let Err(e) = publish(obj, ctx, &syncs, &err.report()).await {
            warn!(error = %e, "cannot report the internal error in the status");
        }
    }
    err
}

pub fn error_policy(obj: Arc<SecretSync>, err: &Error, ctx: Arc<Context>) -> Action {
    let wait = match err.retry() {
        Retry::Backoff(retry_after) => {
            let retry_after = retry_after.unwrap_or_default().min(MAX_RETRY_AFTER);
            let wait = ctx.backoff.next(&key(&obj)).max(retry_after);
            debug!(wait_ms = wait.as_millis() as u64, "retrying after backoff");
            Some(wait)
        }
        Retry::Refresh => {
            ctx.backoff.reset(&key(&obj));
            refresh_wait(&obj)
        }
        Retry::Recheck(at_most) => {
            ctx.backoff.reset(&key(&obj));
            let recheck =
                crate::controller::pacing::backoff::with_jitter(at_most, rand::random::<f64>());
            Some(refresh_wait(&obj).map_or(recheck, |w| w.min(recheck)))
        }
        Retry::AwaitChange => {
            ctx.backoff.reset(&key(&obj));
            None
        }
    };
    // A blocked cleanup in a terminating namespace is looked at again once its time is up, whatever the error.
    let wait = match err.give_up_in() {
        Some(left) => {
            let deadline = left + Duration::from_secs(1);
            Some(wait.map_or(deadline, |w| w.min(deadline)))
        }
        None => wait,
    };
    after(wait)
}

async fn reconcile_inner(obj: &SecretSync, ctx: &Context) -> Result<Action, Error> {
    let ns = obj.namespace().ok_or(Error::Incomplete)?;
    let syncs: Api<SecretSync> = Api::namespaced(ctx.client.clone(), &ns);
    let has_finalizer = obj.finalizers().iter().any(|f| f == FINALIZER);
    // Observing deletes nothing, so it holds nothing up either.
    let wants_finalizer =
        obj.spec.deletion_policy == DeletionPolicy::Delete && obj.spec.mode == Mode::Sync;

    if ctx.panic_on.as_deref() == Some(key(obj).as_str()) {
        panic!("test-only panic requested with --test-panic-on");
    }
    if let Some(deleted_at) = &obj.meta().deletion_timestamp {
        if !has_finalizer {
            return Ok(Action::await_change());
        }
        if wants_finalizer && let Err(e) = cleanup(obj, ctx).await {
            let deleting_for = Duration::try_from(
                k8s_openapi::jiff::Timestamp::now().duration_since(deleted_at.0),
            )
            .unwrap_or(Duration::ZERO);
            let terminating = ctx.lookup.namespace_terminating(&ns).await?;
            match cleanup_deadline::decide(terminating, deleting_for, ctx.cleanup_timeout) {
                BlockedCleanup::GiveUp => leave_remote_secret(obj, ctx, &e).await,
                BlockedCleanup::KeepTrying { give_up_in } => {
                    let e = Error::CleanupBlocked {
                        source: Box::new(e),
                        give_up_in,
                    };
                    publish(obj, ctx, &syncs, &e.report()).await?;
                    return Err(e);
                }
            }
        }
        set_finalizer(&syncs, obj, false).await?;
        release_store(obj, ctx, &ns).await?;
        if let Some(uid) = obj.uid() {
            ctx.first_looks.forget(&uid);
        }
        return Ok(Action::await_change());
    }
    if wants_finalizer != has_finalizer {
        set_finalizer(&syncs, obj, wants_finalizer).await?;
        if !wants_finalizer {
            release_store(obj, ctx, &ns).await?;
        }
    }
    let protected = match namespaced_store(obj) {
        Some(store) if wants_finalizer => protection::protect(ctx, &ns, store).await?,
        _ => false,
    };

    if obj.spec.suspend {
        publish_suspended(obj, ctx, &syncs).await?;
        return Ok(Action::await_change());
    }
    if let Err(e) = duration::parse_refresh(&obj.spec.refresh_interval) {
        let e = Error::InvalidRefreshInterval(e);
        publish(obj, ctx, &syncs, &e.report()).await?;
        return Err(e);
    }

    let connection = match connect(obj, ctx, &ns).await {
        Ok(c) => c,
        Err(e) => {
            if let Error::Refused(refusal) = &e {
                let store = counted_store(obj, ctx).await;
                ctx.metrics.count_refusal(RefusalLabels {
                    store,
                    reason: refusal.reason().to_owned(),
                });
            }
            publish(obj, ctx, &syncs, &e.report()).await?;
            return Err(e);
        }
    };
    let used = Some(used_store(&connection));
    match sync(obj, ctx, &ns, &connection, protected).await {
        Ok((report, action)) => {
            if report
                .as_ref()
                .is_none_or(|r| r.phase != crate::api::Phase::Creating)
            {
                ctx.backoff.reset(&key(obj));
            }
            if let Some(mut report) = report {
                report.store = used;
                publish(obj, ctx, &syncs, &report).await?;
            }
            Ok(action)
        }
        Err(e) => {
            let mut report = e.report();
            report.store = used;
            publish(obj, ctx, &syncs, &report).await?;
            Err(e)
        }
    }
}

/// The namespaced Store the SecretSync names, if it names one.
fn namespaced_store(obj: &SecretSync) -> Option<&str> {
    obj.spec
        .target
        .store_ref
        .as_ref()
        .filter(|r| r.kind == StoreKind::Store)
        .map(|r| r.name.as_str())
}

/// After the SecretSync let go of its cleanup finalizer: its Store, if being deleted, may now go too.
async fn release_store(obj: &SecretSync, ctx: &Context, ns: &str) -> Result<(), Error> {
    match namespaced_store(obj) {
        Some(store) => {
            protection::release_if_unused(ctx, ns, store, obj.uid().as_deref()).await?;
            Ok(())
        }
        None => Ok(()),
    }
}

fn used_store(connection: &Connection) -> UsedStore {
    UsedStore {
        kind: connection.store.as_ref().map(|r| r.kind),
        name: connection.store.as_ref().map(|r| r.name.clone()),
        dialect: connection.dialect,
    }
}

/// Finds the store the SecretSync names and decides whether it may be used (see [`resolve::resolve`]).
async fn connect(obj: &SecretSync, ctx: &Context, ns: &str) -> Result<Connection, Error> {
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

/// Reads everything a dialect needs, then hands it to `f`.
struct Inputs {
    dialect: Arc<dyn Dialect>,
    value: SecretValue,
    credentials: Credentials,
    desired: Desired,
}

async fn inputs(
    obj: &SecretSync,
    ctx: &Context,
    ns: &str,
    connection: &Connection,
    protected: bool,
) -> Result<Inputs, Error> {
    let target = &connection.target;
    let dialect = dialect_for(ctx, connection)?;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let src = &obj.spec.source.secret_ref;
    let source = source::read_source(&secrets, &src.name, src.key.as_deref()).await?;
    resolve::source_allowed(connection, &src.name, &source.labels)?;
    let value = source.value;
    let credentials = credentials_in(ctx, connection, Teardown::Never, protected).await?;
    let owner = owner_of(obj, ctx, ns).await?;
    let desired = Desired {
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
        allow_replace: dialect.allows_replace(target),
    };
    Ok(Inputs {
        dialect,
        value,
        credentials,
        desired,
    })
}

fn last_ref(obj: &SecretSync) -> Option<plan::RemoteRef> {
    obj.status
        .as_ref()?
        .remote
        .as_ref()
        .map(|r| plan::RemoteRef {
            name: r.name.clone(),
            id: r.id.clone(),
            version: r.version.clone(),
        })
}

/// `protected`: this reconcile found (or made) its Store protected for cleanups (see [`store_protection`]).
async fn sync(
    obj: &SecretSync,
    ctx: &Context,
    ns: &str,
    connection: &Connection,
    protected: bool,
) -> Result<(Option<Report>, Action), Error> {
    let Inputs {
        dialect,
        value,
        credentials,
        desired,
    } = inputs(obj, ctx, ns, connection, protected).await?;
    let name = obj.name_any();
    let last = last_ref(obj);
    let target = &connection.target;
    let remote_name = connection.remote_name(ns, &name)?;
    let req = Request {
        target,
        remote_name: &remote_name,
        rate_limit: connection.rate_limit,
        credentials: &credentials,
        desired: &desired,
        last: last.as_ref(),
        store: connection.store_id(ns),
    };
    let current = Placement {
        dialect: connection.dialect,
        endpoint: target.endpoint.clone(),
        remote_name: req.remote_name.to_owned(),
    };
    let interval = match duration::parse_refresh(&obj.spec.refresh_interval) {
        Ok(Refresh::Every(interval)) => Some(interval),
        _ => None,
    };
    if let Some(uid) = obj.uid()
        && let Some(wait) = ctx.first_looks.wait(
            &uid,
            startup_spread::in_sync_by_status(obj, &desired.digest, &current),
            interval,
            std::time::Instant::now(),
            rand::random::<f64>(),
        )
    {
        debug!(
            ?wait,
            "in sync by its status: the first store read since the start is spread over the refresh interval"
        );
        return Ok((None, Action::requeue(wait)));
    }
    dialect
        .check(&req, &value)
        .map_err(|e| with_template(e, connection))?;
    let mut observed = dialect.observe(&req).await?;
    if let Observed::Present(remote) = &mut observed {
        if let Some(owner) = &remote.owner
            && !desired.owner.owns(Some(owner))
        {
            remote.owner_exists = owner_exists(ctx, owner).await?;
        }
        // A secret written outside SecretSync carries no digest: its value tells whether taking it over needs a
        // new value, or only SecretSync's marker (a move from another tool rewrites nothing that is equal).
        if remote.digest.is_none()
            && plan::adopts(&desired, remote)
            && let Some(found) = dialect.read_value(&req, remote).await?
        {
            let key = ctx
                .digest_key
                .for_namespace(&desired.owner.scope.namespace_uid);
            remote.digest = Some(key.digest(found.expose()));
        }
    }
    let plan = plan::decide(&desired, &observed, dialect.capabilities(target));
    let observed_ref = match &observed {
        Observed::Present(r) => Some(r.reference.clone()),
        Observed::Absent => None,
    };
    let verdict = plan::verdict::verdict(&desired, &observed, &plan);
    if obj.spec.mode == Mode::Observe {
        debug!(?plan, "observing: nothing is written");
        let report = observation::report(verdict, &remote_name, observed_ref.as_ref());
        return Ok((Some(report), after(refresh_wait(obj))));
    }
    let repairs_drift = plan::verdict::repairs_drift(
        observation::unchanged_since_sync(obj, &desired.digest, &current),
        &plan,
    );
    let outcome = if plan.writes() {
        info!(?plan, "writing to the store");
        ctx.metrics
            .remote_writes
            .get_or_create(&DialectLabels {
                dialect: connection.dialect.as_str().to_owned(),
            })
            .inc();
        Some(dialect.apply(&req, &plan, &observed, &value).await?)
    } else {
        debug!(?plan, "nothing to write");
        None
    };
    drop(value);
    if repairs_drift {
        let store = counted_store(obj, ctx).await;
        ctx.metrics.count_drift_repair(&store);
        let note = observation::repair_note(verdict.drift, &remote_name);
        publish_event(obj, ctx, EventType::Normal, "DriftRepaired", &note).await;
    }
    let source = &obj.spec.source.secret_ref.name;
    if let Some(waited) = ctx.seen_changes.settled(ns, source)
        && outcome.is_some()
    {
        ctx.metrics
            .push_latency
            .get_or_create(&DialectLabels {
                dialect: connection.dialect.as_str().to_owned(),
            })
            .observe(waited.as_secs_f64());
    }
    let mut report = status::for_plan(
        &plan,
        outcome.as_ref(),
        observed_ref.as_ref(),
        &desired.digest,
    );
    if report.synced_digest.is_some() {
        settle_previous(obj, ctx, &*dialect, &req, &current).await?;
        report.placement = Some(current);
    }
    let action = match report.phase {
        crate::api::Phase::Creating => Action::requeue(creating_poll(&ctx.backoff, &key(obj))),
        _ => after(refresh_wait(obj)),
    };
    Ok((Some(report), action))
}

/// When to look again at a secret the store is still creating. A store that says "creating" for ever must not be
/// polled every 3 s for ever: the object's backoff (not reset while it stays Creating) takes the polls from 3 s to
/// 5 minutes.
pub(crate) fn creating_poll(
    backoff: &crate::controller::pacing::backoff::Backoff,
    key: &str,
) -> Duration {
    backoff.next(key).max(CREATING_POLL)
}

/// After a confirmed sync: deletes or leaves the remote secret an earlier spec pointed at (see
/// [`moved::decide_moved`]). A failure keeps the old placement in the status, so the next reconcile tries again.
async fn settle_previous(
    obj: &SecretSync,
    ctx: &Context,
    dialect: &dyn Dialect,
    req: &Request<'_>,
    current: &Placement,
) -> Result<(), Error> {
    let previous = obj
        .status
        .as_ref()
        .and_then(|s| s.synced_target.as_ref())
        .map(|t| Placement {
            dialect: t.dialect,
            endpoint: t.endpoint.clone(),
            remote_name: t.remote_name.clone(),
        });
    let delete_policy = obj.spec.deletion_policy == DeletionPolicy::Delete;
    let old = match moved::decide_moved(previous.as_ref(), current, delete_policy) {
        Moved::Stay => return Ok(()),
        Moved::LeaveOld { remote_name, why } => {
            let why = match why {
                LeaveWhy::Retain => "deletionPolicy is Retain",
                LeaveWhy::OtherStore => "it is in another store (dialect or endpoint changed)",
            };
            let note = format!(
                "the target moved to {:?}; the previous remote secret {remote_name:?} was left in place because {why}",
                current.remote_name
            );
            publish_event(obj, ctx, EventType::Normal, "PreviousRemoteLeft", &note).await;
            return Ok(());
        }
        Moved::DeleteOld { remote_name } => remote_name,
    };
    // The old name's own record (id, version) was replaced by the new write; observe it by name alone.
    let old_req = Request {
        remote_name: &old,
        last: None,
        store: req.store.clone(),
        ..*req
    };
    let failed = |e: DialectError| {
        let message = format!(
            "remote secret {:?} is in sync, but the previous remote secret {old:?} could not be deleted: {}; fix the cause, or set spec.deletionPolicy: Retain to keep it",
            current.remote_name, e.message
        );
        Error::Dialect(DialectError {
            reason: "PreviousRemoteNotDeleted",
            message,
            ..e
        })
    };
    let observed = dialect.observe(&old_req).await.map_err(failed)?;
    match plan::decide_delete(&req.desired.owner, &observed) {
        DeletePlan::Delete => {
            info!(previous = %old, "deleting the previous remote secret");
            dialect.delete(&old_req, &observed).await.map_err(failed)?;
            let note = format!(
                "the target moved to {:?}; the previous remote secret {old:?} was deleted",
                current.remote_name
            );
            publish_event(obj, ctx, EventType::Normal, "PreviousRemoteDeleted", &note).await;
        }
        DeletePlan::AlreadyGone => {}
        DeletePlan::LeaveForeign => {
            let note = format!(
                "the target moved to {:?}; the previous remote secret {old:?} is no longer owned by this SecretSync and was left in place",
                current.remote_name
            );
            publish_event(obj, ctx, EventType::Normal, "PreviousRemoteLeft", &note).await;
        }
    }
    Ok(())
}

/// Gives up the remote cleanup of an object in a namespace being deleted: a Warning Event names the remote secret
/// left behind. New Events cannot be created in a terminating namespace, so the Event goes on the Namespace (it
/// is listed in `default`) when it cannot go on the SecretSync.
async fn leave_remote_secret(obj: &SecretSync, ctx: &Context, cause: &Error) {
    let remote = last_ref(obj).map_or_else(
        || obj.spec.target.remote_name(&obj.name_any()).to_owned(),
        |r| r.name,
    );
    ctx.metrics
        .remote_secrets_left
        .get_or_create(&DialectLabels {
            dialect: dialect_label(obj),
        })
        .inc();
    let note = format!(
        "the namespace is being deleted and the remote secret {remote:?} (store {}) could not be deleted within {}s: {cause}. It was left in place; SecretSync {}/{} was let go",
        store_label(obj),
        ctx.cleanup_timeout.as_secs(),
        obj.namespace().unwrap_or_default(),
        obj.name_any(),
    );
    warn!(remote = %remote, "cleanup timed out in a namespace being deleted; remote secret left in place");
    let event = Event {
        type_: EventType::Warning,
        reason: "RemoteSecretLeft".into(),
        note: Some(status::bounded(&note)),
        action: "Delete".into(),
        secondary: None,
    };
    if ctx
        .recorder
        .publish(&event, &obj.object_ref(&()))
        .await
        .is_err()
    {
        let namespace = k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Namespace".into()),
            name: obj.namespace(),
            uid: None,
            ..Default::default()
        };
        if let Err(e) = ctx.recorder.publish(&event, &namespace).await {
            warn!(error = %e, "cannot publish an Event");
        }
    }
}

/// Whether the SecretSync named by a remote ownership marker still exists.
/// A name the dialect refuses, made by the store's template: the SecretSync's author cannot fix it alone, so the
/// message says where the name came from.
fn with_template(e: DialectError, connection: &Connection) -> Error {
    match connection.name_template() {
        Some(template) if e.reason == "InvalidName" => {
            Error::Refused(Refusal::InvalidSpec(format!(
                "{}; the name is made by the store's remoteNameTemplate {template:?}",
                e.message
            )))
        }
        _ => Error::Dialect(e),
    }
}

/// This SecretSync as its ownership markers name it: in this cluster, in its namespace's current incarnation.
async fn owner_of(obj: &SecretSync, ctx: &Context, ns: &str) -> Result<Owner, Error> {
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

async fn cleanup(obj: &SecretSync, ctx: &Context) -> Result<(), Error> {
    let ns = obj.namespace().ok_or(Error::Incomplete)?;
    let connection = connect(obj, ctx, &ns).await?;
    // Deleting needs only identity and credentials: not the value, and not a source the store would still accept
    // (a Secret relabelled since cannot hold its remote copy hostage).
    let Inputs {
        dialect,
        credentials,
        desired,
        ..
    } = inputs_without_source(obj, ctx, &ns, &connection).await?;
    let name = obj.name_any();
    let last = last_ref(obj);
    let target = &connection.target;
    let remote_name = connection.remote_name(&ns, &name)?;
    let req = Request {
        target,
        remote_name: &remote_name,
        rate_limit: connection.rate_limit,
        credentials: &credentials,
        desired: &desired,
        last: last.as_ref(),
        store: connection.store_id(&ns),
    };
    let observed = dialect.observe(&req).await?;
    match plan::decide_delete(&desired.owner, &observed) {
        DeletePlan::Delete => {
            info!("deleting the remote secret");
            dialect.delete(&req, &observed).await?;
            publish_event(
                obj,
                ctx,
                EventType::Normal,
                "Deleted",
                "remote secret deleted",
            )
            .await;
        }
        DeletePlan::AlreadyGone => {}
        DeletePlan::LeaveForeign => {
            publish_event(
                obj,
                ctx,
                EventType::Normal,
                "LeftForeign",
                "the remote secret is not owned by this SecretSync and was left in place",
            )
            .await;
        }
    }
    Ok(())
}

async fn inputs_without_source(
    obj: &SecretSync,
    ctx: &Context,
    ns: &str,
    connection: &Connection,
) -> Result<Inputs, Error> {
    let dialect = dialect_for(ctx, connection)?;
    let credentials = credentials_in(ctx, connection, Teardown::MayRecall, false).await?;
    let desired = Desired {
        digest: String::new(),
        earlier_digest: None,
        metadata: Metadata::default(),
        owner: owner_of(obj, ctx, ns).await?,
        policy: WritePolicy::Replace,
        adopt_existing: false,
        adoption: crate::plan::Adoption::Never,
        allow_replace: false,
    };
    Ok(Inputs {
        dialect,
        value: SecretValue::new(Vec::new()),
        credentials,
        desired,
    })
}

pub(crate) fn dialect_for(
    ctx: &Context,
    connection: &Connection,
) -> Result<Arc<dyn Dialect>, Error> {
    ctx.registry
        .get(connection.dialect)
        .cloned()
        .ok_or_else(|| Error::NoDialect(connection.dialect.to_string()))
}

/// The store's credentials: its Secret's keys, the store's CA bundle as `ca.crt`, and a ServiceAccount token when
/// the store federates one.
pub(crate) async fn credentials(
    ctx: &Context,
    connection: &Connection,
) -> Result<Credentials, Error> {
    credentials_in(ctx, connection, Teardown::Never, false).await
}

/// Whether credentials whose Secret is gone may be recalled from memory (see [`store_protection`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Teardown {
    Never,
    /// Only a remote cleanup may, and only in a namespace being deleted.
    MayRecall,
}

/// `protected`: the caller knows the Store to be protected, which the watch may not show yet.
async fn credentials_in(
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

async fn set_finalizer(
    api: &Api<SecretSync>,
    obj: &SecretSync,
    present: bool,
) -> Result<(), Error> {
    Ok(crate::controller::sync::finalizers::set(api, obj, FINALIZER, present).await?)
}

async fn write_status(
    api: &Api<SecretSync>,
    obj: &SecretSync,
    status: &SecretSyncStatus,
) -> Result<(), Error> {
    let patch = json!({
        "apiVersion": "secretsync.io/v1alpha1",
        "kind": "SecretSync",
        "status": status,
    });
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    match api
        .patch_status(&obj.name_any(), &pp, &Patch::Apply(&patch))
        .await
    {
        Ok(_) => Ok(()),
        // Deleted meanwhile: nothing to report on.
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn publish(
    obj: &SecretSync,
    ctx: &Context,
    api: &Api<SecretSync>,
    report: &Report,
) -> Result<(), Error> {
    let prev = obj.status.as_ref();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let next = status::next(prev, obj.meta().generation, report, &now);
    let next = observation::for_mode(next, obj.spec.mode);
    if let Some(in_sync) = observation::changed(prev, &next) {
        let kind = match in_sync.status.as_str() {
            "False" => EventType::Warning,
            _ => EventType::Normal,
        };
        publish_event(obj, ctx, kind, &in_sync.reason, &in_sync.message).await;
    }
    if status::is_transition(prev, report) {
        let kind = if report.is_warning() {
            warn!(reason = %report.reason, message = %report.message, "not in sync");
            EventType::Warning
        } else {
            info!(reason = %report.reason, "status changed");
            EventType::Normal
        };
        publish_event(obj, ctx, kind, &report.reason, &report.message).await;
    }
    if prev != Some(&next) {
        write_status(api, obj, &next).await?;
    }
    Ok(())
}

async fn publish_suspended(
    obj: &SecretSync,
    ctx: &Context,
    api: &Api<SecretSync>,
) -> Result<(), Error> {
    let prev = obj.status.clone().unwrap_or_default();
    let already = prev
        .conditions
        .iter()
        .any(|c| c.type_ == status::READY && c.reason == "Suspended");
    if already && prev.observed_generation == obj.meta().generation {
        return Ok(());
    }
    let report = Report {
        phase: prev.phase.unwrap_or(crate::api::Phase::Pending),
        ready: prev
            .conditions
            .iter()
            .any(|c| c.type_ == status::READY && c.status == "True"),
        reason: "Suspended".into(),
        message: "spec.suspend is true: SecretSync neither reads nor writes the store".into(),
        remote: None,
        synced_digest: None,
        placement: None,
        store: None,
        in_step: false,
        observation: None,
    };
    publish(obj, ctx, api, &report).await
}

async fn publish_event(obj: &SecretSync, ctx: &Context, kind: EventType, reason: &str, note: &str) {
    let event = Event {
        type_: kind,
        reason: reason.to_owned(),
        note: Some(status::bounded(note)),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &obj.object_ref(&())).await {
        warn!(error = %e, "cannot publish an Event");
    }
}
