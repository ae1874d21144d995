use super::*;

#[test]
fn a_long_store_message_is_cut_on_a_character_boundary() {
    assert_eq!(bounded("short"), "short");
    let long = "é".repeat(MAX_MESSAGE_CHARS + 5);
    let cut = bounded(&long);
    assert_eq!(cut.chars().count(), MAX_MESSAGE_CHARS + 1);
    assert!(cut.ends_with('…'));
    let exact = "x".repeat(MAX_MESSAGE_CHARS);
    assert_eq!(bounded(&exact), exact);
}
use crate::plan::Owner;

fn t(s: i64) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(s).unwrap())
}

fn remote() -> RemoteRef {
    RemoteRef {
        name: "db".into(),
        id: Some("id-1".into()),
        version: Some("v1".into()),
    }
}

#[test]
fn in_sync_is_ready_with_digest_and_remote() {
    let r = for_plan(&Plan::InSync, None, Some(&remote()), "hmac-sha256:ab");
    assert_eq!(r.phase, Phase::Ready);
    assert!(r.ready);
    assert_eq!(r.synced_digest.as_deref(), Some("hmac-sha256:ab"));
    let s = next(None, Some(3), &r, &t(10));
    assert_eq!(s.observed_generation, Some(3));
    assert_eq!(s.remote.unwrap().id.as_deref(), Some("id-1"));
    assert_eq!(s.last_sync_time, Some(t(10)));
    let c = &s.conditions[0];
    assert_eq!(
        (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
        ("Ready", "True", "Synced")
    );
    assert_eq!(c.observed_generation, Some(3));
}

fn types(s: &SecretSyncStatus) -> Vec<(&str, &str)> {
    s.conditions
        .iter()
        .map(|c| (c.type_.as_str(), c.status.as_str()))
        .collect()
}

#[test]
fn kstatus_conditions_exist_only_while_true() {
    let creating = for_plan(&Plan::Create, Some(&Outcome::Creating(remote())), None, "d");
    let s1 = next(None, Some(1), &creating, &t(1));
    assert_eq!(types(&s1), [("Ready", "False"), ("Reconciling", "True")]);

    let failed = Report::failed("BackendError", "503");
    let s2 = next(Some(&s1), Some(1), &failed, &t(2));
    assert_eq!(types(&s2), [("Ready", "False"), ("Stalled", "True")]);
    assert_eq!(s2.conditions[1].reason, "BackendError");
    // Still stalled later: the transition time stays the first one.
    let s3 = next(Some(&s2), Some(1), &failed, &t(3));
    assert_eq!(s3.conditions[1].last_transition_time, t(2));

    let ready = for_plan(&Plan::InSync, None, Some(&remote()), "d");
    let s4 = next(Some(&s3), Some(1), &ready, &t(4));
    assert_eq!(types(&s4), [("Ready", "True")]);
}

#[test]
fn only_a_report_with_a_placement_moves_the_synced_target() {
    let at = |name: &str| Placement {
        dialect: crate::api::DialectKind::Barbican,
        endpoint: None,
        remote_name: name.into(),
    };
    let mut ready = for_plan(&Plan::InSync, None, Some(&remote()), "d");
    ready.placement = Some(at("db"));
    let s1 = next(None, Some(1), &ready, &t(1));
    let target = s1.synced_target.clone().expect("recorded");
    assert_eq!(target.remote_name, "db");
    assert_eq!(target.endpoint, None);

    // A failure (such as a previous remote secret that could not be deleted) keeps the old record, so the
    // next reconcile still knows what to clean up.
    let s2 = next(
        Some(&s1),
        Some(2),
        &Report::failed("Forbidden", "403"),
        &t(2),
    );
    assert_eq!(s2.synced_target, s1.synced_target);
    let creating = for_plan(&Plan::Create, Some(&Outcome::Creating(remote())), None, "d");
    let s3 = next(Some(&s2), Some(2), &creating, &t(3));
    assert_eq!(s3.synced_target, s1.synced_target);

    ready.placement = Some(at("db-v2"));
    let s4 = next(Some(&s3), Some(2), &ready, &t(4));
    assert_eq!(s4.synced_target.unwrap().remote_name, "db-v2");
}

#[test]
fn written_outcomes_are_ready_and_creating_is_creating() {
    let done = for_plan(&Plan::Create, Some(&Outcome::Ready(remote())), None, "d");
    assert_eq!(done.phase, Phase::Ready);
    assert!(done.message.contains("created"));
    let creating = for_plan(&Plan::Create, Some(&Outcome::Creating(remote())), None, "d");
    assert_eq!(creating.phase, Phase::Creating);
    assert!(!creating.ready);
    assert_eq!(creating.synced_digest, None);
    let waiting = for_plan(&Plan::WaitForBackend, None, Some(&remote()), "d");
    assert_eq!(waiting.phase, Phase::Creating);
}

#[test]
fn refusals_are_failed_conflicts_that_say_what_to_do() {
    let r = for_plan(&Plan::Refuse(Refusal::NotOwned), None, None, "d");
    assert_eq!((r.phase, r.reason.as_str()), (Phase::Failed, "Conflict"));
    assert!(r.message.contains("adoptExisting"));
    let other = Owner {
        namespace: "ns".into(),
        name: "x".into(),
        uid: "u".into(),
        scope: Default::default(),
    };
    let r = for_plan(
        &Plan::Refuse(Refusal::OwnedByOther {
            owner: other,
            owner_exists: true,
        }),
        None,
        None,
        "d",
    );
    assert!(r.message.contains("another SecretSync"), "{}", r.message);
    assert!(!r.message.contains("ns/x"), "{}", r.message);
    let r = for_plan(
        &Plan::Refuse(Refusal::Immutable {
            field: "contentType",
        }),
        None,
        None,
        "d",
    );
    assert_eq!(r.reason, "ImmutableField");
}

#[test]
fn if_not_exists_is_ready_without_claiming_a_sync() {
    let r = for_plan(&Plan::KeepExisting, None, Some(&remote()), "d");
    assert!(r.ready);
    assert_eq!(r.synced_digest, None);
    assert_eq!(r.reason, "ExistsNotUpdated");
}

#[test]
fn a_refresh_that_only_confirms_rewrites_nothing_within_the_sync_time_resolution() {
    let ok = for_plan(&Plan::InSync, None, Some(&remote()), "d");
    let first = next(None, Some(1), &ok, &t(0));
    assert_eq!(first.last_sync_time, Some(t(0)));
    let resolution = SYNC_TIME_RESOLUTION.as_secs() as i64;
    // Within the resolution: the same status, so no write.
    let again = next(Some(&first), Some(1), &ok, &t(resolution - 1));
    assert_eq!(again, first);
    // Past it: the time moves.
    let later = next(Some(&first), Some(1), &ok, &t(resolution));
    assert_eq!(later.last_sync_time, Some(t(resolution)));
    // A new value confirmed moves it at once.
    let changed = for_plan(
        &Plan::NewVersion,
        Some(&Outcome::Ready(remote())),
        None,
        "d2",
    );
    let moved = next(Some(&first), Some(1), &changed, &t(5));
    assert_eq!(moved.last_sync_time, Some(t(5)));
    // A failure keeps it.
    let failed = next(
        Some(&moved),
        Some(1),
        &Report::failed("SourceNotFound", "gone"),
        &t(9),
    );
    assert_eq!(failed.last_sync_time, Some(t(5)));
}

#[test]
fn the_refresh_after_a_write_keeps_the_writes_message_so_a_change_costs_one_status_write() {
    let written = for_plan(
        &Plan::NewVersion,
        Some(&Outcome::Ready(remote())),
        None,
        "d",
    );
    let after_write = next(None, Some(1), &written, &t(0));
    let in_step = for_plan(&Plan::InSync, None, Some(&remote()), "d");
    assert_eq!(
        next(Some(&after_write), Some(1), &in_step, &t(30)),
        after_write,
        "nothing new: no status write"
    );
    // What differs is said: another remote, another digest, or a write (a metadata update keeps the digest).
    let moved = RemoteRef {
        version: Some("v9".into()),
        ..remote()
    };
    let elsewhere = for_plan(&Plan::InSync, None, Some(&moved), "d");
    let s = next(Some(&after_write), Some(1), &elsewhere, &t(30));
    assert!(s.conditions[0].message.contains("matches the source"));
    let other_value = for_plan(&Plan::InSync, None, Some(&remote()), "d2");
    let s = next(Some(&after_write), Some(1), &other_value, &t(30));
    assert!(s.conditions[0].message.contains("matches the source"));
    let metadata = for_plan(
        &Plan::UpdateMetadata,
        Some(&Outcome::Ready(remote())),
        None,
        "d",
    );
    let s = next(Some(&after_write), Some(1), &metadata, &t(30));
    assert!(s.conditions[0].message.contains("metadata updated"));
    // After a failure the first in-step refresh says so.
    let failed = next(
        Some(&after_write),
        Some(1),
        &Report::failed("Unreachable", "x"),
        &t(40),
    );
    let s = next(Some(&failed), Some(1), &in_step, &t(50));
    assert!(s.conditions[0].message.contains("matches the source"));
}

#[test]
fn transition_time_changes_only_when_status_flips() {
    let ok = for_plan(&Plan::InSync, None, Some(&remote()), "d");
    let s1 = next(None, Some(1), &ok, &t(10));
    let s2 = next(Some(&s1), Some(2), &ok, &t(20));
    assert_eq!(s2.conditions[0].last_transition_time, t(10));
    let bad = Report::failed("SourceNotFound", "gone");
    let s3 = next(Some(&s2), Some(2), &bad, &t(30));
    assert_eq!(s3.conditions[0].last_transition_time, t(30));
    // A failure keeps the last known remote, digest and sync time (t(10): the confirmation at t(20) was
    // within SYNC_TIME_RESOLUTION).
    assert_eq!(s3.synced_digest.as_deref(), Some("d"));
    assert_eq!(s3.last_sync_time, Some(t(10)));
    assert_eq!(s3.remote, s2.remote);
    assert_eq!(s3.phase, Some(Phase::Failed));
}

#[test]
fn events_fire_on_reason_or_status_changes_only() {
    let ok = for_plan(&Plan::InSync, None, Some(&remote()), "d");
    assert!(is_transition(None, &ok));
    let s = next(None, Some(1), &ok, &t(1));
    assert!(!is_transition(Some(&s), &ok));
    assert!(is_transition(Some(&s), &Report::failed("KeyNotFound", "x")));
}

#[test]
fn dialect_errors_carry_reason_and_a_hint() {
    let e = DialectError::credentials("Unauthorized", "store answered HTTP 401");
    let r = for_dialect_error(&e);
    assert_eq!(
        (r.phase, r.reason.as_str()),
        (Phase::Failed, "Unauthorized")
    );
    assert!(r.message.contains("credentials Secret"));
}
