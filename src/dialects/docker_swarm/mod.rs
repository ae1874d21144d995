//! Docker Swarm secrets through the Docker Engine API's `/secrets` endpoints on a swarm manager, with `bollard`.
//! What users set and see (endpoint, credentials, naming, labels, pruning, requests, errors) is in
//! `docs/src/dialects/docker-swarm.md`; this is how it is built.
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

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine;
use bollard::errors::Error as DockerError;
use bollard::models::{Secret, SecretSpec};
use bollard::query_parameters::{ListSecretsOptions, UpdateSecretOptions};
use bollard::{BollardRequest, Docker};
use rustls::pki_types::ServerName;
use zeroize::Zeroizing;

mod transport;

use transport::Dial;

use super::kit::ownership::{self, Keys, Marker};
use super::kit::{Failure, Idempotency, RetryPolicy, credentials};
use super::{Dialect, DialectError, ErrorClass, Outcome, Request, Shared};
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
const MAX_CACHED_CLIENTS: usize = 64;

pub struct DockerSwarm {
    shared: Shared,
    /// Negotiated clients by endpoint and credentials fingerprint.
    clients: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Docker>>>>,
}

impl DockerSwarm {
    pub fn new(shared: Shared) -> Self {
        DockerSwarm {
            shared,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// One Docker API call under the kit's rules: paced by the store's rate, bounded by the deadline with its
    /// answer (bollard reads and decodes the body inside the call's future), metered, and retried only where
    /// that cannot do anything twice. Errors `hand_back` accepts are the caller's to read (`Ok(Err(_))`).
    async fn exchange<T, F, Fut>(
        &self,
        pace: (&str, Option<crate::api::RateLimit>),
        operation: &'static str,
        idempotency: Idempotency,
        hand_back: fn(&DockerError) -> bool,
        call: F,
    ) -> Result<Result<T, DockerError>, DialectError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, DockerError>>,
    {
        let deadline = self.shared.deadline;
        RetryPolicy::default()
            .run(
                idempotency,
                |_| {
                    let call = &call;
                    async move {
                        self.shared.limiter.acquire_for(pace.1, pace.0).await;
                        let Ok(result) = tokio::time::timeout(deadline, call()).await else {
                            self.count(operation, ErrorClass::Retry.as_str());
                            return Err(Failure::maybe_applied(DialectError::retry(
                                "BackendTimeout",
                                format!(
                                    "{operation}: Docker did not answer within {}s",
                                    deadline.as_secs_f32()
                                ),
                            )));
                        };
                        self.count(operation, outcome(&result));
                        match result {
                            Err(e) if !hand_back(&e) => {
                                Err(Failure::answered(map_error(&e, operation)))
                            }
                            other => Ok(other),
                        }
                    }
                },
                |attempt, f| {
                    tracing::debug!(
                        dialect = DIALECT,
                        operation,
                        attempt,
                        reason = f.error.reason,
                        "retrying after a transient Docker error"
                    );
                },
            )
            .await
    }

    fn count(&self, operation: &str, outcome: &str) {
        self.shared
            .metrics
            .backend_request(DIALECT, operation, outcome);
    }

    async fn client(&self, endpoint: &str, creds: &Credentials) -> Result<Docker, DialectError> {
        let key = format!("{endpoint}#{}", creds.fingerprint());
        let cell = {
            let mut clients = self.clients.lock().expect("client cache lock poisoned");
            if clients.len() >= MAX_CACHED_CLIENTS && !clients.contains_key(&key) {
                clients.clear();
            }
            clients.entry(key).or_default().clone()
        };
        // Many SecretSyncs start at once after a restart: one of them negotiates, the others on the same
        // endpoint wait for it. A failure is not kept, so the next reconcile tries again.
        let docker = cell
            .get_or_try_init(|| async {
                let docker = connect(endpoint, creds)?;
                self.exchange(
                    (endpoint, None),
                    "version",
                    Idempotency::Idempotent,
                    |_| false,
                    || docker.clone().negotiate_version(),
                )
                .await?
                .map_err(|e| map_error(&e, "negotiating the API version"))
            })
            .await?;
        Ok(docker.clone())
    }

    async fn list(&self, ctx: &Ctx<'_>) -> Result<Vec<Secret>, DialectError> {
        let options = ListSecretsOptions {
            filters: Some(HashMap::from([(
                "name".to_owned(),
                vec![ctx.base.to_owned()],
            )])),
        };
        self.exchange(
            ctx.pace(),
            "list",
            Idempotency::Idempotent,
            |_| false,
            || ctx.docker.list_secrets(Some(options.clone())),
        )
        .await?
        .map_err(|e| map_error(&e, "listing secrets"))
    }

    async fn inspect(&self, ctx: &Ctx<'_>, id: &str) -> Result<Option<Secret>, DialectError> {
        let result = self
            .exchange(
                ctx.pace(),
                "inspect",
                Idempotency::Idempotent,
                |e| status_of(e) == Some(404),
                || ctx.docker.inspect_secret(id),
            )
            .await?;
        match result {
            Ok(secret) => Ok(Some(secret)),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(map_error(&e, "reading a secret")),
        }
    }

    /// Deletes one secret; `Ok(false)` when a service still uses it.
    async fn remove(
        &self,
        ctx: &Ctx<'_>,
        id: &str,
        operation: &'static str,
    ) -> Result<bool, DialectError> {
        let result = self
            .exchange(
                ctx.pace(),
                operation,
                Idempotency::Idempotent,
                |e| in_use(e) || status_of(e) == Some(404),
                || ctx.docker.delete_secret(id),
            )
            .await?;
        match result {
            Err(e) if in_use(&e) => Ok(false),
            Ok(()) => Ok(true),
            Err(e) if status_of(&e) == Some(404) => Ok(true),
            Err(e) => Err(map_error(&e, "deleting a secret")),
        }
    }

    async fn create(
        &self,
        ctx: &Ctx<'_>,
        req: &Request<'_>,
        value: &SecretValue,
    ) -> Result<RemoteRef, DialectError> {
        let name = full_name(ctx.base, &req.desired.digest);
        let labels = labels_for(req, ctx.base);
        // bollard logs the JSON it serializes at debug level. It serializes the spec without `Data`, and the
        // body with the value is put in place afterwards by a request modifier, which runs after that log line.
        let data = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(value.expose()));
        let body = Zeroizing::new(
            serde_json::to_vec(&CreateBody {
                name: &name,
                labels: &labels,
                data: &data,
            })
            .map_err(|e| {
                DialectError::permanent("Serialization", format!("cannot encode a secret: {e}"))
            })?,
        );
        let body = bytes::Bytes::from_owner(body);
        let docker = ctx
            .docker
            .clone()
            .with_request_modifier(move |request: BollardRequest| {
                if request.method().as_str() == "POST"
                    && request.uri().path().ends_with("/secrets/create")
                {
                    let (parts, _) = request.into_parts();
                    BollardRequest::from_parts(parts, bollard::body_full(body.clone()))
                } else {
                    request
                }
            });
        let spec = SecretSpec {
            name: Some(name.clone()),
            labels: Some(labels),
            ..Default::default()
        };
        // A create that may have reached the daemon is not sent again: the 409 below, or the next reconcile,
        // finds it by its name and digest.
        let result = self
            .exchange(
                ctx.pace(),
                "create",
                Idempotency::NotIdempotent,
                |e| status_of(e) == Some(409),
                || docker.create_secret(spec.clone()),
            )
            .await?;
        match result {
            Ok(created) => {
                // The create reply has only the ID; the version is read back so the status can show it.
                let secret = self.inspect(ctx, &created.id).await?;
                let version = secret.as_ref().and_then(version_of);
                Ok(RemoteRef {
                    name,
                    id: Some(created.id),
                    version: version.map(|v| v.to_string()),
                })
            }
            Err(e) if status_of(&e) == Some(409) => {
                // Our own earlier create whose reply was lost holds the name with the same digest: that is
                // success. Anything else holding it is a clash (names are unique case-insensitively).
                match self.inspect(ctx, &name).await? {
                    Some(secret)
                        if owned_by(&secret, &req.desired.owner)
                            && marker_of(&secret).and_then(|m| m.digest).as_ref()
                                == Some(&req.desired.digest) =>
                    {
                        Ok(reference(&secret))
                    }
                    _ => Err(map_error(&e, "creating a secret")),
                }
            }
            Err(e) => Err(map_error(&e, "creating a secret")),
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
        let labels = labels_for(req, ctx.base);
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
            let spec = SecretSpec {
                name: Some(observed.name.clone()),
                labels: Some(labels.clone()),
                ..Default::default()
            };
            let options = UpdateSecretOptions {
                version: index as i64,
            };
            // Setting labels at a version is idempotent: a repeat after success is refused as out of sequence.
            let result = self
                .exchange(
                    ctx.pace(),
                    "update",
                    Idempotency::Idempotent,
                    out_of_sequence,
                    || ctx.docker.update_secret(&id, spec.clone(), options.clone()),
                )
                .await?;
            match result {
                Ok(()) => {
                    let secret = self.inspect(ctx, &id).await?;
                    return Ok(RemoteRef {
                        name: observed.name.clone(),
                        id: Some(id),
                        version: secret.as_ref().and_then(version_of).map(|v| v.to_string()),
                    });
                }
                Err(e) if out_of_sequence(&e) && attempt < UPDATE_ATTEMPTS => version = None,
                Err(e) => return Err(map_error(&e, "updating a secret's labels")),
            }
        }
    }

    /// Deletes the superseded secrets of this SecretSync; a secret still in use is kept and reported.
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
}

/// The body of `POST /secrets/create`.
#[derive(serde::Serialize)]
struct CreateBody<'a> {
    #[serde(rename = "Name")]
    name: &'a str,
    #[serde(rename = "Labels")]
    labels: &'a HashMap<String, String>,
    /// Standard base64 (the API page says URL-safe, but the daemon decodes the standard alphabet).
    #[serde(rename = "Data")]
    data: &'a str,
}

/// One reconcile's connection and names.
struct Ctx<'a> {
    docker: Docker,
    endpoint: &'a str,
    base: &'a str,
    rate: Option<crate::api::RateLimit>,
}

impl Ctx<'_> {
    fn pace(&self) -> (&str, Option<crate::api::RateLimit>) {
        (self.endpoint, self.rate)
    }
}

impl DockerSwarm {
    async fn ctx<'a>(&self, req: &'a Request<'a>) -> Result<Ctx<'a>, DialectError> {
        let endpoint = endpoint(req.target);
        let docker = self.client(endpoint, req.credentials).await?;
        Ok(Ctx {
            docker,
            endpoint,
            base: req.remote_name,
            rate: req.rate_limit,
        })
    }
}

fn endpoint(target: &Target) -> &str {
    target.endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT)
}

/// `<remoteName>-<first 8 hex digits of the digest>`.
pub fn full_name(base: &str, digest: &str) -> String {
    format!("{base}-{}", short(digest, SUFFIX_LEN))
}

/// Swarm's secret name rule: `^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$`, at most 64 characters.
pub fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_alphanumeric();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            bytes.len() <= 64
                && alnum(first)
                && alnum(last)
                && bytes
                    .iter()
                    .all(|b| alnum(b) || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
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
    let mut labels: HashMap<String, String> = req
        .desired
        .metadata
        .labels
        .iter()
        .filter(|(k, _)| !ownership::is_reserved(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.extend(LABELS.pairs(&Marker::of(req.desired)));
    labels.insert(LABEL_REMOTE_NAME.to_owned(), base.to_owned());
    labels
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
    let labels: BTreeMap<String, String> = secret
        .spec
        .as_ref()
        .and_then(|s| s.labels.as_ref())
        .map(|l| {
            l.iter()
                .filter(|(k, _)| !ownership::is_reserved(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
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

fn status_of(err: &DockerError) -> Option<u16> {
    match err {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

fn server_message(err: &DockerError) -> &str {
    match err {
        DockerError::DockerResponseServerError { message, .. } => message,
        _ => "",
    }
}

fn in_use(err: &DockerError) -> bool {
    status_of(err) == Some(400) && server_message(err).contains("in use")
}

fn out_of_sequence(err: &DockerError) -> bool {
    server_message(err).contains("update out of sequence")
}

/// The metrics outcome of one call.
fn outcome<T>(result: &Result<T, DockerError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) if in_use(e) => "in_use",
        Err(e) => map_status(status_of(e), server_message(e), "")
            .class
            .as_str(),
    }
}

/// The condition for an error. Docker's messages name secrets and services, never values.
fn map_error(err: &DockerError, doing: &str) -> DialectError {
    match err {
        DockerError::DockerResponseServerError { .. } => {
            map_status(status_of(err), server_message(err), doing)
        }
        DockerError::JsonDataError { .. } | DockerError::JsonSerdeError { .. } => {
            DialectError::retry(
                "BadResponse",
                format!("{doing}: Docker's answer is not the JSON expected"),
            )
        }
        other if transport::is_too_large(other) => DialectError::permanent(
            "ResponseTooLarge",
            format!("{doing}: {}", transport::AnswerTooLarge),
        ),
        other if super::kit::tls::identity_refused(other) => DialectError::credentials(
            "CertificateRefused",
            format!("{doing}: Docker refused the client certificate (tls.crt and tls.key)"),
        ),
        other => DialectError::retry(
            "BackendUnreachable",
            format!("{doing}: cannot reach Docker{}", connection_cause(other)),
        ),
    }
}

/// Why a connection failed, in words that quote nothing the other end sent: an I/O error's kind (refused, reset,
/// timed out), a timeout, or nothing.
fn connection_cause(err: &DockerError) -> String {
    match err {
        DockerError::RequestTimeoutError => ": timed out".to_owned(),
        DockerError::IOError { err } => format!(": {}", err.kind()),
        other => {
            let mut source = std::error::Error::source(other);
            while let Some(e) = source {
                if let Some(io) = e.downcast_ref::<std::io::Error>() {
                    return format!(": {}", io.kind());
                }
                source = e.source();
            }
            String::new()
        }
    }
}

fn map_status(status: Option<u16>, message: &str, doing: &str) -> DialectError {
    let Some(status) = status else {
        return DialectError::retry(
            "BackendUnreachable",
            format!("{doing}: cannot reach Docker"),
        );
    };
    // The answer's own message is never shown: the endpoint may be something other than Docker (an internal
    // service a Store's author wanted to read through the controller). Our words for the codes Docker documents.
    let said = |what: &str| format!("{doing}: Docker answered HTTP {status} ({what})");
    match status {
        400 if message.contains("in use") => {
            DialectError::conflict("SecretInUse", said("the secret is in use by a service"))
        }
        400 => DialectError::permanent("BadParameter", said("bad parameter")),
        404 => DialectError::retry("SecretNotFound", said("no such secret")),
        409 => DialectError::conflict("NameTaken", said("the name is taken")),
        500 if message.contains("update out of sequence") => {
            DialectError::conflict("UpdateOutOfSequence", said("update out of sequence"))
        }
        503 => DialectError::retry("NotSwarmManager", said("the node is not a swarm manager")),
        _ => DialectError::from_status(status, &format!("{doing}: Docker answered"), None),
    }
}

/// A bollard client for `endpoint`, with TLS when credentials (or `https://`) ask for it; every call on a
/// connection of its own whose answer is capped ([`transport`]).
fn connect(endpoint: &str, creds: &Credentials) -> Result<Docker, DialectError> {
    let dial = if let Some(path) = endpoint.strip_prefix("unix://") {
        Dial::Unix(path.into())
    } else {
        let (tls, host) = if let Some(host) = endpoint.strip_prefix("https://") {
            (true, host)
        } else if let Some(host) = endpoint
            .strip_prefix("tcp://")
            .or_else(|| endpoint.strip_prefix("http://"))
        {
            let tls = ["ca.crt", "tls.crt", "tls.key"]
                .iter()
                .any(|k| matches!(credentials::text(creds, k), Ok(Some(_)) | Err(_)));
            (tls && !endpoint.starts_with("http://"), host)
        } else {
            return Err(DialectError::permanent(
                "InvalidEndpoint",
                format!("endpoint {endpoint} is neither unix://, tcp:// nor https://"),
            ));
        };
        let addr = host.trim_end_matches('/').to_owned();
        if tls {
            let name = addr
                .rsplit_once(':')
                .map_or(addr.as_str(), |(h, _)| h)
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let server_name = ServerName::try_from(name).map_err(|_| {
                DialectError::permanent(
                    "InvalidEndpoint",
                    format!("endpoint {endpoint} names no valid host for TLS"),
                )
            })?;
            Dial::Tls {
                addr,
                server_name,
                config: Arc::new(tls_config(creds)?),
            }
        } else {
            Dial::Tcp(addr)
        }
    };
    transport::docker(dial)
        .map_err(|e| DialectError::retry("BackendUnreachable", format!("cannot reach Docker: {e}")))
}

fn tls_config(creds: &Credentials) -> Result<rustls::ClientConfig, DialectError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let bad = |what: &str| {
        DialectError::credentials(
            "InvalidCredentials",
            format!("credentials key {what} is not valid PEM"),
        )
    };
    let mut roots = rustls::RootCertStore::empty();
    match credentials::text(creds, "ca.crt")? {
        Some(ca) => {
            for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                roots
                    .add(cert.map_err(|_| bad("ca.crt"))?)
                    .map_err(|_| bad("ca.crt"))?;
            }
            if roots.is_empty() {
                return Err(bad("ca.crt"));
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DialectError::permanent("TlsSetup", format!("TLS setup failed: {e}")))?
        .with_root_certificates(roots);
    match (
        credentials::text(creds, "tls.crt")?,
        credentials::text(creds, "tls.key")?,
    ) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| bad("tls.crt"))?;
            if chain.is_empty() {
                return Err(bad("tls.crt"));
            }
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|_| bad("tls.key"))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                DialectError::credentials(
                    "InvalidCredentials",
                    format!("tls.crt and tls.key do not make a client identity: {e}"),
                )
            })
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => Err(DialectError::credentials(
            "InvalidCredentials",
            "tls.crt and tls.key must be given together",
        )),
    }
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
        if value.is_empty() || value.len() > MAX_VALUE_LEN {
            return Err(DialectError::permanent(
                "PayloadTooLarge",
                format!(
                    "Docker secrets hold 1 to {MAX_VALUE_LEN} bytes; the value has {} bytes",
                    value.len()
                ),
            ));
        }
        let ep = endpoint(req.target);
        if !["unix://", "tcp://", "https://", "http://"]
            .iter()
            .any(|s| ep.starts_with(s))
        {
            return Err(DialectError::permanent(
                "InvalidEndpoint",
                format!("endpoint {ep} is neither unix://, tcp:// nor https://"),
            ));
        }
        let has = |k| credentials::text(req.credentials, k).map(|v| v.is_some());
        if has("tls.crt")? != has("tls.key")? {
            return Err(DialectError::credentials(
                "InvalidCredentials",
                "tls.crt and tls.key must be given together",
            ));
        }
        Ok(())
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
    use crate::dialects::fixtures::desired;

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
            version: Some(bollard::models::ObjectVersion { index: Some(10) }),
            created_at: Some(created.to_owned()),
            spec: Some(SecretSpec {
                name: Some(name.to_owned()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn request<'a>(
        target: &'a Target,
        desired: &'a crate::plan::Desired,
        creds: &'a Credentials,
    ) -> Request<'a> {
        Request {
            rate_limit: None,
            target,
            remote_name: "db",
            credentials: creds,
            desired,
            last: None,
            store: None,
        }
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

    fn server(status: u16, message: &str) -> DockerError {
        DockerError::DockerResponseServerError {
            status_code: status,
            message: message.to_owned(),
        }
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
                404,
                "secret x not found",
                ErrorClass::Retry,
                "SecretNotFound",
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
            let err = map_error(&server(status, message), "doing");
            assert_eq!(
                (err.class, err.reason),
                (class, reason),
                "{status} {message}"
            );
            // Never the answer's own words (the endpoint may not be Docker at all): the status and ours.
            assert!(!err.message.contains(message), "{err}");
            assert!(err.message.contains(&status.to_string()), "{err}");
            let expected = if reason == "SecretInUse" {
                "in_use"
            } else {
                class.as_str()
            };
            assert_eq!(outcome::<()>(&Err(server(status, message))), expected);
        }
        assert!(in_use(&server(
            400,
            "secret 'a' is in use by the following service: s"
        )));
        assert!(out_of_sequence(&server(500, "update out of sequence")));
        assert!(!out_of_sequence(&server(500, "other")));
    }

    #[test]
    fn tls_needs_cert_and_key_together_and_valid_pem() {
        let creds = Credentials::new([("tls.crt".to_owned(), SecretValue::from("x"))].into());
        let err = tls_config(&creds).unwrap_err();
        assert_eq!(err.class, ErrorClass::Credentials);
        let creds = Credentials::new(
            [("ca.crt".to_owned(), SecretValue::from("not a certificate"))].into(),
        );
        let err = tls_config(&creds).unwrap_err();
        assert_eq!(err.reason, "InvalidCredentials");
        assert!(!err.message.contains("not a certificate"));
    }

    #[test]
    fn endpoints_are_checked() {
        let err = connect("ftp://x", &Credentials::default()).unwrap_err();
        assert_eq!(err.reason, "InvalidEndpoint");
        assert!(connect("tcp://127.0.0.1:1", &Credentials::default()).is_ok());
    }
}
