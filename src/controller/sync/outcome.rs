//! Step 7, outcome: from what the reconcile found and did to what it reports (status, Events) and when it looks
//! again. Pure: the commit carries it out.

use std::time::Duration;

use super::decide::Decision;
use super::dereference::Dereferenced;
use super::observation;
use super::status::{self, Report};
use crate::api::Phase;
use crate::controller::telemetry::events::EventType;
use crate::dialects::Outcome;

/// An Event to record on the SecretSync. Its text names remote secrets and stores, never a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub kind: EventType,
    pub reason: &'static str,
    pub text: String,
}

impl Note {
    pub fn new(kind: EventType, reason: &'static str, text: String) -> Note {
        Note { kind, reason, text }
    }
}

/// When the object is looked at again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// At its refresh interval (or only on a change).
    Refresh,
    /// Soon: the store is still creating the secret (with the object's backoff, so a store that says
    /// "creating" for ever is not polled every few seconds for ever).
    PollCreating,
    /// After this long, without having read the store (the startup spread).
    After(Duration),
}

/// What one reconcile has to say and do once its store work is done.
#[derive(Debug)]
pub struct Effects {
    /// The status to write; `None` keeps it.
    pub report: Option<Report>,
    pub notes: Vec<Note>,
    pub next: Next,
    /// The reconcile went through the apply step (its source change is settled, pushed or not).
    pub applied: bool,
    /// The reconcile wrote to the store (for the push latency).
    pub wrote: bool,
    /// The write put right a change made in the store behind SecretSync's back.
    pub repaired_drift: bool,
    /// The selected Secrets this reconcile pushed (beyond `secretRef`), whose changes it settled.
    pub sources: Vec<String>,
    /// Reported, and still an error: one of several remote secrets failed (the object backs off as for it).
    pub failed: Option<super::error::Error>,
}

impl Effects {
    /// Nothing read or written yet: wait and look again.
    pub fn wait(after: Duration) -> Effects {
        Effects {
            report: None,
            notes: Vec::new(),
            next: Next::After(after),
            applied: false,
            wrote: false,
            repaired_drift: false,
            sources: Vec::new(),
            failed: None,
        }
    }

    /// Whether the report confirms the store holds the source's value (so an earlier placement may be settled).
    pub fn confirms_sync(&self) -> bool {
        self.report
            .as_ref()
            .is_some_and(|r| r.synced_digest.is_some())
    }
}

/// In `Observe` mode: what the store holds against the source; nothing was written.
pub fn observed(decision: &Decision, read: &Dereferenced) -> Effects {
    let report = observation::report(
        decision.verdict,
        &read.remote_name,
        decision.observed.as_ref(),
    );
    Effects {
        report: Some(report),
        notes: Vec::new(),
        next: Next::Refresh,
        applied: false,
        wrote: false,
        repaired_drift: false,
        sources: Vec::new(),
        failed: None,
    }
}

/// In `Sync` mode: what the plan and its write (if any) leave.
pub fn synced(decision: &Decision, written: Option<&Outcome>, read: &Dereferenced) -> Effects {
    let report = status::for_plan(
        &decision.plan,
        written,
        decision.observed.as_ref(),
        &read.desired.digest,
    );
    let repaired_drift = decision.repairs_drift && written.is_some();
    let notes = repaired_drift
        .then(|| {
            Note::new(
                EventType::Normal,
                "DriftRepaired",
                observation::repair_note(decision.verdict.drift, &read.remote_name),
            )
        })
        .into_iter()
        .collect();
    let next = match report.phase {
        Phase::Creating => Next::PollCreating,
        _ => Next::Refresh,
    };
    Effects {
        report: Some(report),
        notes,
        next,
        applied: true,
        wrote: written.is_some(),
        repaired_drift,
        sources: Vec::new(),
        failed: None,
    }
}

/// The report of a suspended object: its phase and readiness as they were, with reason `Suspended`; `None` when
/// the status already says so for this generation.
pub fn suspended(obj: &crate::api::SecretSync) -> Option<Report> {
    let prev = obj.status.clone().unwrap_or_default();
    let ready = prev.conditions.iter().find(|c| c.type_ == status::READY);
    let already = ready.is_some_and(|c| c.reason == "Suspended");
    if already && prev.observed_generation == obj.metadata.generation {
        return None;
    }
    Some(Report::new(
        prev.phase.unwrap_or(Phase::Pending),
        ready.is_some_and(|c| c.status == "True"),
        "Suspended",
        "spec.suspend is true: SecretSync neither reads nor writes the store",
    ))
}
