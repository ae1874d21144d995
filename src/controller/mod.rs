//! The controller: watches SecretSyncs and the Secrets they reference, and runs each reconcile through the
//! planner and the object's dialect.
//!
//! Secrets are watched as metadata only (an `Api<PartialObjectMeta<Secret>>` lists and watches metadata alone):
//! a change to a referenced Secret triggers its SecretSyncs within seconds, but no Secret data of the cluster is
//! kept in memory. Data is fetched with one GET when a SecretSync needs it.

pub mod harness;
pub mod identity;
pub mod leadership;
pub mod pacing;
mod run;
pub mod stores;
pub mod sync;
pub mod telemetry;
pub mod watch;

pub use run::{SHUTDOWN_GRACE, run, run_until};

/// The operator's limits on where stores may connect, under the name the flags' documentation uses.
pub use stores::limits as store_limits;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use kube::Client;

use crate::dialects::Registry;
use crate::metrics::Metrics;
use crate::plan::digest::DigestKey;

pub use sync::Error;

/// The finalizer held while `deletionPolicy: Delete`.
pub const FINALIZER: &str = "secretsync.io/remote-cleanup";
/// Field manager of every write SecretSync makes.
pub const FIELD_MANAGER: &str = "secretsync";

/// How the controller runs (set by `secretsync run`'s flags).
pub struct Config {
    /// Namespaces to watch; empty means all.
    pub namespaces: Vec<String>,
    /// Label selector: only SecretSyncs matching it are handled (several controllers can split a cluster).
    pub selector: Option<String>,
    /// Reconciles running at once (per watched namespace set).
    pub concurrency: u16,
    pub digest_key: DigestKey,
    /// This cluster in ownership markers ([`identity::cluster_id::resolve`]).
    pub cluster_id: String,
    pub metrics: Arc<Metrics>,
    /// Set once the watches have synced; `/readyz` reports it.
    pub ready: Arc<AtomicBool>,
    /// Name reported on Events.
    pub instance: String,
    /// In a namespace being deleted, how long a SecretSync under `deletionPolicy: Delete` keeps trying to delete
    /// its remote secret before it lets go (with a Warning Event naming what was left), so the namespace can go.
    pub cleanup_timeout: Duration,
    /// Whether a SecretSync may name its dialect, endpoint and credentials itself instead of a store (single-tenant
    /// clusters only: whoever writes such a SecretSync decides where a credential goes).
    pub allow_inline_targets: bool,
    /// Test hook (`--test-panic-on namespace/name`): the reconcile of that one object panics, to prove that a panic
    /// ends only its own reconcile.
    pub panic_on: Option<String>,
    /// Where namespaced Stores may connect, and the token audiences stores may ask for.
    pub limits: stores::limits::StoreLimits,
}

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub registry: Registry,
    pub digest_key: DigestKey,
    pub cluster_id: String,
    pub metrics: Arc<Metrics>,
    pub recorder: telemetry::events::Recorder,
    backoff: pacing::backoff::Backoff,
    /// Fair shares of the workers per store and per namespace.
    stores: pacing::fair_share::Slots,
    namespaces: pacing::fair_share::Slots,
    cleanup_timeout: Duration,
    panic_on: Option<String>,
    allow_inline: bool,
    limits: stores::limits::StoreLimits,
    tokens: stores::token_request::Cache,
    seen_changes: telemetry::change_clock::SeenChanges,
    lookup: watch::caches::Lookup,
    remembered: stores::protection::Remembered,
    first_looks: pacing::startup_spread::FirstLooks,
    credentials: stores::credentials_cache::CredentialsCache,
}

impl Context {
    /// The shared state of a controller's reconciles, before any watch has started: its caches of stores and
    /// namespaces are empty until [`Context::lookup`]'s watches (or a test's writers) fill them.
    pub fn new(client: Client, config: &Config, registry: Registry) -> Context {
        let shares = pacing::fair_share::Shares::of(usize::from(config.concurrency));
        Context {
            client: client.clone(),
            registry,
            digest_key: config.digest_key.clone(),
            cluster_id: config.cluster_id.clone(),
            metrics: config.metrics.clone(),
            recorder: telemetry::events::Recorder::new(
                client.clone(),
                "secretsync",
                &config.instance,
            ),
            backoff: pacing::backoff::Backoff::default(),
            stores: pacing::fair_share::Slots::new(shares.per_store),
            namespaces: pacing::fair_share::Slots::namespaces(shares, config.namespaces.len()),
            cleanup_timeout: config.cleanup_timeout,
            panic_on: config.panic_on.clone(),
            allow_inline: config.allow_inline_targets,
            limits: config.limits.clone(),
            tokens: stores::token_request::Cache::default(),
            seen_changes: telemetry::change_clock::SeenChanges::default(),
            lookup: watch::caches::Lookup::default(),
            remembered: stores::protection::Remembered::default(),
            first_looks: pacing::startup_spread::FirstLooks::default(),
            credentials: stores::credentials_cache::CredentialsCache::new(
                config.namespaces.clone(),
            ),
        }
    }
}

/// How long to wait before polling a store that is still creating a secret.
pub const CREATING_POLL: Duration = Duration::from_secs(3);

#[cfg(test)]
mod tests;
