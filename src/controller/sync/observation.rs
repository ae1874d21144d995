//! `spec.mode: Observe` in the status: the `InSync` condition and `status.plan`, from the planner's verdict.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::{Mode, Phase, PlannedAction, PlannedChange, SecretSyncStatus};
use crate::plan::RemoteRef;
use crate::plan::moved::Placement;
use crate::plan::verdict::{Action, Drift, Verdict};

use crate::controller::sync::status::Report;

/// The `InSync` condition's type.
pub const IN_SYNC: &str = "InSync";

/// What one observing reconcile found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    pub drift: Drift,
    pub message: String,
    pub plan: Vec<PlannedChange>,
}

/// The report of an observing reconcile: `Ready` (observing works) and what the store holds against the source.
pub fn report(verdict: Verdict, remote_name: &str, observed: Option<&RemoteRef>) -> Report {
    let message = match verdict.drift {
        Drift::Matches => format!("remote secret {remote_name:?} matches the source"),
        Drift::KeptByPolicy => format!(
            "remote secret {remote_name:?} exists and updatePolicy is IfNotExists: Sync would leave it as it is"
        ),
        Drift::Missing => {
            format!("remote secret {remote_name:?} does not exist: Sync would create it")
        }
        Drift::ValueDiffers => format!(
            "remote secret {remote_name:?} holds another value: Sync would {}",
            match verdict.action {
                Action::Adopt => "take it over and write the source's value",
                _ => "write the source's value",
            }
        ),
        Drift::MetadataDiffers => format!(
            "remote secret {remote_name:?} holds the source's value but other metadata: Sync would {}",
            match verdict.action {
                Action::Conflict => "refuse, since an immutable field would have to change",
                Action::UpdateMetadata => "update its metadata",
                _ => "write it again with the metadata",
            }
        ),
        Drift::NotOwned => format!(
            "remote secret {remote_name:?} was not written by this SecretSync: Sync would {}",
            match verdict.action {
                Action::Adopt =>
                    "take it over (spec.adoptExisting and the store's adoption allow it)",
                _ =>
                    "leave it and report a conflict (see spec.adoptExisting and the store's adoption)",
            }
        ),
        Drift::StoreCreating => {
            format!("the store reports remote secret {remote_name:?} as still being created")
        }
        Drift::StoreFailed => format!("the store reports remote secret {remote_name:?} as failed"),
    };
    let action = match verdict.action {
        Action::None => PlannedAction::None,
        Action::Create => PlannedAction::Create,
        Action::Update => PlannedAction::Update,
        Action::UpdateMetadata => PlannedAction::UpdateMetadata,
        Action::Adopt => PlannedAction::Adopt,
        Action::Conflict => PlannedAction::Conflict,
    };
    Report {
        remote: observed.cloned(),
        observation: Some(Observation {
            drift: verdict.drift,
            message,
            plan: vec![PlannedChange {
                name: remote_name.to_owned(),
                action,
            }],
        }),
        ..Report::new(
            Phase::Observing,
            true,
            "Observing",
            "spec.mode is Observe: SecretSync reads the store and writes nothing (see the InSync condition and status.plan)",
        )
    }
}

/// The `InSync` condition and the plan after a report: the report's own when it observed, the earlier ones when it
/// did not (an error while observing says nothing new about the store).
pub fn carry(
    prev: &SecretSyncStatus,
    observation: Option<&Observation>,
    generation: Option<i64>,
    now: &Time,
) -> (Option<Condition>, Vec<PlannedChange>) {
    let earlier = prev.conditions.iter().find(|c| c.type_ == IN_SYNC);
    let Some(o) = observation else {
        return (earlier.cloned(), prev.plan.clone());
    };
    let status = o.drift.status();
    let since = earlier
        .filter(|c| c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    let condition = Condition {
        type_: IN_SYNC.to_owned(),
        status: status.to_owned(),
        reason: o.drift.reason().to_owned(),
        message: crate::controller::sync::status::bounded(&o.message),
        observed_generation: generation,
        last_transition_time: since,
    };
    (Some(condition), o.plan.clone())
}

/// A status as its mode shows it: observing's condition and plan only while observing, so switching to `Sync`
/// leaves no stale verdict behind.
pub fn for_mode(mut status: SecretSyncStatus, mode: Mode) -> SecretSyncStatus {
    if mode == Mode::Sync {
        status.conditions.retain(|c| c.type_ != IN_SYNC);
        status.plan.clear();
    }
    status
}

/// Whether `InSync` changed (status or reason) from `prev` to `next`: worth an Event.
pub fn changed(prev: Option<&SecretSyncStatus>, next: &SecretSyncStatus) -> Option<Condition> {
    let of = |s: &SecretSyncStatus| s.conditions.iter().find(|c| c.type_ == IN_SYNC).cloned();
    let now = of(next)?;
    match prev.and_then(of) {
        Some(before) if before.status == now.status && before.reason == now.reason => None,
        _ => Some(now),
    }
}

/// Whether an object in its cached state is observing and not in sync (for `secretsync_out_of_sync`).
pub fn out_of_sync(mode: Mode, status: Option<&SecretSyncStatus>) -> bool {
    mode == Mode::Observe
        && status.is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == IN_SYNC && c.status == "False")
        })
}

/// Whether the last confirmed sync wrote this value, for this spec, to this place: a write now can only put right
/// a change made in the store since.
pub fn unchanged_since_sync(
    obj: &crate::api::SecretSync,
    digest: &str,
    current: &Placement,
) -> bool {
    use kube::Resource;
    let Some(status) = &obj.status else {
        return false;
    };
    status.synced_digest.as_deref() == Some(digest)
        && status.observed_generation.is_some()
        && status.observed_generation == obj.meta().generation
        && status.synced_target.as_ref().is_some_and(|t| {
            t.dialect == current.dialect
                && t.endpoint == current.endpoint
                && t.remote_name == current.remote_name
        })
}

/// The `DriftRepaired` Event's words: the remote secret's name and what had changed, never a value.
pub fn repair_note(drift: Drift, remote_name: &str) -> String {
    let what = match drift {
        Drift::Missing => "had been removed",
        Drift::ValueDiffers => "held another value",
        Drift::MetadataDiffers => "had other metadata",
        _ => "had changed",
    };
    format!(
        "remote secret {remote_name:?} {what} in the store since SecretSync last wrote it; it was put right"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DialectKind, SyncedTarget};

    fn t(s: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(s).unwrap())
    }

    fn observed(drift: Drift, action: Action) -> Observation {
        report(Verdict { drift, action }, "db", None)
            .observation
            .unwrap()
    }

    #[test]
    fn in_sync_keeps_its_transition_time_while_its_status_holds_and_an_error_keeps_the_verdict() {
        let first = observed(Drift::Missing, Action::Create);
        let (c, plan) = carry(&SecretSyncStatus::default(), Some(&first), Some(1), &t(10));
        let c = c.unwrap();
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "Missing"));
        assert_eq!(plan[0].action, PlannedAction::Create);
        let prev = SecretSyncStatus {
            conditions: vec![c],
            plan,
            ..Default::default()
        };
        // Another False reason: same status, so the transition time stays.
        let second = observed(Drift::ValueDiffers, Action::Update);
        let (c2, _) = carry(&prev, Some(&second), Some(2), &t(20));
        let c2 = c2.unwrap();
        assert_eq!(
            (c2.reason.as_str(), c2.last_transition_time.clone()),
            ("ValueDiffers", t(10))
        );
        // True: a new transition.
        let third = observed(Drift::Matches, Action::None);
        let (c3, _) = carry(&prev, Some(&third), Some(2), &t(30));
        assert_eq!(c3.unwrap().last_transition_time, t(30));
        // A report that did not observe (an error) keeps what was known.
        assert_eq!(
            carry(&prev, None, Some(3), &t(40)),
            (prev.conditions.first().cloned(), prev.plan.clone())
        );
    }

    #[test]
    fn sync_mode_shows_no_verdict_and_only_a_change_of_in_sync_is_an_event() {
        let o = observed(Drift::NotOwned, Action::Adopt);
        let (c, plan) = carry(&SecretSyncStatus::default(), Some(&o), None, &t(1));
        let status = SecretSyncStatus {
            conditions: c.into_iter().collect(),
            plan,
            ..Default::default()
        };
        assert!(out_of_sync(Mode::Observe, Some(&status)));
        assert!(!out_of_sync(Mode::Sync, Some(&status)));
        assert!(changed(None, &status).is_some());
        assert!(changed(Some(&status), &status).is_none());
        let synced = for_mode(status.clone(), Mode::Sync);
        assert!(synced.conditions.is_empty() && synced.plan.is_empty());
        assert_eq!(for_mode(status.clone(), Mode::Observe), status);
    }

    #[test]
    fn only_the_same_value_spec_and_place_as_the_last_sync_count_as_unchanged() {
        let placement = Placement {
            dialect: DialectKind::Vault,
            endpoint: Some("https://v:8200".into()),
            remote_name: "db".into(),
        };
        let mut obj: crate::api::SecretSync = serde_json::from_value(serde_json::json!({
            "apiVersion": "secretsync.io/v1alpha1", "kind": "SecretSync",
            "metadata": {"name": "a", "namespace": "n", "generation": 3},
            "spec": {"source": {"secretRef": {"name": "s"}}, "target": {"storeRef": {"kind": "Store", "name": "v"}}},
        }))
        .unwrap();
        assert!(
            !unchanged_since_sync(&obj, "d1", &placement),
            "never synced"
        );
        obj.status = Some(SecretSyncStatus {
            observed_generation: Some(3),
            synced_digest: Some("d1".into()),
            synced_target: Some(SyncedTarget {
                dialect: DialectKind::Vault,
                endpoint: Some("https://v:8200".into()),
                remote_name: "db".into(),
            }),
            ..Default::default()
        });
        assert!(unchanged_since_sync(&obj, "d1", &placement));
        assert!(!unchanged_since_sync(&obj, "d2", &placement), "a new value");
        let moved = Placement {
            remote_name: "db2".into(),
            ..placement.clone()
        };
        assert!(!unchanged_since_sync(&obj, "d1", &moved), "a new place");
        obj.metadata.generation = Some(4);
        assert!(!unchanged_since_sync(&obj, "d1", &placement), "a spec edit");
        assert!(repair_note(Drift::Missing, "db").contains("\"db\" had been removed"));
    }
}
