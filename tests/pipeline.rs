//! The controller's reconcile, whole, without a test bed: each scenario runs `Harness::reconcile` (the same steps,
//! reads and writes as the running controller) against an API server in the test process
//! (`support/fake_api.rs`) and the in-memory store (`support/memory_store.rs`), and asserts on what the reconcile
//! wrote to both and on what it never did.
//!
//! What needs a real API server (watches and what they trigger, fair shares across a running controller over
//! time, the metrics census, Events' server-side life) stays in `tests/controller_fast.rs` and `tests/controller.rs`.
//!
//! `cargo test --test pipeline` (no test bed, no KUBECONFIG).
#[path = "support/fake_api.rs"]
mod fake_api;
#[path = "support/memory_store.rs"]
mod memory_store;
#[path = "support/status.rs"]
mod status;
#[path = "support/world.rs"]
mod world;

use world::*;
// ---------------------------------------------------------------------------------------------------------------
// Create, update, nothing to do.

#[tokio::test]
async fn a_new_secretsync_creates_its_remote_secret_and_reports_ready() {
    let mut w = World::new();
    w.secret("s", json!({"k": "first-value"}));
    w.sync("db", spec("db-remote", json!({})));

    let next = w.reconcile("db").await;

    assert_eq!(next.failed, None);
    assert!(
        about(Duration::from_secs(3600))(next.requeue_after),
        "{next:?}"
    );
    assert!(w.holds("db-remote", "first-value"));
    let entry = w.memory.entry("db-remote").expect("written");
    assert_eq!(
        entry.owner,
        Some(w.owner("db")),
        "the marker names this SecretSync in its scope"
    );
    assert_eq!(entry.digest, Some(digest("first-value")));
    let s = w.status("db");
    assert_eq!(phase(&s), "Ready");
    assert_eq!(ready(&s), "True/Synced");
    assert_eq!(ready_message(&s), r#"remote secret "db-remote" created"#);
    assert_eq!(s["observedGeneration"], 1);
    assert_eq!(
        s["remote"],
        json!({"name": "db-remote", "id": "memory:db-remote", "version": "1"})
    );
    assert_eq!(s["syncedDigest"], json!(digest("first-value")));
    assert_eq!(s["store"]["name"], "mem");
    assert_eq!(s["syncedTarget"]["remoteName"], "db-remote");
    assert!(s["lastSyncTime"].is_string());
    assert_eq!(w.event_reasons("db"), ["Normal/Synced"]);
    assert!(
        w.finalizers("db").is_empty(),
        "Retain (the default) holds no finalizer"
    );
    w.assert_never_shown("first-value");
}

#[tokio::test]
async fn a_new_source_value_is_written_as_a_new_version() {
    let mut w = synced("db", "db-remote", "first-value", json!({})).await;
    w.secret("s", json!({"k": "second-value"}));

    let next = w.reconcile("db").await;

    assert_eq!(next.failed, None);
    assert!(w.holds("db-remote", "second-value"));
    assert_eq!(w.memory.calls(Op::Apply, "db-remote"), 2);
    let s = w.status("db");
    assert_eq!(s["remote"]["version"], "2");
    assert_eq!(s["syncedDigest"], json!(digest("second-value")));
    assert_eq!(
        ready_message(&s),
        r#"remote secret "db-remote" updated with a new value"#
    );
    w.assert_never_shown("second-value");
}

#[tokio::test]
async fn a_reconcile_with_nothing_changed_reads_the_store_and_writes_nothing() {
    let mut w = synced("db", "db-remote", "v", json!({})).await;
    let status_writes = w.status_writes("db");
    let events = w.events("db").len();

    let next = w.reconcile("db").await;

    assert_eq!(next.failed, None);
    assert_eq!(
        w.memory.calls(Op::Observe, "db-remote"),
        2,
        "the store is read again"
    );
    assert_eq!(
        w.memory.calls(Op::Apply, "db-remote"),
        1,
        "an unchanged value was written"
    );
    assert_eq!(
        w.status_writes("db"),
        status_writes,
        "an unchanged status was written"
    );
    assert_eq!(w.events("db").len(), events);
    assert_eq!(ready(&w.status("db")), "True/Synced");
}

#[tokio::test]
async fn a_metadata_only_change_is_written_in_place_without_a_new_value_version() {
    let mut w = synced("db", "db-remote", "v", json!({})).await;
    w.sync(
        "db",
        spec(
            "db-remote",
            json!({"target": {"description": "the db", "labels": {"team": "a"}}}),
        ),
    );

    w.reconcile("db").await;

    let entry = w.memory.entry("db-remote").expect("kept");
    assert_eq!(entry.metadata.description.as_deref(), Some("the db"));
    assert_eq!(
        entry.metadata.labels.get("team").map(String::as_str),
        Some("a")
    );
    assert_eq!(
        entry.version, 1,
        "a metadata change wrote a new value version"
    );
    let s = w.status("db");
    assert_eq!(
        ready_message(&s),
        r#"remote secret "db-remote" metadata updated"#
    );
    assert_eq!(s["observedGeneration"], 2);
}

#[tokio::test]
async fn without_a_key_the_whole_secret_is_pushed_as_one_json_object() {
    let mut w = World::new();
    w.secret("s", json!({"user": "app", "password": "hunter2"}));
    w.sync(
        "db",
        spec("db-remote", json!({"source": {"secretRef": {"key": null}}})),
    );

    w.reconcile("db").await;

    assert!(
        w.holds("db-remote", r#"{"password":"hunter2","user":"app"}"#),
        "{:?}",
        w.memory
            .entry("db-remote")
            .map(|e| String::from_utf8_lossy(&e.value).into_owned())
    );
    w.assert_never_shown("hunter2");
}

#[tokio::test]
async fn if_not_exists_leaves_an_existing_remote_secret_unchanged() {
    let mut w = synced(
        "db",
        "db-remote",
        "v1",
        json!({"updatePolicy": "IfNotExists"}),
    )
    .await;
    w.secret("s", json!({"k": "v2"}));

    w.reconcile("db").await;

    assert!(w.holds("db-remote", "v1"));
    assert_eq!(w.memory.calls(Op::Apply, "db-remote"), 1);
    assert_eq!(ready(&w.status("db")), "True/ExistsNotUpdated");
}

// ---------------------------------------------------------------------------------------------------------------
// Ownership: conflicts, adoption, scopes.

#[tokio::test]
async fn a_remote_secret_not_written_by_secretsync_is_a_conflict_and_left_untouched() {
    let mut w = World::new();
    w.memory.put_foreign("db-remote", b"not-ours");
    let untouched = w.memory.entry("db-remote");
    w.secret("s", json!({"k": "v"}));
    w.sync("db", spec("db-remote", json!({})));

    let next = w.reconcile("db").await;

    assert_plan_refused(&next, &w.status("db"), "Conflict");
    let s = w.status("db");
    assert_eq!(ready(&s), "False/Conflict");
    assert!(
        ready_message(&s).contains("spec.adoptExisting: true"),
        "{s}"
    );
    assert_eq!(w.memory.entry("db-remote"), untouched);
    assert_eq!(w.memory.calls(Op::Apply, "db-remote"), 0);
    assert_eq!(
        w.memory.calls(Op::ReadValue, "db-remote"),
        0,
        "a value was read without adoption"
    );
    assert_eq!(w.event_reasons("db"), ["Warning/Conflict"]);
}

#[tokio::test]
async fn a_remote_secret_of_another_secretsync_is_a_conflict_that_does_not_name_it() {
    let mut w = synced("first", "shared", "first-value", json!({})).await;
    w.sync("second", spec("shared", json!({})));

    let next = w.reconcile("second").await;

    assert_plan_refused(&next, &w.status("second"), "Conflict");
    let message = ready_message(&w.status("second"));
    assert!(message.contains("owned by another SecretSync"), "{message}");
    assert!(!message.contains("first"), "the owner was named: {message}");
    assert_eq!(w.event_reasons("second"), ["Warning/Conflict"]);
    assert!(w.holds("shared", "first-value"));
    assert_eq!(
        w.memory.calls(Op::Apply, "shared"),
        1,
        "only the owner wrote"
    );
    assert_eq!(ready(&w.status("first")), "True/Synced");
}

#[tokio::test]
async fn adopt_existing_is_refused_by_a_store_that_adopts_nothing() {
    let mut w = World::new();
    w.memory.put_foreign("db-remote", b"theirs");
    w.secret("s", json!({"k": "v"}));
    w.sync("db", spec("db-remote", json!({"adoptExisting": true})));

    let next = w.reconcile("db").await;

    assert_plan_refused(&next, &w.status("db"), "AdoptionNotAllowed");
    assert!(ready_message(&w.status("db")).contains("spec.adoption"));
    assert!(w.holds("db-remote", "theirs"));
    assert_eq!(w.memory.entry("db-remote").and_then(|e| e.owner), None);
}

#[tokio::test]
async fn a_store_that_adopts_unmarked_secrets_takes_one_over_with_a_new_version() {
    let mut w = World::new();
    w.store("mem", json!({"adoption": "Unmarked"}));
    w.memory.put_foreign("db-remote", b"theirs");
    w.secret("s", json!({"k": "ours"}));
    w.sync("db", spec("db-remote", json!({"adoptExisting": true})));

    let next = w.reconcile("db").await;

    assert_eq!(next.failed, None);
    let entry = w.memory.entry("db-remote").expect("kept");
    assert_eq!(entry.value, b"ours");
    assert_eq!(entry.version, 2);
    assert_eq!(entry.owner, Some(w.owner("db")));
    assert_eq!(
        w.memory.calls(Op::ReadValue, "db-remote"),
        1,
        "the value is read once to compare"
    );
}

#[tokio::test]
async fn adopting_a_secret_that_already_holds_the_value_writes_only_the_marker() {
    let mut w = World::new();
    w.store("mem", json!({"adoption": "Unmarked"}));
    w.memory.put_foreign("db-remote", b"same");
    w.secret("s", json!({"k": "same"}));
    w.sync("db", spec("db-remote", json!({"adoptExisting": true})));

    w.reconcile("db").await;

    let entry = w.memory.entry("db-remote").expect("kept");
    assert_eq!(entry.version, 1, "an equal value was written again");
    assert_eq!(entry.owner, Some(w.owner("db")));
    assert_eq!(entry.digest, Some(digest("same")));
    assert_eq!(
        ready_message(&w.status("db")),
        r#"remote secret "db-remote" metadata updated"#
    );
}

/// A remote secret whose SecretSync is gone (deleted under Retain) in this namespace incarnation.
fn orphan(w: &World, remote: &str, value: &[u8]) {
    w.memory.put_entry(
        remote,
        Entry {
            value: value.to_vec(),
            owner: Some(owner("gone", "uid-of-gone", CLUSTER, NS_UID)),
            digest: Some("some-digest".into()),
            version: 3,
            metadata: Default::default(),
        },
    );
}

#[tokio::test]
async fn an_orphan_is_adopted_only_where_the_store_allows_orphans() {
    let mut w = World::new();
    w.store("mem", json!({"adoption": "Unmarked"}));
    orphan(&w, "db-remote", b"old");
    w.secret("s", json!({"k": "new"}));
    w.sync("db", spec("db-remote", json!({"adoptExisting": true})));

    let next = w.reconcile("db").await;
    assert_plan_refused(&next, &w.status("db"), "AdoptionNotAllowed");
    assert!(w.holds("db-remote", "old"));

    w.store("mem", json!({"adoption": "UnmarkedOrOrphaned"}));
    let next = w.reconcile("db").await;
    assert_eq!(next.failed, None, "{}", w.status("db"));
    assert!(w.holds("db-remote", "new"));
    assert_eq!(
        w.memory.entry("db-remote").and_then(|e| e.owner),
        Some(w.owner("db"))
    );
}

#[tokio::test]
async fn an_orphan_without_adopt_existing_is_a_conflict_that_says_adoption_may_help() {
    let mut w = World::new();
    orphan(&w, "db-remote", b"old");
    w.secret("s", json!({"k": "new"}));
    w.sync("db", spec("db-remote", json!({})));

    let next = w.reconcile("db").await;

    assert_plan_refused(&next, &w.status("db"), "Conflict");
    assert!(
        ready_message(&w.status("db"))
            .contains("adoptExisting takes over a secret whose SecretSync is gone")
    );
    // Whether the owner exists was looked up on the API server.
    assert_eq!(w.requests_to("GET", &sync_path("gone")), 1);
}

#[tokio::test]
async fn a_marker_from_another_cluster_is_never_taken_over() {
    let mut w = World::new();
    w.store("mem", json!({"adoption": "UnmarkedOrOrphaned"}));
    w.secret("s", json!({"k": "ours"}));
    w.sync("db", spec("db-remote", json!({"adoptExisting": true})));
    let uid = w.object("db").and_then(|o| o.metadata.uid).expect("uid");
    // Same namespace, name and even uid, written by another cluster sharing the store.
    w.memory.put_entry(
        "db-remote",
        Entry {
            value: b"theirs".to_vec(),
            owner: Some(owner("db", &uid, "other-cluster", "their-namespace-uid")),
            digest: Some("d".into()),
            version: 1,
            metadata: Default::default(),
        },
    );

    let next = w.reconcile("db").await;

    assert_plan_refused(&next, &w.status("db"), "Conflict");
    assert!(w.holds("db-remote", "theirs"));
    assert_eq!(
        w.requests_to("GET", &sync_path("db")),
        0,
        "another cluster's object was looked up here"
    );
}

#[tokio::test]
async fn a_marker_from_a_namespace_deleted_and_created_again_is_an_orphan() {
    let mut w = World::new();
    w.store("mem", json!({"adoption": "UnmarkedOrOrphaned"}));
    w.secret("s", json!({"k": "new"}));
    w.sync("db", spec("db-remote", json!({})));
    // Written by `team-a/db` of the namespace's earlier life.
    w.memory.put_entry(
        "db-remote",
        Entry {
            value: b"old".to_vec(),
            owner: Some(owner(
                "db",
                "uid-of-the-earlier-db",
                CLUSTER,
                "uid-of-the-earlier-team-a",
            )),
            digest: Some("d".into()),
            version: 1,
            metadata: Default::default(),
        },
    );

    // The same namespace and name do not inherit it: without adoptExisting it is a conflict, left untouched.
    let next = w.reconcile("db").await;
    assert_plan_refused(&next, &w.status("db"), "Conflict");
    assert!(w.holds("db-remote", "old"));
    assert_eq!(w.memory.calls(Op::Apply, "db-remote"), 0);
    assert!(
        w.status("db")["remote"].is_null(),
        "the newcomer holds the old remote: {}",
        w.status("db")
    );

    w.sync("db", spec("db-remote", json!({"adoptExisting": true})));
    let next = w.reconcile("db").await;

    assert_eq!(next.failed, None, "{}", w.status("db"));
    assert!(w.holds("db-remote", "new"));
    assert_eq!(
        w.memory.entry("db-remote").and_then(|e| e.owner),
        Some(w.owner("db"))
    );
}

#[tokio::test]
async fn a_marker_and_digest_from_before_scopes_stay_this_objects_without_a_write() {
    let mut w = World::new();
    w.secret("s", json!({"k": "the-value"}));
    w.sync("kept", spec("kept-remote", json!({})));
    w.sync("newcomer", spec("newcomer-remote", json!({})));
    let uid = w.object("kept").and_then(|o| o.metadata.uid).expect("uid");
    let controller_wide = DigestKey::new(DIGEST_KEY.to_vec())
        .expect("key")
        .digest(b"the-value");
    let earlier = |name: &str, uid: &str| Entry {
        value: b"the-value".to_vec(),
        owner: Some(owner(name, uid, "", "")),
        digest: Some(controller_wide.clone()),
        version: 1,
        metadata: Default::default(),
    };
    w.memory.put_entry("kept-remote", earlier("kept", &uid));
    // Written by an earlier object named `newcomer` (another uid), before scopes.
    w.memory
        .put_entry("newcomer-remote", earlier("newcomer", "an-earlier-uid"));

    assert_eq!(w.reconcile("kept").await.failed, None);
    let next = w.reconcile("newcomer").await;
    assert_plan_refused(&next, &w.status("newcomer"), "Conflict");

    assert_eq!(ready(&w.status("kept")), "True/Synced");
    assert_eq!(
        w.memory.calls(Op::Apply, "kept-remote"),
        0,
        "the upgrade wrote"
    );
    assert_eq!(w.memory.calls(Op::Apply, "newcomer-remote"), 0);
    // The next value is written under the namespace's key, with the scope in the marker.
    w.secret("s", json!({"k": "next"}));
    w.reconcile("kept").await;
    let entry = w.memory.entry("kept-remote").expect("kept");
    assert_eq!(entry.owner, Some(w.owner("kept")));
    assert_eq!(entry.digest, Some(digest("next")));
}

// ---------------------------------------------------------------------------------------------------------------
// A target that moved: the previous remote secret.

#[tokio::test]
async fn a_rename_under_delete_deletes_the_previous_remote_secret() {
    let mut w = synced("db", "old-name", "v", json!({"deletionPolicy": "Delete"})).await;
    w.sync("db", spec("new-name", json!({"deletionPolicy": "Delete"})));

    let next = w.reconcile("db").await;

    assert_eq!(next.failed, None);
    assert!(w.holds("new-name", "v"));
    assert_eq!(w.memory.entry("old-name"), None);
    let s = w.status("db");
    assert_eq!(ready(&s), "True/Synced");
    assert_eq!(s["syncedTarget"]["remoteName"], "new-name");
    assert_eq!(s["remote"]["name"], "new-name");
    let deleted = w.event("db", "PreviousRemoteDeleted");
    assert_eq!(str_of(&deleted["type"]), "Normal");
    assert!(
        str_of(&deleted["note"]).contains(r#""old-name" was deleted"#),
        "{deleted}"
    );
}

#[tokio::test]
async fn a_rename_under_retain_leaves_the_previous_remote_secret() {
    let mut w = synced("db", "old-name", "v", json!({})).await;
    w.sync("db", spec("new-name", json!({})));

    w.reconcile("db").await;

    assert!(w.holds("new-name", "v"));
    assert!(w.holds("old-name", "v"));
    assert_eq!(w.memory.calls(Op::Delete, "old-name"), 0);
    let left = w.event("db", "PreviousRemoteLeft");
    assert_eq!(str_of(&left["type"]), "Normal");
    assert!(
        str_of(&left["note"]).contains("deletionPolicy is Retain"),
        "{left}"
    );
    assert_eq!(ready(&w.status("db")), "True/Synced");
    assert_eq!(w.status("db")["syncedTarget"]["remoteName"], "new-name");
}

#[tokio::test]
async fn a_previous_remote_secret_taken_over_since_is_left_in_place() {
    let mut w = synced("db", "old-name", "v", json!({"deletionPolicy": "Delete"})).await;
    w.memory.put_foreign("old-name", b"someone else's now");
    w.sync("db", spec("new-name", json!({"deletionPolicy": "Delete"})));

    w.reconcile("db").await;

    assert!(w.holds("old-name", "someone else's now"));
    assert_eq!(w.memory.calls(Op::Delete, "old-name"), 0);
    let note = w.event("db", "PreviousRemoteLeft")["note"].clone();
    assert!(
        str_of(&note).contains("no longer owned by this SecretSync"),
        "{note}"
    );
}

#[tokio::test]
async fn a_failed_delete_of_the_previous_remote_secret_is_reported_and_tried_again() {
    let mut w = synced("db", "old-name", "v", json!({"deletionPolicy": "Delete"})).await;
    w.memory
        .fail_next(Op::Delete, "old-name", 1, ErrorClass::Retry, "BackendError");
    w.sync("db", spec("new-name", json!({"deletionPolicy": "Delete"})));

    let next = w.reconcile("db").await;

    assert_eq!(next.failed.as_deref(), Some("PreviousRemoteNotDeleted"));
    assert!(
        next.requeue_after
            .is_some_and(|d| d <= Duration::from_secs(1)),
        "{next:?}"
    );
    let s = w.status("db");
    assert_eq!(ready(&s), "False/PreviousRemoteNotDeleted");
    assert!(
        ready_message(&s).contains(r#"previous remote secret "old-name" could not be deleted"#),
        "{s}"
    );
    assert_eq!(
        s["syncedTarget"]["remoteName"], "old-name",
        "the old placement is kept to try again"
    );
    assert!(
        w.holds("new-name", "v"),
        "the new remote secret is written first"
    );
    assert!(w.holds("old-name", "v"));
    assert_eq!(
        str_of(&w.event("db", "PreviousRemoteNotDeleted")["type"]),
        "Warning"
    );

    let next = w.reconcile("db").await;
    assert_eq!(next.failed, None);
    assert_eq!(w.memory.entry("old-name"), None);
    assert_eq!(w.status("db")["syncedTarget"]["remoteName"], "new-name");
}

// ---------------------------------------------------------------------------------------------------------------
// The cleanup finalizer, deletion.

#[tokio::test]
async fn delete_policy_adds_the_finalizer_as_a_compare_and_swap_and_protects_the_store() {
    let mut w = pending(json!({"deletionPolicy": "Delete"}));
    let version = w
        .object("db")
        .and_then(|o| o.metadata.resource_version)
        .expect("a resourceVersion");

    w.reconcile("db").await;

    assert_eq!(w.finalizers("db"), [FINALIZER]);
    let patch = w
        .api
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH" && r.path == sync_path("db"))
        .expect("a finalizer patch");
    assert_eq!(
        patch.body["metadata"]["resourceVersion"],
        json!(version),
        "not a compare-and-swap"
    );
    let store = w.api.get(&store_path("mem")).expect("the store");
    assert_eq!(
        store["metadata"]["finalizers"],
        json!(["secretsync.io/store-in-use"])
    );
    assert_eq!(ready(&w.status("db")), "True/Synced");
}

#[tokio::test]
async fn going_back_to_retain_removes_the_finalizer() {
    let mut w = synced("db", "db-remote", "v", json!({"deletionPolicy": "Delete"})).await;
    assert_eq!(w.finalizers("db"), [FINALIZER]);
    w.sync("db", spec("db-remote", json!({"deletionPolicy": "Retain"})));

    w.reconcile("db").await;

    assert!(w.finalizers("db").is_empty());
    assert!(w.holds("db-remote", "v"));
}

#[tokio::test]
async fn a_stale_finalizer_patch_is_retried_with_backoff_before_the_store_is_touched() {
    let mut w = pending(json!({"deletionPolicy": "Delete"}));
    w.api.fail_next("PATCH", "/secretsyncs/db", 409, 1);

    let next = w.reconcile("db").await;

    assert_eq!(next.failed.as_deref(), Some("KubernetesError"));
    assert!(
        next.requeue_after
            .is_some_and(|d| d <= Duration::from_secs(1)),
        "{next:?}"
    );
    assert_eq!(w.store_calls("db-remote"), 0);
    assert_eq!(w.reconcile("db").await.failed, None);
    assert_eq!(w.finalizers("db"), [FINALIZER]);
}

#[tokio::test]
async fn deleting_under_delete_deletes_the_remote_secret_then_lets_the_object_go() {
    let mut w = synced("db", "db-remote", "v", json!({"deletionPolicy": "Delete"})).await;
    w.delete_sync("db", Duration::ZERO);

    let next = w.reconcile("db").await;

    assert_eq!(
        next,
        Next {
            requeue_after: None,
            failed: None
        }
    );
    assert_eq!(w.memory.entry("db-remote"), None);
    assert!(w.object("db").is_none(), "the finalizer was not removed");
    assert_eq!(str_of(&w.event("db", "Deleted")["type"]), "Normal");
}

#[tokio::test]
async fn deleting_under_retain_touches_nothing() {
    let mut w = synced("db", "db-remote", "v", json!({})).await;
    let calls = w.store_calls("db-remote");
    w.sync("db", spec("db-remote", json!({})));
    // A finalizer of someone else's keeps the object while it is being deleted.
    let mut object = w.api.get(&sync_path("db")).expect("exists");
    object["metadata"]["finalizers"] = json!(["example.com/other"]);
    w.api.put(&sync_path("db"), object);
    w.delete_sync("db", Duration::ZERO);
    w.api.clear_requests();

    let next = w.reconcile("db").await;

    assert_eq!(
        next,
        Next {
            requeue_after: None,
            failed: None
        }
    );
    assert_eq!(w.store_calls("db-remote"), calls);
    assert!(w.holds("db-remote", "v"));
    assert!(
        w.api.requests().iter().all(|r| !r.writes()),
        "{:?}",
        w.api.requests()
    );
}

#[tokio::test]
async fn deleting_a_secretsync_whose_remote_secret_was_taken_over_leaves_it() {
    let mut w = synced("db", "db-remote", "v", json!({"deletionPolicy": "Delete"})).await;
    w.memory.put_foreign("db-remote", b"someone else's");
    w.delete_sync("db", Duration::ZERO);

    w.reconcile("db").await;

    assert!(w.holds("db-remote", "someone else's"));
    assert_eq!(w.memory.calls(Op::Delete, "db-remote"), 0);
    assert!(w.object("db").is_none());
    assert!(str_of(&w.event("db", "LeftForeign")["note"]).contains("not owned by this SecretSync"));
}

#[tokio::test]
async fn a_failed_cleanup_blocks_the_deletion_and_says_how_to_let_go() {
    let mut w = synced("db", "db-remote", "v", json!({"deletionPolicy": "Delete"})).await;
    w.memory.fail_next(
        Op::Delete,
        "db-remote",
        1,
        ErrorClass::Retry,
        "BackendError",
    );
    w.delete_sync("db", Duration::ZERO);

    let next = w.reconcile("db").await;

    assert_eq!(next.failed.as_deref(), Some("DeletionBlocked"));
    assert!(
        next.requeue_after
            .is_some_and(|d| d <= Duration::from_secs(1)),
        "{next:?}"
    );
    let s = w.status("db");
    assert_eq!(ready(&s), "False/DeletionBlocked");
    assert!(
        ready_message(&s).contains("set spec.deletionPolicy: Retain"),
        "{s}"
    );
    assert_eq!(str_of(&w.event("db", "DeletionBlocked")["type"]), "Warning");
    assert_eq!(w.finalizers("db"), [FINALIZER]);
    assert!(w.holds("db-remote", "v"));

    // The store recovers: the next attempt deletes and lets go.
    assert_eq!(w.reconcile("db").await.failed, None);
    assert_eq!(w.memory.entry("db-remote"), None);
    assert!(w.object("db").is_none());
}

#[tokio::test]
async fn in_a_terminating_namespace_a_blocked_cleanup_is_looked_at_again_when_its_time_is_up() {
    let mut w = synced("db", "db-remote", "v", json!({"deletionPolicy": "Delete"})).await;
    w.memory.fail_next(
        Op::Delete,
        "db-remote",
        1,
        ErrorClass::Permanent,
        "Forbidden",
    );
    w.terminate_namespace(NS);
    w.delete_sync("db", Duration::from_secs(100));

    let next = w.reconcile("db").await;

    assert_eq!(next.failed.as_deref(), Some("DeletionBlocked"));
    // A permanent error would wait for the refresh (an hour); the namespace's deadline (600 s, 100 s gone) comes
    // first.
    let wait = next.requeue_after.expect("looked at again");
    assert!(
        wait > Duration::from_secs(450) && wait <= Duration::from_secs(502),
        "{wait:?}"
    );
    assert!(ready_message(&w.status("db")).contains("The namespace is being deleted"));
    assert_eq!(w.finalizers("db"), [FINALIZER]);
}

#[tokio::test]
async fn in_a_terminating_namespace_a_blocked_cleanup_gives_up_after_the_timeout() {
    let mut w = World::with(Settings {
        cleanup_timeout: Duration::from_secs(60),
        ..Settings::default()
    });
    w.secret("s", json!({"k": "v"}));
    w.sync("db", spec("db-remote", json!({"deletionPolicy": "Delete"})));
    w.reconcile("db").await;
    w.memory.fail_next(
        Op::Delete,
        "db-remote",
        1,
        ErrorClass::Retry,
        "BackendError",
    );
    w.terminate_namespace(NS);
    w.delete_sync("db", Duration::from_secs(120));

    let next = w.reconcile("db").await;

    assert_eq!(
        next,
        Next {
            requeue_after: None,
            failed: None
        }
    );
    assert!(w.object("db").is_none(), "the finalizer was kept");
    assert!(
        w.holds("db-remote", "v"),
        "the remote secret is left in place"
    );
    let left = w.event("db", "RemoteSecretLeft");
    assert_eq!(str_of(&left["type"]), "Warning");
    assert!(
        str_of(&left["note"]).contains(r#"the remote secret "db-remote""#),
        "{left}"
    );
    assert!(
        w.metrics
            .render()
            .contains(r#"secretsync_remote_secrets_left_total{dialect="ServiceFabricMesh"} 1"#),
        "{}",
        w.metrics.render()
    );
}

#[tokio::test]
async fn the_last_secretsync_of_a_store_being_deleted_releases_it() {
    let mut w = synced("db", "db-remote", "v", json!({"deletionPolicy": "Delete"})).await;
    let mut store = w.api.get(&store_path("mem")).expect("the store");
    assert_eq!(
        store["metadata"]["finalizers"],
        json!(["secretsync.io/store-in-use"])
    );
    store["metadata"]["deletionTimestamp"] = json!(fake_api::now());
    w.api.put(&store_path("mem"), store);
    w.delete_sync("db", Duration::ZERO);

    w.reconcile("db").await;

    assert_eq!(
        w.memory.entry("db-remote"),
        None,
        "the cleanup ran through the store being deleted"
    );
    assert!(
        w.api.get(&store_path("mem")).is_none(),
        "the store was not released"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Suspend and refusals: nothing reaches the store.

#[tokio::test]
async fn a_suspended_secretsync_neither_reads_nor_writes_the_store() {
    let mut w = synced("db", "db-remote", "v1", json!({})).await;
    w.secret("s", json!({"k": "v2"}));
    w.sync("db", spec("db-remote", json!({"suspend": true})));
    let calls = w.store_calls("db-remote");

    let next = w.reconcile("db").await;

    assert_eq!(
        next,
        Next {
            requeue_after: None,
            failed: None
        }
    );
    assert_eq!(w.store_calls("db-remote"), calls);
    assert!(w.holds("db-remote", "v1"));
    let s = w.status("db");
    assert_eq!(ready(&s), "True/Suspended", "{s}");
    assert!(ready_message(&s).contains("spec.suspend is true"));
    assert_eq!(s["observedGeneration"], 2);
    let writes = w.status_writes("db");
    w.reconcile("db").await;
    assert_eq!(
        w.status_writes("db"),
        writes,
        "a suspended object's status was written again"
    );

    w.sync("db", spec("db-remote", json!({"suspend": false})));
    w.reconcile("db").await;
    assert!(w.holds("db-remote", "v2"));
}

/// A refusal before any store call: reported, counted, looked at again within five minutes (a change of what it
/// names also triggers it), and nothing asked of the store.
async fn assert_refused(w: &mut World, name: &str, remote: &str, reason: &str) -> Value {
    let next = w.reconcile(name).await;
    assert_eq!(next.failed.as_deref(), Some(reason), "{}", w.status(name));
    let wait = next.requeue_after.expect("looked at again");
    assert!(
        wait >= Duration::from_secs(300) && wait <= Duration::from_secs(330),
        "{wait:?}"
    );
    assert_eq!(w.store_calls(remote), 0, "the store was called");
    let s = w.status(name);
    assert_eq!(phase(&s), "Failed");
    assert_eq!(ready(&s), format!("False/{reason}"));
    assert!(w.event_reasons(name).contains(&format!("Warning/{reason}")));
    s
}

#[tokio::test]
async fn a_missing_store_is_refused_without_a_store_call() {
    let mut w = World::new();
    w.secret("s", json!({"k": "v"}));
    w.sync(
        "db",
        spec(
            "db-remote",
            json!({"target": {"storeRef": {"name": "nowhere"}}}),
        ),
    );

    let s = assert_refused(&mut w, "db", "db-remote", "StoreNotFound").await;

    assert_eq!(
        ready_message(&s),
        r#"Store "nowhere" does not exist in namespace "team-a""#
    );
    assert!(
        w.metrics.render().contains(
            r#"secretsync_store_refusals_total{store="unresolved",reason="StoreNotFound"} 1"#
        ),
        "{}",
        w.metrics.render()
    );
}

#[tokio::test]
async fn a_cluster_store_refuses_a_namespace_its_conditions_do_not_admit() {
    let mut w = World::new();
    w.cluster_store(
        "shared",
        json!({"conditions": [{"namespaces": ["team-b"]}]}),
    );
    w.secret("s", json!({"k": "v"}));
    w.sync(
        "db",
        spec(
            "db",
            json!({"target": {"storeRef": {"kind": "ClusterStore", "name": "shared"}}}),
        ),
    );

    assert_refused(&mut w, "db", "team-a-db", "StoreNotAllowed").await;
}

#[tokio::test]
async fn a_cluster_store_admits_by_namespace_labels_and_scopes_the_remote_name() {
    let mut w = World::new();
    w.cluster_store(
        "shared",
        json!({"conditions": [{"namespaceSelector": {"matchLabels": {"tier": "prod"}}}]}),
    );
    w.secret("s", json!({"k": "v"}));
    w.sync(
        "db",
        spec(
            "db",
            json!({"target": {"storeRef": {"kind": "ClusterStore", "name": "shared"}}}),
        ),
    );
    assert_refused(&mut w, "db", "team-a-db", "StoreNotAllowed").await;

    w.namespace(NS, NS_UID, json!({"tier": "prod"}));
    let next = w.reconcile("db").await;

    assert_eq!(next.failed, None, "{}", w.status("db"));
    assert!(
        w.holds("team-a-db", "v"),
        "not under the ClusterStore's default {{namespace}}-{{remoteName}}"
    );
    assert_eq!(w.memory.entry("db"), None);
    let s = w.status("db");
    assert_eq!(s["remote"]["name"], "team-a-db");
    assert_eq!(
        s["store"],
        json!({"kind": "ClusterStore", "name": "shared", "dialect": "ServiceFabricMesh"})
    );
}

#[tokio::test]
async fn a_source_outside_the_stores_source_selector_is_refused() {
    let mut w = pending(json!({}));
    w.store(
        "mem",
        json!({"sourceSelector": {"matchLabels": {"push": "yes"}}}),
    );

    let s = assert_refused(&mut w, "db", "db-remote", "SourceNotAllowed").await;
    assert!(ready_message(&s).contains(r#""s""#), "{s}");

    w.secret_labelled("s", json!({"k": "v"}), json!({"push": "yes"}));
    assert_eq!(w.reconcile("db").await.failed, None);
    assert!(w.holds("db-remote", "v"));
}

fn inline_spec() -> Value {
    json!({
        "source": {"secretRef": {"name": "s", "key": "k"}},
        "target": {"dialect": "ServiceFabricMesh", "endpoint": "http://127.0.0.1:9", "remoteName": "db-remote"},
    })
}

#[tokio::test]
async fn an_inline_target_is_refused_unless_the_operator_allows_it() {
    let mut w = World::new();
    w.secret("s", json!({"k": "v"}));
    w.sync("db", inline_spec());
    let s = assert_refused(&mut w, "db", "db-remote", "InlineTargetNotAllowed").await;
    assert!(ready_message(&s).contains("--allow-inline-targets"));

    let mut w = World::with(Settings {
        allow_inline: true,
        ..Settings::default()
    });
    w.secret("s", json!({"k": "v"}));
    w.sync("db", inline_spec());
    assert_eq!(w.reconcile("db").await.failed, None, "{}", w.status("db"));
    assert!(w.holds("db-remote", "v"));
    assert_eq!(
        w.status("db")["store"],
        json!({"dialect": "ServiceFabricMesh"})
    );
}

#[tokio::test]
async fn a_namespaced_store_outside_the_operators_hosts_is_refused() {
    let mut w = World::with(Settings {
        namespaced_store_hosts: vec!["*.example.com".into()],
        ..Settings::default()
    });
    w.secret("s", json!({"k": "v"}));
    w.sync("db", spec("db-remote", json!({})));

    assert_refused(&mut w, "db", "db-remote", "StoreNotAllowed").await;
}

#[tokio::test]
async fn a_namespaced_store_may_not_use_the_controllers_own_identity() {
    let mut w = World::new();
    w.store("mem", json!({"credentialsRef": {"name": "creds"}}));
    w.secret("creds", json!({"workloadIdentity": "true"}));
    w.secret("s", json!({"k": "v"}));
    w.sync("db", spec("db-remote", json!({})));

    let s = assert_refused(&mut w, "db", "db-remote", "StoreNotAllowed").await;
    assert!(ready_message(&s).contains("serviceAccountRef"), "{s}");
}

#[tokio::test]
async fn an_invalid_refresh_interval_is_reported_and_nothing_is_read() {
    let mut w = pending(json!({"refreshInterval": "soon"}));

    let next = w.reconcile("db").await;

    assert_eq!(
        next,
        Next {
            requeue_after: None,
            failed: Some("InvalidRefreshInterval".into())
        }
    );
    assert_eq!(w.store_calls("db-remote"), 0);
    assert_eq!(
        w.requests_to("GET", &secret_path("s")),
        0,
        "the source was read"
    );
    assert!(
        ready_message(&w.status("db")).contains("nothing is read or written until it is fixed")
    );
    assert_eq!(
        str_of(&w.event("db", "InvalidRefreshInterval")["type"]),
        "Warning"
    );

    // The value that used to crash the controller (as an object written before the CRD's range check holds it).
    w.sync(
        "db",
        spec(
            "db-remote",
            json!({"refreshInterval": "99999999999999999999h"}),
        ),
    );
    let next = w.reconcile("db").await;
    assert_eq!(next.failed.as_deref(), Some("InvalidRefreshInterval"));
    assert!(ready_message(&w.status("db")).contains("too large"));
    assert_eq!(w.store_calls("db-remote"), 0);

    // 0s: read again only on a change.
    w.sync("db", spec("db-remote", json!({"refreshInterval": "0s"})));
    assert_eq!(
        w.reconcile("db").await,
        Next {
            requeue_after: None,
            failed: None
        }
    );
    assert!(w.holds("db-remote", "v"));
}

#[tokio::test]
async fn a_template_without_a_name_placeholder_is_an_invalid_spec() {
    let mut w = pending(json!({}));
    w.store("mem", json!({"remoteNameTemplate": "{namespace}-fixed"}));

    let s = assert_refused(&mut w, "db", "team-a-fixed", "InvalidSpec").await;
    assert!(
        ready_message(&s).contains("must hold {name} or {remoteName}"),
        "{s}"
    );
}

#[tokio::test]
async fn a_name_the_store_refuses_names_the_template_that_made_it() {
    let mut w = pending(json!({}));
    w.store(
        "mem",
        json!({"remoteNameTemplate": "{namespace}--{remoteName}"}),
    );
    w.memory.refuse_name("team-a--db-remote");

    let s = assert_refused(&mut w, "db", "team-a--db-remote", "InvalidSpec").await;
    assert!(
        ready_message(&s).contains(r#"remoteNameTemplate "{namespace}--{remoteName}""#),
        "{s}"
    );
}

#[tokio::test]
async fn a_name_refused_without_a_template_is_the_stores_own_refusal() {
    let mut w = pending(json!({}));
    w.memory.refuse_name("db-remote");

    let next = w.reconcile("db").await;

    assert_eq!(next.failed.as_deref(), Some("InvalidName"));
    assert!(
        about(Duration::from_secs(3600))(next.requeue_after),
        "{next:?}"
    );
    assert!(!ready_message(&w.status("db")).contains("remoteNameTemplate"));
    assert_eq!(w.store_calls("db-remote"), 0);
}

// ---------------------------------------------------------------------------------------------------------------
// What the reconcile reads from the API server: the source, the credentials, a token.

#[tokio::test]
async fn a_missing_source_secret_waits_for_it() {
    let mut w = World::new();
    w.sync("db", spec("db-remote", json!({})));

    let next = w.reconcile("db").await;

    assert_eq!(
        next,
        Next {
            requeue_after: None,
            failed: Some("SourceNotFound".into())
        }
    );
    assert_eq!(w.store_calls("db-remote"), 0);
    let s = w.status("db");
    assert_eq!(phase(&s), "Failed");
    assert_eq!(
        ready_message(&s),
        r#"source Secret "s" not found in this namespace; SecretSync retries when the Secret changes"#
    );
    let stalled = condition(&s, "Stalled").expect("kstatus Stalled condition");
    assert_eq!(
        (&stalled["status"], &stalled["reason"]),
        (&json!("True"), &json!("SourceNotFound"))
    );
    assert_eq!(w.event_reasons("db"), ["Warning/SourceNotFound"]);
    w.secret("s", json!({"k": "v"}));
    assert_eq!(w.reconcile("db").await.failed, None);
    assert!(w.holds("db-remote", "v"));
}

#[tokio::test]
async fn a_missing_key_is_reported_by_its_name() {
    let mut w = World::new();
    w.secret("s", json!({"other": "v"}));
    w.sync("db", spec("db-remote", json!({})));

    let next = w.reconcile("db").await;

    assert_eq!(
        next,
        Next {
            requeue_after: None,
            failed: Some("KeyNotFound".into())
        }
    );
    assert!(ready_message(&w.status("db")).starts_with(r#"source Secret "s" has no key "k""#));
    assert_eq!(w.store_calls("db-remote"), 0);
}

#[tokio::test]
async fn a_missing_credentials_secret_is_reported_before_any_store_call() {
    let mut w = pending(json!({}));
    w.store("mem", json!({"credentialsRef": {"name": "creds"}}));

    let next = w.reconcile("db").await;

    assert_eq!(next.failed.as_deref(), Some("CredentialsNotFound"));
    assert_eq!(next.requeue_after, None, "only the Secret's creation helps");
    let message = ready_message(&w.status("db"));
    assert!(
        message.starts_with(r#"credentials Secret "team-a/creds" not found"#),
        "{message}"
    );
    assert_eq!(w.store_calls("db-remote"), 0);
}

#[tokio::test]
async fn an_api_server_error_reading_the_source_is_retried_with_backoff() {
    let mut w = pending(json!({}));
    w.api.fail_next("GET", "/secrets/s", 500, 1);

    let next = w.reconcile("db").await;

    assert_eq!(next.failed.as_deref(), Some("KubernetesError"));
    assert!(
        next.requeue_after
            .is_some_and(|d| d <= Duration::from_secs(1)),
        "{next:?}"
    );
    assert_eq!(w.store_calls("db-remote"), 0);
    assert_eq!(w.reconcile("db").await.failed, None);
    assert!(w.holds("db-remote", "v"));
}

#[tokio::test]
async fn a_stores_service_account_token_is_requested_for_its_audience() {
    let mut w = pending(json!({}));
    w.store(
        "mem",
        json!({"serviceAccountRef": {"name": "pusher", "audience": AUDIENCE}}),
    );

    assert_eq!(w.reconcile("db").await.failed, None, "{}", w.status("db"));

    let requests = w.api.requests();
    let token = requests
        .iter()
        .find(|r| {
            r.method == "POST" && r.path == "/api/v1/namespaces/team-a/serviceaccounts/pusher/token"
        })
        .expect("a TokenRequest for the Store's ServiceAccount");
    assert_eq!(token.body["spec"]["audiences"], json!([AUDIENCE]));
    assert!(w.holds("db-remote", "v"));
    // Kept for the next reconcile: no second TokenRequest.
    w.reconcile("db").await;
    assert_eq!(
        w.requests_to(
            "POST",
            "/api/v1/namespaces/team-a/serviceaccounts/pusher/token"
        ),
        1
    );
}

#[tokio::test]
async fn a_token_this_clusters_api_server_would_accept_is_never_sent_to_the_store() {
    let mut w = pending(json!({}));
    w.store(
        "mem",
        json!({"serviceAccountRef": {"name": "pusher", "audience": AUDIENCE}}),
    );
    w.api.accept_own_tokens();

    let s = assert_refused(&mut w, "db", "db-remote", "StoreNotAllowed").await;

    assert!(
        ready_message(&s).contains("would be accepted by this cluster's API server"),
        "{s}"
    );
}

/// The one token audience a controller requests by default (`--token-audiences`).
const AUDIENCE: &str = "api://AzureADTokenExchange";

#[tokio::test]
async fn a_token_for_an_audience_the_operator_did_not_allow_is_never_requested() {
    let mut w = pending(json!({}));
    w.store(
        "mem",
        json!({"serviceAccountRef": {"name": "pusher", "audience": "vault.example"}}),
    );

    let s = assert_refused(&mut w, "db", "db-remote", "StoreNotAllowed").await;

    assert!(ready_message(&s).contains("--token-audiences"), "{s}");
    assert!(
        w.api.requests().iter().all(|r| !r.path.ends_with("/token")),
        "a token was requested"
    );
}

#[tokio::test]
async fn a_token_the_namespace_has_not_granted_is_refused_with_how_to_grant_it() {
    let mut w = pending(json!({}));
    w.store("mem", json!({"serviceAccountRef": {"name": "pusher"}}));
    w.api.refuse_tokens(NS, "pusher");

    let s = assert_refused(&mut w, "db", "db-remote", "TokenNotGranted").await;
    assert!(
        ready_message(&s).contains("--resource=serviceaccounts/token --resource-name=pusher"),
        "{s}"
    );
}

#[tokio::test]
async fn a_namespace_not_yet_in_the_watch_is_pending_and_retried_soon() {
    let mut w = World::new();
    let seen = w.namespaces[0].clone();
    w.harness.delete_namespace(seen);
    w.namespaces.clear();
    w.secret("s", json!({"k": "v"}));
    w.sync("db", spec("db-remote", json!({})));

    let next = w.reconcile("db").await;

    assert_eq!(next.failed.as_deref(), Some("Pending"));
    assert!(
        next.requeue_after
            .is_some_and(|d| d <= Duration::from_secs(1)),
        "{next:?}"
    );
    assert_eq!(w.store_calls("db-remote"), 0);
}

// ---------------------------------------------------------------------------------------------------------------
// The store's errors: what each class does to the next attempt.

#[tokio::test]
async fn a_throttled_write_is_retried_no_sooner_than_retry_after() {
    let mut w = pending(json!({}));
    w.memory.fail_next_after(
        Op::Apply,
        "db-remote",
        1,
        ErrorClass::Retry,
        "Throttled",
        Some(Duration::from_secs(20)),
    );

    let next = w.reconcile("db").await;

    assert_eq!(next.failed.as_deref(), Some("Throttled"));
    assert_eq!(next.requeue_after, Some(Duration::from_secs(20)));
    let s = w.status("db");
    assert_eq!(ready(&s), "False/Throttled");
    assert!(
        ready_message(&s).ends_with("(retrying with backoff)"),
        "{s}"
    );
    assert!(str_of(&w.event("db", "Throttled")["note"]).contains("retrying with backoff"));
    assert_eq!(w.reconcile("db").await.failed, None);
}

#[tokio::test]
async fn a_retry_after_beyond_fifteen_minutes_is_not_believed() {
    let mut w = pending(json!({}));
    w.memory.fail_next_after(
        Op::Observe,
        "db-remote",
        1,
        ErrorClass::Retry,
        "Throttled",
        Some(Duration::from_secs(86_400)),
    );

    let next = w.reconcile("db").await;

    assert_eq!(next.requeue_after, Some(Duration::from_secs(900)));
}

#[tokio::test]
async fn transient_errors_back_off_longer_each_time_and_start_over_after_a_success() {
    let mut w = pending(json!({}));
    w.memory.fail_next(
        Op::Observe,
        "db-remote",
        5,
        ErrorClass::Retry,
        "BackendError",
    );

    let mut waits = Vec::new();
    for _ in 0..5 {
        let next = w.reconcile("db").await;
        assert_eq!(next.failed.as_deref(), Some("BackendError"));
        waits.push(next.requeue_after.expect("a retry"));
    }
    let s = w.status("db");
    assert_eq!(phase(&s), "Failed");
    assert!(
        ready_message(&s).ends_with("(retrying with backoff)"),
        "{s}"
    );
    assert_eq!(str_of(&w.event("db", "BackendError")["type"]), "Warning");
    // Each delay is drawn from [ceiling/2, ceiling] with the ceiling doubling from 1 s: the fifth is at least 8 s.
    assert!(
        waits[4] >= Duration::from_secs(8) && waits[4] <= Duration::from_secs(16),
        "{waits:?}"
    );
    assert_eq!(w.reconcile("db").await.failed, None);

    w.memory.fail_next(
        Op::Observe,
        "db-remote",
        1,
        ErrorClass::Retry,
        "BackendError",
    );
    let next = w.reconcile("db").await;
    assert_eq!(
        next.requeue_after,
        Some(Duration::from_secs(1)),
        "the backoff did not start over"
    );
}

#[tokio::test]
async fn a_conflict_in_the_store_is_retried_with_backoff() {
    let mut w = pending(json!({}));
    w.memory
        .fail_next(Op::Apply, "db-remote", 1, ErrorClass::Conflict, "Conflict");

    let next = w.reconcile("db").await;

    assert_eq!(next.failed.as_deref(), Some("Conflict"));
    assert_eq!(next.requeue_after, Some(Duration::from_secs(1)));
    assert_eq!(str_of(&w.event("db", "Conflict")["type"]), "Warning");
    assert_eq!(w.reconcile("db").await.failed, None);
}

#[tokio::test]
async fn refused_credentials_wait_for_a_change_not_a_backoff() {
    let mut w = pending(json!({}));
    w.memory.fail_next(
        Op::Observe,
        "db-remote",
        3,
        ErrorClass::Credentials,
        "Unauthorized",
    );

    for _ in 0..3 {
        let next = w.reconcile("db").await;
        assert_eq!(next.failed.as_deref(), Some("Unauthorized"));
        assert!(
            about(Duration::from_secs(3600))(next.requeue_after),
            "{next:?}"
        );
    }
    let s = w.status("db");
    assert_eq!(ready(&s), "False/Unauthorized");
    assert!(
        ready_message(&s).contains("fix the credentials Secret"),
        "{s}"
    );
    assert_eq!(
        condition(&s, "Stalled").map(|c| c["reason"].clone()),
        Some(json!("Unauthorized"))
    );
    assert_eq!(str_of(&w.event("db", "Unauthorized")["type"]), "Warning");
    assert_eq!(w.memory.calls(Op::Apply, "db-remote"), 0);

    assert_eq!(w.reconcile("db").await.failed, None);
    assert!(
        condition(&w.status("db"), "Stalled").is_none(),
        "Stalled stays after recovery"
    );
}

#[tokio::test]
async fn a_permanent_error_waits_for_the_refresh_interval() {
    let mut w = pending(json!({"refreshInterval": "10m"}));
    w.memory
        .fail_next(Op::Apply, "db-remote", 1, ErrorClass::Permanent, "TooLarge");

    let next = w.reconcile("db").await;

    assert_eq!(next.failed.as_deref(), Some("TooLarge"));
    assert!(
        about(Duration::from_secs(600))(next.requeue_after),
        "{next:?}"
    );
    assert!(!ready_message(&w.status("db")).contains("retrying"));
}

#[tokio::test]
async fn a_secret_the_store_is_still_creating_is_polled_less_and_less_often() {
    let mut w = pending(json!({}));
    w.memory.keep_creating("db-remote");

    let first = w.reconcile("db").await;
    let s = w.status("db");
    assert_eq!(phase(&s), "Creating");
    assert_eq!(ready(&s), "False/Creating");
    assert_eq!(first.failed, None);
    assert_eq!(first.requeue_after, Some(Duration::from_secs(3)));
    let mut polls = Vec::new();
    for _ in 0..5 {
        polls.push(w.reconcile("db").await.requeue_after.expect("polled"));
    }
    assert_eq!(
        w.memory.calls(Op::Apply, "db-remote"),
        1,
        "a secret being created was written again"
    );
    assert!(polls[4] >= Duration::from_secs(16), "{polls:?}");
    assert_eq!(phase(&w.status("db")), "Creating");

    w.memory.finish_creating("db-remote");
    let next = w.reconcile("db").await;
    assert_eq!(ready(&w.status("db")), "True/Synced");
    assert!(about(Duration::from_secs(3600))(next.requeue_after));
}

// ---------------------------------------------------------------------------------------------------------------
// Observe mode.

fn observe(remote: &str, extra: Value) -> Value {
    let mut s = spec(
        remote,
        json!({"mode": "Observe", "deletionPolicy": "Delete"}),
    );
    fake_api::merge(&mut s, &extra);
    s
}

#[tokio::test]
async fn observing_a_missing_remote_secret_plans_a_create_and_writes_nothing() {
    let mut w = World::new();
    w.secret("s", json!({"k": "v"}));
    w.sync("db", observe("db-remote", json!({})));

    let next = w.reconcile("db").await;

    assert_eq!(next.failed, None);
    assert!(about(Duration::from_secs(3600))(next.requeue_after));
    let s = w.status("db");
    assert_eq!(phase(&s), "Observing");
    assert_eq!(ready(&s), "True/Observing");
    assert_eq!(in_sync(&s), "False/Missing");
    assert_eq!(
        s["plan"],
        json!([{"name": "db-remote", "action": "Create"}])
    );
    assert_eq!(w.memory.calls(Op::Apply, "db-remote"), 0);
    assert_eq!(w.memory.entry("db-remote"), None);
    assert!(
        w.finalizers("db").is_empty(),
        "observing holds no finalizer, whatever the deletionPolicy"
    );
    assert!(
        w.event_reasons("db")
            .contains(&"Warning/Missing".to_owned()),
        "{:?}",
        w.event_reasons("db")
    );
    let store = w.api.get(&store_path("mem")).expect("the store");
    assert!(
        store["metadata"]["finalizers"].is_null(),
        "an observed store was protected"
    );
}

#[tokio::test]
async fn observing_a_remote_secret_in_step_reports_it_matches() {
    let mut w = synced("db", "db-remote", "v", json!({})).await;
    w.sync(
        "db",
        observe("db-remote", json!({"deletionPolicy": "Retain"})),
    );

    w.reconcile("db").await;

    let s = w.status("db");
    assert_eq!(in_sync(&s), "True/Matches");
    assert_eq!(
        s["plan"],
        json!([{"name": "db-remote", "action": "None"}]),
        "{s}"
    );
    assert_eq!(w.memory.calls(Op::Apply, "db-remote"), 1);
    assert_eq!(str_of(&w.event("db", "Matches")["type"]), "Normal");
}

#[tokio::test]
async fn observing_reads_a_foreign_value_only_where_the_store_would_let_it_be_adopted() {
    let mut w = World::new();
    w.store("adopting", json!({"adoption": "Unmarked"}));
    w.secret("s", json!({"k": "v"}));
    w.memory.put_foreign("equal", b"v");
    w.memory.put_foreign("differs", b"what another tool wrote");
    w.memory.put_foreign("theirs", b"v");
    let adopting = |remote: &str| {
        observe(
            remote,
            json!({"adoptExisting": true, "target": {"storeRef": {"name": "adopting"}}}),
        )
    };
    w.sync("equal", adopting("equal"));
    w.sync("differs", adopting("differs"));
    // The world's own Store lets no SecretSync take what it did not write.
    w.sync("theirs", observe("theirs", json!({"adoptExisting": true})));

    for (name, verdict, action) in [
        ("equal", "False/NotOwned", "Adopt"),
        ("differs", "False/ValueDiffers", "Adopt"),
        ("theirs", "False/NotOwned", "Conflict"),
    ] {
        w.reconcile(name).await;
        let s = w.status(name);
        assert_eq!(in_sync(&s), verdict, "{name}");
        assert_eq!(
            s["plan"],
            json!([{"name": name, "action": action}]),
            "{name}"
        );
        assert_eq!(w.memory.calls(Op::Apply, name), 0, "{name} was written");
    }
    assert_eq!(w.memory.calls(Op::ReadValue, "equal"), 1);
    assert_eq!(
        w.memory.calls(Op::ReadValue, "theirs"),
        0,
        "a value the store would not let go was read"
    );
}

#[tokio::test]
async fn sync_after_observe_carries_out_the_plan_it_showed() {
    let mut w = World::new();
    w.store("mem", json!({"adoption": "Unmarked"}));
    w.secret("s", json!({"k": "v"}));
    w.memory.put_foreign("db-remote", b"v");
    w.sync("db", observe("db-remote", json!({"adoptExisting": true})));
    w.reconcile("db").await;
    assert_eq!(
        w.status("db")["plan"],
        json!([{"name": "db-remote", "action": "Adopt"}])
    );

    w.sync(
        "db",
        spec(
            "db-remote",
            json!({"adoptExisting": true, "deletionPolicy": "Delete"}),
        ),
    );
    w.reconcile("db").await;

    let s = w.status("db");
    assert_eq!(ready(&s), "True/Synced");
    assert_eq!(in_sync(&s), "", "InSync is shown only while observing");
    assert!(s.get("plan").is_none(), "{s}");
    let entry = w.memory.entry("db-remote").expect("kept");
    assert_eq!(entry.owner, Some(w.owner("db")), "not adopted");
    assert_eq!(entry.version, 1, "an equal value was written again");
    assert_eq!(w.finalizers("db"), [FINALIZER]);
}

// ---------------------------------------------------------------------------------------------------------------
// Drift made in the store.

#[tokio::test]
async fn a_remote_secret_removed_in_the_store_is_written_again_as_a_drift_repair() {
    let mut w = synced("db", "db-remote", "v", json!({})).await;
    assert!(
        !w.metrics
            .render()
            .contains("secretsync_drift_repairs_total{"),
        "a first sync counted as a repair"
    );
    w.memory.remove("db-remote");

    w.reconcile("db").await;

    assert!(w.holds("db-remote", "v"));
    let repaired = w.event("db", "DriftRepaired");
    assert_eq!(str_of(&repaired["type"]), "Normal");
    assert!(
        str_of(&repaired["note"]).contains("db-remote"),
        "{repaired}"
    );
    assert!(
        w.metrics
            .render()
            .contains(r#"secretsync_drift_repairs_total{store="Store/team-a/mem"} 1"#),
        "{}",
        w.metrics.render()
    );
}

#[tokio::test]
async fn a_value_changed_in_the_store_is_put_right() {
    let mut w = synced("db", "db-remote", "v", json!({})).await;
    let mut entry = w.memory.entry("db-remote").expect("written");
    entry.value = b"changed by hand".to_vec();
    entry.digest = Some("not-ours".into());
    w.memory.put_entry("db-remote", entry);

    w.reconcile("db").await;

    assert!(w.holds("db-remote", "v"));
    w.event("db", "DriftRepaired");
}

#[tokio::test]
async fn a_spec_change_that_writes_is_not_a_drift_repair() {
    let mut w = synced("db", "db-remote", "v", json!({})).await;
    w.sync(
        "db",
        spec("db-remote", json!({"target": {"description": "the db"}})),
    );
    w.secret("s", json!({"k": "v2"}));

    w.reconcile("db").await;

    assert!(w.holds("db-remote", "v2"));
    assert!(
        !w.event_reasons("db")
            .iter()
            .any(|r| r.ends_with("/DriftRepaired"))
    );
    assert!(
        !w.metrics
            .render()
            .contains("secretsync_drift_repairs_total{")
    );
}

// ---------------------------------------------------------------------------------------------------------------
// A controller that starts: spreading its first store reads.

#[tokio::test]
async fn after_a_restart_a_secretsync_in_sync_by_its_status_reads_its_store_later() {
    let mut w = synced("db", "db-remote", "v", json!({"refreshInterval": "24h"})).await;
    w.restart();
    let observed = w.memory.calls(Op::Observe, "db-remote");

    let next = w.reconcile("db").await;

    assert_eq!(next.failed, None);
    let wait = next.requeue_after.expect("looked at later");
    assert!(wait <= Duration::from_secs(24 * 3600), "{wait:?}");
    assert_eq!(
        w.memory.calls(Op::Observe, "db-remote"),
        observed,
        "read at once after the restart"
    );
    // Another trigger before the moved look reads nothing either.
    w.reconcile("db").await;
    assert_eq!(w.memory.calls(Op::Observe, "db-remote"), observed);
}

#[tokio::test]
async fn after_a_restart_a_source_changed_meanwhile_is_written_at_once() {
    let mut w = synced("db", "db-remote", "v1", json!({"refreshInterval": "24h"})).await;
    w.restart();
    w.secret("s", json!({"k": "v2"}));

    w.reconcile("db").await;

    assert!(w.holds("db-remote", "v2"));
}

// ---------------------------------------------------------------------------------------------------------------
// Fair shares of the workers.

#[tokio::test]
async fn a_store_using_its_share_defers_its_next_object_without_a_store_call() {
    // Four workers: one store gets one of them.
    let mut w = World::new();
    w.store("slow", json!({}));
    w.store("fast", json!({}));
    w.secret("s", json!({"k": "v"}));
    let on =
        |store: &str, remote: &str| spec(remote, json!({"target": {"storeRef": {"name": store}}}));
    w.sync("slow-1", on("slow", "slow-1"));
    w.sync("slow-2", on("slow", "slow-2"));
    w.sync("fast", on("fast", "fast"));
    w.watch();
    let hold = w.memory.hold(Op::Observe, &["slow-1"]);
    let objects: Vec<SecretSync> = ["slow-1", "slow-2", "fast"]
        .iter()
        .map(|n| w.object(n).expect("exists"))
        .collect();
    let harness = &w.harness;
    let memory = &w.memory;

    let held = harness.reconcile(objects[0].clone());
    let others = async {
        while hold.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        let deferred = harness.reconcile(objects[1].clone()).await;
        let other_store = harness.reconcile(objects[2].clone()).await;
        hold.release();
        (deferred, other_store)
    };
    let (first, (deferred, other_store)) = tokio::join!(held, others);

    assert_eq!(first.failed, None);
    assert_eq!(deferred.failed, None);
    let wait = deferred.requeue_after.expect("deferred");
    assert!(wait <= Duration::from_secs(60), "{wait:?}");
    assert_eq!(
        memory.calls(Op::Observe, "slow-2"),
        0,
        "the deferred object read the store"
    );
    assert!(
        w.status("slow-2").is_null(),
        "a deferred object's status was written"
    );
    assert_eq!(other_store.failed, None);
    assert!(
        w.holds("fast", "v"),
        "another store waited for the busy one"
    );
    assert!(
        w.metrics.render().contains(
            r#"secretsync_reconciles_deferred_total{dialect="unresolved",share="store"} 1"#
        ),
        "{}",
        w.metrics.render()
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Values and store answers never shown.

#[tokio::test]
async fn no_value_reaches_the_api_server_or_the_metrics_on_any_path() {
    let value = "sEcReT-vAlUe-4711";
    let mut w = World::new();
    w.secret("s", json!({"k": value, "other": "sEcReT-oThEr-0815"}));
    w.sync("db", spec("db-remote", json!({"deletionPolicy": "Delete"})));
    w.reconcile("db").await;
    w.memory
        .fail_next(Op::Apply, "db-remote", 1, ErrorClass::Retry, "BackendError");
    w.secret("s", json!({"k": "sEcReT-nExT-0042"}));
    w.reconcile("db").await;
    w.reconcile("db").await;
    w.memory.remove("db-remote");
    w.reconcile("db").await;
    w.sync(
        "db",
        spec(
            "db-remote",
            json!({"source": {"secretRef": {"key": null}}, "deletionPolicy": "Delete"}),
        ),
    );
    w.reconcile("db").await;
    w.delete_sync("db", Duration::ZERO);
    w.reconcile("db").await;
    w.sync("observed", observe("db-remote", json!({})));
    w.reconcile("observed").await;

    assert!(w.events("db").len() >= 4, "{:?}", w.event_reasons("db"));
    for shown in [value, "sEcReT-nExT-0042", "sEcReT-oThEr-0815"] {
        w.assert_never_shown(shown);
    }
}

#[tokio::test]
async fn a_blocked_deletion_switched_to_retain_lets_the_object_go_and_keeps_the_remote_secret() {
    let mut w = synced("db", "db-remote", "v", json!({"deletionPolicy": "Delete"})).await;
    w.memory.fail_next(
        Op::Delete,
        "db-remote",
        100,
        ErrorClass::Retry,
        "BackendError",
    );
    w.delete_sync("db", Duration::ZERO);
    assert_eq!(
        w.reconcile("db").await.failed.as_deref(),
        Some("DeletionBlocked")
    );
    let deletes = w.memory.calls(Op::Delete, "db-remote");

    w.sync("db", spec("db-remote", json!({"deletionPolicy": "Retain"})));
    let next = w.reconcile("db").await;

    assert_eq!(
        next,
        Next {
            requeue_after: None,
            failed: None
        }
    );
    assert!(w.object("db").is_none(), "the finalizer was kept");
    assert!(w.holds("db-remote", "v"));
    assert_eq!(
        w.memory.calls(Op::Delete, "db-remote"),
        deletes,
        "Retain still deleted"
    );
}

#[tokio::test]
async fn a_panicking_reconcile_fails_only_its_own_object_and_is_retried_with_backoff() {
    let mut w = World::with(Settings {
        panic_on: Some(format!("{NS}/boom")),
        ..Settings::default()
    });
    w.secret("s", json!({"k": "v"}));
    w.sync("boom", spec("boom-remote", json!({})));
    w.sync("db", spec("db-remote", json!({})));

    let next = w.reconcile("boom").await;

    assert_eq!(next.failed.as_deref(), Some("InternalError"));
    assert_eq!(next.requeue_after, Some(Duration::from_secs(1)));
    let s = w.status("boom");
    assert_eq!(ready(&s), "False/InternalError");
    assert!(
        ready_message(&s).contains("the controller's log says where"),
        "{s}"
    );
    assert!(
        w.metrics
            .render()
            .contains(r#"secretsync_reconcile_panics_total{dialect="unresolved"} 1"#),
        "{}",
        w.metrics.render()
    );
    // The same controller goes on with every other object.
    assert_eq!(w.reconcile("db").await.failed, None);
    assert!(w.holds("db-remote", "v"));
}
