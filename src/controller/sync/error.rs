//! Why a reconcile did not finish, and when the object is looked at again.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use tracing::debug;

use super::names::{after, key, refresh_wait};
use super::status::{self, Report};
use crate::api::SecretSync;
use crate::api::duration::DurationError;
use crate::controller::Context;
use crate::controller::stores::resolve::Refusal;
use crate::controller::sync::source::SourceError;
use crate::dialects::{DialectError, ErrorClass};

/// Why a reconcile did not finish. Every variant's message is safe to show: no values, no credentials.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Dialect(#[from] DialectError),
    #[error("no dialect {0} is registered in this controller")]
    NoDialect(String),
    #[error("Kubernetes API error: {0}")]
    Kube(#[from] kube::Error),
    #[error("the SecretSync has no namespace or uid")]
    Incomplete,
    /// Its namespace is not in the controller's namespace watch yet (just created): tried again shortly.
    #[error("namespace {0:?} is not yet in the controller's watch; retrying")]
    NamespaceUnseen(String),
    #[error(transparent)]
    Stopping(#[from] crate::controller::watch::caches::Stopping),
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("spec.refreshInterval {0}")]
    InvalidRefreshInterval(DurationError),
    /// A panic ended the reconcile; the controller log has where.
    #[error(
        "an internal error interrupted this reconcile; it is retried with backoff (the controller's log says where)"
    )]
    Internal,
    /// The remote cleanup of an object being deleted failed; in a namespace being deleted, `give_up_in` bounds
    /// how long the finalizer is still held.
    #[error("{source}")]
    CleanupBlocked {
        source: Box<Error>,
        give_up_in: Option<Duration>,
    },
}

impl Error {
    pub fn report(&self) -> Report {
        match self {
            Error::Source(e) => Report::failed(
                e.reason(),
                format!("{e}; SecretSync retries when the Secret changes"),
            ),
            Error::Dialect(e) => status::for_dialect_error(e),
            Error::NoDialect(_) => Report::failed("DialectUnavailable", self.to_string()),
            Error::Refused(e) => Report::failed(e.reason(), e.to_string()),
            Error::Kube(_) => Report::failed("KubernetesError", self.to_string()),
            Error::Incomplete => Report::failed("Invalid", self.to_string()),
            Error::NamespaceUnseen(_) => Report::failed("Pending", self.to_string()),
            Error::Stopping(_) => Report::failed("ControllerStopping", self.to_string()),
            Error::InvalidRefreshInterval(_) => Report::failed(
                "InvalidRefreshInterval",
                format!("{self}; nothing is read or written until it is fixed"),
            ),
            Error::Internal => Report::failed("InternalError", self.to_string()),
            Error::CleanupBlocked { source, give_up_in } => {
                let mut report = source.report();
                report.reason = "DeletionBlocked".into();
                report.message = match give_up_in {
                    None => format!(
                        "cannot delete the remote secret: {source}. Fix the cause, or set spec.deletionPolicy: Retain to let this SecretSync go and keep the remote secret"
                    ),
                    Some(left) => format!(
                        "cannot delete the remote secret: {source}. The namespace is being deleted: SecretSync keeps trying for {}s more, then leaves the remote secret in place and lets this SecretSync go",
                        left.as_secs()
                    ),
                };
                report
            }
        }
    }

    /// In a namespace being deleted, the longest wait before the next look at a blocked cleanup.
    fn give_up_in(&self) -> Option<Duration> {
        match self {
            Error::CleanupBlocked { give_up_in, .. } => *give_up_in,
            _ => None,
        }
    }

    /// What to do next: back off on transient trouble, wait for a change otherwise.
    fn retry(&self) -> Retry {
        match self {
            Error::Source(SourceError::Kube { .. }) | Error::Kube(_) => Retry::Backoff(None),
            Error::Source(_)
            | Error::NoDialect(_)
            | Error::Incomplete
            | Error::InvalidRefreshInterval(_) => Retry::AwaitChange,
            Error::Internal | Error::Stopping(_) | Error::NamespaceUnseen(_) => {
                Retry::Backoff(None)
            }
            // A change to the store, the namespace or the Secret requeues it at once. What is not watched (a
            // ClusterStore's credentials in a namespace outside `--namespace`, a ServiceAccount created later) is
            // looked at again within RECHECK_REFUSED: a few API reads, never a store request.
            Error::Refused(_) => Retry::Recheck(RECHECK_REFUSED),
            Error::CleanupBlocked { source, .. } => source.retry(),
            Error::Dialect(e) => match e.class {
                ErrorClass::Retry | ErrorClass::Conflict => Retry::Backoff(e.retry_after),
                ErrorClass::Credentials | ErrorClass::Permanent => Retry::Refresh,
            },
        }
    }
}

enum Retry {
    Backoff(Option<Duration>),
    /// Like `Refresh`, but at most this long.
    Recheck(Duration),
    /// Only a change can fix it; still look again at the refresh interval (the store side may be fixed).
    Refresh,
    AwaitChange,
}

/// The longest wait before a SecretSync its store refused is looked at again, whatever its refresh interval.
const RECHECK_REFUSED: Duration = Duration::from_secs(300);

/// A store's `Retry-After` is honoured up to this; beyond it the store is not believed.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(900);

pub fn error_policy(obj: Arc<SecretSync>, err: &Error, ctx: Arc<Context>) -> Action {
    let wait = match err.retry() {
        Retry::Backoff(retry_after) => {
            let retry_after = retry_after.unwrap_or_default().min(MAX_RETRY_AFTER);
            let wait = ctx.backoff.next(&key(&obj)).max(retry_after);
            debug!(wait_ms = wait.as_millis() as u64, "retrying after backoff");
            Some(wait)
        }
        Retry::Refresh => {
            ctx.backoff.reset(&key(&obj));
            refresh_wait(&obj)
        }
        Retry::Recheck(at_most) => {
            ctx.backoff.reset(&key(&obj));
            let recheck =
                crate::controller::pacing::backoff::with_jitter(at_most, rand::random::<f64>());
            Some(refresh_wait(&obj).map_or(recheck, |w| w.min(recheck)))
        }
        Retry::AwaitChange => {
            ctx.backoff.reset(&key(&obj));
            None
        }
    };
    // A blocked cleanup in a terminating namespace is looked at again once its time is up, whatever the error.
    let wait = match err.give_up_in() {
        Some(left) => {
            let deadline = left + Duration::from_secs(1);
            Some(wait.map_or(deadline, |w| w.min(deadline)))
        }
        None => wait,
    };
    after(wait)
}
