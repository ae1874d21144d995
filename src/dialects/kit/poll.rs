//! Waiting out what a store finishes asynchronously (a deletion, a purge, a recovery): looks at it again after a
//! quarter second, then after pauses that double up to two seconds, within a deadline.

use std::time::Duration;

use tokio::time::Instant;

use crate::dialects::DialectError;

pub struct Backoff {
    start: Instant,
    wait: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            start: Instant::now(),
            wait: Duration::from_millis(250),
        }
    }
}

impl Backoff {
    /// Whether `deadline` has passed since the first look.
    pub fn expired(&self, deadline: Duration) -> bool {
        self.start.elapsed() >= deadline
    }

    /// Waits, and doubles the next wait (up to two seconds).
    pub async fn pause(&mut self) {
        tokio::time::sleep(self.wait).await;
        self.wait = (self.wait * 2).min(Duration::from_secs(2));
    }
}

/// Calls `look` until it finds something, pausing between looks; `None` once `deadline` has passed.
pub async fn until<T, Fut>(
    deadline: Duration,
    mut look: impl FnMut() -> Fut,
) -> Result<Option<T>, DialectError>
where
    Fut: Future<Output = Result<Option<T>, DialectError>>,
{
    let mut backoff = Backoff::default();
    loop {
        if let Some(found) = look().await? {
            return Ok(Some(found));
        }
        if backoff.expired(deadline) {
            return Ok(None);
        }
        backoff.pause().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn looks_until_found_or_past_the_deadline() {
        let mut looks = 0;
        let found = until(Duration::from_secs(30), || {
            looks += 1;
            let now = looks;
            async move { Ok((now == 2).then_some(now)) }
        });
        assert_eq!(found.await.unwrap(), Some(2));
        let mut looks = 0;
        let never = until(Duration::ZERO, || {
            looks += 1;
            async { Ok::<Option<()>, DialectError>(None) }
        });
        assert_eq!(never.await.unwrap(), None);
        assert_eq!(looks, 1, "one look, then the deadline");
    }
}
