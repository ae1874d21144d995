//! Docker Swarm secrets through the Docker Engine API's `/secrets` endpoints on a swarm manager, sent by the kit's
//! transport over the unix socket, TCP or TLS. What users set and see (endpoint, credentials, naming, labels,
//! pruning, requests, errors) is in `docs/src/dialects/docker-swarm.md`; this is how it is built.
//!
//! # Why one secret per value
//!
//! A Swarm secret's value is set only at creation and can never be read back, so each value is its own secret,
//! named `<remoteName>-<first 8 hex digits of the keyed digest>`. The name alone says whether the desired value
//! exists; services move to a new name on rotation, which is how Swarm itself rotates secrets. Labels are the only
//! thing Swarm changes in place (`POST /secrets/{id}/update?version=N` replaces them all), so the marker lives there,
//! with `secretsync.io/remote-name` tying the family of names to one `remoteName`.
//!
//! # Observe
//!
//! One listing of the secrets whose name starts with `remoteName`; kept are those named `<remoteName>-<8 hex>` or
//! labelled with this `remote-name` (a prefix match alone would catch `db-old-…` for `db`). The one holding the
//! desired value is reported if it exists, otherwise the newest; drift is seen only through labels, as values cannot
//! be read.
//!
//! # Retries
//!
//! Reads, deletes and label updates are repeated in place; a create is not: one that may have reached the daemon is
//! found by the next reconcile by name and digest, and a 409 on our own name with our digest is taken as our earlier
//! create whose reply was lost. A label update answered "update out of sequence" is re-read and retried, up to `UPDATE_ATTEMPTS` times.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use reqwest::Method;
use zeroize::Zeroizing;

mod wire;

use wire::{Code, Secret, Spec};

use super::kit::bounded::Lru;
use super::kit::ownership::{self, Keys, Marker};
use super::kit::session::Session;
use super::kit::tls::{ClientCache, TlsSettings};
use super::kit::unix::SocketClients;
use super::kit::{Exchange, Idempotency, NoAuth, Reply, Transport, code, credentials};
use super::{Dialect, DialectError, Outcome, Request, Shared};
use crate::api::{DialectKind, Target};
use crate::plan::digest::short;
use crate::plan::{
    Capabilities, Detail, Metadata, Observed, Owner, Remote, RemoteRef, RemoteState, Support, Write,
};
use crate::value::{Credentials, SecretValue};

const DIALECT: &str = "DockerSwarm";
/// SecretSync's labels (`secretsync.io/owner`, `secretsync.io/owner-uid`, `secretsync.io/digest`), by the kit's
/// codec.
const LABELS: Keys = Keys::Domain;
/// Docker's own marker label: the remote name a value's secret belongs to.
const LABEL_REMOTE_NAME: &str = "secretsync.io/remote-name";
/// Hex digits of the keyed digest appended to the name.
const SUFFIX_LEN: usize = 8;
/// Swarm's name limit (64) minus '-' and the suffix.
pub const MAX_REMOTE_NAME_LEN: usize = 64 - 1 - SUFFIX_LEN;
/// Swarm refuses values of 500 KiB and more.
pub const MAX_VALUE_LEN: usize = 500 * 1024 - 1;
const DEFAULT_ENDPOINT: &str = "unix:///var/run/docker.sock";
const UPDATE_ATTEMPTS: u32 = 3;
/// The newest Engine API version spoken; an older daemon is spoken to in its own.
const API_VERSION: (u32, u32) = (1, 53);
/// Daemons whose negotiated version is kept at most.
const MAX_NEGOTIATED: usize = 64;

pub struct DockerSwarm {
    transport: Transport,
    /// Clients carrying a CA or a client certificate, and those of unix sockets.
    tls: ClientCache,
    sockets: SocketClients,
    /// The API version negotiated with each daemon, by endpoint and credentials fingerprint.
    versions: Lru<String, Arc<tokio::sync::OnceCell<String>>>,
}

impl DockerSwarm {
    pub fn new(shared: Shared) -> Self {
        DockerSwarm {
            tls: ClientCache::new(&shared),
            sockets: SocketClients::new(&shared),
            transport: Transport::new(DIALECT, shared, wire::decode).with_outcome(wire::outcome),
            versions: Lru::new(MAX_NEGOTIATED),
        }
    }

    /// One Engine API call through the kit's transport (paced by the store's rate, bounded by the deadline with
    /// its answer, capped, metered, retried as `exchange` allows); errors say what was being done.
    async fn send(
        &self,
        ctx: &Ctx<'_>,
        exchange: Exchange<'_>,
        doing: &str,
    ) -> Result<Reply, DialectError> {
        let reply = ctx.http.send(exchange).await;
        reply.map_err(|e| super::kit::text::during(doing, e))
    }

    /// The Engine API version to speak: the daemon's, or [`API_VERSION`] when the daemon's is newer.
    async fn negotiate(&self, ctx: &Ctx<'_>) -> Result<String, DialectError> {
        let doing = "negotiating the API version";
        // Unversioned: the one path every Engine API version answers.
        let url = ctx.http.url("/version");
        let reply = self
            .send(ctx, Exchange::new("version", &Method::GET, &url), doing)
            .await?;
        let theirs = reply
            .json::<wire::Version>(doing)?
            .and_then(|v| wire::api_version(v.api_version.as_deref()?))
            .ok_or_else(|| {
                DialectError::retry(
                    "BadResponse",
                    format!("{doing}: Docker named no API version"),
                )
            })?;
        let (major, minor) = theirs.min(API_VERSION);
        Ok(format!("{major}.{minor}"))
    }

    async fn list(&self, ctx: &Ctx<'_>) -> Result<Vec<Secret>, DialectError> {
        let doing = "listing secrets";
        let filters = serde_json::json!({ "name": [ctx.base] }).to_string();
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("filters", &filters)
            .finish();
        let url = ctx.url(&format!("/secrets?{query}"));
        let reply = self
            .send(ctx, Exchange::new("list", &Method::GET, &url), doing)
            .await?;
        reply.json(doing)?.ok_or_else(wire::not_found)
    }

    async fn inspect(&self, ctx: &Ctx<'_>, id: &str) -> Result<Option<Secret>, DialectError> {
        let doing = "reading a secret";
        let url = ctx.secret(id, "")?;
        let reply = self
            .send(ctx, Exchange::new("inspect", &Method::GET, &url), doing)
            .await?;
        reply.json(doing)
    }

    /// Deletes one secret (gone already is done); `Ok(false)` when a service still uses it.
    async fn remove(
        &self,
        ctx: &Ctx<'_>,
        id: &str,
        operation: &'static str,
    ) -> Result<bool, DialectError> {
        let url = ctx.secret(id, "")?;
        let exchange = Exchange::new(operation, &Method::DELETE, &url);
        match self.send(ctx, exchange, "deleting a secret").await {
            Ok(_) => Ok(true),
            Err(e) if code::is(&e, Code::InUse) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn create(
        &self,
        ctx: &Ctx<'_>,
        req: &Request<'_>,
        value: &SecretValue,
    ) -> Result<RemoteRef, DialectError> {
        let doing = "creating a secret";
        let name = full_name(ctx.base, &req.desired.digest);
        let labels = labels_for(req, ctx.base);
        let data = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(value.expose()));
        let body = Zeroizing::new(
            serde_json::to_vec(&wire::CreateBody {
                name: &name,
                labels: &labels,
                data: &data,
            })
            .map_err(|e| {
                DialectError::permanent("Serialization", format!("cannot encode a secret: {e}"))
            })?,
        );
        let url = ctx.url("/secrets/create");
        // A create that may have reached the daemon is not sent again (a POST is not repeated): the 409 below,
        // or the next reconcile, finds it by its name and digest.
        let exchange = Exchange::new("create", &Method::POST, &url).json(&body);
        match self.send(ctx, exchange, doing).await {
            Ok(reply) => {
                let created: wire::Created = reply.json(doing)?.ok_or_else(wire::not_found)?;
                // The create reply has only the ID; the version is read back so the status can show it.
                let secret = self.inspect(ctx, &created.id).await?;
                Ok(RemoteRef {
                    name,
                    id: Some(created.id),
                    version: secret.as_ref().and_then(version_of).map(|v| v.to_string()),
                })
            }
            // Our own earlier create whose reply was lost holds the name with the same digest: that is success.
            // Anything else holding it is a clash (names are unique case-insensitively).
            Err(e) if code::is(&e, Code::NameTaken) => match self.inspect(ctx, &name).await? {
                Some(secret)
                    if owned_by(&secret, &req.desired.owner)
                        && marker_of(&secret).and_then(|m| m.digest).as_ref()
                            == Some(&req.desired.digest) =>
                {
                    Ok(reference(&secret))
                }
                _ => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// Replaces the labels of `secret`, starting from the version `observe` saw and re-reading it when another
    /// writer got there first.
    async fn update_labels(
        &self,
        ctx: &Ctx<'_>,
        req: &Request<'_>,
        observed: &RemoteRef,
    ) -> Result<RemoteRef, DialectError> {
        let id = observed.id.clone().unwrap_or_else(|| observed.name.clone());
        let mut version = observed
            .version
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok());
        let spec = Spec {
            name: Some(observed.name.clone()),
            labels: Some(labels_for(req, ctx.base)),
        };
        let body = serde_json::to_vec(&spec).map_err(|e| {
            DialectError::permanent("Serialization", format!("cannot encode labels: {e}"))
        })?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let index = match version {
                Some(v) => v,
                None => match self.inspect(ctx, &id).await?.as_ref().and_then(version_of) {
                    Some(v) => v,
                    None => {
                        return Err(DialectError::retry(
                            "SecretNotFound",
                            format!(
                                "secret {} disappeared before its labels were updated",
                                observed.name
                            ),
                        ));
                    }
                },
            };
            let url = ctx.secret(&id, &format!("/update?version={index}"))?;
            // Setting labels at a version is idempotent: a repeat after success is refused as out of sequence.
            let exchange = Exchange::new("update", &Method::POST, &url)
                .json(&body)
                .idempotency(Idempotency::Idempotent);
            match self.send(ctx, exchange, "updating a secret's labels").await {
                Ok(reply) if reply.absent => return Err(wire::not_found()),
                Ok(_) => {
                    let secret = self.inspect(ctx, &id).await?;
                    return Ok(RemoteRef {
                        name: observed.name.clone(),
                        id: Some(id),
                        version: secret.as_ref().and_then(version_of).map(|v| v.to_string()),
                    });
                }
                Err(e) if code::is(&e, Code::OutOfSequence) && attempt < UPDATE_ATTEMPTS => {
                    version = None
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Deletes the superseded secrets of this SecretSync (`ours`: the names of its secrets, as `observe` saw
    /// them); a secret still in use is kept and reported.
    async fn prune(&self, ctx: &Ctx<'_>, current: &str, ours: &[String]) {
        for name in ours {
            if name.eq_ignore_ascii_case(current) {
                continue;
            }
            // Docker takes a secret's name where it takes its ID.
            match self.remove(ctx, name, "prune").await {
                Ok(true) => tracing::info!(secret = name, "deleted superseded Docker secret"),
                Ok(false) => tracing::info!(
                    secret = name,
                    "kept superseded Docker secret: a service still uses it"
                ),
                Err(e) => {
                    tracing::warn!(secret = name, error = %e, "could not delete superseded Docker secret")
                }
            }
        }
    }

    fn prune_enabled(target: &Target) -> bool {
        target
            .docker_swarm
            .as_ref()
            .and_then(|s| s.prune_superseded)
            .unwrap_or(true)
    }

    async fn ctx<'a>(&'a self, req: &'a Request<'a>) -> Result<Ctx<'a>, DialectError> {
        let endpoint = endpoint(req.target);
        let (client, root) = self.dial(endpoint, req.credentials)?;
        let http = Session {
            transport: &self.transport,
            client,
            base: root,
            suffix: String::new(),
            rate: req.rate_limit,
            auth: Box::new(NoAuth),
        };
        let mut ctx = Ctx {
            http,
            version: String::new(),
            base: req.remote_name,
        };
        let key = format!("{endpoint}#{}", req.credentials.fingerprint());
        let cell = self.versions.get_or_insert_with(key, Default::default);
        // Many SecretSyncs start at once after a restart: one of them negotiates, the others on the same
        // endpoint wait for it. A failure is not kept, so the next reconcile tries again.
        let version = cell.get_or_try_init(|| self.negotiate(&ctx)).await?;
        ctx.version = version.clone();
        Ok(ctx)
    }

    /// The client for `endpoint` and the root of its URLs: the unix socket, TCP, or TLS when credentials (or
    /// `https://`) ask for it.
    fn dial(
        &self,
        endpoint: &str,
        creds: &Credentials,
    ) -> Result<(reqwest::Client, String), DialectError> {
        if let Some(path) = endpoint.strip_prefix("unix://") {
            return Ok((self.sockets.client(path)?, "http://docker".to_owned()));
        }
        let (tls, host) = if let Some(host) = endpoint.strip_prefix("https://") {
            (true, host)
        } else if let Some(host) = endpoint.strip_prefix("http://") {
            (false, host)
        } else if let Some(host) = endpoint.strip_prefix("tcp://") {
            let tls = ["ca.crt", "tls.crt", "tls.key"]
                .iter()
                .any(|k| matches!(credentials::text(creds, k), Ok(Some(_)) | Err(_)));
            (tls, host)
        } else {
            return Err(invalid_endpoint(endpoint));
        };
        let root = format!(
            "{}://{}",
            if tls { "https" } else { "http" },
            host.trim_end_matches('/')
        );
        let url = super::kit::endpoint::parse(&root, "InvalidEndpoint")?;
        if url.path() != "/" || url.query().is_some() {
            return Err(invalid_endpoint(endpoint));
        }
        if !tls {
            return Ok((self.tls.client(TlsSettings::default())?, root));
        }
        // A ca.crt is the daemon's own CA and the only one trusted; without one, the public roots.
        let client = self.tls.client(super::kit::tls::own_pki(creds)?)?;
        Ok((client, root))
    }
}

/// One reconcile's connection (to `http://docker` over a unix socket, or the daemon's host), the Engine API
/// version spoken, and the remote name.
struct Ctx<'a> {
    http: Session<'a>,
    version: String,
    base: &'a str,
}

impl Ctx<'_> {
    /// The URL of an Engine API path in the negotiated version (`http://docker/v1.50/secrets`).
    fn url(&self, path: &str) -> String {
        self.http.url(&format!("/v{}{path}", self.version))
    }

    /// The URL of the secret `id` (an ID or a name), with `rest` after it.
    fn secret(&self, id: &str, rest: &str) -> Result<String, DialectError> {
        // IDs come from the daemon: only one shaped like a name or an ID is put in a path.
        if !valid_name(id) {
            return Err(DialectError::retry(
                "BadResponse",
                "Docker named a secret by an ID that is not one",
            ));
        }
        Ok(self.url(&format!("/secrets/{id}{rest}")))
    }
}

fn endpoint(target: &Target) -> &str {
    target.endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT)
}

fn invalid_endpoint(endpoint: &str) -> DialectError {
    DialectError::permanent(
        "InvalidEndpoint",
        format!("endpoint {endpoint} is neither unix://, tcp:// nor https:// with a host and port"),
    )
}

/// `<remoteName>-<first 8 hex digits of the digest>`.
pub fn full_name(base: &str, digest: &str) -> String {
    format!("{base}-{}", short(digest, SUFFIX_LEN))
}

/// Swarm's secret name rule: `^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$`, at most 64 characters.
pub fn valid_name(name: &str) -> bool {
    super::kit::names::plain(name, 64, b"-_.")
        && name
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric())
}

/// Whether `name` is `<base>-<8 hex digits>`, a name SecretSync would give a value of `base`.
fn is_value_name(name: &str, base: &str) -> bool {
    name.len() == base.len() + 1 + SUFFIX_LEN
        && name.is_char_boundary(base.len())
        && name[..base.len()].eq_ignore_ascii_case(base)
        && name.as_bytes()[base.len()] == b'-'
        && name[base.len() + 1..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit())
}

fn labels_for(req: &Request<'_>, base: &str) -> HashMap<String, String> {
    let desired = req.desired;
    let labels = LABELS.with_labels(&Marker::of(desired), &desired.metadata.labels);
    let remote_name = (LABEL_REMOTE_NAME.to_owned(), base.to_owned());
    labels.into_iter().chain([remote_name]).collect()
}

fn label<'a>(secret: &'a Secret, key: &str) -> Option<&'a String> {
    secret.spec.as_ref()?.labels.as_ref()?.get(key)
}

fn secret_name(secret: &Secret) -> &str {
    secret
        .spec
        .as_ref()
        .and_then(|s| s.name.as_deref())
        .unwrap_or_default()
}

fn version_of(secret: &Secret) -> Option<u64> {
    secret.version.as_ref()?.index
}

fn marker_of(secret: &Secret) -> Option<Marker> {
    LABELS.read(|k| label(secret, k).map(String::as_str))
}

fn owner_of(secret: &Secret) -> Option<Owner> {
    marker_of(secret).map(|m| m.owner)
}

fn owned_by(secret: &Secret, owner: &Owner) -> bool {
    owner.owns(owner_of(secret).as_ref())
}

fn reference(secret: &Secret) -> RemoteRef {
    RemoteRef {
        name: secret_name(secret).to_owned(),
        id: secret.id.clone(),
        version: version_of(secret).map(|v| v.to_string()),
    }
}

fn created_at(secret: &Secret) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(secret.created_at.as_deref()?).ok()
}

fn to_remote(secret: &Secret) -> Remote {
    let labels = (secret.spec.as_ref().and_then(|s| s.labels.as_ref()))
        .map(ownership::user_labels)
        .unwrap_or_default();
    Remote {
        reference: reference(secret),
        owner: owner_of(secret),
        owner_exists: true,
        digest: marker_of(secret).and_then(|m| m.digest),
        metadata: Metadata {
            labels,
            ..Default::default()
        },
        state: RemoteState::Ready,
        detail: Detail::default(),
    }
}

/// The names of every secret of this SecretSync under its remote name, as `observe` listed them.
struct Ours(Vec<String>);

fn ours(observed: &Observed) -> &[String] {
    match observed {
        Observed::Present(r) => r.detail.get::<Ours>().map_or(&[], |o| o.0.as_slice()),
        Observed::Absent => &[],
    }
}

/// The secrets that belong to `base`: named as SecretSync names its values, or labelled with its remote name.
fn candidates(secrets: Vec<Secret>, base: &str) -> Vec<Secret> {
    secrets
        .into_iter()
        .filter(|s| {
            is_value_name(secret_name(s), base)
                || label(s, LABEL_REMOTE_NAME).is_some_and(|b| b == base)
        })
        .collect()
}

/// The secret to report: the one named for the desired value, else the newest one of this owner, else the
/// newest one of anyone (which the planner then refuses to touch).
fn current<'a>(candidates: &'a [Secret], req: &Request<'_>, base: &str) -> Option<&'a Secret> {
    let wanted = full_name(base, &req.desired.digest);
    if let Some(s) = candidates
        .iter()
        .find(|s| secret_name(s).eq_ignore_ascii_case(&wanted))
    {
        return Some(s);
    }
    let newest = |it: &mut dyn Iterator<Item = &'a Secret>| {
        it.max_by(|a, b| {
            created_at(a)
                .cmp(&created_at(b))
                .then_with(|| version_of(a).cmp(&version_of(b)))
        })
    };
    newest(
        &mut candidates
            .iter()
            .filter(|s| owned_by(s, &req.desired.owner)),
    )
    .or_else(|| newest(&mut candidates.iter().filter(|s| owner_of(s).is_some())))
    .or_else(|| newest(&mut candidates.iter()))
}

#[async_trait]
impl Dialect for DockerSwarm {
    fn destinations(&self, target: &Target, _credentials: &Credentials) -> Vec<String> {
        vec![endpoint(target).to_owned()]
    }

    fn kind(&self) -> DialectKind {
        DialectKind::DockerSwarm
    }

    fn capabilities(&self, _target: &Target) -> Capabilities {
        Capabilities {
            content_type: Support::Unsupported,
            description: Support::Unsupported,
            labels: Support::Mutable,
        }
    }

    fn check(&self, req: &Request<'_>, value: &SecretValue) -> Result<(), DialectError> {
        let base = req.remote_name;
        if base.len() > MAX_REMOTE_NAME_LEN || !valid_name(base) {
            return Err(DialectError::permanent(
                "InvalidName",
                format!(
                    "Docker secret names are letters, digits, '-', '_' and '.', start and end with a letter or \
                     digit, and {base:?} may have at most {MAX_REMOTE_NAME_LEN} characters (SecretSync appends \
                     '-' and {SUFFIX_LEN} digest characters)"
                ),
            ));
        }
        if value.is_empty() {
            return Err(DialectError::permanent(
                "PayloadTooLarge",
                "the value is empty; Docker secrets hold at least 1 byte",
            ));
        }
        super::kit::metadata::at_most(value, MAX_VALUE_LEN, "Docker's limit")?;
        let ep = endpoint(req.target);
        if !["unix://", "tcp://", "https://", "http://"]
            .iter()
            .any(|s| ep.starts_with(s))
        {
            return Err(invalid_endpoint(ep));
        }
        super::kit::tls::own_pki(req.credentials).map(|_| ())
    }

    async fn observe(&self, req: &Request<'_>) -> Result<Observed, DialectError> {
        let ctx = self.ctx(req).await?;
        let found = candidates(self.list(&ctx).await?, ctx.base);
        let Some(secret) = current(&found, req, ctx.base) else {
            return Ok(Observed::Absent);
        };
        let mut remote = to_remote(secret);
        // Every secret of this SecretSync under the name, so that `apply` prunes without listing again.
        let names: Vec<String> = found
            .iter()
            .filter(|s| owned_by(s, &req.desired.owner))
            .map(|s| secret_name(s).to_owned())
            .collect();
        // Superseded secrets go once the current value is in place; retried on every observe so a secret a
        // service held on to goes as soon as the service lets go of it.
        let settled = remote.digest.as_deref() == Some(req.desired.digest.as_str())
            && owned_by(secret, &req.desired.owner);
        if settled && Self::prune_enabled(req.target) && names.len() > 1 {
            self.prune(&ctx, &remote.reference.name, &names).await;
        }
        remote.detail = Detail::new(Ours(names));
        Ok(Observed::Present(remote))
    }

    async fn apply(
        &self,
        req: &Request<'_>,
        write: &Write,
        observed: &Observed,
        value: &SecretValue,
    ) -> Result<Outcome, DialectError> {
        self.check(req, value)?;
        let ctx = self.ctx(req).await?;
        let wanted = full_name(ctx.base, &req.desired.digest);
        let reference = match write {
            Write::UpdateMetadata => match observed {
                Observed::Present(remote) => {
                    self.update_labels(&ctx, req, &remote.reference).await?
                }
                Observed::Absent => self.create(&ctx, req, value).await?,
            },
            Write::Create | Write::NewVersion | Write::Replace { .. } => {
                // The name for this value is taken by a secret whose value cannot be vouched for (its digest
                // label is missing or wrong): it has to go before the value can be written under that name.
                if let Observed::Present(remote) = observed
                    && remote.reference.name.eq_ignore_ascii_case(&wanted)
                {
                    let id = remote
                        .reference
                        .id
                        .clone()
                        .unwrap_or_else(|| remote.reference.name.clone());
                    if !self.remove(&ctx, &id, "delete").await? {
                        return Err(DialectError::conflict(
                            "SecretInUse",
                            format!(
                                "secret {wanted} must be re-created, but a service still uses it"
                            ),
                        ));
                    }
                }
                let reference = self.create(&ctx, req, value).await?;
                // What observe found of ours is superseded now (with nothing observed, nothing is).
                if Self::prune_enabled(req.target) {
                    self.prune(&ctx, &reference.name, ours(observed)).await;
                }
                reference
            }
        };
        Ok(Outcome::Ready(reference))
    }

    async fn delete(&self, req: &Request<'_>, observed: &Observed) -> Result<(), DialectError> {
        if let Observed::Absent = observed {
            return Ok(());
        }
        let ctx = self.ctx(req).await?;
        let found = candidates(self.list(&ctx).await?, ctx.base);
        let mut kept = Vec::new();
        for secret in found.iter().filter(|s| owned_by(s, &req.desired.owner)) {
            let Some(id) = secret.id.as_deref() else {
                continue;
            };
            if !self.remove(&ctx, id, "delete").await? {
                kept.push(secret_name(secret).to_owned());
            }
        }
        if kept.is_empty() {
            Ok(())
        } else {
            Err(DialectError::conflict(
                "SecretInUse",
                format!(
                    "Docker secrets still used by a service: {}; remove them from the services first",
                    kept.join(", ")
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialects::ErrorClass;
    use crate::dialects::fixtures::desired;
    use crate::dialects::kit::Verdict;

    const DIGEST: &str =
        "hmac-sha256:0123abcdef456789000000000000000000000000000000000000000000000000";

    #[test]
    fn names_carry_eight_digest_digits() {
        assert_eq!(full_name("db-password", DIGEST), "db-password-0123abcd");
        assert!(is_value_name("db-password-0123abcd", "db-password"));
        assert!(is_value_name("DB-password-0123abcd", "db-password"));
        assert!(is_value_name("db-password-0123ABCD", "db-password"));
        assert!(!is_value_name("db-password-0123abcg", "db-password"));
        assert!(!is_value_name("db-password-x-0123abcd", "db-password"));
        assert!(!is_value_name("db-password0123abcd", "db-password"));
    }

    fn secret(name: &str, created: &str, labels: &[(&str, &str)]) -> Secret {
        Secret {
            id: Some(format!("id-{name}")),
            version: Some(wire::ObjectVersion { index: Some(10) }),
            created_at: Some(created.to_owned()),
            spec: Some(Spec {
                name: Some(name.to_owned()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
            }),
        }
    }

    fn request<'a>(
        target: &'a Target,
        desired: &'a crate::plan::Desired,
        creds: &'a Credentials,
    ) -> Request<'a> {
        crate::dialects::fixtures::request(target, "db", creds, desired)
    }

    fn ours(digest: &str) -> Vec<(&'static str, String)> {
        vec![
            ("secretsync.io/owner", "ns/app".to_owned()),
            ("secretsync.io/owner-uid", "u-1".to_owned()),
            ("secretsync.io/digest", digest.to_owned()),
            (LABEL_REMOTE_NAME, "db".to_owned()),
        ]
    }

    fn l<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
        v.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    #[test]
    fn observe_reports_the_desired_value_else_the_newest_of_ours() {
        let new_digest = DIGEST;
        let old_digest =
            "hmac-sha256:ffff0000ffff0000000000000000000000000000000000000000000000000000";

        let old_ours = ours(old_digest);
        let all = vec![
            secret("db-ffff0000", "2026-01-01T00:00:00.5Z", &l(&old_ours)),
            // Someone else's secret whose name merely starts with "db".
            secret("dbx-0123abcd", "2026-01-03T00:00:00Z", &[]),
            // An unlabelled one named like a value of "db" is a candidate (drift), but not ours.
            secret("db-99999999", "2026-01-04T00:00:00Z", &[("team", "x")]),
        ];
        let found = candidates(all, "db");
        let names: Vec<&str> = found.iter().map(secret_name).collect();
        assert_eq!(names, ["db-ffff0000", "db-99999999"]);

        let target: Target =
            serde_json::from_value(serde_json::json!({"dialect": "DockerSwarm"})).unwrap();
        let desired = crate::plan::Desired {
            digest: new_digest.to_owned(),
            earlier_digest: None,
            ..desired()
        };
        let creds = Credentials::default();
        let req = request(&target, &desired, &creds);
        // The desired value is not there yet: the newest secret of this owner, not the newer foreign one.
        assert_eq!(
            secret_name(current(&found, &req, "db").unwrap()),
            "db-ffff0000"
        );

        let new_ours = ours(new_digest);
        let mut found = found;
        found.push(secret("db-0123abcd", "2025-01-01T00:00:00Z", &l(&new_ours)));
        // The desired value wins even when older.
        let cur = current(&found, &req, "db").unwrap();
        assert_eq!(secret_name(cur), "db-0123abcd");
        let remote = to_remote(cur);
        assert_eq!(remote.digest.as_deref(), Some(new_digest));
        assert_eq!(remote.owner, Owner::parse_key("ns/app", "u-1", ""));
        assert_eq!(remote.reference.id.as_deref(), Some("id-db-0123abcd"));
        assert_eq!(remote.reference.version.as_deref(), Some("10"));
        assert!(
            remote.metadata.labels.is_empty(),
            "reserved labels are not user labels"
        );

        // Only the unlabelled one left: reported, so the planner refuses it as not owned.
        let lone = vec![secret(
            "db-99999999",
            "2026-01-04T00:00:00Z",
            &[("team", "x")],
        )];
        let remote = to_remote(current(&lone, &req, "db").unwrap());
        assert_eq!(remote.owner, None);
        assert_eq!(
            remote.metadata.labels.get("team").map(String::as_str),
            Some("x")
        );
    }

    #[test]
    fn written_labels_keep_user_labels_and_override_reserved_ones() {
        let target: Target =
            serde_json::from_value(serde_json::json!({"dialect": "DockerSwarm"})).unwrap();
        let desired = crate::plan::Desired {
            digest: DIGEST.to_owned(),
            earlier_digest: None,
            metadata: Metadata {
                labels: [
                    ("team".to_owned(), "a".to_owned()),
                    ("SecretSync.io/owner".to_owned(), "forged".to_owned()),
                ]
                .into(),
                ..Default::default()
            },
            ..desired()
        };
        let creds = Credentials::default();
        let req = request(&target, &desired, &creds);
        let labels = labels_for(&req, "db");
        assert_eq!(labels["team"], "a");
        assert_eq!(labels["secretsync.io/owner"], "ns/app");
        assert_eq!(labels["secretsync.io/owner-uid"], "u-1");
        assert_eq!(labels["secretsync.io/digest"], DIGEST);
        assert_eq!(labels[LABEL_REMOTE_NAME], "db");
        assert!(!labels.contains_key("SecretSync.io/owner"));
        assert_eq!(labels.len(), 5);
    }

    #[test]
    fn swarm_name_rules() {
        assert!(valid_name("a"));
        assert!(valid_name("a.b_c-d9"));
        assert!(!valid_name(""));
        assert!(!valid_name("-a"));
        assert!(!valid_name("a-"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name("ä"));
        assert!(valid_name(&"a".repeat(64)));
        assert!(!valid_name(&"a".repeat(65)));
        // The longest remote name still makes a valid full name.
        let base = "a".repeat(MAX_REMOTE_NAME_LEN);
        assert!(valid_name(&full_name(&base, DIGEST)));
    }

    fn answer(status: u16, message: &str) -> Reply {
        let body = serde_json::json!({ "message": message }).to_string();
        crate::dialects::fixtures::reply(status, &body)
    }

    #[test]
    fn statuses_map_to_conditions() {
        let cases = [
            (
                400,
                "secret 'a' is in use by the following service: s",
                ErrorClass::Conflict,
                "SecretInUse",
            ),
            (
                400,
                "only updates to Labels are allowed",
                ErrorClass::Permanent,
                "BadParameter",
            ),
            (
                409,
                "rpc error: code = AlreadyExists desc = secret a already exists",
                ErrorClass::Conflict,
                "NameTaken",
            ),
            (
                500,
                "rpc error: code = Unknown desc = update out of sequence",
                ErrorClass::Conflict,
                "UpdateOutOfSequence",
            ),
            (500, "something broke", ErrorClass::Retry, "BackendError"),
            (
                503,
                "This node is not a swarm manager.",
                ErrorClass::Retry,
                "NotSwarmManager",
            ),
        ];
        for (status, message, class, reason) in cases {
            let verdict = wire::decode(&answer(status, message));
            let expected = if reason == "SecretInUse" {
                "in_use"
            } else {
                class.as_str()
            };
            assert_eq!(wire::outcome(&verdict), expected);
            let Verdict::Error(err) = verdict else {
                panic!("{status} {message}: not an error");
            };
            assert_eq!(
                (err.class, err.reason),
                (class, reason),
                "{status} {message}"
            );
            // Never the answer's own words (the endpoint may not be Docker at all): the status and ours.
            assert!(!err.message.contains(message), "{err}");
            assert!(err.message.contains(&status.to_string()), "{err}");
        }
        let in_use = wire::decode(&answer(
            400,
            "secret 'a' is in use by the following service: s",
        ));
        assert!(matches!(&in_use, Verdict::Error(e) if code::is(e, Code::InUse)));
        assert!(matches!(
            wire::decode(&answer(404, "no such secret")),
            Verdict::Absent
        ));
    }

    fn dialect() -> DockerSwarm {
        DockerSwarm::new(Shared::new(1, 1, crate::metrics::Metrics::new()))
    }

    #[test]
    fn tls_needs_cert_and_key_together_and_valid_pem() {
        let dial = |creds: &Credentials| dialect().dial("tcp://127.0.0.1:1", creds).map(|_| ());
        let creds = Credentials::new([("tls.crt".to_owned(), SecretValue::from("x"))].into());
        let err = dial(&creds).unwrap_err();
        assert_eq!(err.class, ErrorClass::Credentials);
        let creds = Credentials::new(
            [("ca.crt".to_owned(), SecretValue::from("not a certificate"))].into(),
        );
        let err = dial(&creds).unwrap_err();
        assert_eq!(err.reason, "InvalidCredentials");
        assert!(!err.message.contains("not a certificate"));
    }

    #[test]
    fn endpoints_are_checked() {
        let none = Credentials::default();
        for bad in ["ftp://x", "tcp://h:1/path"] {
            let err = dialect().dial(bad, &none).unwrap_err();
            assert_eq!(err.reason, "InvalidEndpoint", "{bad}");
        }
        let (_, root) = dialect().dial("tcp://127.0.0.1:1", &none).unwrap();
        assert_eq!(root, "http://127.0.0.1:1");
        let (_, root) = dialect().dial("unix:///run/docker.sock", &none).unwrap();
        assert_eq!(root, "http://docker");
    }
}
