//! Step 1, admit: whether this reconcile runs now. A worker of the object's namespace share and of its store's
//! share (or a deferral while one is full), and after a start the spread of first store reads over the refresh
//! interval.

use std::time::Duration;

use kube::ResourceExt;
use tracing::debug;

use super::dereference::Dereferenced;
use super::names::{dialect_label, key, store_key};
use crate::api::SecretSync;
use crate::api::duration::{self, Refresh};
use crate::controller::Context;
use crate::controller::pacing::fair_share::{self, Slot};
use crate::controller::pacing::startup_spread;
use crate::metrics::DeferLabels;

/// The workers a running reconcile holds, given back when dropped.
pub struct Admitted {
    _namespace: Slot,
    _store: Slot,
}

/// A worker for `obj`: a slot in its namespace's share and one in its store's; or, when a share is full, how long
/// to wait before trying again (with the share's backlog).
pub fn enter(ctx: &Context, obj: &SecretSync) -> Result<Admitted, Duration> {
    let object = key(obj);
    let full = |share: &str, backlog: usize| {
        ctx.metrics
            .deferred
            .get_or_create(&DeferLabels {
                dialect: dialect_label(obj),
                share: share.to_owned(),
            })
            .inc();
        let wait = fair_share::defer_delay(backlog, rand::random::<f64>());
        debug!(object = %object, backlog, wait_ms = wait.as_millis() as u64, "share busy; deferred");
        wait
    };
    let namespace = ctx
        .namespaces
        .try_enter(&obj.namespace().unwrap_or_default(), &object)
        .map_err(|backlog| full("namespace", backlog))?;
    let store = ctx
        .stores
        .try_enter(&store_key(obj), &object)
        .map_err(|backlog| full("store", backlog))?;
    Ok(Admitted {
        _namespace: namespace,
        _store: store,
    })
}

/// After a start, an object whose status already shows this value synced to this place is not read at once: its
/// first read falls at a random moment within its refresh interval. `Some(wait)` defers it.
pub fn spread(ctx: &Context, obj: &SecretSync, read: &Dereferenced) -> Option<Duration> {
    let in_sync = startup_spread::in_sync_by_status(obj, &read.desired.digest, &read.placement);
    spread_if(ctx, obj, in_sync)
}

/// The same for an object whose status shows it in sync (`in_sync`) by whatever it writes.
pub fn spread_if(ctx: &Context, obj: &SecretSync, in_sync: bool) -> Option<Duration> {
    let uid = obj.uid()?;
    let interval = match duration::parse_refresh(&obj.spec.refresh_interval) {
        Ok(Refresh::Every(interval)) => Some(interval),
        _ => None,
    };
    let wait = ctx.first_looks.wait(
        &uid,
        in_sync,
        interval,
        std::time::Instant::now(),
        rand::random::<f64>(),
    )?;
    debug!(
        ?wait,
        "in sync by its status: the first store read since the start is spread over the refresh interval"
    );
    Some(wait)
}
