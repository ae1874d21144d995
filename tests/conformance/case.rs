//! The generic harness: a store adapter and one SecretSync's worth of inputs driven through any dialect.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secretsync::api::{RateLimit, Target};
use secretsync::dialects::{Dialect, DialectError, Outcome, Request, Shared};
use secretsync::metrics::Metrics;
use secretsync::plan::digest::DigestKey;
use secretsync::plan::{Desired, Metadata, Observed, Owner, Plan, WritePolicy, decide};
use secretsync::value::{Credentials, SecretValue};

/// What only the store can show, and how to reach it. Everything else is the same for every dialect.
#[async_trait]
pub trait Store: Send + Sync {
    /// The dialect under test, built on `shared`.
    fn dialect(&self, shared: Shared) -> Arc<dyn Dialect>;
    /// A target and credentials the store accepts.
    fn target(&self) -> Target;
    fn credentials(&self) -> Credentials;
    /// Credentials the store refuses; `secret` is a string that must never show up in an error.
    fn wrong_credentials(&self, secret: &str) -> Credentials;
    /// A fresh remote name this store accepts.
    fn fresh_name(&self) -> String {
        format!("conf-{:08x}", rand::random::<u32>())
    }
    /// The store requests one value change takes at most (observe and apply, one reconcile), as the dialect
    /// documents them.
    fn requests_per_change(&self) -> u64;
    /// Whether the store holds `value` as the current value under `name`, read from the store itself (where
    /// the store cannot show a value, from what it can show that only this value produces).
    async fn holds(&self, name: &str, value: &[u8], digest: &str) -> bool;
    /// Whether any secret (SecretSync's or not) is left under `name`.
    async fn exists(&self, name: &str) -> bool;
    /// Removes what is under `name` behind SecretSync's back.
    async fn remove(&self, name: &str);
    /// Creates a secret under `name` holding `value`, without SecretSync's markers.
    async fn create_foreign(&self, name: &str, value: &[u8]);
    /// How many secret objects the store keeps under `name` (a store that names its secrets uniquely has at
    /// most one; Barbican and Docker could have several).
    async fn count(&self, name: &str) -> usize;
}

pub fn key() -> DigestKey {
    DigestKey::new(b"conformance-suite-digest-key-32b".to_vec()).expect("long enough")
}

pub fn owner(name: &str) -> Owner {
    Owner {
        namespace: "team-conformance".into(),
        name: name.into(),
        uid: format!("uid-{:08x}", rand::random::<u32>()),
    }
}

/// One SecretSync against one store.
pub struct Case<'s> {
    pub store: &'s dyn Store,
    pub dialect: Arc<dyn Dialect>,
    pub metrics: Arc<Metrics>,
    pub target: Target,
    pub credentials: Credentials,
    pub rate_limit: Option<RateLimit>,
    pub name: String,
    pub desired: Desired,
    pub value: SecretValue,
}

impl<'s> Case<'s> {
    pub fn new(store: &'s dyn Store, value: &str) -> Case<'s> {
        let name = store.fresh_name();
        Self::named(store, &name, owner("app"), value)
    }

    /// A case for `name` owned by `owner` (two cases on one name are two SecretSyncs).
    pub fn named(store: &'s dyn Store, name: &str, owner: Owner, value: &str) -> Case<'s> {
        let metrics = Metrics::new();
        let value = SecretValue::from(value);
        Case {
            dialect: store.dialect(Shared::new(200, 200, metrics.clone())),
            metrics,
            target: store.target(),
            credentials: store.credentials(),
            rate_limit: None,
            name: name.to_owned(),
            desired: Desired {
                digest: key().digest(value.expose()),
                metadata: Metadata::default(),
                owner,
                policy: WritePolicy::Replace,
                adopt_existing: false,
                allow_replace: false,
            },
            store,
            value,
        }
    }

    pub fn set_value(&mut self, value: &str) {
        self.value = SecretValue::from(value);
        self.desired.digest = key().digest(self.value.expose());
    }

    pub fn request(&self) -> Request<'_> {
        Request {
            target: &self.target,
            remote_name: &self.name,
            rate_limit: self.rate_limit,
            credentials: &self.credentials,
            desired: &self.desired,
            last: None,
        }
    }

    pub async fn observe(&self) -> Result<Observed, DialectError> {
        self.dialect.observe(&self.request()).await
    }

    /// One reconcile: observe, decide, and apply a writing plan.
    pub async fn step(&self) -> (Plan, Option<Outcome>) {
        let observed = self.observe().await.expect("observe");
        let plan = decide(
            &self.desired,
            &observed,
            self.dialect.capabilities(&self.target),
        );
        if !plan.writes() {
            return (plan, None);
        }
        let outcome = self
            .dialect
            .apply(&self.request(), &plan, &observed, &self.value)
            .await
            .unwrap_or_else(|e| panic!("apply {plan:?}: {e}"));
        (plan, Some(outcome))
    }

    /// Reconciles until the store is in step (a store still creating is looked at again), returning the plans
    /// taken in order, the final `InSync` included; stops early at a plan that refuses.
    pub async fn converge(&self) -> Vec<Plan> {
        let mut plans = Vec::new();
        for _ in 0..40 {
            let (plan, _) = self.step().await;
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

    pub async fn holds(&self, value: &str) -> bool {
        self.store
            .holds(
                &self.name,
                value.as_bytes(),
                &key().digest(value.as_bytes()),
            )
            .await
    }

    /// Resolves once this case's dialect has made `n` store requests in all.
    pub async fn requests_reach(&self, n: u64) {
        while self.requests() < n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Store requests this case's dialect made, whatever their outcome, summed over operations.
    pub fn requests(&self) -> u64 {
        let rendered = self.metrics.render();
        rendered
            .lines()
            .filter(|l| l.starts_with("secretsync_backend_requests_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }
}
