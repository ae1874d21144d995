//! When a failed store call is tried again in place, and when it is handed back to the controller's backoff.
//!
//! The rule every dialect shares: a request is repeated only when repeating it cannot do anything twice: it is
//! idempotent, or the store proved it was not applied (it refused it as throttled, or the connection was never
//! made). A create that timed out may have been applied: the next reconcile reads the store and finds out.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::dialects::{DialectError, ErrorClass};

/// Whether sending a request twice has the same effect as sending it once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idempotency {
    /// Reads, deletes, and writes that set a state (PUT, PATCH): repeated after any transient failure.
    Idempotent,
    /// Creates and appends (POST, a new version): repeated only when the store proved it did not apply them.
    NotIdempotent,
}

/// What a failed attempt tells about the store's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The store cannot have acted on the request: no connection was made, or it refused it before any work
    /// (throttled).
    No,
    /// The request may have been applied (a timeout, a dropped connection, a 5xx).
    Maybe,
}

/// One failed attempt.
#[derive(Debug)]
pub struct Failure {
    pub error: DialectError,
    pub applied: Applied,
}

impl Failure {
    pub fn maybe_applied(error: DialectError) -> Self {
        Failure {
            error,
            applied: Applied::Maybe,
        }
    }

    pub fn not_applied(error: DialectError) -> Self {
        Failure {
            error,
            applied: Applied::No,
        }
    }

    /// A store answer that is an error: a throttled request was refused before any work, anything else may
    /// have been applied.
    pub fn answered(error: DialectError) -> Self {
        if error.reason == THROTTLED {
            Self::not_applied(error)
        } else {
            Self::maybe_applied(error)
        }
    }
}

/// The reason every dialect gives a request the store refused for its rate.
pub const THROTTLED: &str = "Throttled";

/// How hard a call tries before handing back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The wait before the second attempt; doubled for each one after, then jittered.
    pub first_backoff: Duration,
    /// A longer `Retry-After` is handed to the controller instead of holding a worker.
    pub max_inline_wait: Duration,
    /// No attempt starts once this much time has passed since the first (the attempts' own deadlines bound the
    /// rest).
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            first_backoff: Duration::from_millis(200),
            max_inline_wait: Duration::from_secs(2),
            budget: Duration::from_secs(10),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Wait this long, then try again.
    Retry(Duration),
    /// Return the error; the controller's backoff takes over.
    GiveUp,
}

impl RetryPolicy {
    /// The decision after attempt number `attempt` (1-based) failed, `elapsed` after the first began. `jitter`
    /// is a number in `[0, 1)` that spreads the backoff over `[½, 1½)` of its base, so that the workers that
    /// failed together do not come back together.
    pub fn after(
        &self,
        attempt: u32,
        elapsed: Duration,
        idempotency: Idempotency,
        failure: &Failure,
        jitter: f64,
    ) -> Step {
        if failure.error.class != ErrorClass::Retry || attempt >= self.attempts {
            return Step::GiveUp;
        }
        if idempotency == Idempotency::NotIdempotent && failure.applied == Applied::Maybe {
            return Step::GiveUp;
        }
        let wait = match failure.error.retry_after {
            Some(asked) if asked > self.max_inline_wait => return Step::GiveUp,
            Some(asked) => asked,
            None => {
                let base = self.first_backoff * 2u32.saturating_pow(attempt - 1);
                base.mul_f64(0.5 + jitter.clamp(0.0, 1.0))
            }
        };
        if elapsed + wait >= self.budget {
            return Step::GiveUp;
        }
        Step::Retry(wait)
    }

    /// Runs `attempt` until it succeeds or [`RetryPolicy::after`] gives up. `on_retry` sees each failure that
    /// is retried (for logs).
    pub async fn run<T, F, Fut>(
        &self,
        idempotency: Idempotency,
        mut attempt: F,
        mut on_retry: impl FnMut(u32, &Failure),
    ) -> Result<T, DialectError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let start = Instant::now();
        let mut number = 1;
        loop {
            let failure = match attempt(number).await {
                Ok(t) => return Ok(t),
                Err(f) => f,
            };
            match self.after(
                number,
                start.elapsed(),
                idempotency,
                &failure,
                rand::random::<f64>(),
            ) {
                Step::GiveUp => return Err(failure.error),
                Step::Retry(wait) => {
                    on_retry(number, &failure);
                    tokio::time::sleep(wait).await;
                    number += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Idempotency::*;

    fn failure(error: DialectError, applied: Applied) -> Failure {
        Failure { error, applied }
    }

    fn transient() -> DialectError {
        DialectError::retry("BackendError", "503")
    }

    const NOW: Duration = Duration::ZERO;

    #[test]
    fn only_transient_errors_are_retried() {
        let p = RetryPolicy::default();
        for e in [
            DialectError::conflict("Conflict", ""),
            DialectError::credentials("Unauthorized", ""),
            DialectError::permanent("BackendRejected", ""),
        ] {
            assert_eq!(
                p.after(1, NOW, Idempotent, &failure(e, Applied::No), 0.5),
                Step::GiveUp
            );
        }
        assert!(matches!(
            p.after(
                1,
                NOW,
                Idempotent,
                &failure(transient(), Applied::Maybe),
                0.5
            ),
            Step::Retry(_)
        ));
    }

    #[test]
    fn a_create_that_may_have_been_applied_is_never_repeated() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.after(
                1,
                NOW,
                NotIdempotent,
                &failure(transient(), Applied::Maybe),
                0.5
            ),
            Step::GiveUp
        );
        // Refused before any work: safe to send again.
        assert!(matches!(
            p.after(
                1,
                NOW,
                NotIdempotent,
                &failure(transient(), Applied::No),
                0.5
            ),
            Step::Retry(_)
        ));
    }

    #[test]
    fn throttling_counts_as_not_applied() {
        let throttled = Failure::answered(DialectError::retry(THROTTLED, "429"));
        assert_eq!(throttled.applied, Applied::No);
        assert_eq!(Failure::answered(transient()).applied, Applied::Maybe);
    }

    #[test]
    fn attempts_are_bounded() {
        let p = RetryPolicy::default();
        let f = failure(transient(), Applied::No);
        assert!(matches!(
            p.after(2, NOW, Idempotent, &f, 0.5),
            Step::Retry(_)
        ));
        assert_eq!(p.after(3, NOW, Idempotent, &f, 0.5), Step::GiveUp);
    }

    #[test]
    fn backoff_doubles_and_is_jittered_around_its_base() {
        let p = RetryPolicy::default();
        let f = failure(transient(), Applied::No);
        let wait = |attempt, jitter| match p.after(attempt, NOW, Idempotent, &f, jitter) {
            Step::Retry(w) => w,
            Step::GiveUp => panic!("gave up"),
        };
        assert_eq!(wait(1, 0.0), Duration::from_millis(100));
        assert_eq!(wait(1, 0.5), Duration::from_millis(200));
        assert!(wait(1, 0.999) < Duration::from_millis(300));
        assert_eq!(wait(2, 0.5), Duration::from_millis(400));
    }

    #[test]
    fn a_short_retry_after_is_honoured_and_a_long_one_handed_back() {
        let p = RetryPolicy::default();
        let asked = |secs| {
            failure(
                transient().with_retry_after(Some(Duration::from_secs(secs))),
                Applied::No,
            )
        };
        assert_eq!(
            p.after(1, NOW, Idempotent, &asked(1), 0.9),
            Step::Retry(Duration::from_secs(1))
        );
        assert_eq!(p.after(1, NOW, Idempotent, &asked(3), 0.9), Step::GiveUp);
    }

    #[test]
    fn no_attempt_starts_past_the_budget() {
        let p = RetryPolicy::default();
        let f = failure(transient(), Applied::No);
        assert_eq!(
            p.after(1, p.budget - Duration::from_millis(50), Idempotent, &f, 0.5),
            Step::GiveUp
        );
    }

    #[tokio::test]
    async fn run_repeats_until_success_and_reports_each_retry() {
        let mut retried = Vec::new();
        let quick = RetryPolicy {
            first_backoff: Duration::from_millis(1),
            ..RetryPolicy::default()
        };
        let out = quick
            .run(
                Idempotent,
                |n| async move {
                    if n < 3 {
                        Err(failure(transient(), Applied::Maybe))
                    } else {
                        Ok(n)
                    }
                },
                |n, _| retried.push(n),
            )
            .await;
        assert_eq!(out.unwrap(), 3);
        assert_eq!(retried, vec![1, 2]);
    }

    #[tokio::test]
    async fn run_hands_back_the_last_error() {
        let mut calls = 0;
        let out: Result<(), _> = RetryPolicy::default()
            .run(
                NotIdempotent,
                |_| {
                    calls += 1;
                    async { Err(failure(transient(), Applied::Maybe)) }
                },
                |_, _| {},
            )
            .await;
        assert_eq!(out.unwrap_err().reason, "BackendError");
        assert_eq!(calls, 1);
    }
}
