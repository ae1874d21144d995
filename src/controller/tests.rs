use std::time::{Duration, Instant};

use super::*;
use crate::api::{SecretSync, Store};
use kube::ResourceExt;
use kube::runtime::{reflector, watcher};
use run::forget_deleted;
use watch::store_checks::{checks_for_secret, store_uses_secret};

fn sync(name: &str, uid: &str) -> SecretSync {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "secretsync.io/v1alpha1", "kind": "SecretSync",
        "metadata": {"name": name, "namespace": "team-a", "uid": uid},
        "spec": {"source": {"secretRef": {"name": "s", "key": "k"}},
                 "target": {"storeRef": {"kind": "Store", "name": "vault"}}}
    }))
    .expect("a SecretSync")
}

#[test]
fn a_deleted_secret_sync_leaves_nothing_behind() {
    let (looks, backoff) = (
        pacing::startup_spread::FirstLooks::default(),
        pacing::backoff::Backoff::default(),
    );
    let minute = Some(Duration::from_secs(60));
    let now = Instant::now();
    let (gone, kept) = (sync("gone", "uid-gone"), sync("kept", "uid-kept"));
    for obj in [&gone, &kept] {
        // Looked at (the store was read), and failing for a while.
        let uid = obj.uid().expect("uid");
        assert_eq!(looks.wait(&uid, false, minute, now, 0.5), None);
        for _ in 0..6 {
            backoff.next(&sync::names::key(obj));
        }
    }
    let applied = Ok(watcher::Event::Apply(kept.clone()));
    forget_deleted(&applied, &looks, &backoff);
    forget_deleted(&Ok(watcher::Event::Delete(gone.clone())), &looks, &backoff);

    // The deleted one starts over: a first look is moved again, and its next failure waits the first delay.
    assert_eq!(
        looks.wait("uid-gone", true, minute, now, 0.5),
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        backoff.next(&sync::names::key(&gone)),
        pacing::backoff::BASE
    );
    // The other one is untouched.
    assert_eq!(looks.wait("uid-kept", true, minute, now, 0.5), None);
    assert!(backoff.next(&sync::names::key(&kept)) >= Duration::from_secs(32));
}

/// The store-check watch may deliver a credentials change before the SecretSyncs' watch drops the kept copy
/// (seen as a Store left `Unauthorized` for five minutes after its token was fixed): the check it triggers must
/// not find the old credentials kept.
#[test]
fn a_store_check_triggered_by_a_credentials_change_reads_them_anew() {
    use kube::runtime::watcher::Event;
    use stores::credentials_cache::{CredentialsCache, Lookup};
    let store: Store = serde_json::from_value(serde_json::json!({
        "apiVersion": "secretsync.io/v1alpha1", "kind": "Store",
        "metadata": {"name": "sf", "namespace": "team-a"},
        "spec": {"dialect": "ServiceFabricMesh", "endpoint": "http://sf:19080",
                 "credentialsRef": {"name": "sf-token"}}
    }))
    .expect("a store");
    let (stores, mut writer) = reflector::store::<Store>();
    writer.apply_watcher_event(&Event::Apply(store));
    let cache = CredentialsCache::new(vec![]);
    let Lookup::Read { epoch } = cache.lookup("team-a", "sf-token") else {
        panic!("nothing kept yet")
    };
    let old = std::collections::BTreeMap::from([(
        "token".to_owned(),
        crate::value::SecretValue::from("refused"),
    )]);
    cache.keep("team-a", "sf-token", epoch, &old);

    let checks = checks_for_secret(&cache, &stores, "team-a", "sf-token", store_uses_secret);
    assert_eq!(checks.len(), 1, "the store using the Secret is checked");
    assert!(
        matches!(cache.lookup("team-a", "sf-token"), Lookup::Read { .. }),
        "the check must read the changed Secret, not the copy kept before the change"
    );
    // Another Secret of the namespace triggers nothing.
    assert!(checks_for_secret(&cache, &stores, "team-a", "other", store_uses_secret).is_empty());
}

#[test]
fn a_secret_the_store_keeps_creating_is_polled_less_and_less_often() {
    let backoff = pacing::backoff::Backoff::default();
    let polls: Vec<Duration> = (0..12)
        .map(|_| sync::commit::creating_poll(&backoff, "team-a/db"))
        .collect();
    assert_eq!(polls[0], CREATING_POLL);
    assert!(
        polls
            .iter()
            .all(|p| *p >= CREATING_POLL && *p <= pacing::backoff::CAP)
    );
    assert!(polls[11] >= pacing::backoff::CAP / 2, "{polls:?}");
    // Ready at last: the backoff is reset, and the next Creating starts at 3 s again.
    backoff.reset("team-a/db");
    assert_eq!(
        sync::commit::creating_poll(&backoff, "team-a/db"),
        CREATING_POLL
    );
}

#[test]
fn a_secret_wakes_the_secretsyncs_that_name_select_or_last_pushed_it() {
    let labels = |pairs: &[(&str, &str)]| -> std::collections::BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let named = sync("named", "uid-named");
    assert!(run::reads_source(&named, "s", &labels(&[])));
    assert!(!run::reads_source(
        &named,
        "other",
        &labels(&[("push", "yes")])
    ));

    let mut selecting: SecretSync = serde_json::from_value(serde_json::json!({
        "apiVersion": "secretsync.io/v1alpha1", "kind": "SecretSync",
        "metadata": {"name": "all", "namespace": "team-a"},
        "spec": {"source": {"selector": {"matchLabels": {"push": "yes"}}},
                 "target": {"storeRef": {"kind": "Store", "name": "vault"}, "remoteName": "{secret}"}}
    }))
    .expect("a SecretSync");
    assert!(run::reads_source(
        &selecting,
        "a",
        &labels(&[("push", "yes")])
    ));
    assert!(!run::reads_source(
        &selecting,
        "a",
        &labels(&[("push", "no")])
    ));
    // Unlabelled since its last push: still woken, so that its remote secret is let go.
    selecting.status = Some(crate::api::SecretSyncStatus {
        remotes: vec![crate::api::RemoteEntryStatus {
            name: "a".into(),
            secret: Some("a".into()),
            ..Default::default()
        }],
        ..Default::default()
    });
    assert!(run::reads_source(&selecting, "a", &labels(&[])));
    assert!(!run::reads_source(&selecting, "b", &labels(&[])));
}
