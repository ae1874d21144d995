//! Azure Key Vault secrets over the vault's REST data plane, through the kit's transport. What users set and see
//! (settings, credentials, naming, tags, soft delete, requests, errors) is in `docs/src/dialects/azure-key-vault.md`;
//! this is how it is built.
//!
//! # Why compare first
//!
//! Every Set Secret (`PUT`) makes a new version, so nothing is written before the current version's tags are
//! compared: a digest tag equal to the desired one writes nothing, a metadata change alone is a `PATCH` of that
//! version (no new version). A version someone else wrote over ours carries none of our tags; `observe` then scans
//! the versions (at most `MAX_VERSION_PAGES` pages) for our marker, so the secret stays ours and is written over
//! instead of becoming an unmarked secret to adopt. A current version other than the one the status recorded is
//! treated the same way, whatever its tags claim: tags are copied with a version by anyone who can write.
//!
//! # Soft delete
//!
//! Only a soft-deleted secret whose marker is this SecretSync's is recovered or purged, whatever `adoptExisting`
//! says: in a shared vault a tenant could otherwise bring back, or destroy for good, what another team deleted.
//! Recovery completes asynchronously, so it is reported as `Creating` and the next reconcile compares as usual.
//! Purging needs both the SecretSync's `purge` and the store's `allowPurge`.
//!
//! # Tokens and challenges
//!
//! See `auth`: tokens are cached per credentials and store, and a vault's challenge may name a scope only under
//! its own domain.
//!
//! # Why not the Azure SDK for Rust
//!
//! The calls are plain REST through the controller's shared client, rate limiter and metrics, and Entra ID is
//! spoken directly. The official crates (`azure_identity`, `azure_security_keyvault_secrets`) would bring a second
//! HTTP stack and credential model beside the one every other dialect shares, and the controller needs things they
//! do not expose as one piece: a token cache shared across SecretSyncs keyed by credentials Secret, an extra CA from
//! that Secret, the authority host per store, and errors classified for conditions without echoing request bodies.
//!
//! # Retries
//!
//! The kit's transport retries transient failures in place, but only where repeating cannot write twice: a Set
//! Secret that timed out or got a 5xx is not repeated (the next reconcile reads the vault, and the digest tag says
//! whether it landed); reads, the metadata `PATCH`, deletes, purges and recoveries are.

mod auth;
mod wire;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;

use super::kit::ownership::{self, Keys};
use super::kit::session::{Paged, Session};
use super::kit::signin::Renewing;
use super::kit::store_id::namespace_admin_wrote;
use super::kit::tls::{self, ClientCache};
use super::kit::{self, Auth, Exchange, Idempotency, StaticBearer, Transport, code, poll};
use super::{Dialect, DialectError, Outcome, Request, Shared};
use crate::api::{AzureKeyVaultSettings, DialectKind, Target};
use crate::plan::{
    Capabilities, Metadata, Observed, Remote, RemoteRef, RemoteState, Support, Write,
};
use crate::value::{Credentials, SecretValue};

pub use auth::WorkloadEnv;
use auth::{Bearer, Credential, SignIns};
use wire::map_error;
use wire::{Bundle, Code, Page};

const DIALECT: &str = "AzureKeyVault";
/// The current stable data-plane version.
pub const DEFAULT_API_VERSION: &str = "2026-04-01";
/// SecretSync's tags (`secretsync-owner`, `secretsync-owner-uid`, `secretsync-digest`), by the kit's codec.
const TAGS: Keys = Keys::Dashed;
/// Key Vault's limit on a secret value.
pub const MAX_VALUE_BYTES: usize = 25 * 1024;
/// Key Vault allows 15 tags per secret; SecretSync uses 4 (owner, owner uid, owner scope, digest).
pub const MAX_LABELS: usize = 11;
const MAX_TAG_NAME: usize = 512;
const MAX_TAG_VALUE: usize = 256;
const MAX_NAME: usize = 127;
/// How long a delete waits for the secret to appear among the deleted ones before purging it.
const PURGE_WAIT: Duration = Duration::from_secs(30);
/// How long a create waits for a purge to finish before handing back.
const PURGED_WAIT: Duration = Duration::from_secs(10);
/// Pages of versions read when looking for SecretSync's last version of a secret someone else wrote over.
const MAX_VERSION_PAGES: usize = 8;

pub struct AzureKeyVault {
    transport: Transport,
    sign_ins: SignIns,
    /// Clients trusting an extra CA (`ca.crt`) next to the public roots.
    clients: ClientCache,
    workload: WorkloadEnv,
}

impl AzureKeyVault {
    pub fn new(shared: Shared) -> Self {
        Self::with_workload_env(shared, WorkloadEnv::from_process())
    }

    /// A dialect that sees this workload-identity environment instead of the process's.
    pub fn with_workload_env(shared: Shared, workload: WorkloadEnv) -> Self {
        AzureKeyVault {
            clients: ClientCache::new(&shared),
            sign_ins: SignIns::new(shared.clone()),
            transport: Transport::new(DIALECT, shared, wire::decode),
            workload,
        }
    }

    /// Tokens fetched from Entra ID since this dialect was made.
    pub fn tokens_fetched(&self) -> u64 {
        (self.sign_ins.fetched).load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Whether to purge: the SecretSync asks (`purge`) and its store allows it (`allowPurge`); a purge is for good.
fn may_purge(target: &Target) -> bool {
    let s = settings(target);
    s.purge && s.allow_purge
}

fn settings(target: &Target) -> AzureKeyVaultSettings {
    target
        .azure_key_vault
        .as_deref()
        .cloned()
        .unwrap_or_default()
}

/// `^[0-9a-zA-Z-]{1,127}$`, as the Set Secret API requires.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn check_name(name: &str) -> Result<(), DialectError> {
    if valid_name(name) {
        return Ok(());
    }
    Err(DialectError::permanent(
        "InvalidName",
        "Key Vault secret names are 1-127 letters, digits and '-' (set spec.target.remoteName)",
    ))
}

/// The vault base URL (`https://host[:port]`), checked.
fn vault_url(target: &Target) -> Result<url::Url, DialectError> {
    let url = super::kit::endpoint::required(
        target,
        "AzureKeyVault needs the store's endpoint (the vault URL, https://<vault>.vault.azure.net)",
    )?;
    if url.scheme() != "https" || url.host_str().is_none() {
        return Err(DialectError::permanent(
            "InvalidSpec",
            "the store's endpoint must be the vault's https:// URL (Key Vault tokens are never sent over plain \
             HTTP)",
        ));
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return Err(DialectError::permanent(
            "InvalidSpec",
            "the store's endpoint must be the vault URL alone (https://<vault>.vault.azure.net), without a path \
             or query",
        ));
    }
    Ok(url)
}

/// The `api-version` the store asks for (or the default), checked.
fn api_version(s: &AzureKeyVaultSettings) -> Result<String, DialectError> {
    let v = s.api_version.as_deref().unwrap_or(DEFAULT_API_VERSION);
    let valid = v.len() <= 32
        && !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if !valid {
        return Err(DialectError::permanent(
            "InvalidSpec",
            "azureKeyVault.apiVersion must be letters, digits, '.' and '-' (e.g. 2026-04-01 or 7.5)",
        ));
    }
    Ok(v.to_owned())
}

fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), DialectError> {
    if labels.len() > MAX_LABELS {
        return Err(DialectError::permanent(
            "TooManyLabels",
            format!(
                "Key Vault keeps at most 15 tags per secret and SecretSync needs 4: use at most {MAX_LABELS} labels \
                 (spec.target.labels has {})",
                labels.len()
            ),
        ));
    }
    for (k, v) in labels {
        let why = if ownership::is_reserved(k) {
            "keys starting with 'secretsync' are reserved".to_owned()
        } else if k.is_empty() || k.len() > MAX_TAG_NAME || v.len() > MAX_TAG_VALUE {
            format!(
                "Key Vault tag names are 1-{MAX_TAG_NAME} characters and values at most {MAX_TAG_VALUE}"
            )
        } else {
            continue;
        };
        return Err(DialectError::permanent(
            "InvalidLabels",
            format!("label {k:?}: {why}"),
        ));
    }
    Ok(())
}

fn not_text() -> DialectError {
    DialectError::permanent(
        "ValueNotText",
        "Key Vault secret values are text; the source value is not UTF-8 (push a key holding text, or the \
         whole Secret, which base64-encodes binary keys)",
    )
}

/// The version recorded for a remote secret, when it is one Key Vault could have made.
fn reference(name: &str, bundle: &Bundle) -> RemoteRef {
    RemoteRef {
        name: name.to_owned(),
        id: bundle.id.clone(),
        version: bundle.version(),
    }
}

impl AzureKeyVault {
    /// What every call needs and `check` verifies: the vault's URL, the API version and the credential.
    fn settings_of(
        &self,
        req: &Request<'_>,
    ) -> Result<(url::Url, String, Credential), DialectError> {
        let s = settings(req.target);
        let url = vault_url(req.target)?;
        let version = api_version(&s)?;
        let credential =
            auth::auth_from(req.credentials, s.authority_host.as_deref(), &self.workload)?;
        Ok((url, version, credential))
    }

    /// The vault's session. Its CA (`ca.crt`, from the store's `caBundle`) is trusted next to the public roots,
    /// as documented: a vault behind a private CA may get its tokens from public Entra ID.
    fn conn(&self, req: &Request<'_>) -> Result<Session<'_>, DialectError> {
        let (url, api_version, credential) = self.settings_of(req)?;
        let vault_tls = tls::store_ca(req.credentials, &url)?;
        let base = url.as_str().trim_end_matches('/').to_owned();
        let auth: Box<dyn Auth> = match credential {
            Credential::Static(token) => Box::new(StaticBearer(token)),
            Credential::Entra {
                identity,
                authority,
            } => {
                let sign_in = tls::sign_in(self.transport.shared(), req.store.as_ref(), vault_tls);
                let bearer = Bearer {
                    sign_ins: &self.sign_ins,
                    identity,
                    authority,
                    client: self.clients.client(sign_in)?,
                    namespaced: namespace_admin_wrote(req.store.as_ref()),
                    vault: base.clone(),
                    host: url.host_str().unwrap_or_default().to_owned(),
                };
                Box::new(Renewing::new(&self.sign_ins.tokens, bearer))
            }
        };
        Ok(Session {
            transport: &self.transport,
            client: self.clients.client(vault_tls)?,
            base,
            suffix: format!("?api-version={api_version}"),
            rate: req.rate_limit,
            auth,
        })
    }

    /// The versions of a secret (metadata only), newest first, reading at most `MAX_VERSION_PAGES` pages.
    async fn versions(&self, conn: &Session<'_>, name: &str) -> Result<Vec<Bundle>, DialectError> {
        let first = conn.url(&format!("/secrets/{name}/versions")) + "&maxresults=25";
        let mut out = Vec::new();
        let paged = conn.pages("list_versions", first, MAX_VERSION_PAGES, |reply| {
            let page: Page = serde_json::from_slice(&reply.body).map_err(|_| {
                DialectError::retry("BackendError", "Key Vault sent an unreadable version list")
            })?;
            out.extend(page.value);
            Ok(page.next_link)
        });
        if paged.await? == Paged::Absent {
            return Ok(Vec::new());
        }
        out.sort_by_key(|b| {
            std::cmp::Reverse((
                b.attributes.created.unwrap_or(0),
                b.attributes.updated.unwrap_or(0),
            ))
        });
        Ok(out)
    }

    async fn get_deleted(
        &self,
        conn: &Session<'_>,
        name: &str,
    ) -> Result<Option<Bundle>, DialectError> {
        let path = format!("/deletedsecrets/{name}");
        let reply = conn.get("get_deleted", &conn.url(&path)).await?;
        reply.as_ref().map(Bundle::read).transpose()
    }

    /// Purges a deleted secret; one already gone (404) is fine.
    async fn purge(&self, conn: &Session<'_>, name: &str) -> Result<(), DialectError> {
        let url = conn.url(&format!("/deletedsecrets/{name}"));
        conn.send(Exchange::new("purge_secret", &Method::DELETE, &url))
            .await?;
        Ok(())
    }

    /// Builds the observed remote from the current version's metadata. `readable` is false when the current
    /// version is disabled.
    async fn remote_from(
        &self,
        conn: &Session<'_>,
        req: &Request<'_>,
        current: Bundle,
        readable: bool,
    ) -> Result<Remote, DialectError> {
        let name = req.remote_name;
        let marker = current.marker();
        let mut owner = marker.as_ref().map(|m| m.owner.clone());
        let mut digest = marker.and_then(|m| m.digest).filter(|_| readable);
        let version = current.version();
        // The status names the version SecretSync wrote or confirmed last; a newer one was written by someone
        // else, whatever its tags claim.
        if let Some(last) = req.last
            && last.name == name
            && let (Some(seen), Some(now)) = (last.version.as_deref(), version.as_deref())
            && seen != now
        {
            tracing::info!(
                dialect = DIALECT,
                "the current version is not the one SecretSync recorded; it will be written over"
            );
            digest = None;
        }
        if owner.is_none() {
            // Someone may have written over a secret SecretSync owns with a version that carries no tags.
            let ours = (self.versions(conn, name).await?)
                .into_iter()
                .find_map(|b| b.owner());
            if ours.is_some() {
                tracing::info!(
                    dialect = DIALECT,
                    "the current version was written outside SecretSync over a secret it owns; it will be \
                     written over"
                );
                owner = ours;
                digest = None;
            }
        }
        let content_type = match req.desired.metadata.content_type.as_deref() {
            // Key Vault cannot clear a content type: without one in the spec, the remote one is not compared.
            None => None,
            Some(_) => current.content_type.clone().filter(|c| !c.is_empty()),
        };
        let labels = ownership::user_labels(&current.tags.clone().unwrap_or_default());
        Ok(Remote {
            reference: reference(name, &current),
            owner,
            owner_exists: true,
            digest,
            metadata: Metadata {
                content_type,
                description: req.desired.metadata.description.clone(),
                labels,
            },
            state: RemoteState::Ready,
            detail: Default::default(),
        })
    }

    /// Writes the value as a new version. A name held by a soft-deleted secret is recovered or purged; a purge
    /// still running (409 `ObjectIsBeingDeleted`) is waited out for a few seconds.
    async fn put_secret(
        &self,
        conn: &Session<'_>,
        req: &Request<'_>,
        value: &SecretValue,
    ) -> Result<Outcome, DialectError> {
        let mut backoff = poll::Backoff::default();
        let mut purged = false;
        loop {
            let err = match self.put_once(conn, req, value).await {
                Ok(outcome) => return Ok(outcome),
                Err(e) => e,
            };
            let soft_deleted = code::is(&err, Code::SoftDeleted);
            if soft_deleted && !purged {
                match self.over_soft_deleted(conn, req).await? {
                    Some(recovered) => return Ok(recovered),
                    None => purged = true,
                }
            } else if !soft_deleted && !code::is(&err, Code::Deleting) {
                return Err(err);
            } else if !backoff.expired(PURGED_WAIT) {
                tracing::debug!(
                    dialect = DIALECT,
                    "the name is still being deleted or purged; waiting"
                );
                backoff.pause().await;
            } else if soft_deleted {
                return Err(DialectError::retry(
                    "BackendDeleting",
                    "the purge of the soft-deleted secret has not finished; will try again",
                )
                .with_retry_after(Some(Duration::from_secs(5))));
            } else {
                return Err(err);
            }
        }
    }

    async fn put_once(
        &self,
        conn: &Session<'_>,
        req: &Request<'_>,
        value: &SecretValue,
    ) -> Result<Outcome, DialectError> {
        let name = req.remote_name;
        let text = value.expose_str().ok_or_else(not_text)?;
        let body = wire::body(Some(text), req.desired);
        let url = conn.url(&format!("/secrets/{name}"));
        let reply = conn
            .send(
                Exchange::new("set_secret", &Method::PUT, &url)
                    .json(&body)
                    // Every Set Secret makes a new version: one that may have been applied is not repeated.
                    .idempotency(Idempotency::NotIdempotent),
            )
            .await?;
        drop(body);
        if reply.absent {
            return Err(map_error(reply.status, &reply.body, None));
        }
        Ok(Outcome::Ready(reference(name, &Bundle::read(&reply)?)))
    }

    /// The name is held by a soft-deleted secret: recover it (default; returns the recovered secret, which
    /// becomes readable asynchronously) or purge it (`purge: true`; returns `None`, and the caller writes again).
    async fn over_soft_deleted(
        &self,
        conn: &Session<'_>,
        req: &Request<'_>,
    ) -> Result<Option<Outcome>, DialectError> {
        let name = req.remote_name;
        let Some(deleted) = self.get_deleted(conn, name).await? else {
            return Err(DialectError::retry(
                "BackendDeleting",
                "the soft-deleted secret of this name is being purged or recovered; will try again",
            )
            .with_retry_after(Some(Duration::from_secs(2))));
        };
        // Only our own soft-deleted secret is recovered or purged, whatever adoptExisting says: in a shared vault
        // a tenant could otherwise bring back, or destroy for good, what another team (or no one) deleted.
        if !deleted.owned_by(&req.desired.owner) {
            return Err(DialectError::conflict(
                "SoftDeletedNotOwned",
                "the name is held by a soft-deleted secret this SecretSync did not write; recover or purge it in \
                 Key Vault, or choose another remoteName",
            ));
        }
        let purge = may_purge(req.target);
        if purge && deleted.attributes.purgeable() {
            tracing::info!(
                dialect = DIALECT,
                "purging the soft-deleted secret that holds the name"
            );
            self.purge(conn, name).await?;
            return Ok(None);
        }
        if purge {
            tracing::warn!(
                dialect = DIALECT,
                "the vault has purge protection: recovering the soft-deleted secret instead of purging it"
            );
        } else {
            tracing::info!(
                dialect = DIALECT,
                "recovering the soft-deleted secret that holds the name"
            );
        }
        let url = conn.url(&format!("/deletedsecrets/{name}/recover"));
        let reply = conn
            .send(
                Exchange::new("recover_secret", &Method::POST, &url)
                    // Recovering twice leaves the vault as recovering once does.
                    .idempotency(Idempotency::Idempotent),
            )
            .await?;
        if reply.absent {
            // Recovered (by an earlier attempt of this request, or by someone) or purged meanwhile.
            return Err(DialectError::retry(
                "BackendDeleting",
                "the soft-deleted secret of this name was recovered or purged meanwhile; will look again",
            ));
        }
        let bundle = Bundle::read(&reply).unwrap_or(deleted);
        // Recovery completes asynchronously; the next reconcile compares and writes as usual.
        Ok(Some(Outcome::Creating(reference(name, &bundle))))
    }

    async fn update_metadata(
        &self,
        conn: &Session<'_>,
        req: &Request<'_>,
        observed: &Observed,
    ) -> Result<Outcome, DialectError> {
        let name = req.remote_name;
        let gone = |message| DialectError::retry("RemoteGone", message);
        let version = match observed {
            Observed::Present(r) => r.reference.version.clone(),
            Observed::Absent => None,
        }
        .filter(|v| wire::valid_version(v))
        .ok_or_else(|| gone("the current version of the secret is unknown; will look again"))?;
        let body = wire::body(None, req.desired);
        let url = conn.url(&format!("/secrets/{name}/{version}"));
        // A PATCH sets the version's attributes: repeating it writes the same.
        let exchange = Exchange::new("update_secret", &Method::PATCH, &url).json(&body);
        let reply = conn.send(exchange).await?;
        if reply.absent {
            return Err(gone("the secret disappeared; will create it again"));
        }
        Ok(Outcome::Ready(reference(name, &Bundle::read(&reply)?)))
    }
}

#[async_trait]
impl Dialect for AzureKeyVault {
    fn kind(&self) -> DialectKind {
        DialectKind::AzureKeyVault
    }

    fn destinations(&self, target: &Target, credentials: &Credentials) -> Vec<String> {
        let own_identity = kit::credentials::flag(credentials, "workloadIdentity").unwrap_or(false);
        let configured = settings(target).authority_host;
        let authority = (self.workload).authority(configured.as_deref(), own_identity);
        target.endpoint.iter().cloned().chain([authority]).collect()
    }

    fn public_hosts(&self) -> &'static [&'static str] {
        // Key Vault's and Managed HSM's DNS suffixes and Entra ID's authority hosts, in Azure's public, US
        // Government and China clouds.
        &[
            "*.vault.azure.net",
            "*.managedhsm.azure.net",
            "*.vault.usgovcloudapi.net",
            "*.managedhsm.usgovcloudapi.net",
            "*.vault.azure.cn",
            "*.managedhsm.azure.cn",
            "login.microsoftonline.com",
            "login.microsoftonline.us",
            "login.chinacloudapi.cn",
            "login.partner.microsoftonline.cn",
        ]
    }

    fn capabilities(&self, _target: &Target) -> Capabilities {
        Capabilities {
            content_type: Support::Mutable,
            description: Support::Unsupported,
            labels: Support::Mutable,
        }
    }

    fn check(&self, req: &Request<'_>, value: &SecretValue) -> Result<(), DialectError> {
        vault_url(req.target)?;
        api_version(&settings(req.target))?;
        check_name(req.remote_name)?;
        if req.target.description.is_some() {
            return Err(DialectError::permanent(
                "DescriptionUnsupported",
                "Key Vault secrets have no description; remove spec.target.description (a label can carry it)",
            ));
        }
        check_labels(&req.target.labels)?;
        check_labels(&req.desired.metadata.labels)?;
        kit::metadata::at_most(value, MAX_VALUE_BYTES, "Key Vault's limit (25 KB)")?;
        value.expose_str().ok_or_else(not_text)?;
        self.settings_of(req).map(drop)
    }

    async fn read_value(
        &self,
        req: &Request<'_>,
        remote: &Remote,
    ) -> Result<Option<SecretValue>, DialectError> {
        /// The value of a bundle, read only to take over a secret written outside SecretSync.
        #[derive(Deserialize)]
        struct Valued {
            value: Option<String>,
        }
        let conn = self.conn(req)?;
        let version = remote.reference.version.as_deref().unwrap_or_default();
        let path = format!("/secrets/{}/{version}", req.remote_name);
        let Some(reply) = conn.get("get_secret", &conn.url(&path)).await? else {
            return Ok(None);
        };
        let read = serde_json::from_slice::<Valued>(&reply.body).ok();
        Ok((read.and_then(|v| v.value))
            .map(|v| SecretValue::new(zeroize::Zeroizing::new(v).as_bytes().to_vec())))
    }

    async fn observe(&self, req: &Request<'_>) -> Result<Observed, DialectError> {
        let conn = self.conn(req)?;
        let name = req.remote_name;
        check_name(name)?;
        // The SDKs read the current version with an empty version segment.
        let (current, readable) = match conn
            .get("get_secret", &conn.url(&format!("/secrets/{name}/")))
            .await
        {
            Ok(None) => return Ok(Observed::Absent),
            Ok(Some(reply)) => (Bundle::read(&reply)?, true),
            Err(e) if code::is(&e, Code::Disabled) => {
                // The value of a disabled version cannot be read, but its metadata can be listed.
                match self.versions(&conn, name).await?.into_iter().next() {
                    Some(b) => (b, false),
                    None => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        if current.managed == Some(true) {
            return Err(DialectError::permanent(
                "ManagedSecret",
                "the secret backs a Key Vault certificate and cannot be written; choose another remoteName",
            ));
        }
        let readable = readable && current.attributes.enabled != Some(false);
        if !readable {
            tracing::info!(
                dialect = DIALECT,
                "the current version is disabled; the value will be written again as an enabled version"
            );
        }
        let remote = self.remote_from(&conn, req, current, readable).await?;
        Ok(Observed::Present(remote))
    }

    async fn apply(
        &self,
        req: &Request<'_>,
        write: &Write,
        observed: &Observed,
        value: &SecretValue,
    ) -> Result<Outcome, DialectError> {
        let conn = self.conn(req)?;
        match write {
            Write::Create | Write::NewVersion | Write::Replace { .. } => {
                self.put_secret(&conn, req, value).await
            }
            Write::UpdateMetadata => self.update_metadata(&conn, req, observed).await,
        }
    }

    async fn delete(&self, req: &Request<'_>, observed: &Observed) -> Result<(), DialectError> {
        if let Observed::Absent = observed {
            return Ok(());
        }
        let conn = self.conn(req)?;
        let name = req.remote_name;
        // Already gone (404) is fine. A deletion already running (409 ObjectIsBeingDeleted) is waited out in
        // place until the secret is gone, or handed back to the controller's backoff.
        let url = conn.url(&format!("/secrets/{name}"));
        conn.send(Exchange::new("delete_secret", &Method::DELETE, &url))
            .await?;
        if !may_purge(req.target) {
            return Ok(());
        }
        // Deletion completes asynchronously: wait until the secret is listed as deleted, then purge it.
        let listed = poll::until(PURGE_WAIT, || self.get_deleted(&conn, name)).await?;
        let Some(deleted) = listed else {
            return Err(DialectError::retry(
                "BackendDeleting",
                "the secret was deleted but is not yet listed as deleted, so it was not purged",
            ));
        };
        if !deleted.attributes.purgeable() {
            tracing::warn!(
                dialect = DIALECT,
                "the vault has purge protection: the deleted secret stays recoverable until its retention ends"
            );
            return Ok(());
        }
        self.purge(&conn, name).await
    }
}

#[cfg(test)]
mod tests;
