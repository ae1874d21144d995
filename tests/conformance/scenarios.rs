//! The scenarios every dialect must pass, written once.

use std::time::{Duration, Instant};

use secretsync::api::RateLimit;
use secretsync::dialects::{ErrorClass, Outcome};
use secretsync::plan::{DeletePlan, Observed, Plan, Refusal, decide_delete};

use crate::case::{Store, case, case_named, holds, owner};

/// Create, a reconcile that writes nothing, a new value, and deletion under `deletionPolicy: Delete`.
pub async fn create_no_op_change_delete(store: &dyn Store) {
    let mut case = case(store, "first value");
    let plans = case.converge().await;
    assert_eq!(plans.first(), Some(&Plan::Create), "{plans:?}");
    assert!(
        holds(store, &case, "first value").await,
        "the store lacks the value"
    );

    let before = case.requests_total();
    let (plan, outcome) = case.reconcile().await;
    assert_eq!((plan, outcome), (Plan::InSync, None));
    let at_rest = case.requests_total() - before;
    assert!(
        at_rest > 0,
        "an in-step reconcile must still read the store"
    );
    assert!(
        at_rest <= store.requests_at_rest(),
        "an in-step reconcile took {at_rest} store requests; at most {} are documented",
        store.requests_at_rest()
    );

    case.set_value(b"second value");
    let before = case.requests_total();
    let (plan, _) = case.reconcile().await;
    let per_change = case.requests_total() - before;
    assert!(plan.writes(), "a new value wrote nothing: {plan:?}");
    assert!(
        per_change <= store.requests_per_change(),
        "a value change took {per_change} store requests; at most {} are documented",
        store.requests_per_change()
    );
    let plans = case.converge().await;
    assert_eq!(plans.last(), Some(&Plan::InSync), "{plans:?}");
    assert!(
        holds(store, &case, "second value").await,
        "the new value is missing"
    );

    let observed = case.observe().await.expect("observe");
    assert_eq!(
        decide_delete(&case.desired.owner, &observed),
        DeletePlan::Delete
    );
    case.dialect
        .delete(&case.request(), &observed)
        .await
        .expect("delete");
    assert!(!store.exists(&case.name).await, "the secret is still there");
    let observed = case.observe().await.expect("observe after delete");
    assert_eq!(
        decide_delete(&case.desired.owner, &observed),
        DeletePlan::AlreadyGone
    );
}

/// Drift: the secret removed behind SecretSync's back is written again with the same value.
pub async fn removed_behind_our_back_is_written_again(store: &dyn Store) {
    let mut case = case(store, "kept value");
    case.converge().await;
    store.remove(&case.name).await;
    let plans = case.converge().await;
    assert!(plans[0].writes(), "drift went unnoticed: {plans:?}");
    assert!(holds(store, &case, "kept value").await);
    store.remove(&case.name).await;
}

/// A secret nobody owns is never written over, until `adoptExisting`; then it is SecretSync's.
pub async fn a_foreign_secret_is_refused_until_adopted(store: &dyn Store) {
    let mut case = case(store, "our value");
    store.create_foreign(&case.name, b"their value").await;
    let (plan, _) = case.reconcile().await;
    assert_eq!(plan, Plan::Refuse(Refusal::NotOwned));
    let observed = case.observe().await.expect("observe");
    assert_eq!(
        decide_delete(&case.desired.owner, &observed),
        DeletePlan::LeaveForeign,
        "a deletion would remove a secret that is not ours"
    );
    assert!(
        holds(store, &case, "their value").await,
        "the foreign value changed"
    );

    case.desired.adopt_existing = true;
    let plans = case.converge().await;
    assert!(plans[0].writes(), "{plans:?}");
    assert!(holds(store, &case, "our value").await);
    case.desired.adopt_existing = false;
    assert_eq!(
        case.reconcile().await.0,
        Plan::InSync,
        "adopted but not ours"
    );
    store.remove(&case.name).await;
}

/// Two SecretSyncs naming the same remote secret: the second is refused and writes nothing.
pub async fn another_secretsyncs_secret_is_refused_and_left_alone(store: &dyn Store) {
    let mut first = case(store, "first owner's value");
    first.converge().await;
    let mut second = case_named(
        store,
        &first.name,
        owner("other-app"),
        "second owner's value",
    );
    let (plan, outcome) = second.reconcile().await;
    assert!(
        matches!(&plan, Plan::Refuse(Refusal::OwnedByOther { owner, .. }) if *owner == first.desired.owner
            || owner.key() == first.desired.owner.key()),
        "{plan:?}"
    );
    assert_eq!(outcome, None);
    let observed = second.observe().await.expect("observe");
    assert_eq!(
        decide_delete(&second.desired.owner, &observed),
        DeletePlan::LeaveForeign
    );
    assert!(holds(store, &first, "first owner's value").await);
    assert_eq!(first.reconcile().await.0, Plan::InSync);
    store.remove(&first.name).await;
}

/// `Retain` is the controller not calling `delete`: the secret stays and the next SecretSync of that name
/// (same namespace and name) picks it up as its own; `Delete` then removes it.
pub async fn retain_leaves_the_secret_and_delete_removes_only_ours(store: &dyn Store) {
    let mut case = case(store, "retained value");
    case.converge().await;
    let mut successor = owner("app");
    successor.uid = format!("{}-recreated", case.desired.owner.uid);
    let mut again = case_named(store, &case.name, successor, "retained value");
    assert_eq!(
        again.reconcile().await.0,
        Plan::InSync,
        "the same namespace and name did not recognise its retained secret"
    );
    let observed = again.observe().await.expect("observe");
    assert_eq!(
        decide_delete(&again.desired.owner, &observed),
        DeletePlan::Delete
    );
    again
        .dialect
        .delete(&again.request(), &observed)
        .await
        .expect("delete");
    assert!(!store.exists(&case.name).await);
}

/// Credentials the store refuses end in a `Credentials` error that quotes none of them, and write nothing.
pub async fn wrong_credentials_are_a_credentials_error_without_secrets(store: &dyn Store) {
    let secret = format!("not-the-secret-{:08x}", rand::random::<u32>());
    let mut case = case(store, "never written");
    case.credentials = store.wrong_credentials(&secret);
    let err = case.observe().await.expect_err("wrong credentials");
    assert_eq!(err.class, ErrorClass::Credentials, "{err}");
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains(&secret),
        "the error quotes the credentials: {shown}"
    );
    let outcome = case
        .dialect
        .apply(
            &case.request(),
            &secretsync::plan::Write::Create,
            &secretsync::plan::Observed::Absent,
            &case.value,
        )
        .await;
    assert!(
        matches!(&outcome, Err(e) if e.class == ErrorClass::Credentials),
        "{outcome:?}"
    );
    assert!(!matches!(outcome, Ok(Outcome::Ready(_))));
    assert!(!store.exists(&case.name).await, "a refused create wrote");
}

/// A controller that dies after any request of a create (the request answered or cut in flight) leaves nothing
/// that a restarted one cannot finish: it converges to the value, with exactly one secret object under the name.
pub async fn a_crash_after_any_request_converges_without_a_duplicate(store: &dyn Store) {
    for cut_after in 1.. {
        let case = case(store, "crash value");
        let observed = case.observe().await.expect("observe");
        assert_eq!(observed, Observed::Absent);
        let before = case.requests_total();
        let request = case.request();
        let finished = tokio::select! {
            biased;
            _ = case.requests_reach(before + cut_after) => false,
            _ = case.dialect.apply(&request, &secretsync::plan::Write::Create, &observed, &case.value) => true,
        };
        let mut restarted =
            case_named(store, &case.name, case.desired.owner.clone(), "crash value");
        let plans = restarted.converge().await;
        assert_eq!(
            plans.last(),
            Some(&Plan::InSync),
            "cut after request {cut_after}: {plans:?}"
        );
        assert!(
            holds(store, &restarted, "crash value").await,
            "cut after request {cut_after}: the value is missing"
        );
        assert_eq!(
            store.count(&case.name).await,
            1,
            "cut after request {cut_after}: a duplicate or nothing was left"
        );
        store.remove(&case.name).await;
        if finished {
            return;
        }
        assert!(cut_after < 20, "a create that never ends");
    }
}

/// A store's `rateLimit` paces every request the dialect makes to it, reads included.
pub async fn the_stores_rate_limit_paces_every_request(store: &dyn Store) {
    let mut case = case(store, "paced");
    case.rate_limit = Some(RateLimit {
        requests_per_second: 5,
        burst: Some(1),
    });
    // The first observe may also fetch a token or negotiate a version elsewhere; count from the second on.
    case.observe().await.expect("observe");
    let before = case.requests_total();
    let start = Instant::now();
    for _ in 0..4 {
        case.observe().await.expect("observe");
    }
    let made = case.requests_total() - before;
    assert!(made >= 4, "{made} requests");
    // One at once, then one every 200 ms: a lower bound only, never an upper one.
    let floor = Duration::from_millis(200) * (made as u32 - 1);
    assert!(
        start.elapsed() >= floor.mul_f64(0.9),
        "{made} requests in {:?} at 5/s",
        start.elapsed()
    );
}
