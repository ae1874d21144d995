//! The planner: from the desired state and the observed remote state to one action.
//!
//! Everything here is pure (no Kubernetes, no HTTP, no dialect) so that every decision SecretSync takes can be
//! read and tested in isolation. Dialects describe what their store can change through [`Capabilities`]; the
//! controller fills in facts it learned from Kubernetes (such as whether a marked owner still exists).

pub mod detail;
pub mod digest;
pub mod entries;
pub mod moved;
pub mod shape;
pub mod template;
pub mod verdict;

pub use detail::Detail;

use std::collections::BTreeMap;

/// The SecretSync that owns (or wants to own) a remote secret.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Owner {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// Where that namespace lives: the cluster and the namespace's own uid. Empty on a marker written before
    /// SecretSync recorded them.
    pub scope: Scope,
}

/// The cluster (`--cluster-id`, by default the uid of `kube-system`) and the namespace uid of an owner. A name
/// alone is not an identity: a namespace deleted and created again, or a second cluster writing to the same vault,
/// has the same names and none of the same uids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    pub cluster: String,
    pub namespace_uid: String,
}

impl Scope {
    /// `cluster/namespace-uid`, as written into markers; empty when unknown.
    pub fn key(&self) -> String {
        if self.is_empty() {
            String::new()
        } else {
            format!("{}/{}", self.cluster, self.namespace_uid)
        }
    }

    /// Parses [`Scope::key`]; anything else is an unknown scope (a marker from before scopes).
    pub fn parse(key: &str) -> Scope {
        match key.split_once('/') {
            Some((cluster, ns)) if !cluster.is_empty() && !ns.is_empty() && !ns.contains('/') => {
                Scope {
                    cluster: cluster.to_owned(),
                    namespace_uid: ns.to_owned(),
                }
            }
            _ => Scope::default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.cluster.is_empty() || self.namespace_uid.is_empty()
    }
}

impl Owner {
    /// `namespace/name`, as written into remote ownership markers.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Whether a remote secret marked with `marked` is this SecretSync's. The one "is ours" decision: the
    /// planner's and every dialect's.
    ///
    /// A marker with a scope matches when the cluster and the namespace uid are ours and so is the object (the
    /// same uid, or the same name: an earlier object of that name in this very namespace, which cannot exist
    /// alongside this one). A marker from before scopes matches the object whose uid it names only: uids are never
    /// reused, so such a secret can never pass to a newcomer of the same name (a namespace created again, another
    /// cluster); it becomes the newcomer's only through the store's `adoption`. An empty uid matches nothing.
    pub fn owns(&self, marked: Option<&Owner>) -> bool {
        let Some(m) = marked else {
            return false;
        };
        let same_object = !self.uid.is_empty() && m.uid == self.uid;
        if m.scope.is_empty() {
            return same_object;
        }
        m.scope == self.scope && (same_object || m.key() == self.key())
    }

    /// Parses a `namespace/name` marker with its uid and scope key ([`Scope::key`]).
    pub fn parse_key(key: &str, uid: &str, scope: &str) -> Option<Owner> {
        let (namespace, name) = key.split_once('/')?;
        (!namespace.is_empty() && !name.is_empty()).then(|| Owner {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            uid: uid.to_owned(),
            scope: Scope::parse(scope),
        })
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Metadata the user asked for (or the store holds) next to the value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    pub content_type: Option<String>,
    pub description: Option<String>,
    /// User labels/tags only; ownership and digest markers are the dialect's business.
    pub labels: BTreeMap<String, String>,
}

/// Whether a store keeps a metadata field, and whether it can change after creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// The store has no such field; it is never compared.
    Unsupported,
    /// Written at create and updatable in place.
    Mutable,
    /// Written at create; changing it needs a new remote secret.
    Immutable,
    /// Written with each new value only (for example Barbican, where any change means a new secret).
    WithValue,
}

/// What a dialect's store can change, declared by the dialect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    pub content_type: Support,
    pub description: Support,
    pub labels: Support,
}

/// How source changes reach an existing remote secret.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WritePolicy {
    #[default]
    Replace,
    IfNotExists,
}

/// What the remote secret should be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// Keyed digest of the source value under its namespace's key ([`digest::DigestKey::for_namespace`]).
    pub digest: String,
    /// The same value's digest under the controller-wide key, as SecretSync wrote digests before keys were per
    /// namespace: a remote secret holding it holds this value, so the upgrade rewrites nothing. The next write
    /// records [`Desired::digest`].
    pub earlier_digest: Option<String>,
    pub metadata: Metadata,
    pub owner: Owner,
    pub policy: WritePolicy,
    /// The SecretSync asks to take over a remote secret that is unmarked or whose marked owner no longer exists.
    pub adopt_existing: bool,
    /// What the store's admin lets such a request take (the store decides, not the tenant).
    pub adoption: Adoption,
    /// Delete and re-create the remote secret when an immutable field must change.
    pub allow_replace: bool,
}

impl Desired {
    /// Whether a remote digest is this value's (under the namespace's key, or the controller-wide one of before).
    pub fn holds_value(&self, remote_digest: Option<&str>) -> bool {
        remote_digest.is_some_and(|d| d == self.digest || self.earlier_digest.as_deref() == Some(d))
    }
}

/// Which remote secrets a store lets a SecretSync with `adoptExisting` take over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Adoption {
    /// None: a secret SecretSync did not write here is a conflict.
    #[default]
    Never,
    /// Secrets without an ownership marker (written outside SecretSync).
    Unmarked,
    /// Those, and secrets whose marked SecretSync no longer exists.
    UnmarkedOrOrphaned,
}

/// The store's own view of a remote secret's life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteState {
    Ready,
    /// The store is still creating it (Service Fabric's `Creating`, or a 202 not yet settled).
    Creating,
    /// The store reports it failed; the text is the dialect's own words for the store's state (never the store's
    /// free text: it is shown in conditions, Events and logs).
    Failed(String),
}

/// A remote secret as a dialect observed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote {
    /// Identity in the store, recorded in the status.
    pub reference: RemoteRef,
    /// The SecretSync named by the remote ownership marker; `None` when unmarked.
    pub owner: Option<Owner>,
    /// Whether that marked owner still exists in the cluster. Filled in by the controller; dialects leave it
    /// `true`, which is the safe assumption (it yields a conflict, never an overwrite).
    pub owner_exists: bool,
    /// Digest of the remote value, from a marker or computed from a read-back; `None` when unknown.
    pub digest: Option<String>,
    pub metadata: Metadata,
    pub state: RemoteState,
    /// What else `observe` read that its dialect's `apply` needs (earlier versions, same-named secrets), so
    /// that nothing is read twice; the planner ignores it.
    pub detail: Detail,
}

/// Where a remote secret lives in its store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoteRef {
    pub name: String,
    pub id: Option<String>,
    pub version: Option<String>,
}

/// The remote state found by `Dialect::observe`.
// One value lives per reconcile and is moved, never stored in bulk: boxing `Remote` would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    Absent,
    Present(Remote),
}

/// Why SecretSync will not write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A remote secret of that name exists without SecretSync's marker.
    NotOwned,
    /// Another SecretSync owns it.
    OwnedByOther { owner: Owner, owner_exists: bool },
    /// The named field is immutable in the store and replacement is not allowed.
    Immutable { field: &'static str },
    /// The SecretSync asked to adopt a secret the store's `adoption` does not let it take.
    AdoptionNotAllowed,
}

/// The one action a reconcile takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// The remote secret matches: write nothing.
    InSync,
    /// `IfNotExists` and a remote secret exists: leave it.
    KeepExisting,
    /// The store is still creating the secret: poll again later.
    WaitForBackend,
    /// No remote secret: create it with the value and metadata.
    Create,
    /// The value differs: write a new value (and the metadata with it).
    NewVersion,
    /// Only metadata differs: update it in place, no new value.
    UpdateMetadata,
    /// An immutable field differs and replacement is allowed: delete, then create.
    Replace { field: &'static str },
    /// Do nothing and report why.
    Refuse(Refusal),
    /// The store reports the secret as failed: report it, try again later.
    BackendFailed(String),
}

impl Plan {
    /// Whether carrying out this plan writes to the store.
    pub fn writes(&self) -> bool {
        self.write().is_some()
    }

    /// The write this plan asks a dialect for; `None` when it writes nothing. Dialects receive only these.
    pub fn write(&self) -> Option<Write> {
        match self {
            Plan::Create => Some(Write::Create),
            Plan::NewVersion => Some(Write::NewVersion),
            Plan::UpdateMetadata => Some(Write::UpdateMetadata),
            Plan::Replace { field } => Some(Write::Replace { field }),
            _ => None,
        }
    }
}

/// A plan that writes: what a dialect's `apply` carries out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// No remote secret: create it with the value and metadata.
    Create,
    /// Write a new value (and the metadata with it).
    NewVersion,
    /// Update metadata in place; the value stays.
    UpdateMetadata,
    /// An immutable field differs and the dialect allows replacing: delete, then create. Only dialects whose
    /// `allows_replace` says so are asked for it.
    Replace { field: &'static str },
}

/// Decides what to do for one SecretSync.
pub fn decide(desired: &Desired, observed: &Observed, caps: Capabilities) -> Plan {
    let remote = match observed {
        Observed::Absent => return Plan::Create,
        Observed::Present(remote) => remote,
    };

    // Ownership before policy: under `IfNotExists` a secret someone else put there first (a tenant squatting the
    // name in a shared store) is a conflict, not a value to report Ready over.
    if let Some(refusal) = ownership(desired, remote) {
        return Plan::Refuse(refusal);
    }

    if desired.policy == WritePolicy::IfNotExists {
        return Plan::KeepExisting;
    }

    match &remote.state {
        RemoteState::Creating => return Plan::WaitForBackend,
        RemoteState::Failed(detail) => return Plan::BackendFailed(detail.clone()),
        RemoteState::Ready => {}
    }

    if let Some(field) = immutable_change(&desired.metadata, &remote.metadata, caps) {
        return if desired.allow_replace {
            Plan::Replace { field }
        } else {
            Plan::Refuse(Refusal::Immutable { field })
        };
    }

    let value_differs = !desired.holds_value(remote.digest.as_deref());
    // Unowned secrets being adopted must get SecretSync's marker even if everything else matches.
    let adopting = !is_ours(desired, remote);
    if value_differs || (adopting && !metadata_writable(caps)) {
        return Plan::NewVersion;
    }
    if adopting || mutable_change(&desired.metadata, &remote.metadata, caps) {
        return Plan::UpdateMetadata;
    }
    if with_value_change(&desired.metadata, &remote.metadata, caps) {
        return Plan::NewVersion;
    }
    Plan::InSync
}

/// Whether the planner would take `remote` over for `desired`: it is not ours, and the SecretSync and the store's
/// `adoption` let it be taken.
pub fn adopts(desired: &Desired, remote: &Remote) -> bool {
    !is_ours(desired, remote) && ownership(desired, remote).is_none()
}

/// Whether the remote secret carries this SecretSync's marker (or that of an earlier object of the same
/// namespace and name, which cannot exist alongside it).
fn is_ours(desired: &Desired, remote: &Remote) -> bool {
    desired.owner.owns(remote.owner.as_ref())
}

fn ownership(desired: &Desired, remote: &Remote) -> Option<Refusal> {
    if is_ours(desired, remote) {
        return None;
    }
    let may = |allowed: bool| (!allowed).then_some(Refusal::AdoptionNotAllowed);
    match &remote.owner {
        None if desired.adopt_existing => may(desired.adoption != Adoption::Never),
        None => Some(Refusal::NotOwned),
        Some(_) if !remote.owner_exists && desired.adopt_existing => {
            may(desired.adoption == Adoption::UnmarkedOrOrphaned)
        }
        Some(other) => Some(Refusal::OwnedByOther {
            owner: other.clone(),
            owner_exists: remote.owner_exists,
        }),
    }
}

fn fields<'a>(
    want: &'a Metadata,
    have: &'a Metadata,
    caps: Capabilities,
) -> [(&'static str, Support, bool); 3] {
    [
        (
            "contentType",
            caps.content_type,
            want.content_type != have.content_type,
        ),
        (
            "description",
            caps.description,
            want.description != have.description,
        ),
        ("labels", caps.labels, want.labels != have.labels),
    ]
}

fn immutable_change(want: &Metadata, have: &Metadata, caps: Capabilities) -> Option<&'static str> {
    fields(want, have, caps)
        .into_iter()
        .find(|(_, s, differs)| *s == Support::Immutable && *differs)
        .map(|(name, _, _)| name)
}

fn mutable_change(want: &Metadata, have: &Metadata, caps: Capabilities) -> bool {
    fields(want, have, caps)
        .into_iter()
        .any(|(_, s, differs)| s == Support::Mutable && differs)
}

fn with_value_change(want: &Metadata, have: &Metadata, caps: Capabilities) -> bool {
    fields(want, have, caps)
        .into_iter()
        .any(|(_, s, differs)| s == Support::WithValue && differs)
}

/// Whether the ownership marker can be written without a new value.
fn metadata_writable(caps: Capabilities) -> bool {
    caps.labels == Support::Mutable
}

/// What to do when a SecretSync with `deletionPolicy: Delete` goes away.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeletePlan {
    /// Delete the remote secret.
    Delete,
    /// Nothing to delete: it is already gone.
    AlreadyGone,
    /// It exists but is not ours: leave it and let the SecretSync go.
    LeaveForeign,
}

/// Decides what a deletion does to the remote secret.
pub fn decide_delete(owner: &Owner, observed: &Observed) -> DeletePlan {
    match observed {
        Observed::Absent => DeletePlan::AlreadyGone,
        Observed::Present(remote) => {
            if owner.owns(remote.owner.as_ref()) {
                DeletePlan::Delete
            } else {
                DeletePlan::LeaveForeign
            }
        }
    }
}

#[cfg(test)]
mod tests;
