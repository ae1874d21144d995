//! Several keys, several Secrets and templates in one SecretSync (`spec.data`, `spec.source.selector`,
//! `spec.template`), through the whole reconcile without a test bed: the same world as `tests/pipeline.rs`.
//!
//! `cargo test --test pipeline_remotes` (no test bed, no KUBECONFIG).

#[path = "support/fake_api.rs"]
mod fake_api;
#[path = "support/memory_store.rs"]
mod memory_store;
#[path = "support/status.rs"]
mod status;
#[path = "support/world.rs"]
mod world;

use world::*;

/// Pushes through Store `mem`; `extra` merges into the spec.
fn many(source: Value, extra: Value) -> Value {
    let mut spec = json!({
        "source": source,
        "target": {"storeRef": {"kind": "Store", "name": "mem"}},
        "deletionPolicy": "Delete",
    });
    fake_api::merge(&mut spec, &extra);
    spec
}

/// Every key of Secret `s` to a remote secret of its own, `<prefix>-<key>`; `extra` merges into the spec.
fn each_key(prefix: &str, extra: Value) -> Value {
    let mut rules =
        json!({"data": [{"secretKeyRegex": ".*", "remoteName": format!("{prefix}-{{key}}")}]});
    fake_api::merge(&mut rules, &extra);
    many(json!({"secretRef": {"name": "s"}}), rules)
}

fn json_of(w: &World, remote: &str) -> Value {
    let entry = w.memory.entry(remote).expect("written");
    serde_json::from_slice(&entry.value).expect("a JSON object")
}

fn remote_names(s: &Value) -> Vec<String> {
    s["remotes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn two_keys_become_two_properties_of_one_remote_secret() {
    let mut w = World::new();
    w.secret(
        "db",
        json!({"username": "app", "password": "pw-1", "unused": "x"}),
    );
    w.sync(
        "creds",
        many(
            json!({"secretRef": {"name": "db"}}),
            json!({"target": {"remoteName": "app/db"}, "data": [
                {"secretKey": "username", "property": "user"},
                {"secretKey": "password", "property": "pass"},
            ]}),
        ),
    );

    let next = w.reconcile("creds").await;

    assert_eq!(next.failed, None, "{}", w.status("creds"));
    assert_eq!(
        json_of(&w, "app/db"),
        json!({"user": "app", "pass": "pw-1"})
    );
    let s = w.status("creds");
    assert_eq!(ready(&s), "True/Synced");
    assert_eq!(s["remotesInSync"], "1/1");
    assert_eq!(s["remotes"][0]["name"], "app/db");
    assert_eq!(s["remotes"][0]["secret"], "db");
    assert_eq!(s["remotes"][0]["inSync"], true);
    assert!(s["remotes"][0]["lastWrite"].is_string());
    assert!(
        s["remotes"][0]["digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("hmac-sha256:"))
    );
    assert!(
        s["remote"].is_null(),
        "status.remote is for one remote secret"
    );
    w.assert_never_shown("pw-1");
}

#[tokio::test]
async fn a_regex_rule_pushes_every_matching_key_to_its_own_remote_secret() {
    let mut w = World::new();
    w.secret(
        "s",
        json!({"db_user": "u", "db_pass": "p", "api_token": "t", "xdb_user": "no"}),
    );
    w.sync(
        "keys",
        many(
            json!({"secretRef": {"name": "s"}}),
            json!({"data": [{"secretKeyRegex": "db_.*", "remoteName": "app-{key}"}]}),
        ),
    );

    let next = w.reconcile("keys").await;

    assert_eq!(next.failed, None, "{}", w.status("keys"));
    let s = w.status("keys");
    assert_eq!(remote_names(&s), ["app-db_pass", "app-db_user"]);
    assert!(w.holds("app-db_user", "u"));
    assert!(w.holds("app-db_pass", "p"));
    assert!(
        w.memory.entry("app-xdb_user").is_none(),
        "the pattern is anchored"
    );
    assert_eq!(s["remotesInSync"], "2/2");
}

#[tokio::test]
async fn a_selector_pushes_each_labelled_secret_and_deletes_the_one_unlabelled() {
    let mut w = World::new();
    for name in ["a", "b", "c"] {
        w.secret_labelled(
            name,
            json!({"k": format!("v-{name}")}),
            json!({"push": "yes"}),
        );
    }
    w.secret_labelled("d", json!({"k": "v-d"}), json!({"push": "no"}));
    w.sync(
        "all",
        many(
            json!({"selector": {"matchLabels": {"push": "yes"}}}),
            json!({"target": {"remoteName": "team/{secret}"}}),
        ),
    );

    assert_eq!(w.reconcile("all").await.failed, None, "{}", w.status("all"));
    assert_eq!(
        remote_names(&w.status("all")),
        ["team/a", "team/b", "team/c"]
    );
    assert_eq!(json_of(&w, "team/b"), json!({"k": "v-b"}));
    assert!(w.memory.entry("team/d").is_none());

    w.secret_labelled("b", json!({"k": "v-b"}), json!({"push": "no"}));
    assert_eq!(w.reconcile("all").await.failed, None, "{}", w.status("all"));

    let s = w.status("all");
    assert_eq!(remote_names(&s), ["team/a", "team/c"]);
    assert_eq!(s["remotesInSync"], "2/2");
    assert!(w.memory.entry("team/b").is_none(), "deleted: Delete policy");
    assert!(w.memory.entry("team/a").is_some());
    let event = w.event("all", "PreviousRemoteDeleted");
    assert!(event["note"].as_str().unwrap().contains("team/b"));
}

#[tokio::test]
async fn under_retain_a_secret_that_leaves_the_selector_is_left_with_an_event() {
    let mut w = World::new();
    for name in ["a", "b"] {
        w.secret_labelled(name, json!({"k": "v"}), json!({"push": "yes"}));
    }
    let spec = many(
        json!({"selector": {"matchLabels": {"push": "yes"}}}),
        json!({"target": {"remoteName": "{secret}-copy"}, "deletionPolicy": "Retain"}),
    );
    w.sync("all", spec);
    assert_eq!(w.reconcile("all").await.failed, None);
    w.secret_labelled("a", json!({"k": "v"}), json!({}));

    assert_eq!(w.reconcile("all").await.failed, None);

    assert!(w.memory.entry("a-copy").is_some(), "Retain leaves it");
    assert_eq!(w.memory.calls(Op::Delete, "a-copy"), 0);
    assert_eq!(remote_names(&w.status("all")), ["b-copy"]);
    let event = w.event("all", "PreviousRemoteLeft");
    assert!(
        event["note"]
            .as_str()
            .unwrap()
            .contains("deletionPolicy is Retain")
    );
}

#[tokio::test]
async fn a_template_composes_a_url_from_two_keys() {
    let mut w = World::new();
    w.secret("db", json!({"user": "app", "password": "p@ss/word"}));
    w.sync(
        "url",
        many(
            json!({"secretRef": {"name": "db"}}),
            json!({
                "template": {"data": {"url": "postgres://{{ data.user }}:{{ data.password | uri_component }}@db:5432/app"}},
                "data": [{"secretKey": "url", "remoteName": "app-db-url"}],
            }),
        ),
    );

    assert_eq!(w.reconcile("url").await.failed, None, "{}", w.status("url"));

    assert!(w.holds("app-db-url", "postgres://app:p%40ss%2Fword@db:5432/app"));
    w.assert_never_shown("p@ss/word");
}

#[tokio::test]
async fn one_key_changing_in_a_secret_of_twenty_keys_over_five_remotes_writes_one_remote_once() {
    let mut w = World::new();
    let data: serde_json::Map<String, Value> = (0..20)
        .map(|i| (format!("g{}_k{i}", i % 5), json!(format!("v{i}"))))
        .collect();
    w.secret("s", Value::Object(data.clone()));
    w.sync(
        "grouped",
        many(
            json!({"secretRef": {"name": "s"}}),
            json!({"data": (0..5).map(|g| json!({
                "secretKeyRegex": format!("g{g}_.*"), "remoteName": format!("group-{g}"), "property": "{key}"
            })).collect::<Vec<_>>()}),
        ),
    );
    assert_eq!(
        w.reconcile("grouped").await.failed,
        None,
        "{}",
        w.status("grouped")
    );
    let applies = |w: &World| -> Vec<usize> {
        (0..5)
            .map(|g| w.memory.calls(Op::Apply, &format!("group-{g}")))
            .collect()
    };
    assert_eq!(applies(&w), [1, 1, 1, 1, 1]);

    let mut changed = data;
    changed.insert("g3_k8".into(), json!("new"));
    w.secret("s", Value::Object(changed));
    assert_eq!(w.reconcile("grouped").await.failed, None);

    assert_eq!(
        applies(&w),
        [1, 1, 1, 2, 1],
        "only group-3 is written again"
    );
    assert_eq!(json_of(&w, "group-3")["g3_k8"], "new");
    assert_eq!(w.reconcile("grouped").await.failed, None);
    assert_eq!(applies(&w), [1, 1, 1, 2, 1], "and only once");
}

#[tokio::test]
async fn above_the_limits_nothing_is_written_and_the_spec_is_refused() {
    let mut w = World::new();
    let data: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();
    w.secret("s", Value::Object(data));
    w.sync(
        "wide",
        many(
            json!({"secretRef": {"name": "s"}}),
            json!({"data": [{"secretKeyRegex": "k.*", "remoteName": "r-{key}"}]}),
        ),
    );

    w.reconcile("wide").await;

    let s = w.status("wide");
    assert_eq!(ready(&s), "False/InvalidSpec", "{s}");
    assert!(ready_message(&s).contains("at most 64"), "{s}");
    assert_eq!(w.memory.calls(Op::Apply, "r-k0"), 0);
    assert_eq!(
        w.memory.calls(Op::Observe, "r-k0"),
        0,
        "refused before any call"
    );
}

#[tokio::test]
async fn a_remote_owned_by_someone_else_fails_alone_and_is_named() {
    let mut w = World::new();
    w.secret("s", json!({"a": "1", "b": "2"}));
    w.memory.put_foreign("x-b", b"theirs");
    w.sync("pair", each_key("x", json!({})));

    w.reconcile("pair").await;

    let s = w.status("pair");
    assert_eq!(ready(&s), "False/Conflict", "{s}");
    assert!(
        ready_message(&s).starts_with(r#"remote secret "x-b": "#),
        "{s}"
    );
    assert!(w.holds("x-a", "1"), "the other remote secret is written");
    assert!(w.holds("x-b", "theirs"), "the foreign one is untouched");
    assert_eq!(s["remotesInSync"], "1/2");
}

#[tokio::test]
async fn deleting_the_secretsync_deletes_every_remote_secret_it_wrote() {
    let mut w = World::new();
    w.secret("s", json!({"a": "1", "b": "2"}));
    w.sync("pair", each_key("y", json!({})));
    w.reconcile("pair").await; // takes the finalizer
    w.reconcile("pair").await;
    assert!(w.memory.entry("y-a").is_some() && w.memory.entry("y-b").is_some());
    assert_eq!(w.finalizers("pair"), [FINALIZER]);

    w.delete_sync("pair", Duration::ZERO);
    w.reconcile("pair").await;

    assert!(w.memory.entry("y-a").is_none());
    assert!(w.memory.entry("y-b").is_none());
    assert!(w.finalizers("pair").is_empty());
}

#[tokio::test]
async fn observing_several_remote_secrets_plans_each_and_writes_none() {
    let mut w = World::new();
    w.secret("s", json!({"a": "1", "b": "2"}));
    w.sync("watch", each_key("z", json!({"mode": "Observe"})));

    assert_eq!(w.reconcile("watch").await.failed, None);

    let s = w.status("watch");
    assert_eq!(phase(&s), "Observing");
    assert_eq!(in_sync(&s), "False/Missing");
    assert_eq!(
        s["plan"],
        json!([{"name": "z-a", "action": "Create"}, {"name": "z-b", "action": "Create"}])
    );
    assert_eq!(s["remotesInSync"], "0/2");
    assert_eq!(
        w.memory.calls(Op::Apply, "z-a") + w.memory.calls(Op::Apply, "z-b"),
        0
    );
}

#[tokio::test]
async fn a_template_error_names_the_template_and_shows_no_value() {
    let mut w = World::new();
    w.secret("db", json!({"password": "hunter2"}));
    w.sync(
        "bad",
        many(
            json!({"secretRef": {"name": "db"}}),
            json!({"template": {"data": {"url": "{{ data.password }}{{ data.missing }}"}}}),
        ),
    );

    w.reconcile("bad").await;

    let s = w.status("bad");
    assert_eq!(ready(&s), "False/InvalidSpec", "{s}");
    assert!(
        ready_message(&s).contains("spec.template.data[\"url\"]"),
        "{s}"
    );
    w.assert_never_shown("hunter2");
}

#[tokio::test]
async fn a_store_template_without_the_remote_name_cannot_fold_several_into_one() {
    let mut w = World::new();
    w.store(
        "folding",
        json!({"remoteNameTemplate": "{namespace}-{name}"}),
    );
    w.secret("s", json!({"a": "1", "b": "2"}));
    w.sync(
        "fold",
        json!({
            "source": {"secretRef": {"name": "s"}},
            "target": {"storeRef": {"kind": "Store", "name": "folding"}},
            "data": [{"secretKeyRegex": ".*", "remoteName": "{key}"}],
        }),
    );

    w.reconcile("fold").await;

    let s = w.status("fold");
    assert_eq!(ready(&s), "False/InvalidSpec", "{s}");
    assert!(ready_message(&s).contains("{remoteName}"), "{s}");
    assert_eq!(w.memory.calls(Op::Apply, "team-a-fold"), 0);
}

#[tokio::test]
async fn a_secretsync_given_data_lets_go_of_the_one_remote_secret_it_wrote_before() {
    let mut w = World::new();
    w.secret("s", json!({"k": "v", "j": "w"}));
    w.sync(
        "grow",
        json!({
            "source": {"secretRef": {"name": "s", "key": "k"}},
            "target": {"storeRef": {"kind": "Store", "name": "mem"}, "remoteName": "single"},
            "deletionPolicy": "Delete",
        }),
    );
    w.reconcile("grow").await;
    w.reconcile("grow").await;
    assert!(w.holds("single", "v"));

    w.sync("grow", each_key("split", json!({})));
    assert_eq!(
        w.reconcile("grow").await.failed,
        None,
        "{}",
        w.status("grow")
    );

    assert!(w.holds("split-k", "v") && w.holds("split-j", "w"));
    assert!(
        w.memory.entry("single").is_none(),
        "the earlier remote secret is deleted"
    );
    w.event("grow", "PreviousRemoteDeleted");
}

#[tokio::test]
async fn after_a_restart_several_remote_secrets_in_sync_by_status_are_read_later() {
    let mut w = World::new();
    w.secret("s", json!({"a": "1", "b": "2"}));
    w.sync(
        "pair",
        each_key(
            "p",
            json!({"refreshInterval": "24h", "deletionPolicy": "Retain"}),
        ),
    );
    assert_eq!(w.reconcile("pair").await.failed, None);
    w.restart();
    let observed = w.memory.calls(Op::Observe, "p-a");

    let next = w.reconcile("pair").await;

    let wait = next.requeue_after.expect("looked at later");
    assert!(wait <= Duration::from_secs(24 * 3600), "{wait:?}");
    assert_eq!(w.memory.calls(Op::Observe, "p-a"), observed, "read at once");

    // A key changed meanwhile is written at once.
    w.restart();
    w.secret("s", json!({"a": "1", "b": "changed"}));
    w.reconcile("pair").await;
    assert!(w.holds("p-b", "changed"));
}

#[tokio::test]
async fn a_remote_secret_the_store_cannot_take_refuses_the_whole_spec_before_any_write() {
    let mut w = World::new();
    w.secret("s", json!({"a": "1", "b": "2"}));
    w.memory.refuse_name("q-b");
    w.sync("pair", each_key("q", json!({})));

    w.reconcile("pair").await;

    let s = w.status("pair");
    assert_eq!(ready(&s), "False/InvalidSpec", "{s}");
    assert!(
        ready_message(&s).starts_with(r#"remote secret "q-b": "#),
        "{s}"
    );
    assert!(ready_message(&s).ends_with("nothing was written"), "{s}");
    assert_eq!(
        w.store_calls("q-a") + w.store_calls("q-b"),
        0,
        "no call at all"
    );
}

#[tokio::test]
async fn the_stores_source_selector_applies_to_each_selected_secret() {
    let mut w = World::new();
    w.store(
        "picky",
        json!({"sourceSelector": {"matchLabels": {"export": "ok"}}}),
    );
    w.secret_labelled(
        "a",
        json!({"k": "1"}),
        json!({"push": "yes", "export": "ok"}),
    );
    w.secret_labelled("b", json!({"k": "2"}), json!({"push": "yes"}));
    w.sync(
        "all",
        json!({
            "source": {"selector": {"matchLabels": {"push": "yes"}}},
            "target": {"storeRef": {"kind": "Store", "name": "picky"}, "remoteName": "sel-{secret}"},
        }),
    );

    w.reconcile("all").await;

    let s = w.status("all");
    assert_eq!(ready(&s), "False/SourceNotAllowed", "{s}");
    assert!(ready_message(&s).contains(r#"Secret "b""#), "{s}");
    assert_eq!(
        w.store_calls("sel-a") + w.store_calls("sel-b"),
        0,
        "nothing was sent"
    );
}

#[tokio::test]
async fn a_selector_reads_its_secrets_a_page_at_a_time() {
    let mut w = World::new();
    for i in 0..10 {
        w.secret_labelled(
            &format!("s{i:02}"),
            json!({"k": format!("v{i}")}),
            json!({"push": "yes"}),
        );
    }
    let spec = many(
        json!({"selector": {"matchLabels": {"push": "yes"}}}),
        json!({"target": {"remoteName": "paged-{secret}"}}),
    );
    w.sync("paged", spec);

    assert_eq!(
        w.reconcile("paged").await.failed,
        None,
        "{}",
        w.status("paged")
    );

    assert_eq!(w.status("paged")["remotesInSync"], "10/10");
    assert!(w.holds("paged-s09", r#"{"k":"v9"}"#));
    assert_eq!(
        w.requests_to("GET", &format!("/api/v1/namespaces/{NS}/secrets")),
        2,
        "8 and then 2"
    );
}

#[tokio::test]
async fn a_selector_whose_secrets_hold_too_much_stops_reading_at_the_bound() {
    let mut w = World::new();
    let mebibyte = "x".repeat(1 << 20);
    for i in 0..12 {
        w.secret_labelled(
            &format!("big{i:02}"),
            json!({"k": mebibyte}),
            json!({"push": "yes"}),
        );
    }
    let spec = many(
        json!({"selector": {"matchLabels": {"push": "yes"}}}),
        json!({"target": {"remoteName": "big-{secret}"}}),
    );
    w.sync("big", spec);

    w.reconcile("big").await;

    let s = w.status("big");
    assert_eq!(ready(&s), "False/InvalidSpec", "{s}");
    assert!(ready_message(&s).contains("more than 8388608 bytes"), "{s}");
    assert_eq!(
        w.requests_to("GET", &format!("/api/v1/namespaces/{NS}/secrets")),
        2,
        "the third page is never read"
    );
    assert_eq!(w.store_calls("big-big00"), 0);
}
