//! One reconcile: read the SecretSync and its Secrets, observe the store, plan, act, report.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::{Instrument, debug, info, info_span, warn};

use super::source::{self, SourceError};
use super::status::{self, Report};
use super::{CREATING_POLL, Context, FIELD_MANAGER, FINALIZER};
use crate::api::{DeletionPolicy, SecretSync, SecretSyncStatus, UpdatePolicy, parse_duration};
use crate::dialects::{Dialect, DialectError, ErrorClass, Request};
use crate::metrics::{DialectLabels, ReconcileLabels};
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
}

impl Error {
    fn report(&self) -> Report {
        match self {
            Error::Source(e) => Report::failed(
                e.reason(),
                format!("{e}; SecretSync retries when the Secret changes"),
            ),
            Error::Dialect(e) => status::for_dialect_error(e),
            Error::NoDialect(_) => Report::failed("DialectUnavailable", self.to_string()),
            Error::Kube(_) => Report::failed("KubernetesError", self.to_string()),
            Error::Incomplete => Report::failed("Invalid", self.to_string()),
        }
    }

    /// What to do next: back off on transient trouble, wait for a change otherwise.
    fn retry(&self) -> Retry {
        match self {
            Error::Source(SourceError::Kube { .. }) | Error::Kube(_) => Retry::Backoff(None),
            Error::Source(_) | Error::NoDialect(_) | Error::Incomplete => Retry::AwaitChange,
            Error::Dialect(e) => match e.class {
                ErrorClass::Retry | ErrorClass::Conflict => Retry::Backoff(e.retry_after),
                ErrorClass::Credentials | ErrorClass::Permanent => Retry::Refresh,
            },
        }
    }
}

enum Retry {
    Backoff(Option<Duration>),
    /// Only a change can fix it; still look again at the refresh interval (the store side may be fixed).
    Refresh,
    AwaitChange,
}

fn key(obj: &SecretSync) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

fn refresh_interval(obj: &SecretSync) -> Duration {
    parse_duration(&obj.spec.refresh_interval).unwrap_or(Duration::from_secs(3600))
}

/// The store an object talks to, for sharing workers fairly between stores.
fn store_key(obj: &SecretSync) -> String {
    let target = &obj.spec.target;
    format!(
        "{}|{}",
        target.dialect,
        target.endpoint.as_deref().unwrap_or_default()
    )
}

pub async fn reconcile(obj: Arc<SecretSync>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _slot = match ctx.slots.try_enter(&store_key(&obj), &key(&obj)) {
        Ok(slot) => slot,
        Err(backlog) => {
            ctx.metrics
                .deferred
                .get_or_create(&DialectLabels {
                    dialect: obj.spec.target.dialect.as_str().to_owned(),
                })
                .inc();
            let wait = super::slots::defer_delay(backlog, rand::random::<f64>());
            debug!(object = %key(&obj), backlog, wait_ms = wait.as_millis() as u64, "store busy; deferred");
            return Ok(Action::requeue(wait));
        }
    };
    let span = info_span!(
        "reconcile",
        namespace = %obj.namespace().unwrap_or_default(),
        name = %obj.name_any(),
        dialect = %obj.spec.target.dialect,
    );
    let dialect_label = obj.spec.target.dialect.as_str().to_owned();
    let started = Instant::now();
    let result = reconcile_inner(&obj, &ctx).instrument(span).await;
    ctx.metrics
        .reconcile_duration
        .get_or_create(&DialectLabels {
            dialect: dialect_label.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    ctx.metrics
        .reconciles
        .get_or_create(&ReconcileLabels {
            dialect: dialect_label,
            result: if result.is_ok() { "ok" } else { "error" }.to_owned(),
        })
        .inc();
    result
}

pub fn error_policy(obj: Arc<SecretSync>, err: &Error, ctx: Arc<Context>) -> Action {
    match err.retry() {
        Retry::Backoff(after) => {
            let wait = ctx.backoff.next(&key(&obj)).max(after.unwrap_or_default());
            debug!(wait_ms = wait.as_millis() as u64, "retrying after backoff");
            Action::requeue(wait)
        }
        Retry::Refresh => {
            ctx.backoff.reset(&key(&obj));
            Action::requeue(refresh_interval(&obj))
        }
        Retry::AwaitChange => {
            ctx.backoff.reset(&key(&obj));
            Action::await_change()
        }
    }
}

async fn reconcile_inner(obj: &SecretSync, ctx: &Context) -> Result<Action, Error> {
    let ns = obj.namespace().ok_or(Error::Incomplete)?;
    let syncs: Api<SecretSync> = Api::namespaced(ctx.client.clone(), &ns);
    let has_finalizer = obj.finalizers().iter().any(|f| f == FINALIZER);
    let wants_finalizer = obj.spec.deletion_policy == DeletionPolicy::Delete;

    if obj.meta().deletion_timestamp.is_some() {
        if !has_finalizer {
            return Ok(Action::await_change());
        }
        if wants_finalizer && let Err(e) = cleanup(obj, ctx).await {
            let mut report = e.report();
            report.reason = "DeletionBlocked".into();
            report.message = format!(
                "cannot delete the remote secret: {}. Fix the cause, or set spec.deletionPolicy: Retain to let this SecretSync go and keep the remote secret",
                e
            );
            publish(obj, ctx, &syncs, &report).await?;
            return Err(e);
        }
        set_finalizer(&syncs, obj, false).await?;
        return Ok(Action::await_change());
    }
    if wants_finalizer != has_finalizer {
        set_finalizer(&syncs, obj, wants_finalizer).await?;
    }

    if obj.spec.suspend {
        publish_suspended(obj, ctx, &syncs).await?;
        return Ok(Action::await_change());
    }

    match sync(obj, ctx, &ns).await {
        Ok((report, action)) => {
            ctx.backoff.reset(&key(obj));
            publish(obj, ctx, &syncs, &report).await?;
            Ok(action)
        }
        Err(e) => {
            publish(obj, ctx, &syncs, &e.report()).await?;
            Err(e)
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

async fn inputs(obj: &SecretSync, ctx: &Context, ns: &str) -> Result<Inputs, Error> {
    let target = &obj.spec.target;
    let dialect = ctx
        .registry
        .get(target.dialect)
        .cloned()
        .ok_or_else(|| Error::NoDialect(target.dialect.to_string()))?;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let src = &obj.spec.source.secret_ref;
    let value = source::read_source(&secrets, &src.name, src.key.as_deref()).await?;
    let credentials = match &target.credentials_ref {
        Some(c) => source::read_credentials(&secrets, &c.name).await?,
        None => Credentials::default(),
    };
    let desired = Desired {
        digest: ctx.digest_key.digest(value.expose()),
        metadata: Metadata {
            content_type: target.content_type.clone(),
            description: target.description.clone(),
            labels: target.labels.clone(),
        },
        owner: Owner {
            namespace: ns.to_owned(),
            name: obj.name_any(),
            uid: obj.uid().ok_or(Error::Incomplete)?,
        },
        policy: match obj.spec.update_policy {
            UpdatePolicy::Replace => WritePolicy::Replace,
            UpdatePolicy::IfNotExists => WritePolicy::IfNotExists,
        },
        adopt_existing: obj.spec.adopt_existing,
        allow_replace: target
            .service_fabric_mesh
            .as_ref()
            .is_some_and(|s| s.allow_replace),
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

async fn sync(obj: &SecretSync, ctx: &Context, ns: &str) -> Result<(Report, Action), Error> {
    let Inputs {
        dialect,
        value,
        credentials,
        desired,
    } = inputs(obj, ctx, ns).await?;
    let name = obj.name_any();
    let last = last_ref(obj);
    let req = Request {
        target: &obj.spec.target,
        remote_name: obj.spec.target.remote_name(&name),
        credentials: &credentials,
        desired: &desired,
        last: last.as_ref(),
    };
    dialect.check(&req, &value)?;
    let mut observed = dialect.observe(&req).await?;
    if let Observed::Present(remote) = &mut observed
        && let Some(owner) = &remote.owner
        && owner.uid != desired.owner.uid
        && owner.key() != desired.owner.key()
    {
        remote.owner_exists = owner_exists(ctx, owner).await?;
    }
    let plan = plan::decide(&desired, &observed, dialect.capabilities(&obj.spec.target));
    let observed_ref = match &observed {
        Observed::Present(r) => Some(r.reference.clone()),
        Observed::Absent => None,
    };
    let outcome = if plan.writes() {
        info!(?plan, "writing to the store");
        ctx.metrics
            .remote_writes
            .get_or_create(&DialectLabels {
                dialect: obj.spec.target.dialect.as_str().to_owned(),
            })
            .inc();
        Some(dialect.apply(&req, &plan, &observed, &value).await?)
    } else {
        debug!(?plan, "nothing to write");
        None
    };
    drop(value);
    let mut report = status::for_plan(
        &plan,
        outcome.as_ref(),
        observed_ref.as_ref(),
        &desired.digest,
    );
    if report.synced_digest.is_some() {
        let current = Placement {
            dialect: obj.spec.target.dialect,
            endpoint: obj.spec.target.endpoint.clone(),
            remote_name: req.remote_name.to_owned(),
        };
        settle_previous(obj, ctx, &*dialect, &req, &current).await?;
        report.placement = Some(current);
    }
    let action = match report.phase {
        crate::api::Phase::Creating => Action::requeue(CREATING_POLL),
        _ => Action::requeue(super::backoff::with_jitter(
            refresh_interval(obj),
            rand::random::<f64>(),
        )),
    };
    Ok((report, action))
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

/// Whether the SecretSync named by a remote ownership marker still exists.
async fn owner_exists(ctx: &Context, owner: &Owner) -> Result<bool, Error> {
    let api: Api<SecretSync> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    Ok(match api.get_opt(&owner.name).await? {
        Some(other) => owner.uid.is_empty() || other.uid().as_deref() == Some(owner.uid.as_str()),
        None => false,
    })
}

async fn cleanup(obj: &SecretSync, ctx: &Context) -> Result<(), Error> {
    let ns = obj.namespace().ok_or(Error::Incomplete)?;
    let Inputs {
        dialect,
        credentials,
        desired,
        ..
    } = match inputs(obj, ctx, &ns).await {
        Ok(i) => i,
        // Without the source the value is unknown, but deleting needs only identity and credentials.
        Err(Error::Source(
            SourceError::SourceNotFound(_)
            | SourceError::KeyNotFound { .. }
            | SourceError::SourceEmpty(_),
        )) => inputs_without_source(obj, ctx, &ns).await?,
        Err(e) => return Err(e),
    };
    let name = obj.name_any();
    let last = last_ref(obj);
    let req = Request {
        target: &obj.spec.target,
        remote_name: obj.spec.target.remote_name(&name),
        credentials: &credentials,
        desired: &desired,
        last: last.as_ref(),
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

async fn inputs_without_source(obj: &SecretSync, ctx: &Context, ns: &str) -> Result<Inputs, Error> {
    let target = &obj.spec.target;
    let dialect = ctx
        .registry
        .get(target.dialect)
        .cloned()
        .ok_or_else(|| Error::NoDialect(target.dialect.to_string()))?;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let credentials = match &target.credentials_ref {
        Some(c) => source::read_credentials(&secrets, &c.name).await?,
        None => Credentials::default(),
    };
    let desired = Desired {
        digest: String::new(),
        metadata: Metadata::default(),
        owner: Owner {
            namespace: ns.to_owned(),
            name: obj.name_any(),
            uid: obj.uid().ok_or(Error::Incomplete)?,
        },
        policy: WritePolicy::Replace,
        adopt_existing: false,
        allow_replace: false,
    };
    Ok(Inputs {
        dialect,
        value: SecretValue::new(Vec::new()),
        credentials,
        desired,
    })
}

async fn set_finalizer(
    api: &Api<SecretSync>,
    obj: &SecretSync,
    present: bool,
) -> Result<(), Error> {
    let mut finalizers: Vec<String> = obj
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    if present {
        finalizers.push(FINALIZER.to_owned());
    }
    // The resourceVersion makes this a compare-and-swap: a concurrent change fails it and the next reconcile
    // sees the new object.
    let patch = json!({
        "metadata": {
            "resourceVersion": obj.resource_version(),
            "finalizers": finalizers,
        }
    });
    api.patch(
        &obj.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
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
    if prev != Some(&next) || needs_time_refresh(prev, report) {
        write_status(api, obj, &next).await?;
    }
    Ok(())
}

/// A confirmed sync moves `lastSyncTime` even when nothing else changed.
fn needs_time_refresh(_prev: Option<&SecretSyncStatus>, report: &Report) -> bool {
    report.synced_digest.is_some()
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
    };
    publish(obj, ctx, api, &report).await
}

async fn publish_event(obj: &SecretSync, ctx: &Context, kind: EventType, reason: &str, note: &str) {
    let event = Event {
        type_: kind,
        reason: reason.to_owned(),
        note: Some(note.chars().take(1000).collect()),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &obj.object_ref(&())).await {
        warn!(error = %e, "cannot publish an Event");
    }
}
