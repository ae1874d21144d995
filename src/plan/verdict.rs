//! What a plan says about the store, for `spec.mode: Observe` (whether the store matches the source, and what
//! `Sync` would do) and for `Sync` (whether a refresh found the store changed behind SecretSync's back).
//!
//! Pure, like the planner it reads: the controller only shows the result.

use super::{Desired, Observed, Plan, Refusal};

/// How the store stands against the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drift {
    /// The store holds the source's value and metadata, under SecretSync's marker.
    Matches,
    /// `updatePolicy: IfNotExists` keeps the secret that is there, whatever it holds.
    KeptByPolicy,
    /// No remote secret of that name.
    Missing,
    /// The remote value is not the source's.
    ValueDiffers,
    /// The value matches; metadata (content type, description, labels) does not.
    MetadataDiffers,
    /// The remote secret is not SecretSync's (unmarked, or another SecretSync's) and its value is not known to differ.
    NotOwned,
    /// The store reports the secret as still being created.
    StoreCreating,
    /// The store reports the secret as failed.
    StoreFailed,
}

impl Drift {
    /// The `InSync` condition's status: `True`, `False`, or `Unknown` while the store itself is unsettled.
    pub fn status(self) -> &'static str {
        match self {
            Drift::Matches | Drift::KeptByPolicy => "True",
            Drift::StoreCreating | Drift::StoreFailed => "Unknown",
            _ => "False",
        }
    }

    /// The `InSync` condition's reason.
    pub fn reason(self) -> &'static str {
        match self {
            Drift::Matches => "Matches",
            Drift::KeptByPolicy => "KeptByPolicy",
            Drift::Missing => "Missing",
            Drift::ValueDiffers => "ValueDiffers",
            Drift::MetadataDiffers => "MetadataDiffers",
            Drift::NotOwned => "NotOwned",
            Drift::StoreCreating => "StoreCreating",
            Drift::StoreFailed => "StoreFailed",
        }
    }
}

/// What `Sync` would do to the remote secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    None,
    Create,
    Update,
    UpdateMetadata,
    Adopt,
    Conflict,
}

/// The store's standing and what `Sync` would do about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub drift: Drift,
    pub action: Action,
}

/// Reads a plan the planner made from `desired` and `observed`.
pub fn verdict(desired: &Desired, observed: &Observed, plan: &Plan) -> Verdict {
    let v = |drift, action| Verdict { drift, action };
    let Observed::Present(remote) = observed else {
        return v(Drift::Missing, Action::Create);
    };
    let ours = desired.owner.owns(remote.owner.as_ref());
    let value_differs = !desired.holds_value(remote.digest.as_deref());
    match plan {
        Plan::InSync => v(Drift::Matches, Action::None),
        Plan::KeepExisting => v(Drift::KeptByPolicy, Action::None),
        Plan::WaitForBackend => v(Drift::StoreCreating, Action::None),
        Plan::BackendFailed(_) => v(Drift::StoreFailed, Action::None),
        Plan::Refuse(Refusal::Immutable { .. }) => v(Drift::MetadataDiffers, Action::Conflict),
        Plan::Refuse(_) => v(Drift::NotOwned, Action::Conflict),
        Plan::Create => v(Drift::Missing, Action::Create),
        // Taking a secret over: only a value known to differ is more to say than "not ours".
        _ if !ours && value_differs && remote.digest.is_some() => {
            v(Drift::ValueDiffers, Action::Adopt)
        }
        _ if !ours => v(Drift::NotOwned, Action::Adopt),
        _ if value_differs => v(Drift::ValueDiffers, Action::Update),
        Plan::UpdateMetadata => v(Drift::MetadataDiffers, Action::UpdateMetadata),
        _ => v(Drift::MetadataDiffers, Action::Update),
    }
}

/// Whether a refresh's plan puts right a change made in the store behind SecretSync's back: the last sync wrote
/// this very value for this very spec to this very place (`unchanged_since_sync`), and the store no longer matches.
/// A write for any other cause (a new value, a spec edit, a moved target, a first sync) is not drift.
pub fn repairs_drift(unchanged_since_sync: bool, plan: &Plan) -> bool {
    unchanged_since_sync && plan.writes()
}
