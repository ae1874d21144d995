//! Leader election timing: a leader stops acting as one before any other replica can take its Lease.
//!
//! kube-lease-manager acquires and renews the Lease, but it reports the Lease lost only after reading it back:
//! while the API server cannot be reached, its renewals fail, the Lease runs out and another replica takes it,
//! and the manager still says "leader". So the leader keeps its own account here. It reads the Lease back, and
//! once no renewal of its own has reached the Lease for the renew deadline, which is shorter than the lease, it
//! steps down without waiting to hear from the API server.
//!
//! For a lease of L seconds and a renew deadline of D seconds (D < L; two thirds of L by default):
//! - the manager renews every D/2 seconds (its `grace`, the time it renews before the lease ends, is L − D/2), so
//!   a failed renewal is retried before D;
//! - the leader reads the Lease back every D/4 (between 250 ms and 2 s): the holder and its `renewTime`;
//! - once D has passed since the last renewal found in the Lease, the leader steps down: its controller stops and
//!   running reconciles are cancelled at once;
//! - another replica takes the Lease only L after that renewal. The L − D seconds in between cover the
//!   cancellation and the clock skew between replicas (each compares the Lease's `renewTime`, written with the
//!   leader's clock, with its own clock; the leader's deadline uses the same `renewTime`).

use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use kube::Api;

/// The lease and the renew deadline, checked against each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    lease_seconds: u64,
    renew_deadline_seconds: u64,
}

impl Timing {
    /// `renew_deadline_seconds` defaults to two thirds of the lease (10 s of 15 s, as in client-go). Refused: a
    /// deadline not shorter than the lease (the leader would act on after another replica took over), and one
    /// under 2 s (renewals come every half deadline, in whole seconds).
    pub fn new(lease_seconds: u64, renew_deadline_seconds: Option<u64>) -> Result<Timing, String> {
        if lease_seconds > i32::MAX as u64 {
            return Err(format!("the lease ({lease_seconds} s) is too long"));
        }
        let deadline = renew_deadline_seconds.unwrap_or(lease_seconds * 2 / 3);
        if deadline >= lease_seconds {
            return Err(format!(
                "the renew deadline ({deadline} s) must be shorter than the lease ({lease_seconds} s): a leader that \
                 cannot renew must stop before another replica can take the Lease"
            ));
        }
        if deadline < 2 {
            return Err(format!(
                "the renew deadline ({deadline} s) must be at least 2 s, and the lease longer than that: the Lease is \
                 renewed every half deadline, in whole seconds"
            ));
        }
        Ok(Timing {
            lease_seconds,
            renew_deadline_seconds: deadline,
        })
    }

    pub fn lease_seconds(&self) -> u64 {
        self.lease_seconds
    }

    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_seconds)
    }

    /// Without a successful renewal for this long, the leader steps down.
    pub fn renew_deadline(&self) -> Duration {
        Duration::from_secs(self.renew_deadline_seconds)
    }

    /// How often the Lease is renewed: twice per deadline, so that one failed renewal is retried in time.
    pub fn renew_every_seconds(&self) -> u64 {
        self.renew_deadline_seconds / 2
    }

    /// kube-lease-manager's `grace`: it renews this many seconds before the lease would end.
    pub fn manager_grace_seconds(&self) -> u64 {
        self.lease_seconds - self.renew_every_seconds()
    }

    /// How often the leader reads the Lease back. A renewal is seen well before the deadline it pushes back.
    pub fn check_every(&self) -> Duration {
        (self.renew_deadline() / 4).clamp(Duration::from_millis(250), Duration::from_secs(2))
    }

    /// How long a leader stopping on SIGTERM lets running reconciles finish: at most `longest`, and never past the
    /// renew deadline, so under the lease.
    pub fn shutdown_grace(&self, longest: Duration) -> Duration {
        longest.min(self.renew_deadline())
    }
}

/// How long, at `now`, this replica may still act as the leader when its last renewal that reached the Lease was at
/// `last_renew`: `None` once the renew deadline has passed. A clock that went back before `last_renew` cannot tell
/// how long ago that was, which counts as past the deadline.
pub fn time_left(
    last_renew: SystemTime,
    now: SystemTime,
    renew_deadline: Duration,
) -> Option<Duration> {
    let since = now.duration_since(last_renew).ok()?;
    renew_deadline
        .checked_sub(since)
        .filter(|left| !left.is_zero())
}

/// Whether this replica may still act as the leader (see [`time_left`]).
pub fn still_leader(last_renew: SystemTime, now: SystemTime, renew_deadline: Duration) -> bool {
    time_left(last_renew, now, renew_deadline).is_some()
}

/// What one read of the Lease says about this replica's leadership.
#[derive(Debug, PartialEq, Eq)]
pub enum Reading {
    /// This replica holds it, renewed at this time (its own clock; a time ahead of `now` is taken as `now`).
    Renewed(SystemTime),
    /// Another replica holds it, or nobody.
    Other(Option<String>),
    /// Held by this replica, without a renewal time: says nothing about the deadline.
    Unknown,
}

pub fn reading(spec: Option<&LeaseSpec>, identity: &str, now: SystemTime) -> Reading {
    let holder = spec.and_then(|s| s.holder_identity.as_deref());
    if holder != Some(identity) {
        return Reading::Other(holder.map(str::to_owned));
    }
    match spec.and_then(|s| s.renew_time.as_ref()) {
        Some(t) => Reading::Renewed(SystemTime::from(t.0).min(now)),
        None => Reading::Unknown,
    }
}

/// Why a leader steps down.
#[derive(Debug, PartialEq, Eq)]
pub enum Lost {
    /// No renewal reached the Lease within the renew deadline.
    Deadline { last_renew: SystemTime },
    /// The Lease names another holder, or none.
    Holder(Option<String>),
    /// Just elected, but the Lease could not be read back within the renew deadline.
    Unconfirmed,
    /// kube-lease-manager read the Lease back and found it lost.
    Reported,
}

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lost::Deadline { last_renew } => {
                let ago = SystemTime::now()
                    .duration_since(*last_renew)
                    .unwrap_or_default();
                write!(
                    f,
                    "no renewal reached the Lease within the renew deadline (last one {} ms ago)",
                    ago.as_millis()
                )
            }
            Lost::Holder(Some(h)) => write!(f, "the Lease is held by {h}"),
            Lost::Holder(None) => write!(f, "the Lease has no holder"),
            Lost::Unconfirmed => write!(f, "the Lease could not be read back after the election"),
            Lost::Reported => write!(f, "the lease manager reports the Lease lost"),
        }
    }
}

/// Returns once the Lease exists and names no holder: a leader that stopped released it. kube-lease-manager's
/// standby sleeps until the lease it last saw would have expired, so without this a released Lease would wait
/// up to a lease time for a new leader (or for whichever new pod asks first). Read every `every`, as client-go's
/// standbys do every retry period; errors are read again.
pub async fn released(leases: &Api<Lease>, name: &str, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        match tokio::time::timeout(every, leases.get_opt(name)).await {
            Ok(Ok(Some(lease))) if is_free(lease.spec.as_ref()) => return,
            Ok(Err(e)) => tracing::debug!(error = %e, "cannot read the Lease"),
            _ => {}
        }
    }
}

/// Whether a Lease names no holder.
pub fn is_free(spec: Option<&LeaseSpec>) -> bool {
    spec.and_then(|s| s.holder_identity.as_deref())
        .is_none_or(str::is_empty)
}

/// Just after kube-lease-manager reports this replica elected: reads the Lease back and returns the renewal that
/// won it, from which the renew deadline counts.
pub async fn confirm(
    leases: &Api<Lease>,
    name: &str,
    identity: &str,
    timing: &Timing,
) -> Result<SystemTime, Lost> {
    let started = Instant::now();
    loop {
        let left = timing
            .renew_deadline()
            .checked_sub(started.elapsed())
            .filter(|l| !l.is_zero())
            .ok_or(Lost::Unconfirmed)?;
        match tokio::time::timeout(left, leases.get(name)).await {
            Ok(Ok(lease)) => match reading(lease.spec.as_ref(), identity, SystemTime::now()) {
                Reading::Renewed(at) => return Ok(at),
                Reading::Other(holder) => return Err(Lost::Holder(holder)),
                Reading::Unknown => {}
            },
            Ok(Err(e)) => tracing::debug!(error = %e, "cannot read the Lease back"),
            Err(_) => continue,
        }
        tokio::time::sleep(timing.check_every().min(left)).await;
    }
}

/// Follows the Lease while this replica leads; returns as soon as it must step down: the renew deadline passed
/// since the last renewal found in the Lease (`last_renew` to begin with), or the Lease names another holder.
/// The deadline is kept by a local timer: a read that hangs, or an API server that cannot be reached, cannot hold
/// it up.
pub async fn keep(
    leases: &Api<Lease>,
    name: &str,
    identity: &str,
    timing: &Timing,
    mut last_renew: SystemTime,
) -> Lost {
    let deadline = timing.renew_deadline();
    loop {
        let Some(left) = time_left(last_renew, SystemTime::now(), deadline) else {
            return Lost::Deadline { last_renew };
        };
        tokio::time::sleep(left.min(timing.check_every())).await;
        let Some(left) = time_left(last_renew, SystemTime::now(), deadline) else {
            return Lost::Deadline { last_renew };
        };
        // A read still unanswered at the deadline cannot save the leadership: it is given up there.
        match tokio::time::timeout(left, leases.get(name)).await {
            Ok(Ok(lease)) => match reading(lease.spec.as_ref(), identity, SystemTime::now()) {
                Reading::Renewed(at) => last_renew = last_renew.max(at),
                Reading::Other(holder) => return Lost::Holder(holder),
                Reading::Unknown => {}
            },
            Ok(Err(e)) => tracing::debug!(error = %e, "cannot read the Lease back"),
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn a_lease_is_free_when_it_names_no_holder() {
        let held = |h: Option<&str>| LeaseSpec {
            holder_identity: h.map(str::to_owned),
            ..LeaseSpec::default()
        };
        assert!(is_free(None));
        assert!(is_free(Some(&held(None))));
        assert!(is_free(Some(&held(Some("")))));
        assert!(!is_free(Some(&held(Some("secretsync-a")))));
    }

    #[test]
    fn the_default_deadline_is_two_thirds_of_the_lease() {
        let t = Timing::new(15, None).unwrap();
        assert_eq!(t.renew_deadline(), S(10));
        assert_eq!(t.renew_every_seconds(), 5);
        assert_eq!(t.manager_grace_seconds(), 10);
        assert_eq!(t.check_every(), S(2));
        assert_eq!(Timing::new(6, None).unwrap().renew_deadline(), S(4));
        assert_eq!(Timing::new(3, None).unwrap().renew_deadline(), S(2));
    }

    #[test]
    fn a_deadline_not_shorter_than_the_lease_is_refused() {
        assert!(Timing::new(15, Some(15)).is_err());
        assert!(Timing::new(15, Some(16)).is_err());
        assert!(Timing::new(15, Some(14)).is_ok());
        // Too short to renew twice per deadline in whole seconds.
        assert!(Timing::new(15, Some(1)).is_err());
        assert!(Timing::new(15, Some(0)).is_err());
        assert!(Timing::new(2, None).is_err());
        assert!(Timing::new(0, None).is_err());
        assert!(Timing::new(1 << 40, None).is_err());
    }

    #[test]
    fn every_accepted_timing_renews_twice_per_deadline_and_stops_before_the_lease() {
        for lease in 0..200 {
            for deadline in (0..=lease + 1).map(Some).chain([None]) {
                let Ok(t) = Timing::new(lease, deadline) else {
                    continue;
                };
                let grace = t.manager_grace_seconds();
                // What kube-lease-manager requires (it panics otherwise).
                assert!(grace > 0 && grace < t.lease_seconds(), "{t:?}");
                // Renewed at least twice per deadline, the deadline shorter than the lease.
                assert!(t.renew_every_seconds() >= 1, "{t:?}");
                assert!(
                    2 * t.renew_every_seconds() <= t.renew_deadline().as_secs(),
                    "{t:?}"
                );
                assert!(t.renew_deadline() < t.lease(), "{t:?}");
                // A renewal is read back before the next one is due.
                assert!(t.check_every() < S(t.renew_every_seconds()), "{t:?}");
                assert!(t.shutdown_grace(S(20)) < t.lease(), "{t:?}");
                assert!(t.shutdown_grace(S(20)) <= S(20), "{t:?}");
            }
        }
    }

    #[test]
    fn a_leader_steps_down_at_the_renew_deadline() {
        let renewed = SystemTime::UNIX_EPOCH + S(1_000_000);
        let deadline = S(10);
        assert!(still_leader(renewed, renewed, deadline));
        assert!(still_leader(renewed, renewed + S(9), deadline));
        assert!(still_leader(
            renewed,
            renewed + S(10) - Duration::from_millis(1),
            deadline
        ));
        assert!(!still_leader(renewed, renewed + S(10), deadline));
        assert!(!still_leader(renewed, renewed + S(3600), deadline));
        assert_eq!(time_left(renewed, renewed + S(4), deadline), Some(S(6)));
        // The clock went back: how long since the renewal is unknown.
        assert!(!still_leader(renewed, renewed - S(1), deadline));
    }

    fn spec(holder: Option<&str>, renewed: Option<SystemTime>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            renew_time: renewed
                .map(|t| MicroTime(k8s_openapi::jiff::Timestamp::try_from(t).unwrap())),
            lease_duration_seconds: Some(15),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_reading_counts_only_this_replicas_renewals() {
        let now = SystemTime::UNIX_EPOCH + S(1_000_000);
        let before = now - S(3);
        assert_eq!(
            reading(Some(&spec(Some("a"), Some(before))), "a", now),
            Reading::Renewed(before)
        );
        // A renewal time ahead of this clock is not trusted past now.
        assert_eq!(
            reading(Some(&spec(Some("a"), Some(now + S(60)))), "a", now),
            Reading::Renewed(now)
        );
        assert_eq!(
            reading(Some(&spec(Some("b"), Some(before))), "a", now),
            Reading::Other(Some("b".into()))
        );
        assert_eq!(
            reading(Some(&spec(None, None)), "a", now),
            Reading::Other(None)
        );
        assert_eq!(reading(None, "a", now), Reading::Other(None));
        assert_eq!(
            reading(Some(&spec(Some("a"), None)), "a", now),
            Reading::Unknown
        );
    }
}
