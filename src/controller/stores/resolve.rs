//! Which store a SecretSync may use and what its request to that store looks like: pure decisions from the
//! SecretSync, the store it names (as read) and its namespace's labels. The I/O around them is in `reconcile`.
//!
//! Everything that decides where bytes and credentials go is taken from the store (or, only where the operator
//! allows inline targets, from the SecretSync); the SecretSync adds what shapes one remote secret.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Selector, SelectorExt};

use crate::api::{
    ClusterStoreSpec, DialectKind, RateLimit, StoreKind, StoreRef, StoreSpec, Target,
};
use crate::dialects::kit::store_id::StoreId;

/// Why a SecretSync may not use the store it names. Messages name stores and namespaces, never credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{} {name:?} does not exist{where_}", kind.as_str())]
    StoreNotFound {
        kind: StoreKind,
        name: String,
        where_: String,
    },
    #[error("{0}")]
    StoreNotAllowed(String),
    #[error("{0}")]
    SourceNotAllowed(String),
    #[error(
        "spec.target names a dialect inline, and this controller does not allow inline targets (it runs without --allow-inline-targets): set spec.target.storeRef to a Store or ClusterStore instead"
    )]
    InlineTargetNotAllowed,
    #[error("{0}")]
    InvalidSpec(String),
    /// A namespaced Store names a host or socket outside the operator's limits (`--namespaced-store-hosts`).
    #[error("{0}")]
    EndpointNotAllowed(String),
    /// The API server refused the TokenRequest for the store's ServiceAccount: its namespace has not granted it.
    #[error("{0}")]
    TokenNotGranted(String),
}

impl Refusal {
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::StoreNotFound { .. } => "StoreNotFound",
            Refusal::StoreNotAllowed(_) => "StoreNotAllowed",
            Refusal::SourceNotAllowed(_) => "SourceNotAllowed",
            Refusal::InlineTargetNotAllowed => "InlineTargetNotAllowed",
            Refusal::InvalidSpec(_) => "InvalidSpec",
            // On the SecretSync; the Store itself reads `EndpointNotAllowed` (see `store_reason`).
            Refusal::EndpointNotAllowed(_) => "StoreNotAllowed",
            Refusal::TokenNotGranted(_) => "TokenNotGranted",
        }
    }

    /// The reason on the refused store's own `Ready` condition.
    pub fn store_reason(&self) -> &'static str {
        match self {
            Refusal::EndpointNotAllowed(_) => "EndpointNotAllowed",
            other => other.reason(),
        }
    }
}

/// A store as read from the API server.
pub enum StoreObject<'a> {
    Namespaced(&'a StoreSpec),
    Cluster(&'a ClusterStoreSpec),
}

/// The namespace a SecretSync lives in, as far as admission needs it.
pub struct Namespace<'a> {
    pub name: &'a str,
    /// `None` when not read (only a `namespaceSelector` needs the labels).
    pub labels: Option<&'a BTreeMap<String, String>>,
}

/// Where a SecretSync's requests go and with which credentials.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    /// The store used; `None` for an inline target.
    pub store: Option<StoreRef>,
    pub dialect: DialectKind,
    /// The SecretSync's target with the store's settings filled in: what the dialect is given.
    pub target: Target,
    /// `(namespace, name)` of the credentials Secret.
    pub credentials: Option<(String, String)>,
    /// Replaces a `ca.crt` key of the credentials.
    pub ca_bundle: Option<String>,
    /// `(namespace, name, audience)` of the ServiceAccount whose token is exchanged (workload identity).
    pub service_account: Option<(String, String, Option<String>)>,
    /// Whether the credentials may ask for the controller's own identity (`workloadIdentity: "true"`): only a
    /// ClusterStore (set up by a cluster admin) or an inline target (the operator allowed them) may.
    pub may_use_controller_identity: bool,
    pub rate_limit: Option<RateLimit>,
    pub source_selector: Option<LabelSelector>,
    /// What a SecretSync's `adoptExisting` may take over through this store.
    pub adoption: crate::plan::Adoption,
    /// How the store names remote secrets (its `remoteNameTemplate` or the default for its kind); `None` for an
    /// inline target, which names its remote secret itself.
    pub remote_name_template: Option<String>,
}

/// A ClusterStore's default: tenants sharing it cannot meet on one remote name by choosing the same one.
pub const CLUSTER_STORE_NAME_TEMPLATE: &str = "{namespace}-{remoteName}";
/// A Store's default: its namespace is its only tenant.
pub const STORE_NAME_TEMPLATE: &str = "{remoteName}";

impl Connection {
    /// The remote secret's name for the SecretSync `name` in `namespace`: the store's template applied to it.
    pub fn remote_name(&self, namespace: &str, name: &str) -> Result<String, Refusal> {
        self.remote_name_for(namespace, name, self.target.remote_name(name))
    }

    /// The store's name for `remote`, one of the remote secrets of SecretSync `name` (its template applied).
    pub fn remote_name_for(
        &self,
        namespace: &str,
        name: &str,
        remote: &str,
    ) -> Result<String, Refusal> {
        match &self.remote_name_template {
            None => Ok(remote.to_owned()),
            Some(template) => render_name(template, namespace, name, remote),
        }
    }

    /// The store a call for a SecretSync of `namespace` goes through (its check: the Store's own namespace, or
    /// none for a ClusterStore's), for the dialect's trust and pacing; `None` for an inline target.
    pub fn store_id(&self, namespace: &str) -> Option<StoreId> {
        self.store
            .as_ref()
            .map(|s| StoreId::new(s.kind, &s.name, namespace))
    }

    /// The template, when it is more than the remote name as written (for messages about a name it made).
    pub fn name_template(&self) -> Option<&str> {
        self.remote_name_template
            .as_deref()
            .filter(|t| *t != STORE_NAME_TEMPLATE)
    }
}

/// Fills in `{namespace}`, `{name}` and `{remoteName}`. Text between placeholders is kept as written; any other
/// brace is refused (the CRD refuses it at apply time too).
pub fn render_name(
    template: &str,
    namespace: &str,
    name: &str,
    remote_name: &str,
) -> Result<String, Refusal> {
    let invalid = || {
        Refusal::InvalidSpec(format!(
            "the store's remoteNameTemplate {template:?} may hold only the placeholders {{namespace}}, {{name}} and \
             {{remoteName}}, and must hold {{name}} or {{remoteName}}"
        ))
    };
    let mut out = String::with_capacity(template.len() + remote_name.len() + namespace.len());
    let mut rest = template;
    let mut named = false;
    while let Some(open) = rest.find(['{', '}']) {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let (value, len) = if after.starts_with("{namespace}") {
            (namespace, "{namespace}".len())
        } else if after.starts_with("{name}") {
            named = true;
            (name, "{name}".len())
        } else if after.starts_with("{remoteName}") {
            named = true;
            (remote_name, "{remoteName}".len())
        } else {
            return Err(invalid());
        };
        out.push_str(value);
        rest = &after[len..];
    }
    out.push_str(rest);
    if named { Ok(out) } else { Err(invalid()) }
}

/// Whether a namespace needs its labels read to decide on `store` (only a `namespaceSelector` does).
pub fn needs_namespace_labels(store: &ClusterStoreSpec) -> bool {
    store
        .conditions
        .iter()
        .any(|c| c.namespace_selector.is_some())
}

/// Resolves a SecretSync's target. `store` is what `target.storeRef` names, `None` if it does not exist.
pub fn resolve(
    target: &Target,
    namespace: &Namespace<'_>,
    store: Option<StoreObject<'_>>,
    allow_inline: bool,
) -> Result<Connection, Refusal> {
    let Some(store_ref) = &target.store_ref else {
        return inline(target, namespace, allow_inline);
    };
    let not_found = || Refusal::StoreNotFound {
        kind: store_ref.kind,
        name: store_ref.name.clone(),
        where_: match store_ref.kind {
            StoreKind::Store => format!(" in namespace {:?}", namespace.name),
            StoreKind::ClusterStore => String::new(),
        },
    };
    let spec = match (store_ref.kind, store) {
        (StoreKind::Store, Some(StoreObject::Namespaced(spec))) => spec,
        (StoreKind::ClusterStore, Some(StoreObject::Cluster(cluster))) => {
            admit(cluster, store_ref, namespace)?;
            &cluster.store
        }
        _ => return Err(not_found()),
    };
    through_store(target, store_ref, spec, namespace.name)
}

/// The connection of a store for its own periodic check: no SecretSync, so no admission and no per-secret shape.
pub fn for_store_check(
    store_ref: &StoreRef,
    spec: &StoreSpec,
    store_namespace: &str,
) -> Result<Connection, Refusal> {
    let target = Target {
        store_ref: Some(store_ref.clone()),
        dialect: None,
        endpoint: None,
        remote_name: None,
        credentials_ref: None,
        content_type: None,
        description: None,
        labels: BTreeMap::new(),
        azure_key_vault: None,
        service_fabric_mesh: None,
        barbican: None,
        docker_swarm: None,
        tencent_ssm: None,
        aws_secrets_manager: None,
        vault: None,
    };
    through_store(&target, store_ref, spec, store_namespace)
}

/// `store_ns`: the namespace of a `Store` (a ClusterStore's references name their own).
fn through_store(
    target: &Target,
    store_ref: &StoreRef,
    spec: &StoreSpec,
    store_ns: &str,
) -> Result<Connection, Refusal> {
    let cluster = store_ref.kind == StoreKind::ClusterStore;
    // A Store's references stay in its own namespace whatever they say (the CRD refuses a namespace there too).
    let in_store_ns = |given: &Option<String>| -> Result<String, Refusal> {
        if cluster {
            given.clone().ok_or_else(|| {
                Refusal::InvalidSpec(format!(
                    "ClusterStore {:?} names a Secret or ServiceAccount without its namespace",
                    store_ref.name
                ))
            })
        } else {
            Ok(store_ns.to_owned())
        }
    };
    let credentials = match &spec.credentials_ref {
        Some(r) => Some((in_store_ns(&r.namespace)?, r.name.clone())),
        None => None,
    };
    let service_account = match &spec.service_account_ref {
        Some(r) => Some((
            in_store_ns(&r.namespace)?,
            r.name.clone(),
            r.audience.clone(),
        )),
        None => None,
    };
    Ok(Connection {
        store: Some(store_ref.clone()),
        dialect: spec.dialect,
        target: spec
            .target_for(target)
            .map_err(|e| Refusal::InvalidSpec(e.to_string()))?,
        credentials,
        ca_bundle: spec.ca_bundle.clone(),
        service_account,
        may_use_controller_identity: cluster,
        rate_limit: spec.rate_limit,
        source_selector: spec.source_selector.clone(),
        adoption: spec.adoption.into(),
        remote_name_template: Some(spec.remote_name_template.clone().unwrap_or_else(|| {
            if cluster {
                CLUSTER_STORE_NAME_TEMPLATE
            } else {
                STORE_NAME_TEMPLATE
            }
            .to_owned()
        })),
    })
}

fn inline(
    target: &Target,
    namespace: &Namespace<'_>,
    allow_inline: bool,
) -> Result<Connection, Refusal> {
    if !allow_inline {
        return Err(Refusal::InlineTargetNotAllowed);
    }
    let dialect = target.dialect.ok_or_else(|| {
        Refusal::InvalidSpec("spec.target needs storeRef (or, inline, a dialect)".into())
    })?;
    let mut target = target.clone();
    // Single-tenant by the operator's choice: the SecretSync's own `purge` decides, as before stores existed.
    if let Some(akv) = target.azure_key_vault.as_mut() {
        akv.allow_purge = true;
    }
    Ok(Connection {
        store: None,
        dialect,
        credentials: target
            .credentials_ref
            .clone()
            .map(|c| (namespace.name.to_owned(), c.name)),
        target,
        ca_bundle: None,
        service_account: None,
        may_use_controller_identity: true,
        rate_limit: None,
        source_selector: None,
        // Inline targets exist only where the operator allowed them (single-tenant clusters): the SecretSync's
        // own adoptExisting decides, as it did before stores decided.
        adoption: crate::plan::Adoption::UnmarkedOrOrphaned,
        remote_name_template: None,
    })
}

/// Whether a ClusterStore admits the namespace: no conditions admit all; otherwise any term listing the namespace
/// or whose selector matches its labels.
fn admit(
    store: &ClusterStoreSpec,
    store_ref: &StoreRef,
    namespace: &Namespace<'_>,
) -> Result<(), Refusal> {
    if store.conditions.is_empty() {
        return Ok(());
    }
    let empty = BTreeMap::new();
    for term in &store.conditions {
        if term.namespaces.iter().any(|n| n == namespace.name) {
            return Ok(());
        }
        if let Some(selector) = &term.namespace_selector
            && matches(selector, namespace.labels.unwrap_or(&empty)).map_err(|e| {
                Refusal::StoreNotAllowed(format!(
                    "ClusterStore {:?} has an invalid namespaceSelector ({e}); it admits no namespace through it",
                    store_ref.name
                ))
            })?
        {
            return Ok(());
        }
    }
    Err(Refusal::StoreNotAllowed(format!(
        "ClusterStore {:?} does not admit namespace {:?} (see its spec.conditions); nothing was sent",
        store_ref.name, namespace.name
    )))
}

/// Whether the source Secret's labels match the store's `sourceSelector` (no selector: any Secret).
pub fn source_allowed(
    connection: &Connection,
    secret: &str,
    labels: &BTreeMap<String, String>,
) -> Result<(), Refusal> {
    let Some(selector) = &connection.source_selector else {
        return Ok(());
    };
    let store = store_name(connection);
    match matches(selector, labels) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Refusal::SourceNotAllowed(format!(
            "{store} pushes only Secrets whose labels match its sourceSelector, and Secret {secret:?} does not; nothing was sent"
        ))),
        Err(e) => Err(Refusal::SourceNotAllowed(format!(
            "{store} has an invalid sourceSelector ({e}); nothing is pushed through it"
        ))),
    }
}

/// `Store "name"` / `ClusterStore "name"` / `the inline target`, for messages.
pub fn store_name(connection: &Connection) -> String {
    match &connection.store {
        Some(r) => format!("{} {:?}", r.kind.as_str(), r.name),
        None => "the inline target".to_owned(),
    }
}

fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> Result<bool, String> {
    let selector = Selector::try_from(selector.clone()).map_err(|e| e.to_string())?;
    Ok(selector.matches(labels))
}

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;
