//! Step 5, plan: the planner's decision on what was read and observed, and what it means (drift, the verdict
//! `Observe` shows). Pure.

use super::dereference::Dereferenced;
use super::observation;
use crate::api::SecretSync;
use crate::plan::verdict::{self, Verdict};
use crate::plan::{self, Observed, Plan, RemoteRef};

/// What this reconcile decided.
#[derive(Debug)]
pub struct Decision {
    pub plan: Plan,
    /// How the store stands against the source, and what `Sync` does about it.
    pub verdict: Verdict,
    /// Writing puts right a change made in the store since the last sync (not a new value, spec or place).
    pub repairs_drift: bool,
    /// The remote secret as observed, if any.
    pub observed: Option<RemoteRef>,
}

pub fn decide(obj: &SecretSync, read: &Dereferenced, observed: &Observed) -> Decision {
    let unchanged = observation::unchanged_since_sync(obj, &read.desired.digest, &read.placement);
    decide_with(read, observed, unchanged)
}

/// The decision, given whether the source and spec are unchanged since the store was last confirmed in step (so
/// a write repairs drift).
pub fn decide_with(read: &Dereferenced, observed: &Observed, unchanged: bool) -> Decision {
    let caps = read.dialect.capabilities(&read.connection.target);
    let plan = plan::decide(&read.desired, observed, caps);
    let verdict = verdict::verdict(&read.desired, observed, &plan);
    Decision {
        repairs_drift: verdict::repairs_drift(unchanged, &plan),
        verdict,
        observed: match observed {
            Observed::Present(r) => Some(r.reference.clone()),
            Observed::Absent => None,
        },
        plan,
    }
}
