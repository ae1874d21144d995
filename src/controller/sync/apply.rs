//! Step 6, apply: the dialect's writes. The plan's write, and after a confirmed sync what becomes of the remote
//! secret an earlier spec pointed at; what they leave to say is returned as Event notes for the commit.

use tracing::{debug, info};

use super::decide::Decision;
use super::dereference::Dereferenced;
use super::error::Error;
use super::outcome::Note;
use crate::api::{DeletionPolicy, SecretSync};
use crate::controller::Context;
use crate::controller::telemetry::events::EventType;
use crate::dialects::{DialectError, Outcome};
use crate::metrics::DialectLabels;
use crate::plan::moved::{self, LeaveWhy, Moved, Placement};
use crate::plan::{self, DeletePlan, Observed};

/// Carries out the plan when it writes; `None` when there is nothing to write.
pub async fn write(
    ctx: &Context,
    read: &Dereferenced,
    namespace: &str,
    decision: &Decision,
    observed: &Observed,
) -> Result<Option<Outcome>, Error> {
    let plan = &decision.plan;
    let Some(write) = plan.write() else {
        debug!(?plan, "nothing to write");
        return Ok(None);
    };
    info!(?plan, "writing to the store");
    ctx.metrics
        .remote_writes
        .get_or_create(&DialectLabels {
            dialect: read.connection.dialect.as_str().to_owned(),
        })
        .inc();
    let req = read.request(namespace);
    Ok(Some(
        read.dialect
            .apply(&req, &write, observed, &read.value)
            .await?,
    ))
}

/// After a confirmed sync: deletes or leaves the remote secret an earlier spec pointed at (see
/// [`moved::decide_moved`]). A failure keeps the old placement in the status, so the next reconcile tries again.
pub async fn settle_previous(
    obj: &SecretSync,
    read: &Dereferenced,
    namespace: &str,
) -> Result<Vec<Note>, Error> {
    let current = &read.placement;
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
    let moved_to = |(reason, what): (&'static str, String)| {
        Note::new(
            EventType::Normal,
            reason,
            format!("the target moved to {:?}; {what}", current.remote_name),
        )
    };
    let old = match moved::decide_moved(previous.as_ref(), current, delete_policy) {
        Moved::Stay => return Ok(Vec::new()),
        Moved::LeaveOld { remote_name, why } => {
            let why = match why {
                LeaveWhy::Retain => "deletionPolicy is Retain",
                LeaveWhy::OtherStore => "it is in another store (dialect or endpoint changed)",
            };
            let note = format!(
                "the previous remote secret {remote_name:?} was left in place because {why}"
            );
            return Ok(vec![moved_to(("PreviousRemoteLeft", note))]);
        }
        Moved::DeleteOld { remote_name } => remote_name,
    };
    // The old name's own record (id, version) was replaced by the new write; observe it by name alone.
    let req = read.request(namespace);
    let old_req = crate::dialects::Request {
        remote_name: &old,
        last: None,
        store: req.store.clone(),
        ..req
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
    let observed = read.dialect.observe(&old_req).await.map_err(failed)?;
    let note = match plan::decide_delete(&read.desired.owner, &observed) {
        DeletePlan::Delete => {
            info!(previous = %old, "deleting the previous remote secret");
            read.dialect
                .delete(&old_req, &observed)
                .await
                .map_err(failed)?;
            let note = format!("the previous remote secret {old:?} was deleted");
            Some(moved_to(("PreviousRemoteDeleted", note)))
        }
        DeletePlan::AlreadyGone => None,
        DeletePlan::LeaveForeign => {
            let note = format!(
                "the previous remote secret {old:?} is no longer owned by this SecretSync and was left in place"
            );
            Some(moved_to(("PreviousRemoteLeft", note)))
        }
    };
    Ok(note.into_iter().collect())
}
