//! Step 8, commit: the one writer. What a reconcile reports reaches the cluster here and only here: the status
//! (one server-side apply), its Events and its metrics.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use super::error::Error;
use super::names::{after, counted_store, key, refresh_wait};
use super::observation;
use super::outcome::{Effects, Next, Note};
use super::status::{self, Report};
use crate::api::{Phase, SecretSync, SecretSyncStatus, UsedStore};
use crate::controller::telemetry::events::{Event, EventType};
use crate::controller::{CREATING_POLL, Context, FIELD_MANAGER};
use crate::metrics::{DialectLabels, RefusalLabels};

/// A failed reconcile, with the store it had resolved (the status names it).
pub struct Failure {
    pub error: Error,
    pub store: Option<UsedStore>,
}

impl<E: Into<Error>> From<E> for Failure {
    fn from(error: E) -> Failure {
        Failure {
            error: error.into(),
            store: None,
        }
    }
}

/// Carries out what a reconcile that reached its store decided.
pub async fn effects(
    obj: &SecretSync,
    ctx: &Context,
    store: UsedStore,
    effects: Effects,
) -> Result<Action, Error> {
    let Effects {
        report,
        notes,
        next,
        wrote,
        repaired_drift,
        applied,
        sources,
        failed,
    } = effects;
    if failed.is_none() && report.as_ref().is_none_or(|r| r.phase != Phase::Creating) {
        ctx.backoff.reset(&key(obj));
    }
    if repaired_drift {
        ctx.metrics
            .count_drift_repair(&counted_store(obj, ctx).await);
    }
    if applied {
        let ns = obj.namespace().unwrap_or_default();
        for source in obj
            .spec
            .source
            .secret_ref
            .iter()
            .map(|r| &r.name)
            .chain(&sources)
        {
            if let Some(waited) = ctx.seen_changes.settled(&ns, source)
                && wrote
            {
                ctx.metrics
                    .push_latency
                    .get_or_create(&DialectLabels {
                        dialect: store.dialect.as_str().to_owned(),
                    })
                    .observe(waited.as_secs_f64());
            }
        }
    }
    for note in &notes {
        event(obj, ctx, note).await;
    }
    if let Some(mut report) = report {
        report.store = Some(store);
        publish(obj, ctx, &report).await?;
    }
    if let Some(error) = failed {
        return Err(error);
    }
    Ok(match next {
        Next::Refresh => after(refresh_wait(obj)),
        Next::PollCreating => Action::requeue(creating_poll(&ctx.backoff, &key(obj))),
        Next::After(wait) => Action::requeue(wait),
    })
}

/// Reports a failed reconcile and hands its error on (or the error of reporting it).
pub async fn failure(obj: &SecretSync, ctx: &Context, failure: Failure) -> Error {
    let Failure { error, store } = failure;
    if let Error::Refused(refusal) = &error {
        ctx.metrics.count_refusal(RefusalLabels {
            store: counted_store(obj, ctx).await,
            reason: refusal.reason().to_owned(),
        });
    }
    let mut report = error.report();
    report.store = store;
    match publish(obj, ctx, &report).await {
        Ok(()) => error,
        Err(e) => e,
    }
}

/// When to look again at a secret the store is still creating. A store that says "creating" for ever must not be
/// polled every 3 s for ever: the object's backoff (not reset while it stays Creating) takes the polls from 3 s to
/// 5 minutes.
pub fn creating_poll(backoff: &crate::controller::pacing::backoff::Backoff, key: &str) -> Duration {
    backoff.next(key).max(CREATING_POLL)
}

/// Writes the status a report leads to (when it changed), with an Event for each change of `Ready` or `InSync`.
pub async fn publish(obj: &SecretSync, ctx: &Context, report: &Report) -> Result<(), Error> {
    let prev = obj.status.as_ref();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let next = status::next(prev, obj.meta().generation, report, &now);
    let next = observation::for_mode(next, obj.spec.mode);
    if let Some(in_sync) = observation::changed(prev, &next) {
        let kind = match in_sync.status.as_str() {
            "False" => EventType::Warning,
            _ => EventType::Normal,
        };
        record(obj, ctx, kind, &in_sync.reason, &in_sync.message).await;
    }
    if status::is_transition(prev, report) {
        let kind = if report.is_warning() {
            warn!(reason = %report.reason, message = %report.message, "not in sync");
            EventType::Warning
        } else {
            info!(reason = %report.reason, "status changed");
            EventType::Normal
        };
        record(obj, ctx, kind, &report.reason, &report.message).await;
    }
    if prev != Some(&next) {
        write_status(ctx, obj, &next).await?;
    }
    Ok(())
}

/// Records one Event on the SecretSync.
pub async fn event(obj: &SecretSync, ctx: &Context, note: &Note) {
    record(obj, ctx, note.kind, note.reason, &note.text).await
}

async fn record(obj: &SecretSync, ctx: &Context, kind: EventType, reason: &str, note: &str) {
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

async fn write_status(
    ctx: &Context,
    obj: &SecretSync,
    status: &SecretSyncStatus,
) -> Result<(), Error> {
    let api: Api<SecretSync> =
        Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
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

/// Records an Event on the SecretSync, or on its Namespace (listed in `default`) when a namespace being deleted
/// takes no new Events.
pub async fn event_or_on_namespace(obj: &SecretSync, ctx: &Context, note: &Note) {
    let event = Event {
        type_: note.kind,
        reason: note.reason.to_owned(),
        note: Some(status::bounded(&note.text)),
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
