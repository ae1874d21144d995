//! From what a reconcile found to the status it writes: phase, the `Ready` condition and the remote identity.
//! Pure, so every mapping is unit-tested.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::{
    Phase, RemoteEntryStatus, RemoteStatus, SecretSyncStatus, SyncedTarget, UsedStore,
};
use crate::dialects::{DialectError, ErrorClass, Outcome};
use crate::plan::moved::Placement;
use crate::plan::{Plan, Refusal, RemoteRef};

pub const READY: &str = "Ready";
/// kstatus: the controller is still working towards the desired state.
pub const RECONCILING: &str = "Reconciling";
/// kstatus: the controller cannot make progress without a change.
pub const STALLED: &str = "Stalled";

/// What one reconcile has to say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub phase: Phase,
    pub ready: bool,
    pub reason: String,
    pub message: String,
    /// The remote secret, when known; `None` keeps what the status had.
    pub remote: Option<RemoteRef>,
    /// Set when the remote value is confirmed to match this digest.
    pub synced_digest: Option<String>,
    /// Where the confirmed sync wrote, once any earlier placement is dealt with; `None` keeps the status's.
    pub placement: Option<Placement>,
    /// The store this reconcile used; `None` keeps the status's.
    pub store: Option<UsedStore>,
    /// Nothing was written: the store was found in step. The message of the write that got it there stays.
    pub in_step: bool,
    /// In `Observe` mode, what the store holds against the source; `None` keeps the status's.
    pub observation: Option<crate::controller::sync::observation::Observation>,
    /// Every remote secret of a SecretSync that writes several; `None` keeps the status's.
    pub remotes: Option<Vec<RemoteEntryStatus>>,
}

impl Report {
    pub fn new(phase: Phase, ready: bool, reason: &str, message: impl Into<String>) -> Self {
        Report {
            phase,
            ready,
            reason: reason.to_owned(),
            message: message.into(),
            remote: None,
            synced_digest: None,
            placement: None,
            store: None,
            in_step: false,
            observation: None,
            remotes: None,
        }
    }

    pub fn failed(reason: &str, message: impl Into<String>) -> Self {
        Report::new(Phase::Failed, false, reason, message)
    }

    /// Whether this report is a warning worth a `Warning` Event.
    pub fn is_warning(&self) -> bool {
        self.phase == Phase::Failed
    }
}

/// The report for a plan that needed no write, or for the outcome of one that did.
pub fn for_plan(
    plan: &Plan,
    outcome: Option<&Outcome>,
    observed: Option<&RemoteRef>,
    digest: &str,
) -> Report {
    let synced = |remote: &RemoteRef, reason: &str, message: String| Report {
        remote: Some(remote.clone()),
        synced_digest: Some(digest.to_owned()),
        ..Report::new(Phase::Ready, true, reason, message)
    };
    match (plan, outcome) {
        (_, Some(Outcome::Ready(remote))) => {
            let verb = match plan {
                Plan::Create => "created",
                Plan::NewVersion => "updated with a new value",
                Plan::UpdateMetadata => "metadata updated",
                Plan::Replace { .. } => "replaced",
                _ => "written",
            };
            synced(
                remote,
                "Synced",
                format!("remote secret {:?} {verb}", remote.name),
            )
        }
        (_, Some(Outcome::Creating(remote))) => Report {
            remote: Some(remote.clone()),
            ..Report::new(
                Phase::Creating,
                false,
                "Creating",
                format!(
                    "the store is still creating remote secret {:?}",
                    remote.name
                ),
            )
        },
        (Plan::InSync, None) => {
            let remote = observed.cloned().unwrap_or_default();
            let message = format!("remote secret {:?} matches the source", remote.name);
            Report {
                in_step: true,
                ..synced(&remote, "Synced", message)
            }
        }
        (Plan::KeepExisting, None) => Report {
            remote: observed.cloned(),
            ..Report::new(
                Phase::Ready,
                true,
                "ExistsNotUpdated",
                "the remote secret exists and updatePolicy is IfNotExists: it is left unchanged",
            )
        },
        (Plan::WaitForBackend, None) => Report {
            remote: observed.cloned(),
            ..Report::new(
                Phase::Creating,
                false,
                "Creating",
                "the store reports the remote secret as still being created",
            )
        },
        (Plan::Refuse(refusal), None) => refused(refusal),
        (Plan::BackendFailed(detail), None) => Report::failed(
            "BackendFailed",
            format!("the store reports the remote secret as failed: {detail}"),
        ),
        (_, None) => Report::failed("Internal", "a write was planned but not carried out"),
    }
}

fn refused(refusal: &Refusal) -> Report {
    match refusal {
        Refusal::NotOwned => Report::failed(
            "Conflict",
            "a remote secret of this name exists and was not created by SecretSync; set spec.adoptExisting: true to take it over",
        ),
        // Which SecretSync owns it is not said: in a shared store that would tell one tenant another's
        // namespace and object names.
        Refusal::OwnedByOther {
            owner_exists: true, ..
        } => Report::failed(
            "Conflict",
            "the remote secret is owned by another SecretSync; two SecretSyncs cannot write one remote secret",
        ),
        // Nor whether it still exists: that would tell a tenant what another team deleted. Adoption says what
        // the store allows.
        Refusal::OwnedByOther {
            owner_exists: false,
            ..
        } => Report::failed(
            "Conflict",
            "the remote secret is owned by another SecretSync; two SecretSyncs cannot write one remote secret (where the store's spec.adoption allows, adoptExisting takes over a secret whose SecretSync is gone)",
        ),
        Refusal::AdoptionNotAllowed => Report::failed(
            "AdoptionNotAllowed",
            "a remote secret of this name exists and was not written by this SecretSync, and the store does not let \
             adoptExisting take it over (its admin decides with spec.adoption); use another remoteName, or ask the \
             store's admin",
        ),
        Refusal::Immutable { field } => Report::failed(
            "ImmutableField",
            format!(
                "{field} cannot change on an existing remote secret in this store; revert it or allow replacement in the dialect settings"
            ),
        ),
    }
}

/// The report for a dialect error.
pub fn for_dialect_error(err: &DialectError) -> Report {
    let hint = match err.class {
        ErrorClass::Retry => " (retrying with backoff)",
        ErrorClass::Conflict => " (retrying with backoff)",
        ErrorClass::Credentials => {
            " (fix the credentials Secret; SecretSync retries when it changes)"
        }
        ErrorClass::Permanent => "",
    };
    Report::failed(err.reason, format!("{}{hint}", err.message))
}

/// How stale `lastSyncTime` may be while a SecretSync stays in sync: a refresh that only confirms the same value
/// within this time of the last recorded one writes no status at all (10,000 SecretSyncs refreshed every minute
/// would otherwise cost the API server 167 status writes a second for nothing).
pub const SYNC_TIME_RESOLUTION: Duration = Duration::from_secs(600);

fn recent(at: &Time, now: &Time) -> bool {
    now.0
        .duration_since(at.0)
        .try_into()
        .is_ok_and(|age: Duration| age < SYNC_TIME_RESOLUTION)
}

/// The next status: phase, condition (keeping `lastTransitionTime` when the condition's status did not flip),
/// observed generation, remote identity and sync markers.
pub fn next(
    prev: Option<&SecretSyncStatus>,
    generation: Option<i64>,
    report: &Report,
    now: &Time,
) -> SecretSyncStatus {
    let prev = prev.cloned().unwrap_or_default();
    let (in_sync, plan) = crate::controller::sync::observation::carry(
        &prev,
        report.observation.as_ref(),
        generation,
        now,
    );
    let status = if report.ready { "True" } else { "False" };
    // A refresh that finds the store in step has nothing new to say: the message of the write that got it there
    // stays, so a change costs one status write, not a second one at the next refresh.
    let same_remote = report.remote.as_ref().is_none_or(|r| {
        prev.remote
            .as_ref()
            .is_some_and(|p| p.name == r.name && p.id == r.id && p.version == r.version)
    });
    let message = match prev.conditions.iter().find(|c| c.type_ == READY) {
        Some(c)
            if report.in_step
                && report.ready
                && c.status == "True"
                && c.reason == report.reason
                && report.synced_digest == prev.synced_digest
                && same_remote =>
        {
            c.message.clone()
        }
        _ => bounded(&report.message),
    };
    let last_transition = prev
        .conditions
        .iter()
        .find(|c| c.type_ == READY && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    // kstatus (Flux, kubectl-based tooling) reads the abnormal-true conditions `Reconciling` and `Stalled`, not
    // `Ready`: without them a failed SecretSync would count as healthy there. They exist only while true.
    let progress = match report.phase {
        Phase::Pending | Phase::Creating => Some(RECONCILING),
        Phase::Failed => Some(STALLED),
        Phase::Ready | Phase::Observing => None,
    };
    let kept = |type_: &str| {
        prev.conditions
            .iter()
            .find(|c| c.type_ == type_ && c.status == "True")
            .map(|c| c.last_transition_time.clone())
    };
    let progress_since = progress.map(|type_| kept(type_).unwrap_or_else(|| now.clone()));
    let mut conditions: Vec<Condition> = prev
        .conditions
        .into_iter()
        .filter(|c| ![READY, RECONCILING, STALLED].contains(&c.type_.as_str()))
        .collect();
    conditions.push(Condition {
        type_: READY.to_owned(),
        status: status.to_owned(),
        reason: report.reason.clone(),
        message: message.clone(),
        observed_generation: generation,
        last_transition_time: last_transition,
    });
    if let (Some(type_), Some(since)) = (progress, progress_since) {
        conditions.push(Condition {
            type_: type_.to_owned(),
            status: "True".to_owned(),
            reason: report.reason.clone(),
            message,
            observed_generation: generation,
            last_transition_time: since,
        });
    }
    conditions.retain(|c| c.type_ != crate::controller::sync::observation::IN_SYNC);
    conditions.extend(in_sync);
    conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
    let synced = report.synced_digest.is_some();
    let remotes = report.remotes.clone().unwrap_or(prev.remotes);
    let remotes_in_sync = (report.remotes.is_some() || prev.remotes_in_sync.is_some()).then(|| {
        let in_sync = remotes.iter().filter(|r| r.in_sync).count();
        format!("{in_sync}/{}", remotes.len())
    });
    SecretSyncStatus {
        phase: Some(report.phase),
        observed_generation: generation,
        conditions,
        remote: report
            .remote
            .as_ref()
            .map(|r| RemoteStatus {
                name: r.name.clone(),
                id: r.id.clone(),
                version: r.version.clone(),
            })
            .or(prev.remote),
        last_sync_time: match &prev.last_sync_time {
            Some(at) if synced && report.synced_digest == prev.synced_digest && recent(at, now) => {
                Some(at.clone())
            }
            _ if synced => Some(now.clone()),
            _ => prev.last_sync_time.clone(),
        },
        synced_digest: report.synced_digest.clone().or(prev.synced_digest),
        synced_target: report
            .placement
            .as_ref()
            .map(|p| SyncedTarget {
                dialect: p.dialect,
                endpoint: p.endpoint.clone(),
                remote_name: p.remote_name.clone(),
            })
            .or(prev.synced_target),
        store: report.store.clone().or(prev.store),
        plan,
        remotes,
        remotes_in_sync,
    }
}

/// The longest condition message, in characters: a store's own error text ends up in it, and a store decides how
/// long that is. Events are cut at the same length.
pub const MAX_MESSAGE_CHARS: usize = 1000;

/// `message`, cut to [`MAX_MESSAGE_CHARS`] characters (with `…` when cut).
pub fn bounded(message: &str) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        None => message.to_owned(),
        Some((end, _)) => format!("{}…", &message[..end]),
    }
}

/// Whether the `Ready` condition changed in a way worth an Event (status or reason).
pub fn is_transition(prev: Option<&SecretSyncStatus>, report: &Report) -> bool {
    let Some(c) = prev.and_then(|p| p.conditions.iter().find(|c| c.type_ == READY)) else {
        return true;
    };
    c.reason != report.reason || (c.status == "True") != report.ready
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
