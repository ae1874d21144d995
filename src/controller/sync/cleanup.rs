//! A SecretSync being deleted: the same steps without a source. Dereference (store, credentials, identity),
//! observe, decide whether the remote secret is ours to delete, delete, and let the object go; in a namespace
//! being deleted, give up after `--cleanup-timeout-seconds` and say what was left.

use std::time::Duration;

use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use tracing::{info, warn};

use super::cleanup_deadline::{self, BlockedCleanup};
use super::commit;
use super::dereference;
use super::error::Error;
use super::names::{dialect_label, namespaced_store, store_label};
use super::outcome::Note;
use crate::api::{DeletionPolicy, Mode, SecretSync};
use crate::controller::stores::protection;
use crate::controller::telemetry::events::EventType;
use crate::controller::{Context, FINALIZER};
use crate::metrics::DialectLabels;
use crate::plan::{self, DeletePlan};

/// Whether the object holds (or should hold) the cleanup finalizer: observing deletes nothing, so it holds
/// nothing up either.
pub fn wants_finalizer(obj: &SecretSync) -> bool {
    obj.spec.deletion_policy == DeletionPolicy::Delete && obj.spec.mode == Mode::Sync
}

pub fn has_finalizer(obj: &SecretSync) -> bool {
    obj.finalizers().iter().any(|f| f == FINALIZER)
}

/// The object is being deleted: clean up if it asks for it, then release the finalizer.
pub async fn run(obj: &SecretSync, ctx: &Context, ns: &str) -> Result<Action, Error> {
    if !has_finalizer(obj) {
        return Ok(Action::await_change());
    }
    if wants_finalizer(obj) {
        let deleted = if obj.spec.writes_many() {
            super::remotes::delete_all(obj, ctx, ns).await
        } else {
            delete_remote(obj, ctx, ns).await.map(Vec::from_iter)
        };
        match deleted {
            Ok(notes) => {
                for note in &notes {
                    commit::event(obj, ctx, note).await;
                }
            }
            Err(e) => {
                let deleting_for = obj
                    .meta()
                    .deletion_timestamp
                    .as_ref()
                    .and_then(|at| {
                        Duration::try_from(k8s_openapi::jiff::Timestamp::now().duration_since(at.0))
                            .ok()
                    })
                    .unwrap_or(Duration::ZERO);
                let terminating = ctx.lookup.namespace_terminating(ns).await?;
                match cleanup_deadline::decide(terminating, deleting_for, ctx.cleanup_timeout) {
                    BlockedCleanup::GiveUp => leave_remote_secret(obj, ctx, &e).await,
                    BlockedCleanup::KeepTrying { give_up_in } => {
                        let e = Error::CleanupBlocked {
                            source: Box::new(e),
                            give_up_in,
                        };
                        return Err(commit::failure(obj, ctx, e.into()).await);
                    }
                }
            }
        }
    }
    set_finalizer(obj, ctx, false).await?;
    release_store(obj, ctx, ns).await?;
    if let Some(uid) = obj.uid() {
        ctx.first_looks.forget(&uid);
    }
    Ok(Action::await_change())
}

/// Adds or removes the finalizer as the spec asks; returns whether this reconcile's Store is protected for
/// cleanups (see [`protection`]).
pub async fn settle_finalizer(obj: &SecretSync, ctx: &Context, ns: &str) -> Result<bool, Error> {
    let wants = wants_finalizer(obj);
    if wants != has_finalizer(obj) {
        set_finalizer(obj, ctx, wants).await?;
        if !wants {
            release_store(obj, ctx, ns).await?;
        }
    }
    Ok(match namespaced_store(obj) {
        Some(store) if wants => protection::protect(ctx, ns, store).await?,
        _ => false,
    })
}

async fn set_finalizer(obj: &SecretSync, ctx: &Context, present: bool) -> Result<(), Error> {
    let api: Api<SecretSync> =
        Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    Ok(super::finalizers::set(&api, obj, FINALIZER, present).await?)
}

/// After the SecretSync let go of its cleanup finalizer: its Store, if being deleted, may now go too.
async fn release_store(obj: &SecretSync, ctx: &Context, ns: &str) -> Result<(), Error> {
    if let Some(store) = namespaced_store(obj) {
        protection::release_if_unused(ctx, ns, store, obj.uid().as_deref()).await?;
    }
    Ok(())
}

/// Deletes the remote secret if it is this SecretSync's; the Event to record, if any.
async fn delete_remote(obj: &SecretSync, ctx: &Context, ns: &str) -> Result<Option<Note>, Error> {
    let connection = dereference::store(obj, ctx, ns).await?;
    let read = dereference::for_cleanup(obj, ctx, ns, connection).await?;
    let req = read.request(ns);
    let observed = read.dialect.observe(&req).await?;
    Ok(match plan::decide_delete(&read.desired.owner, &observed) {
        DeletePlan::Delete => {
            info!("deleting the remote secret");
            read.dialect.delete(&req, &observed).await?;
            Some(Note::new(
                EventType::Normal,
                "Deleted",
                "remote secret deleted".into(),
            ))
        }
        DeletePlan::AlreadyGone => None,
        DeletePlan::LeaveForeign => Some(Note::new(
            EventType::Normal,
            "LeftForeign",
            "the remote secret is not owned by this SecretSync and was left in place".into(),
        )),
    })
}

/// Gives up the remote cleanup of an object in a namespace being deleted: a Warning Event names the remote secret
/// left behind.
async fn leave_remote_secret(obj: &SecretSync, ctx: &Context, cause: &Error) {
    let remote = dereference::last_remote(obj).map_or_else(
        || obj.spec.target.remote_name(&obj.name_any()).to_owned(),
        |r| r.name,
    );
    ctx.metrics
        .remote_secrets_left
        .get_or_create(&DialectLabels {
            dialect: dialect_label(obj),
        })
        .inc();
    let text = format!(
        "the namespace is being deleted and the remote secret {remote:?} (store {}) could not be deleted within {}s: {cause}. It was left in place; SecretSync {}/{} was let go",
        store_label(obj),
        ctx.cleanup_timeout.as_secs(),
        obj.namespace().unwrap_or_default(),
        obj.name_any(),
    );
    warn!(remote = %remote, "cleanup timed out in a namespace being deleted; remote secret left in place");
    let note = Note::new(EventType::Warning, "RemoteSecretLeft", text);
    commit::event_or_on_namespace(obj, ctx, &note).await;
}
