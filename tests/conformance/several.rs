//! Several keys, several Secrets and templates in one SecretSync (issue #30), over every dialect: the remote
//! secrets the real `plan::shape` makes of a spec, each written through the dialect and the real planner, read back
//! through the store's own API, and let go (as `deletionPolicy: Delete` does) when it leaves the wanted set.
//! Which Secrets a selector matches and the reconcile's loop over the list are the controller's, tested in
//! `tests/pipeline_remotes.rs` and `tests/controller.rs`.

use std::collections::BTreeMap;

use secretsync::plan::entries::{Entry, Limits, Rule};
use secretsync::plan::shape::{self, Shape, SourceData};
use secretsync::plan::template::Merge;
use secretsync::plan::{DeletePlan, Owner, Plan, decide_delete};

use crate::case::{Case, Store, case_named, owner};

fn secret(name: &str, pairs: &[(&str, &str)]) -> SourceData {
    SourceData::text(name, pairs)
}

fn rule(
    key: Option<&str>,
    pattern: Option<&str>,
    remote: Option<&str>,
    property: Option<&str>,
) -> Rule {
    shape::rule(key, pattern, remote, property).expect("a valid rule")
}

fn wanted(
    sources: &[SourceData],
    rules: &[Rule],
    default_remote: &str,
    template: Option<&BTreeMap<String, String>>,
) -> Vec<Entry> {
    shape::wanted(
        sources,
        &Shape {
            rules,
            key: None,
            template: template.map(|t| (t, Merge::Replace)),
            default_remote,
            limits: Limits::default(),
        },
    )
    .expect("the spec can be carried out")
}

/// One SecretSync's remote secrets, each a case of the same owner.
struct Remotes<'a> {
    store: &'a dyn Store,
    owner: Owner,
    cases: BTreeMap<String, Case>,
}

impl<'a> Remotes<'a> {
    fn new(store: &'a dyn Store) -> Remotes<'a> {
        Remotes {
            store,
            owner: owner("several"),
            cases: BTreeMap::new(),
        }
    }

    /// Brings every wanted remote secret in step; the plans of the first reconcile of each, by name.
    async fn sync(&mut self, entries: &[Entry]) -> BTreeMap<String, Plan> {
        let mut first = BTreeMap::new();
        for entry in entries {
            let case = self
                .cases
                .entry(entry.remote_name.clone())
                .or_insert_with(|| {
                    case_named(self.store, &entry.remote_name, self.owner.clone(), "")
                });
            case.set_value(entry.value.expose());
            let plans = case.converge().await;
            assert_eq!(
                plans.last(),
                Some(&Plan::InSync),
                "{}: {plans:?}",
                entry.remote_name
            );
            first.insert(entry.remote_name.clone(), plans[0].clone());
        }
        first
    }

    /// Deletes the remote secrets no longer wanted, as the controller does under `deletionPolicy: Delete`.
    async fn let_go(&mut self, entries: &[Entry]) {
        let gone: Vec<String> = self
            .cases
            .keys()
            .filter(|name| !entries.iter().any(|e| &e.remote_name == *name))
            .cloned()
            .collect();
        for name in gone {
            let case = self.cases.remove(&name).expect("a case");
            let observed = case.observe().await.expect("observe");
            assert_eq!(decide_delete(&self.owner, &observed), DeletePlan::Delete);
            case.dialect
                .delete(&case.request(), &observed)
                .await
                .expect("delete");
        }
    }

    async fn holds(&self, name: &str, value: &str) -> bool {
        let digest = crate::case::key().digest(value.as_bytes());
        self.store.holds(name, value.as_bytes(), &digest).await
    }

    async fn remove_all(&mut self) {
        for name in std::mem::take(&mut self.cases).into_keys() {
            self.store.remove(&name).await;
        }
    }
}

/// `username` and `password` of one Secret as two properties of one remote JSON secret.
pub async fn two_keys_into_two_properties_of_one_remote_secret(store: &dyn Store) {
    let name = store.fresh_name();
    let rules = [
        rule(Some("username"), None, None, Some("user")),
        rule(Some("password"), None, None, Some("pass")),
    ];
    let db = secret(
        "db",
        &[("username", "app"), ("password", "pw-1"), ("host", "h")],
    );
    let entries = wanted(&[db], &rules, &name, None);
    assert_eq!(entries.len(), 1);
    let mut remotes = Remotes::new(store);
    remotes.sync(&entries).await;
    assert!(
        remotes
            .holds(&name, r#"{"pass":"pw-1","user":"app"}"#)
            .await,
        "the store lacks the JSON object"
    );
    remotes.remove_all().await;
}

/// `secretKeyRegex` takes every matching key (anchored) to a remote secret of its own.
pub async fn a_regex_entry_writes_each_matching_key(store: &dyn Store) {
    let name = store.fresh_name();
    let rules = [rule(
        None,
        Some("db.*"),
        Some(&format!("{name}-{{key}}")),
        None,
    )];
    let s = secret("s", &[("dbuser", "u"), ("dbpass", "p"), ("apidb", "no")]);
    let entries = wanted(&[s], &rules, &name, None);
    let mut remotes = Remotes::new(store);
    remotes.sync(&entries).await;
    assert!(remotes.holds(&format!("{name}-dbuser"), "u").await);
    assert!(remotes.holds(&format!("{name}-dbpass"), "p").await);
    assert!(
        !store.exists(&format!("{name}-apidb")).await,
        "the pattern is anchored"
    );
    remotes.remove_all().await;
}

/// Three selected Secrets make three remote secrets; after one leaves the selector, two (the third deleted).
pub async fn a_selector_source_writes_one_remote_per_secret_and_lets_go(store: &dyn Store) {
    let name = store.fresh_name();
    let template = format!("{name}-{{secret}}");
    let three: Vec<SourceData> = ["a", "b", "c"]
        .iter()
        .map(|s| secret(s, &[("k", &format!("value-{s}"))]))
        .collect();
    let mut remotes = Remotes::new(store);
    remotes.sync(&wanted(&three, &[], &template, None)).await;
    for s in ["a", "b", "c"] {
        assert!(
            remotes
                .holds(&format!("{name}-{s}"), &format!(r#"{{"k":"value-{s}"}}"#))
                .await,
            "{s} missing"
        );
    }

    let two = [three[0].clone(), three[2].clone()];
    let entries = wanted(&two, &[], &template, None);
    let plans = remotes.sync(&entries).await;
    assert!(plans.values().all(|p| *p == Plan::InSync), "{plans:?}");
    remotes.let_go(&entries).await;
    assert!(!store.exists(&format!("{name}-b")).await, "b was let go");
    assert!(store.exists(&format!("{name}-a")).await);
    assert!(store.exists(&format!("{name}-c")).await);
    remotes.remove_all().await;
}

/// A template composes a connection URL from two keys.
pub async fn a_template_makes_a_url_from_two_keys(store: &dyn Store) {
    let name = store.fresh_name();
    let templates: BTreeMap<String, String> = [(
        "url".to_owned(),
        "postgres://{{ data.user }}:{{ data.password | uri_component }}@db:5432/app".to_owned(),
    )]
    .into();
    let rules = [rule(Some("url"), None, None, None)];
    let db = secret("db", &[("user", "app"), ("password", "p@ss/word")]);
    let mut remotes = Remotes::new(store);
    remotes
        .sync(&wanted(&[db], &rules, &name, Some(&templates)))
        .await;
    assert!(
        remotes
            .holds(&name, "postgres://app:p%40ss%2Fword@db:5432/app")
            .await
    );
    remotes.remove_all().await;
}

/// One key changing among keys spread over two remote secrets writes the one that holds it, once.
pub async fn a_change_of_one_key_writes_one_remote_secret_once(store: &dyn Store) {
    let name = store.fresh_name();
    let rules = [
        rule(None, Some("a.*"), Some(&format!("{name}-a")), Some("{key}")),
        rule(None, Some("b.*"), Some(&format!("{name}-b")), Some("{key}")),
    ];
    let before = secret("s", &[("a1", "1"), ("a2", "2"), ("b1", "3"), ("b2", "4")]);
    let mut remotes = Remotes::new(store);
    remotes.sync(&wanted(&[before], &rules, &name, None)).await;

    let after = secret("s", &[("a1", "1"), ("a2", "two"), ("b1", "3"), ("b2", "4")]);
    let entries = wanted(&[after], &rules, &name, None);
    let plans = remotes.sync(&entries).await;
    assert!(plans[&format!("{name}-a")].writes(), "{plans:?}");
    assert_eq!(plans[&format!("{name}-b")], Plan::InSync, "{plans:?}");
    let again = remotes.sync(&entries).await;
    assert!(
        again.values().all(|p| *p == Plan::InSync),
        "written once: {again:?}"
    );
    assert!(
        remotes
            .holds(&format!("{name}-a"), r#"{"a1":"1","a2":"two"}"#)
            .await
    );
    remotes.remove_all().await;
}
