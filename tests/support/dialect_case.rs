//! The one harness for driving a dialect as a reconcile does (check, observe, decide, apply), shared by the
//! conformance suite and the dialect-specific tests. Include it with
//! `#[path = "support/dialect_case.rs"] mod dialect_case;` (or `../support/…` from a test folder).
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use secretsync::api::{RateLimit, Target};
use secretsync::dialects::kit::store_id::StoreId;
use secretsync::dialects::{Dialect, DialectError, Outcome, Request, Shared};
use secretsync::metrics::Metrics;
use secretsync::plan::digest::DigestKey;
use secretsync::plan::{
    Desired, Metadata, Observed, Owner, Plan, Remote, RemoteRef, WritePolicy, decide,
};
use secretsync::value::{Credentials, SecretValue};

/// The digest key of every test case (the controller's is random per install).
pub fn key() -> DigestKey {
    DigestKey::new(b"dialect-tests-digest-key-32bytes".to_vec()).expect("long enough")
}

// A crate may load unique.rs through support/mod.rs too: one more copy of a one-line function.
#[allow(clippy::duplicate_mod)]
#[path = "unique.rs"]
mod names;
/// `prefix` and eight random hex digits: a remote name no other run uses.
#[allow(unused_imports)]
pub use names::unique_joined as unique;

/// The SecretSync `team-a/db` (uid `uid-1`) that owns most cases.
pub fn owner() -> Owner {
    Owner {
        namespace: "team-a".into(),
        name: "db".into(),
        uid: "uid-1".into(),
        scope: Default::default(),
    }
}

/// One SecretSync against one store, through one dialect.
pub struct Case {
    pub dialect: Arc<dyn Dialect>,
    pub metrics: Arc<Metrics>,
    pub target: Target,
    pub credentials: Credentials,
    pub rate_limit: Option<RateLimit>,
    pub name: String,
    pub desired: Desired,
    pub value: SecretValue,
    /// What the status would hold from the last reconcile (a hint dialects may use).
    pub last: Option<RemoteRef>,
    /// The store the controller would name (its author decides whom a CA vouches for); `None`: inline.
    pub store: Option<StoreId>,
}

impl Case {
    /// A case on a dialect of its own (`make` builds it on a fresh `Shared`), owned by [`owner`].
    pub fn new(
        make: impl FnOnce(Shared) -> Arc<dyn Dialect>,
        target: Target,
        credentials: Credentials,
        name: &str,
        value: &[u8],
    ) -> Case {
        let metrics = Metrics::new();
        let dialect = make(Shared::new(200, 200, metrics.clone()));
        Case::sharing(dialect, metrics, target, credentials, name, value)
    }

    /// A case on a dialect (and so a rate limiter and metrics) shared with others.
    pub fn sharing(
        dialect: Arc<dyn Dialect>,
        metrics: Arc<Metrics>,
        target: Target,
        credentials: Credentials,
        name: &str,
        value: &[u8],
    ) -> Case {
        let value = SecretValue::new(value.to_vec());
        let desired = Desired {
            digest: key().digest(value.expose()),
            earlier_digest: None,
            metadata: Metadata {
                content_type: target.content_type.clone(),
                description: target.description.clone(),
                labels: target.labels.clone(),
            },
            owner: owner(),
            policy: WritePolicy::Replace,
            adopt_existing: false,
            // A store that lets adoptExisting take anything: what a dialect does when the planner adopts.
            adoption: secretsync::plan::Adoption::UnmarkedOrOrphaned,
            allow_replace: dialect.allows_replace(&target),
        };
        Case {
            dialect,
            metrics,
            target,
            credentials,
            rate_limit: None,
            name: name.to_owned(),
            desired,
            value,
            last: None,
            store: None,
        }
    }

    pub fn set_value(&mut self, value: &[u8]) {
        self.value = SecretValue::new(value.to_vec());
        self.desired.digest = key().digest(self.value.expose());
    }

    pub fn request(&self) -> Request<'_> {
        Request {
            target: &self.target,
            remote_name: &self.name,
            rate_limit: self.rate_limit,
            credentials: &self.credentials,
            desired: &self.desired,
            last: self.last.as_ref(),
            store: self.store.clone(),
        }
    }

    /// The checks a reconcile runs before any call.
    pub fn check(&self) -> Result<(), DialectError> {
        self.dialect.check(&self.request(), &self.value)
    }

    pub async fn observe(&self) -> Result<Observed, DialectError> {
        self.dialect.observe(&self.request()).await
    }

    /// Check, observe and decide.
    pub async fn plan(&self) -> Result<(Plan, Observed), DialectError> {
        self.check()?;
        let observed = self.observe().await?;
        let plan = decide(
            &self.desired,
            &observed,
            self.dialect.capabilities(&self.target),
        );
        Ok((plan, observed))
    }

    pub async fn apply(&self, plan: &Plan, observed: &Observed) -> Result<Outcome, DialectError> {
        let write = plan
            .write()
            .expect("dialects are asked for writing plans only");
        self.dialect
            .apply(&self.request(), &write, observed, &self.value)
            .await
    }

    /// One reconcile: check, observe, decide, and apply a writing plan; the status's hint is kept.
    pub async fn try_reconcile(&mut self) -> Result<(Plan, Option<Outcome>), DialectError> {
        let (plan, observed) = self.plan().await?;
        if !plan.writes() {
            return Ok((plan, None));
        }
        let outcome = self.apply(&plan, &observed).await?;
        self.last = match &outcome {
            Outcome::Ready(r) | Outcome::Creating(r) => Some(r.clone()),
        };
        Ok((plan, Some(outcome)))
    }

    /// [`Case::try_reconcile`], which must succeed.
    pub async fn reconcile(&mut self) -> (Plan, Option<Outcome>) {
        self.try_reconcile()
            .await
            .unwrap_or_else(|e| panic!("reconcile {}: {e}", self.name))
    }

    /// Reconciles until the store is in step (a store still creating is looked at again), returning the plans
    /// in order, the final `InSync` included; stops early at a plan that refuses.
    pub async fn converge(&mut self) -> Vec<Plan> {
        let mut plans = Vec::new();
        for _ in 0..40 {
            let (plan, _) = self.reconcile().await;
            let done = matches!(plan, Plan::InSync | Plan::Refuse(_));
            let waiting = plan == Plan::WaitForBackend;
            plans.push(plan);
            if done {
                return plans;
            }
            if waiting {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        panic!("{} never came in step: {plans:?}", self.name);
    }

    /// Deletes what `observe` finds (as `deletionPolicy: Delete` does).
    pub async fn delete(&self) -> Result<(), DialectError> {
        let observed = self.observe().await?;
        self.dialect.delete(&self.request(), &observed).await
    }

    /// Store requests this case's dialect counted for `operation` with `outcome`.
    pub fn requests(&self, operation: &str, outcome: &str) -> u64 {
        self.sum(|labels| {
            labels.contains(&format!("operation=\"{operation}\""))
                && labels.contains(&format!("outcome=\"{outcome}\""))
        })
    }

    /// Store requests this case's dialect made in all, whatever their outcome.
    pub fn requests_total(&self) -> u64 {
        self.sum(|_| true)
    }

    /// Resolves once this case's dialect has made `n` store requests in all.
    pub async fn requests_reach(&self, n: u64) {
        while self.requests_total() < n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    fn sum(&self, keep: impl Fn(&str) -> bool) -> u64 {
        self.metrics
            .render()
            .lines()
            .filter_map(|l| l.strip_prefix("secretsync_backend_requests_total{"))
            .filter_map(|l| l.split_once("} "))
            .filter(|(labels, _)| keep(labels))
            .filter_map(|(_, n)| n.trim().parse::<f64>().ok())
            .sum::<f64>() as u64
    }
}

/// The remote secret `observe` found; panics when there is none.
pub fn remote(observed: &Observed) -> &Remote {
    match observed {
        Observed::Present(r) => r,
        Observed::Absent => panic!("expected a remote secret, found none"),
    }
}

/// The reference of a `Ready` outcome; panics on anything else.
pub fn ready(outcome: Option<Outcome>) -> RemoteRef {
    match outcome {
        Some(Outcome::Ready(r)) => r,
        other => panic!("expected Ready, got {other:?}"),
    }
}
