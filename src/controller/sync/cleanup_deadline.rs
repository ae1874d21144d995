//! When a blocked remote cleanup stops holding a SecretSync back.
//!
//! Under `deletionPolicy: Delete` the finalizer stays until the remote secret is gone. In a namespace being
//! deleted that can be never: the credentials Secret goes with the namespace, or the store is unreachable, and the
//! namespace would stay Terminating for ever. So in a terminating namespace the controller keeps trying for a
//! bounded time, then lets the object go and says which remote secret it left. Outside a namespace deletion the
//! owner can still fix the cause or choose `Retain`, so nothing is given up there.

use std::time::Duration;

/// What to do about a remote cleanup that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockedCleanup {
    /// Keep the finalizer and try again; when `give_up_in` is set, look again no later than that.
    KeepTrying { give_up_in: Option<Duration> },
    /// Release the finalizer and leave the remote secret.
    GiveUp,
}

/// `deleting_for`: how long the SecretSync has been marked for deletion; `timeout`: the operator's bound.
pub fn decide(
    namespace_terminating: bool,
    deleting_for: Duration,
    timeout: Duration,
) -> BlockedCleanup {
    if !namespace_terminating {
        return BlockedCleanup::KeepTrying { give_up_in: None };
    }
    match timeout.checked_sub(deleting_for) {
        Some(left) if !left.is_zero() => BlockedCleanup::KeepTrying {
            give_up_in: Some(left),
        },
        _ => BlockedCleanup::GiveUp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN_MINUTES: Duration = Duration::from_secs(600);

    #[test]
    fn a_living_namespace_never_gives_up() {
        for t in [0, 599, 600, 10_000_000] {
            assert_eq!(
                decide(false, Duration::from_secs(t), TEN_MINUTES),
                BlockedCleanup::KeepTrying { give_up_in: None }
            );
        }
    }

    #[test]
    fn a_terminating_namespace_gives_up_at_the_timeout() {
        assert_eq!(
            decide(true, Duration::ZERO, TEN_MINUTES),
            BlockedCleanup::KeepTrying {
                give_up_in: Some(TEN_MINUTES)
            }
        );
        assert_eq!(
            decide(true, Duration::from_secs(590), TEN_MINUTES),
            BlockedCleanup::KeepTrying {
                give_up_in: Some(Duration::from_secs(10))
            }
        );
        assert_eq!(
            decide(true, TEN_MINUTES, TEN_MINUTES),
            BlockedCleanup::GiveUp
        );
        assert_eq!(
            decide(true, Duration::from_secs(100_000), TEN_MINUTES),
            BlockedCleanup::GiveUp
        );
        assert_eq!(
            decide(true, Duration::ZERO, Duration::ZERO),
            BlockedCleanup::GiveUp
        );
    }
}
