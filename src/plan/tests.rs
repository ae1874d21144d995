use super::*;

fn scope() -> Scope {
    Scope {
        cluster: "cluster-1".into(),
        namespace_uid: "ns-uid-1".into(),
    }
}

fn owner() -> Owner {
    Owner {
        namespace: "ns".into(),
        name: "app".into(),
        uid: "uid-1".into(),
        scope: scope(),
    }
}

fn other() -> Owner {
    Owner {
        namespace: "ns".into(),
        name: "other".into(),
        uid: "uid-2".into(),
        scope: scope(),
    }
}

fn meta() -> Metadata {
    Metadata {
        content_type: Some("text/plain".into()),
        description: Some("d".into()),
        labels: [("team".to_string(), "a".to_string())].into(),
    }
}

fn desired() -> Desired {
    Desired {
        digest: "hmac-sha256:aa".into(),
        earlier_digest: None,
        metadata: meta(),
        owner: owner(),
        policy: WritePolicy::Replace,
        adopt_existing: false,
        // A store that lets adoptExisting take anything: what a dialect does when the planner adopts.
        adoption: crate::plan::Adoption::UnmarkedOrOrphaned,
        allow_replace: false,
    }
}

fn remote() -> Remote {
    Remote {
        reference: RemoteRef {
            name: "app".into(),
            id: Some("id".into()),
            version: Some("v1".into()),
        },
        owner: Some(owner()),
        owner_exists: true,
        digest: Some("hmac-sha256:aa".into()),
        metadata: meta(),
        state: RemoteState::Ready,
        detail: Default::default(),
    }
}

const ALL_MUTABLE: Capabilities = Capabilities {
    content_type: Support::Mutable,
    description: Support::Mutable,
    labels: Support::Mutable,
};

const ALL_UNSUPPORTED: Capabilities = Capabilities {
    content_type: Support::Unsupported,
    description: Support::Unsupported,
    labels: Support::Unsupported,
};

fn present(r: Remote) -> Observed {
    Observed::Present(r)
}

#[test]
fn absent_remote_is_created() {
    assert_eq!(
        decide(&desired(), &Observed::Absent, ALL_MUTABLE),
        Plan::Create
    );
}

#[test]
fn absent_remote_is_created_even_if_not_exists_policy() {
    let mut d = desired();
    d.policy = WritePolicy::IfNotExists;
    assert_eq!(decide(&d, &Observed::Absent, ALL_MUTABLE), Plan::Create);
}

#[test]
fn matching_remote_needs_no_write() {
    let p = decide(&desired(), &present(remote()), ALL_MUTABLE);
    assert_eq!(p, Plan::InSync);
    assert!(!p.writes());
}

#[test]
fn changed_value_gets_a_new_version() {
    let mut r = remote();
    r.digest = Some("hmac-sha256:bb".into());
    assert_eq!(
        decide(&desired(), &present(r), ALL_MUTABLE),
        Plan::NewVersion
    );
}

#[test]
fn unknown_remote_digest_counts_as_changed() {
    let mut r = remote();
    r.digest = None;
    assert_eq!(
        decide(&desired(), &present(r), ALL_MUTABLE),
        Plan::NewVersion
    );
}

#[test]
fn if_not_exists_never_touches_an_existing_secret() {
    let mut d = desired();
    d.policy = WritePolicy::IfNotExists;
    let mut r = remote();
    r.digest = Some("hmac-sha256:bb".into());
    assert_eq!(
        decide(&d, &present(r.clone()), ALL_MUTABLE),
        Plan::KeepExisting
    );
    // What the store let us adopt is kept as it is too.
    r.owner = None;
    d.adopt_existing = true;
    assert_eq!(decide(&d, &present(r), ALL_MUTABLE), Plan::KeepExisting);
}

#[test]
fn if_not_exists_keeps_only_what_is_ours() {
    let mut d = desired();
    d.policy = WritePolicy::IfNotExists;
    // Planted first by someone else (unmarked), or by another SecretSync: a conflict, never Ready over it.
    let mut unmarked = remote();
    unmarked.owner = None;
    assert_eq!(
        decide(&d, &present(unmarked), ALL_MUTABLE),
        Plan::Refuse(Refusal::NotOwned)
    );
    let mut theirs = remote();
    theirs.owner = Some(other());
    assert!(matches!(
        decide(&d, &present(theirs), ALL_MUTABLE),
        Plan::Refuse(Refusal::OwnedByOther { .. })
    ));
}

#[test]
fn each_mutable_field_change_is_a_metadata_update() {
    for change in 0..3 {
        let mut r = remote();
        match change {
            0 => r.metadata.content_type = Some("application/json".into()),
            1 => r.metadata.description = None,
            _ => {
                r.metadata.labels.insert("extra".into(), "x".into());
            }
        }
        assert_eq!(
            decide(&desired(), &present(r), ALL_MUTABLE),
            Plan::UpdateMetadata,
            "change {change}"
        );
    }
}

#[test]
fn value_and_metadata_change_together_is_one_new_version() {
    let mut r = remote();
    r.digest = Some("hmac-sha256:bb".into());
    r.metadata.description = Some("old".into());
    assert_eq!(
        decide(&desired(), &present(r), ALL_MUTABLE),
        Plan::NewVersion
    );
}

#[test]
fn unsupported_fields_are_never_compared() {
    let mut r = remote();
    r.metadata = Metadata::default();
    assert_eq!(
        decide(&desired(), &present(r), ALL_UNSUPPORTED),
        Plan::InSync
    );
}

#[test]
fn immutable_change_is_refused_without_replace() {
    let caps = Capabilities {
        content_type: Support::Immutable,
        ..ALL_MUTABLE
    };
    let mut r = remote();
    r.metadata.content_type = Some("application/json".into());
    assert_eq!(
        decide(&desired(), &present(r.clone()), caps),
        Plan::Refuse(Refusal::Immutable {
            field: "contentType"
        })
    );
    let mut d = desired();
    d.allow_replace = true;
    assert_eq!(
        decide(&d, &present(r), caps),
        Plan::Replace {
            field: "contentType"
        }
    );
}

#[test]
fn immutable_field_unchanged_is_fine() {
    let caps = Capabilities {
        content_type: Support::Immutable,
        ..ALL_MUTABLE
    };
    assert_eq!(decide(&desired(), &present(remote()), caps), Plan::InSync);
}

#[test]
fn with_value_fields_force_a_new_version() {
    let caps = Capabilities {
        content_type: Support::WithValue,
        description: Support::WithValue,
        labels: Support::Unsupported,
    };
    let mut r = remote();
    r.metadata.description = Some("old".into());
    assert_eq!(decide(&desired(), &present(r), caps), Plan::NewVersion);
}

#[test]
fn unmarked_secret_is_refused_without_opt_in() {
    let mut r = remote();
    r.owner = None;
    assert_eq!(
        decide(&desired(), &present(r), ALL_MUTABLE),
        Plan::Refuse(Refusal::NotOwned)
    );
}

#[test]
fn adopting_an_unmarked_secret_writes_the_marker() {
    let mut d = desired();
    d.adopt_existing = true;
    let mut r = remote();
    r.owner = None;
    // Same value and metadata: only the marker is missing, so a metadata update suffices.
    assert_eq!(
        decide(&d, &present(r.clone()), ALL_MUTABLE),
        Plan::UpdateMetadata
    );
    // A store whose labels can only be written with a value needs a new version to take ownership.
    let caps = Capabilities {
        labels: Support::WithValue,
        ..ALL_MUTABLE
    };
    assert_eq!(decide(&d, &present(r), caps), Plan::NewVersion);
}

#[test]
fn secret_of_another_live_secretsync_is_a_conflict_even_with_adopt() {
    let mut d = desired();
    d.adopt_existing = true;
    let mut r = remote();
    r.owner = Some(other());
    assert_eq!(
        decide(&d, &present(r), ALL_MUTABLE),
        Plan::Refuse(Refusal::OwnedByOther {
            owner: other(),
            owner_exists: true
        })
    );
}

#[test]
fn secret_of_a_deleted_secretsync_can_be_adopted_only_with_opt_in() {
    let mut r = remote();
    r.owner = Some(other());
    r.owner_exists = false;
    assert_eq!(
        decide(&desired(), &present(r.clone()), ALL_MUTABLE),
        Plan::Refuse(Refusal::OwnedByOther {
            owner: other(),
            owner_exists: false
        })
    );
    let mut d = desired();
    d.adopt_existing = true;
    assert_eq!(decide(&d, &present(r), ALL_MUTABLE), Plan::UpdateMetadata);
}

#[test]
fn recreated_secretsync_with_same_name_keeps_ownership() {
    let mut r = remote();
    r.owner = Some(Owner {
        uid: "old-uid".into(),
        ..owner()
    });
    assert_eq!(decide(&desired(), &present(r), ALL_MUTABLE), Plan::InSync);
}

#[test]
fn creating_remote_is_waited_for() {
    let mut r = remote();
    r.state = RemoteState::Creating;
    r.digest = Some("hmac-sha256:bb".into());
    assert_eq!(
        decide(&desired(), &present(r), ALL_MUTABLE),
        Plan::WaitForBackend
    );
}

#[test]
fn failed_remote_is_reported() {
    let mut r = remote();
    r.state = RemoteState::Failed("disk full".into());
    assert_eq!(
        decide(&desired(), &present(r), ALL_MUTABLE),
        Plan::BackendFailed("disk full".into())
    );
}

#[test]
fn ownership_is_checked_before_backend_state() {
    let mut r = remote();
    r.owner = Some(other());
    r.state = RemoteState::Creating;
    assert!(matches!(
        decide(&desired(), &present(r), ALL_MUTABLE),
        Plan::Refuse(_)
    ));
}

#[test]
fn only_writing_plans_write() {
    let writing = [
        Plan::Create,
        Plan::NewVersion,
        Plan::UpdateMetadata,
        Plan::Replace { field: "x" },
    ];
    let quiet = [
        Plan::InSync,
        Plan::KeepExisting,
        Plan::WaitForBackend,
        Plan::Refuse(Refusal::NotOwned),
        Plan::BackendFailed(String::new()),
    ];
    assert!(writing.iter().all(Plan::writes));
    assert!(!quiet.iter().any(Plan::writes));
}

#[test]
fn deletion_only_removes_our_own_secret() {
    assert_eq!(
        decide_delete(&owner(), &Observed::Absent),
        DeletePlan::AlreadyGone
    );
    assert_eq!(
        decide_delete(&owner(), &present(remote())),
        DeletePlan::Delete
    );
    let mut r = remote();
    r.owner = Some(other());
    assert_eq!(
        decide_delete(&owner(), &present(r.clone())),
        DeletePlan::LeaveForeign
    );
    r.owner = None;
    assert_eq!(
        decide_delete(&owner(), &present(r)),
        DeletePlan::LeaveForeign
    );
}

#[test]
fn owner_keys_round_trip() {
    let o = owner();
    assert_eq!(
        Owner::parse_key(&o.key(), "uid-1", &o.scope.key()),
        Some(o.clone())
    );
    assert_eq!(Owner::parse_key("noslash", "u", ""), None);
    assert_eq!(Owner::parse_key("/x", "u", ""), None);
    // A scope that is not `cluster/namespace-uid` is no scope: the marker counts as one from before scopes.
    for bad in ["", "c", "c/", "/n", "c/n/x"] {
        assert_eq!(
            Owner::parse_key(&o.key(), "uid-1", bad).map(|o| o.scope),
            Some(Scope::default()),
            "{bad:?}"
        );
    }
}

#[test]
fn an_empty_uid_proves_nothing() {
    let mut anonymous = other();
    anonymous.uid = String::new();
    // A SecretSync without a uid yet must not take over a foreign secret whose marker has no uid either.
    let mut d = desired();
    d.owner.uid = String::new();
    let mut r = remote();
    r.owner = Some(anonymous.clone());
    assert_eq!(
        decide(&d, &present(r.clone()), ALL_MUTABLE),
        Plan::Refuse(Refusal::OwnedByOther {
            owner: anonymous.clone(),
            owner_exists: true
        })
    );
    assert_eq!(
        decide_delete(&d.owner, &present(r)),
        DeletePlan::LeaveForeign
    );
    // The same namespace and name in the same scope still proves it, with or without uids.
    let mut renamed_uid = owner();
    renamed_uid.uid = String::new();
    assert!(owner().owns(Some(&renamed_uid)));
    assert!(!owner().owns(None));
}

/// A name is not an identity: the same `namespace/name` in a namespace created again, or in another cluster writing
/// to the same store, owns nothing of the old one's.
#[test]
fn ownership_needs_the_same_cluster_and_namespace_uid() {
    let earlier = |scope: Scope| Owner {
        uid: "old-uid".into(),
        scope,
        ..owner()
    };
    let recreated_namespace = Scope {
        namespace_uid: "ns-uid-2".into(),
        ..scope()
    };
    let other_cluster = Scope {
        cluster: "cluster-2".into(),
        ..scope()
    };
    assert!(owner().owns(Some(&earlier(scope()))));
    assert!(!owner().owns(Some(&earlier(recreated_namespace.clone()))));
    assert!(!owner().owns(Some(&earlier(other_cluster.clone()))));
    // Even the very object's uid does not cross scopes (a restored backup of another cluster).
    let same_uid = |scope: Scope| Owner { scope, ..owner() };
    assert!(!owner().owns(Some(&same_uid(other_cluster))));
    assert!(!owner().owns(Some(&same_uid(recreated_namespace))));
    // Through the planner: a conflict, never an overwrite, under either policy.
    for policy in [WritePolicy::Replace, WritePolicy::IfNotExists] {
        let mut d = desired();
        d.policy = policy;
        let mut r = remote();
        r.owner = Some(earlier(Scope {
            namespace_uid: "ns-uid-2".into(),
            ..scope()
        }));
        assert!(matches!(
            decide(&d, &present(r), ALL_MUTABLE),
            Plan::Refuse(Refusal::OwnedByOther { .. })
        ));
    }
}

/// Markers written before scopes (no cluster, no namespace uid) stay the object's that wrote them, by its uid only:
/// the upgrade hands nothing to a newcomer of the same name, and needs no write to keep what is ours.
#[test]
fn a_marker_from_before_scopes_is_matched_by_uid_only() {
    let legacy = |uid: &str| Owner {
        uid: uid.into(),
        scope: Scope::default(),
        ..owner()
    };
    assert!(owner().owns(Some(&legacy("uid-1"))));
    assert!(!owner().owns(Some(&legacy("old-uid"))));
    assert!(!owner().owns(Some(&legacy(""))));
    let mut r = remote();
    r.owner = Some(legacy("uid-1"));
    assert_eq!(decide(&desired(), &present(r), ALL_MUTABLE), Plan::InSync);
}

/// The store decides what `adoptExisting` may take: the tenant only asks.
#[test]
fn adoption_is_the_stores_decision() {
    let unmarked = || {
        let mut r = remote();
        r.owner = None;
        r
    };
    let orphaned = || {
        let mut r = remote();
        r.owner = Some(other());
        r.owner_exists = false;
        r
    };
    let live = || {
        let mut r = remote();
        r.owner = Some(other());
        r
    };
    let refused = |p: Plan| match p {
        Plan::Refuse(r) => Some(r),
        _ => None,
    };
    let cases = [
        // (store, asked, remote, refusal or None when taken)
        (
            Adoption::Never,
            true,
            unmarked(),
            Some(Refusal::AdoptionNotAllowed),
        ),
        (
            Adoption::Never,
            true,
            orphaned(),
            Some(Refusal::AdoptionNotAllowed),
        ),
        (Adoption::Unmarked, true, unmarked(), None),
        (
            Adoption::Unmarked,
            true,
            orphaned(),
            Some(Refusal::AdoptionNotAllowed),
        ),
        (Adoption::UnmarkedOrOrphaned, true, unmarked(), None),
        (Adoption::UnmarkedOrOrphaned, true, orphaned(), None),
        // Not asked: the usual conflicts, whatever the store allows.
        (
            Adoption::UnmarkedOrOrphaned,
            false,
            unmarked(),
            Some(Refusal::NotOwned),
        ),
    ];
    for (store, asked, r, want) in cases {
        let mut d = desired();
        d.adoption = store;
        d.adopt_existing = asked;
        let got = refused(decide(&d, &present(r.clone()), ALL_MUTABLE));
        assert_eq!(got, want, "{store:?} asked={asked} owner={:?}", r.owner);
    }
    // A live owner's secret is never taken, whatever the store and the request say.
    for store in [
        Adoption::Never,
        Adoption::Unmarked,
        Adoption::UnmarkedOrOrphaned,
    ] {
        let mut d = desired();
        d.adoption = store;
        d.adopt_existing = true;
        assert!(matches!(
            refused(decide(&d, &present(live()), ALL_MUTABLE)),
            Some(Refusal::OwnedByOther {
                owner_exists: true,
                ..
            })
        ));
    }
}

mod verdicts {
    use super::*;
    use crate::plan::verdict::{Action, Drift, Verdict, repairs_drift, verdict};

    /// The verdict of the plan the planner makes: Observe shows what Sync would do, so the two must agree.
    fn of(desired: &Desired, observed: &Observed, caps: Capabilities) -> Verdict {
        verdict(desired, observed, &decide(desired, observed, caps))
    }

    fn v(drift: Drift, action: Action) -> Verdict {
        Verdict { drift, action }
    }

    fn adopting() -> Desired {
        Desired {
            adopt_existing: true,
            ..desired()
        }
    }

    fn unmarked(digest: Option<&str>) -> Remote {
        Remote {
            owner: None,
            digest: digest.map(str::to_owned),
            ..remote()
        }
    }

    #[test]
    fn every_plan_reads_as_the_drift_it_repairs_and_the_action_sync_takes() {
        let other_value = Remote {
            digest: Some("hmac-sha256:bb".into()),
            ..remote()
        };
        let other_labels = Remote {
            metadata: Metadata {
                labels: Default::default(),
                ..meta()
            },
            ..remote()
        };
        let cases: Vec<(&str, Desired, Observed, Capabilities, Verdict)> = vec![
            (
                "absent",
                desired(),
                Observed::Absent,
                ALL_MUTABLE,
                v(Drift::Missing, Action::Create),
            ),
            (
                "equal",
                desired(),
                present(remote()),
                ALL_MUTABLE,
                v(Drift::Matches, Action::None),
            ),
            (
                "value",
                desired(),
                present(other_value.clone()),
                ALL_MUTABLE,
                v(Drift::ValueDiffers, Action::Update),
            ),
            (
                "labels in place",
                desired(),
                present(other_labels.clone()),
                ALL_MUTABLE,
                v(Drift::MetadataDiffers, Action::UpdateMetadata),
            ),
            (
                "labels with the value",
                desired(),
                present(other_labels.clone()),
                Capabilities {
                    labels: Support::WithValue,
                    ..ALL_MUTABLE
                },
                v(Drift::MetadataDiffers, Action::Update),
            ),
            (
                "immutable labels",
                desired(),
                present(other_labels),
                Capabilities {
                    labels: Support::Immutable,
                    ..ALL_MUTABLE
                },
                v(Drift::MetadataDiffers, Action::Conflict),
            ),
            (
                "kept by IfNotExists",
                Desired {
                    policy: WritePolicy::IfNotExists,
                    ..desired()
                },
                present(other_value),
                ALL_MUTABLE,
                v(Drift::KeptByPolicy, Action::None),
            ),
            (
                "unmarked, not adopting",
                desired(),
                present(unmarked(Some("hmac-sha256:aa"))),
                ALL_MUTABLE,
                v(Drift::NotOwned, Action::Conflict),
            ),
            (
                "unmarked, equal value, adopting",
                adopting(),
                present(unmarked(Some("hmac-sha256:aa"))),
                ALL_MUTABLE,
                v(Drift::NotOwned, Action::Adopt),
            ),
            (
                "unmarked, value unknown, adopting",
                adopting(),
                present(unmarked(None)),
                ALL_MUTABLE,
                v(Drift::NotOwned, Action::Adopt),
            ),
            (
                "unmarked, other value, adopting",
                adopting(),
                present(unmarked(Some("hmac-sha256:bb"))),
                ALL_MUTABLE,
                v(Drift::ValueDiffers, Action::Adopt),
            ),
            (
                "unmarked, adoption not allowed by the store",
                Desired {
                    adoption: Adoption::Never,
                    ..adopting()
                },
                present(unmarked(Some("hmac-sha256:aa"))),
                ALL_MUTABLE,
                v(Drift::NotOwned, Action::Conflict),
            ),
            (
                "another SecretSync's",
                adopting(),
                present(Remote {
                    owner: Some(other()),
                    ..remote()
                }),
                ALL_MUTABLE,
                v(Drift::NotOwned, Action::Conflict),
            ),
            (
                "creating",
                desired(),
                present(Remote {
                    state: RemoteState::Creating,
                    ..remote()
                }),
                ALL_MUTABLE,
                v(Drift::StoreCreating, Action::None),
            ),
            (
                "failed",
                desired(),
                present(Remote {
                    state: RemoteState::Failed("gone bad".into()),
                    ..remote()
                }),
                ALL_MUTABLE,
                v(Drift::StoreFailed, Action::None),
            ),
        ];
        for (name, desired, observed, caps, want) in cases {
            assert_eq!(of(&desired, &observed, caps), want, "{name}");
        }
    }

    #[test]
    fn the_in_sync_condition_is_true_only_when_the_store_needs_nothing() {
        for (drift, status) in [
            (Drift::Matches, "True"),
            (Drift::KeptByPolicy, "True"),
            (Drift::Missing, "False"),
            (Drift::ValueDiffers, "False"),
            (Drift::MetadataDiffers, "False"),
            (Drift::NotOwned, "False"),
            (Drift::StoreCreating, "Unknown"),
            (Drift::StoreFailed, "Unknown"),
        ] {
            assert_eq!(drift.status(), status, "{drift:?}");
        }
    }

    #[test]
    fn only_a_write_after_an_unchanged_sync_is_a_drift_repair() {
        assert!(repairs_drift(true, &Plan::Create));
        assert!(repairs_drift(true, &Plan::NewVersion));
        assert!(repairs_drift(true, &Plan::UpdateMetadata));
        assert!(!repairs_drift(true, &Plan::InSync));
        assert!(!repairs_drift(true, &Plan::Refuse(Refusal::NotOwned)));
        assert!(!repairs_drift(false, &Plan::NewVersion));
    }
}
