//! Service Fabric secret resources (`Resources/Secrets` of the cluster's HTTP gateway, Central Secret Service). What
//! users set and see (settings, credentials, naming, markers, requests, errors) is in
//! `docs/src/dialects/service-fabric-mesh.md`; this is how it is built.
//!
//! # Why the wire flow is shaped this way
//!
//! - Version names are the first 20 hex digits of the value's keyed digest. Versions are immutable, so "is the
//!   current value there" is one `GET` of a name, re-adding the same value is harmless, and a crash between the
//!   version's `PUT` and the resource's `PUT` (which records the marker) heals on the next reconcile by writing the
//!   same version again. For the same reason `verifyValues` adds nothing to integrity: the name already pins the
//!   value; `list_value` only proves the value is readable where applications read it.
//! - Secret resources have no labels, so the marker is the last line of the description (the kit's
//!   `ownership::description` codec) and carries the list of versions SecretSync wrote. Pruning deletes only names
//!   from that list: a version someone else added is never ours to delete, even when it is older.
//! - A new value writes the version first, prunes, and records the marker last: an interruption leaves the old
//!   marker, whose digest the next reconcile sees as a difference.
//! - Service Fabric has no conditional create: a resource made by someone else between `observe` and the create's
//!   `PUT` cannot be told apart. The window is one reconcile.
//! - A 201 `Creating` or a 202 leaves the version unwritten and the status naming no version: a version the status
//!   names is always one that was written. The backend's `statusDetails` is free text and never leaves the dialect.
//! - `kind` and `contentType` are immutable in Service Fabric, hence `Support::Immutable` for the content type and
//!   `allowReplace` (delete, then create) rather than a patch.
//!
//! # Retries
//!
//! Every request but the resource's first create is a `PUT` of a fixed body, a `DELETE`, a `GET` or a reading
//! `POST`, so the kit's transport may repeat all of them. FabricError bodies are decoded for their code only, from a
//! closed list; `Message` is never read into an error.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::kit::ownership::{Marker, description};
use super::kit::session::Session;
use super::kit::tls::ClientCache;
use super::kit::{
    Auth, Exchange, Idempotency, NoAuth, Reply, StaticBearer, Transport, Verdict, credentials,
    decode_with,
};
use super::{Dialect, DialectError, Outcome, Request, Shared};
use crate::api::{DialectKind, ServiceFabricMeshSettings, Target};
use crate::plan::digest::short;
use crate::plan::{
    Capabilities, Detail, Metadata, Observed, Remote, RemoteRef, RemoteState, Support, Write,
};
use crate::value::{Credentials, SecretValue};

const DIALECT: &str = "ServiceFabricMesh";
const DEFAULT_API_VERSION: &str = "6.4-preview";
const KIND: &str = "inlinedValue";
/// The content type `observe` reports for a secret resource of another kind.
const FOREIGN_KIND: &str = "(a secret resource kind other than inlinedValue)";
/// Hex digits of the keyed digest used as the version name: 80 bits keep collisions out of reach.
const VERSION_LEN: usize = 20;
const DEFAULT_RETAIN: u32 = 2;

pub struct ServiceFabricMesh {
    transport: Transport,
    /// HTTP clients carrying a client certificate or a private CA.
    clients: ClientCache,
}

impl ServiceFabricMesh {
    pub fn new(shared: Shared) -> Self {
        ServiceFabricMesh {
            clients: ClientCache::new(&shared),
            transport: Transport::new(DIALECT, shared, decode),
        }
    }
}

/// Service Fabric's own field of the marker line: the versions SecretSync wrote, newest first.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
struct Versions {
    #[serde(
        rename = "secretsync.io/versions",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    versions: Vec<String>,
}

/// The version name for a value with this keyed digest.
fn version_name(digest: &str) -> String {
    short(digest, VERSION_LEN).to_owned()
}

/// `/Resources/Secrets/{name}`, for a valid name only. Every call builds its path here, the calls of a cleanup
/// and of a store check included (they skip `check`): a name from a SecretSync must not reach another path of the
/// store with the store's credentials (`../../$/GetClusterManifest`), nor add a query.
fn resource_path(name: &str) -> Result<String, DialectError> {
    if valid_name(name) {
        Ok(format!("/Resources/Secrets/{name}"))
    } else {
        Err(invalid_name())
    }
}

fn invalid_name() -> DialectError {
    DialectError::permanent(
        "InvalidName",
        "Service Fabric secret resource names are 1-255 letters, digits, '.', '_' and '-', \
         starting with a letter or digit",
    )
}

fn valid_name(name: &str) -> bool {
    super::kit::names::plain(name, 255, b"._-")
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceProps<'a> {
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<&'a str>,
    description: &'a str,
}

#[derive(Serialize)]
struct ResourceBody<'a> {
    name: &'a str,
    properties: ResourceProps<'a>,
}

fn resource_body(name: &str, content_type: Option<&str>, description: &str) -> Vec<u8> {
    serde_json::to_vec(&ResourceBody {
        name,
        properties: ResourceProps {
            kind: KIND,
            content_type,
            description,
        },
    })
    .expect("resource body serializes")
}

/// The add-value body. It holds the plaintext, so it lives in a buffer that is wiped when dropped.
fn value_body(version: &str, value: &str) -> Zeroizing<Vec<u8>> {
    credentials::secret_json(serde_json::json!({"name": version, "properties": {"value": value}}))
}

#[derive(Deserialize, Default)]
struct SecretResource {
    #[serde(default)]
    properties: Option<SecretProps>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct SecretProps {
    kind: Option<String>,
    content_type: Option<String>,
    description: Option<String>,
    status: Option<String>,
}

/// The FabricError codes SecretSync knows (the documented ones it maps, and the generic ones a gateway sends):
/// the only part of an error body ever shown. `Message` is never read.
const KNOWN_CODES: &[&str] = &[
    "FABRIC_E_SECRET_TYPE_CANNOT_BE_CHANGED",
    "FABRIC_E_SECRET_VERSION_ALREADY_EXISTS",
    "FABRIC_E_SECRET_INVALID",
    "FABRIC_E_CENTRAL_SECRET_SERVICE_GENERIC",
    "FABRIC_E_NOT_READY",
    "FABRIC_E_TIMEOUT",
    "FABRIC_E_SERVICE_OFFLINE",
    "FABRIC_E_NOT_PRIMARY",
    "FABRIC_E_NO_WRITE_QUORUM",
    "FABRIC_E_RECONFIGURATION_PENDING",
    "E_INVALIDARG",
    "E_ACCESSDENIED",
    "E_ABORT",
    "E_FAIL",
];

/// The FabricError code of a reply (`{"Error": {"Code": …}}`) when it is one of [`KNOWN_CODES`].
fn fabric_code(body: &[u8]) -> Option<&'static str> {
    super::kit::text::known_at(body, &["/Error/Code"], KNOWN_CODES)
}

/// The FabricError codes this dialect acts on, attached to their errors (see [`super::kit::code`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
enum Code {
    #[error("FABRIC_E_SECRET_VERSION_ALREADY_EXISTS")]
    VersionExists,
}

/// Maps a failed reply to an error, by FabricError code first, then by HTTP status.
fn map_error(status: u16, body: &[u8], retry_after: Option<Duration>) -> DialectError {
    let code = fabric_code(body);
    let detail = code.unwrap_or_default();
    let text = match (code, super::kit::text::status_words(status)) {
        (Some(c), _) => format!("Service Fabric answered HTTP {status}: {c}"),
        (None, "") => format!("Service Fabric answered HTTP {status}"),
        (None, words) => format!("Service Fabric answered HTTP {status} ({words})"),
    };
    match code {
        Some("FABRIC_E_SECRET_TYPE_CANNOT_BE_CHANGED") => DialectError::permanent(
            "Immutable",
            format!(
                "{text} (kind and contentType of a secret resource are fixed at creation; \
                 set serviceFabricMesh.allowReplace to delete and re-create it)"
            ),
        ),
        Some("FABRIC_E_SECRET_VERSION_ALREADY_EXISTS") => {
            DialectError::conflict("VersionExists", text).with_source(Code::VersionExists)
        }
        Some("FABRIC_E_SECRET_INVALID") => DialectError::permanent("InvalidSecret", text),
        Some(
            "FABRIC_E_CENTRAL_SECRET_SERVICE_GENERIC"
            | "FABRIC_E_NOT_READY"
            | "FABRIC_E_TIMEOUT"
            | "FABRIC_E_SERVICE_OFFLINE"
            | "FABRIC_E_NOT_PRIMARY"
            | "FABRIC_E_NO_WRITE_QUORUM"
            | "FABRIC_E_RECONFIGURATION_PENDING",
        ) => DialectError::retry("BackendError", text).with_retry_after(retry_after),
        _ if status == 401 => DialectError::credentials(
            "Unauthorized",
            format!(
                "{text} (the gateway refused the credentials, or the Central Secret Service is being \
                 removed)"
            ),
        ),
        _ => DialectError::from_status(status, detail, retry_after),
    }
}

/// Service Fabric's reading of an answer: 404 is "no such resource or version", failures by [`map_error`].
fn decode(reply: &Reply) -> Verdict {
    decode_with(reply, map_error)
}

fn settings(target: &Target) -> ServiceFabricMeshSettings {
    target
        .service_fabric_mesh
        .as_deref()
        .cloned()
        .unwrap_or_default()
}

/// Checks the endpoint and the credentials against each other; shared by `check` and every call.
fn check_access(target: &Target, creds: &Credentials) -> Result<url::Url, DialectError> {
    let url = super::kit::endpoint::required(
        target,
        "ServiceFabricMesh needs the store's endpoint (the cluster's HTTP gateway, e.g. https://cluster:19080)",
    )?;
    let https = match url.scheme() {
        "https" => true,
        "http" => false,
        other => {
            return Err(DialectError::permanent(
                "InvalidSpec",
                format!("the store's endpoint must be http:// or https://, not {other}://"),
            ));
        }
    };
    let tls = super::kit::tls::own_pki(creds)?;
    let token = credentials::text(creds, "token")?;
    if !https && (!tls.is_default() || token.is_some()) {
        return Err(DialectError::permanent(
            "InsecureEndpoint",
            "a client certificate, token or CA is only used over https://; the store's endpoint is http://",
        ));
    }
    Ok(url)
}

impl ServiceFabricMesh {
    /// One reconcile's connection to the gateway: every URL ends with `?api-version=…`.
    fn conn(&self, req: &Request<'_>) -> Result<Session<'_>, DialectError> {
        let url = check_access(req.target, req.credentials)?;
        let creds = req.credentials;
        let client = self.clients.client(super::kit::tls::own_pki(creds)?)?;
        let api_version = settings(req.target)
            .api_version
            .unwrap_or_else(|| DEFAULT_API_VERSION.to_owned());
        let auth: Box<dyn Auth> = match credentials::text(creds, "token")? {
            Some(t) => Box::new(StaticBearer(Zeroizing::new(t.to_owned()))),
            None => Box::new(NoAuth),
        };
        Ok(Session {
            transport: &self.transport,
            client,
            base: url.as_str().trim_end_matches('/').to_owned(),
            suffix: format!("?api-version={api_version}"),
            rate: req.rate_limit,
            auth,
        })
    }

    /// Sends one request to `{base}{path}?api-version=…` through the kit's transport. Every Service Fabric
    /// request SecretSync makes is idempotent (a `PUT` of a named resource or of a version named by the value's
    /// digest, a `GET`, a `DELETE`, or the reading `POST …/list_value`).
    async fn call(
        &self,
        conn: &Session<'_>,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        operation: &'static str,
    ) -> Result<Reply, DialectError> {
        let url = conn.url(path);
        let mut exchange =
            Exchange::new(operation, &method, &url).idempotency(Idempotency::Idempotent);
        if let Some(b) = body {
            exchange = exchange.body("application/json; charset=utf-8", b);
        }
        conn.send(exchange).await
    }

    async fn get_resource(
        &self,
        conn: &Session<'_>,
        name: &str,
    ) -> Result<Option<SecretProps>, DialectError> {
        let reply = self
            .call(conn, Method::GET, &resource_path(name)?, None, "get_secret")
            .await?;
        if reply.absent {
            return Ok(None);
        }
        let parsed: SecretResource = serde_json::from_slice(&reply.body).map_err(|e| {
            DialectError::retry(
                "BackendError",
                format!(
                    "Service Fabric sent an unreadable secret resource ({})",
                    super::kit::text::json_position(&e)
                ),
            )
        })?;
        Ok(Some(parsed.properties.unwrap_or_default()))
    }

    /// Creates or updates the resource; returns the status the backend reported, `None` for 202 (accepted).
    async fn put_resource(
        &self,
        conn: &Session<'_>,
        name: &str,
        content_type: Option<&str>,
        description: &str,
    ) -> Result<Option<String>, DialectError> {
        let body = resource_body(name, content_type, description);
        let reply = self
            .call(
                conn,
                Method::PUT,
                &resource_path(name)?,
                Some(&body),
                "put_secret",
            )
            .await?;
        match reply.status {
            202 => Ok(None),
            _ if reply.absent => Err(map_error(404, &reply.body, None)),
            _ => {
                let parsed: SecretResource =
                    serde_json::from_slice(&reply.body).unwrap_or_default();
                Ok(Some(
                    parsed
                        .properties
                        .and_then(|p| p.status)
                        // 201 means created, and a body without status is taken at its word.
                        .unwrap_or_else(|| {
                            if reply.status == 201 {
                                "Creating".to_owned()
                            } else {
                                "Ready".to_owned()
                            }
                        }),
                ))
            }
        }
    }

    async fn delete_resource(&self, conn: &Session<'_>, name: &str) -> Result<(), DialectError> {
        self.call(
            conn,
            Method::DELETE,
            &resource_path(name)?,
            None,
            "delete_secret",
        )
        .await?;
        Ok(())
    }

    async fn add_value(
        &self,
        conn: &Session<'_>,
        name: &str,
        version: &str,
        value: &SecretValue,
    ) -> Result<(), DialectError> {
        let text = value.expose_str().ok_or_else(not_text)?;
        let body = value_body(version, text);
        let reply = self
            .call(
                conn,
                Method::PUT,
                &format!("{}/values/{version}", resource_path(name)?),
                Some(&body),
                "put_value",
            )
            .await;
        match reply {
            // The version name is this value's keyed digest: only someone holding the key wrote it, with this
            // value.
            Err(e) if super::kit::code::is(&e, Code::VersionExists) => Ok(()),
            Err(e) => Err(e),
            Ok(r) if r.absent => Err(map_error(404, &r.body, None)),
            Ok(_) => Ok(()),
        }
    }

    /// Whether the version exists (by metadata `GET`, or by reading the value back when verifying).
    async fn has_value(
        &self,
        conn: &Session<'_>,
        name: &str,
        version: &str,
        verify: bool,
    ) -> Result<bool, DialectError> {
        let reply = if verify {
            self.call(
                conn,
                Method::POST,
                &format!("{}/values/{version}/list_value", resource_path(name)?),
                None,
                "show_value",
            )
            .await?
        } else {
            self.call(
                conn,
                Method::GET,
                &format!("{}/values/{version}", resource_path(name)?),
                None,
                "get_value",
            )
            .await?
        };
        match reply.absent {
            true => Ok(false),
            false if verify => {
                #[derive(Deserialize)]
                struct Shown {
                    value: Option<String>,
                }
                let shown: Shown = serde_json::from_slice(&reply.body).map_err(|_| {
                    DialectError::retry(
                        "BackendError",
                        "Service Fabric sent an unreadable list_value reply",
                    )
                })?;
                let present = shown.value.as_deref().is_some_and(|v| !v.is_empty());
                if let Some(v) = shown.value {
                    drop(Zeroizing::new(v));
                }
                Ok(present)
            }
            false => Ok(true),
        }
    }

    async fn delete_value(&self, conn: &Session<'_>, name: &str, version: &str) -> bool {
        let Ok(path) = resource_path(name) else {
            return false;
        };
        match self
            .call(
                conn,
                Method::DELETE,
                &format!("{path}/values/{version}"),
                None,
                "delete_value",
            )
            .await
        {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(dialect = DIALECT, error = %e, "could not delete a superseded value version");
                false
            }
        }
    }

    fn reference(name: &str, version: &str) -> RemoteRef {
        RemoteRef {
            name: name.to_owned(),
            id: Some(format!("{name}:{version}")),
            version: Some(version.to_owned()),
        }
    }

    /// The description to write: the user's, and the marker of the desired value with `versions`.
    fn description_for(req: &Request<'_>, versions: Vec<String>) -> String {
        description::join(
            req.desired.metadata.description.as_deref(),
            &Marker::of(req.desired),
            Versions { versions },
        )
    }

    async fn create(
        &self,
        conn: &Session<'_>,
        req: &Request<'_>,
        value: &SecretValue,
    ) -> Result<Outcome, DialectError> {
        let name = req.remote_name;
        let version = version_name(&req.desired.digest);
        let meta = &req.desired.metadata;
        let description = Self::description_for(req, vec![version.clone()]);
        let status = self
            .put_resource(conn, name, meta.content_type.as_deref(), &description)
            .await?;
        match status.as_deref() {
            Some("Ready") => {
                self.add_value(conn, name, &version, value).await?;
                Ok(Outcome::Ready(Self::reference(name, &version)))
            }
            Some("Failed") => Err(DialectError::permanent(
                "BackendFailed",
                "Service Fabric reports the new secret resource as Failed",
            )),
            // Creating (201) or accepted (202): the value follows once GET reports Ready. No version exists
            // yet, so the reference names none (a version the status names is one that was written).
            _ => Ok(Outcome::Creating(RemoteRef {
                name: name.to_owned(),
                id: None,
                version: None,
            })),
        }
    }

    /// Adds the value as a new version, prunes superseded ones and records the new marker: one request per
    /// step, from what `observe` read (the versions SecretSync wrote before are in `observed`).
    async fn new_version(
        &self,
        conn: &Session<'_>,
        req: &Request<'_>,
        observed: &Observed,
        value: &SecretValue,
        retain: usize,
    ) -> Result<Outcome, DialectError> {
        let name = req.remote_name;
        let version = version_name(&req.desired.digest);
        self.add_value(conn, name, &version, value).await?;

        let mut history = vec![version.clone()];
        history.extend(written(observed).iter().filter(|v| **v != version).cloned());
        let mut kept: Vec<String> = history.iter().take(retain + 1).cloned().collect();
        for superseded in history.iter().skip(retain + 1) {
            if !self.delete_value(conn, name, superseded).await {
                // Still ours and still there: keep it listed so a later change deletes it.
                kept.push(superseded.clone());
            }
        }
        let meta = &req.desired.metadata;
        let description = Self::description_for(req, kept);
        let status = self
            .put_resource(conn, name, meta.content_type.as_deref(), &description)
            .await?;
        Ok(settled(status, Self::reference(name, &version)))
    }

    async fn update_metadata(
        &self,
        conn: &Session<'_>,
        req: &Request<'_>,
        observed: &Observed,
    ) -> Result<Outcome, DialectError> {
        let name = req.remote_name;
        // Only metadata changes: the value (and its digest) is the one observe found, present.
        let digest = match observed {
            Observed::Present(r) => r.digest.clone(),
            Observed::Absent => None,
        }
        .unwrap_or_else(|| req.desired.digest.clone());
        let marker = Marker {
            owner: req.desired.owner.clone(),
            digest: Some(digest.clone()),
        };
        let meta = &req.desired.metadata;
        let description = description::join(
            meta.description.as_deref(),
            &marker,
            Versions {
                versions: written(observed).to_vec(),
            },
        );
        let status = self
            .put_resource(conn, name, meta.content_type.as_deref(), &description)
            .await?;
        let version = match observed {
            Observed::Present(r) => r.reference.version.clone(),
            Observed::Absent => None,
        }
        .unwrap_or_else(|| version_name(&digest));
        Ok(settled(status, Self::reference(name, &version)))
    }
}

/// The versions SecretSync wrote before, as `observe` read them from the marker.
fn written(observed: &Observed) -> &[String] {
    match observed {
        Observed::Present(r) => r
            .detail
            .get::<Versions>()
            .map_or(&[], |v| v.versions.as_slice()),
        Observed::Absent => &[],
    }
}

/// The outcome of a write to an existing resource, from the status the PUT reported.
fn settled(status: Option<String>, reference: RemoteRef) -> Outcome {
    match status.as_deref() {
        Some("Ready") | Some("Upgrading") => Outcome::Ready(reference),
        _ => Outcome::Creating(reference),
    }
}

fn not_text() -> DialectError {
    DialectError::permanent(
        "ValueNotText",
        "Service Fabric inlined secret values are text; the source value is not UTF-8 \
         (push a key holding text, or the whole Secret, which base64-encodes binary keys)",
    )
}

#[async_trait]
impl Dialect for ServiceFabricMesh {
    fn kind(&self) -> DialectKind {
        DialectKind::ServiceFabricMesh
    }

    fn capabilities(&self, _target: &Target) -> Capabilities {
        Capabilities {
            content_type: Support::Immutable,
            description: Support::Mutable,
            labels: Support::Unsupported,
        }
    }

    fn allows_replace(&self, target: &Target) -> bool {
        settings(target).allow_replace
    }

    fn check(&self, req: &Request<'_>, value: &SecretValue) -> Result<(), DialectError> {
        check_access(req.target, req.credentials)?;
        if !valid_name(req.remote_name) {
            return Err(invalid_name());
        }
        let caps = self.capabilities(req.target);
        super::kit::metadata::refuse_unsupported("Service Fabric", caps, &req.desired.metadata)?;
        if let Some(v) = settings(req.target).api_version
            && (v.is_empty()
                || !v
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'))
        {
            return Err(DialectError::permanent(
                "InvalidSpec",
                "serviceFabricMesh.apiVersion must be letters, digits, '.' and '-' (e.g. 6.4-preview)",
            ));
        }
        value.expose_str().ok_or_else(not_text)?;
        Ok(())
    }

    async fn observe(&self, req: &Request<'_>) -> Result<Observed, DialectError> {
        let conn = self.conn(req)?;
        let name = req.remote_name;
        let Some(props) = self.get_resource(&conn, name).await? else {
            return Ok(Observed::Absent);
        };
        let state = match props.status.as_deref() {
            Some("Creating") => RemoteState::Creating,
            // Its statusDetails are the store's free text: not shown (sfctl or the gateway's API shows them).
            Some("Failed") => RemoteState::Failed(
                "Service Fabric reports the secret resource as Failed (its statusDetails say why)"
                    .into(),
            ),
            Some("Deleting") => {
                return Err(DialectError::retry(
                    "BackendDeleting",
                    "Service Fabric is deleting the secret resource; will look again",
                ));
            }
            _ => RemoteState::Ready,
        };
        let (user, marker) = description::split::<Versions>(props.description.as_deref());
        let (owner, marked, written) = match marker {
            Some((m, v)) => (Some(m.owner), m.digest, v),
            None => (None, None, Versions::default()),
        };
        let version = marked.as_deref().map(version_name);
        let digest = match (&marked, &version) {
            (Some(d), Some(v)) if state == RemoteState::Ready => {
                let verify = settings(req.target).verify_values;
                // Versions are immutable and named by the value's digest: one this SecretSync's status already
                // names was confirmed when written, so at rest the resource's GET is the only read.
                let confirmed = !verify
                    && req.last.is_some_and(|last| {
                        last.name == name && last.version.as_deref() == Some(v.as_str())
                    });
                (confirmed || self.has_value(&conn, name, v, verify).await?).then(|| d.clone())
            }
            _ => None,
        };
        // A resource of another kind (keyVaultVersionedReference) cannot take an inlined value, and its kind is
        // fixed like its contentType: it is reported with a content type no SecretSync asks for, so that the
        // planner replaces it where allowReplace allows and refuses otherwise, before anything is written.
        let content_type = match props.kind.as_deref() {
            Some(kind) if kind != KIND => Some(FOREIGN_KIND.to_owned()),
            _ => props.content_type,
        };
        // Only a version known to hold the value is named: a status naming it lets the next refresh skip its
        // check (see above), so one still being created, or lost, must not be.
        let reference = match version.as_ref().filter(|_| digest.is_some()) {
            Some(v) => Self::reference(name, v),
            None => RemoteRef {
                name: name.to_owned(),
                id: None,
                version: None,
            },
        };
        Ok(Observed::Present(Remote {
            reference,
            owner,
            owner_exists: true,
            digest,
            metadata: Metadata {
                content_type,
                description: user,
                labels: Default::default(),
            },
            state,
            detail: Detail::new(written),
        }))
    }

    async fn apply(
        &self,
        req: &Request<'_>,
        write: &Write,
        observed: &Observed,
        value: &SecretValue,
    ) -> Result<Outcome, DialectError> {
        let conn = self.conn(req)?;
        let s = settings(req.target);
        let retain = s.retain_versions.unwrap_or(DEFAULT_RETAIN) as usize;
        match write {
            Write::Create => self.create(&conn, req, value).await,
            Write::NewVersion => self.new_version(&conn, req, observed, value, retain).await,
            Write::UpdateMetadata => self.update_metadata(&conn, req, observed).await,
            Write::Replace { .. } => {
                self.delete_resource(&conn, req.remote_name).await?;
                self.create(&conn, req, value).await
            }
        }
    }

    async fn delete(&self, req: &Request<'_>, observed: &Observed) -> Result<(), DialectError> {
        if let Observed::Absent = observed {
            return Ok(());
        }
        let conn = self.conn(req)?;
        self.delete_resource(&conn, req.remote_name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialects::ErrorClass;
    use crate::dialects::fixtures::{check, creds, desired, target};

    fn dialect() -> ServiceFabricMesh {
        ServiceFabricMesh::new(Shared::new(10, 10, crate::metrics::Metrics::new()))
    }

    #[test]
    fn version_name_is_the_short_keyed_digest() {
        let d = desired();
        let v = version_name(&d.digest);
        assert_eq!(v, "ab".repeat(10));
        assert!(valid_name(&v));
    }

    #[test]
    fn value_body_has_the_sdk_shape() {
        let body = value_body("v1", "s3cr3t");
        let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({"name": "v1", "properties": {"value": "s3cr3t"}})
        );
        let res: serde_json::Value =
            serde_json::from_slice(&resource_body("n", None, "d")).unwrap();
        assert_eq!(
            res,
            serde_json::json!({"name": "n", "properties": {"kind": "inlinedValue", "description": "d"}})
        );
    }

    #[test]
    fn fabric_error_codes_map_to_classes() {
        let body = |code: &str| {
            serde_json::to_vec(&serde_json::json!({"Error": {"Code": code, "Message": "m"}}))
                .unwrap()
        };
        let e = map_error(400, &body("FABRIC_E_SECRET_TYPE_CANNOT_BE_CHANGED"), None);
        assert_eq!((e.class, e.reason), (ErrorClass::Permanent, "Immutable"));
        assert!(e.to_string().contains("allowReplace"));
        assert!(
            e.to_string().starts_with(
                "Service Fabric answered HTTP 400: FABRIC_E_SECRET_TYPE_CANNOT_BE_CHANGED"
            ) && !e.to_string().contains(": m"),
            "{e}"
        );
        let e = map_error(409, &body("FABRIC_E_SECRET_VERSION_ALREADY_EXISTS"), None);
        assert_eq!((e.class, e.reason), (ErrorClass::Conflict, "VersionExists"));
        assert!(crate::dialects::kit::code::is(&e, Code::VersionExists));
        let e = map_error(400, &body("FABRIC_E_SECRET_INVALID"), None);
        assert_eq!(e.class, ErrorClass::Permanent);
        let e = map_error(
            400,
            &body("FABRIC_E_CENTRAL_SECRET_SERVICE_GENERIC"),
            Some(Duration::from_secs(3)),
        );
        assert_eq!(e.class, ErrorClass::Retry);
        assert_eq!(e.retry_after, Some(Duration::from_secs(3)));
        let e = map_error(401, b"", None);
        assert_eq!(e.class, ErrorClass::Credentials);
        assert!(e.to_string().contains("being removed"));
        let e = map_error(429, b"", Some(Duration::from_secs(9)));
        assert_eq!(
            (e.class, e.retry_after),
            (ErrorClass::Retry, Some(Duration::from_secs(9)))
        );
        assert_eq!(map_error(503, b"<html>", None).class, ErrorClass::Retry);
        let long = "x".repeat(1000);
        assert!(map_error(400, long.as_bytes(), None).to_string().len() < 400);
        // An unknown code is not shown, nor is any message.
        let e = map_error(400, &body("FABRIC_E_CANARY"), None);
        assert_eq!(
            (e.reason, e.to_string().as_str()),
            ("BackendRejected", "store answered HTTP 400 (Bad Request)")
        );
    }

    #[test]
    fn check_refuses_what_cannot_work() {
        let http = target(
            serde_json::json!({"dialect": "ServiceFabricMesh", "endpoint": "http://127.0.0.1:19080"}),
        );
        let https = target(
            serde_json::json!({"dialect": "ServiceFabricMesh", "endpoint": "https://h:19080"}),
        );
        let none = creds(&[]);
        let value = SecretValue::from("v");
        assert!(check(&dialect(), &http, &none, "db.conn-1", &value).is_ok());
        let reason = |r: Result<(), DialectError>| r.expect_err("refused").reason;
        assert_eq!(
            reason(check(&dialect(), &http, &none, "bad/name", &value)),
            "InvalidName"
        );
        assert_eq!(
            reason(check(&dialect(), &http, &none, "-x", &value)),
            "InvalidName"
        );
        let binary = SecretValue::new(vec![0xff, 0xfe]);
        assert_eq!(
            reason(check(&dialect(), &http, &none, "ok", &binary)),
            "ValueNotText"
        );

        let mut labelled = desired();
        labelled.metadata.labels.insert("team".into(), "a".into());
        let req = crate::dialects::fixtures::request(&http, "ok", &none, &labelled);
        assert_eq!(reason(dialect().check(&req, &value)), "LabelsUnsupported");

        let token = creds(&[("token", "t0k3n")]);
        let e = check(&dialect(), &http, &token, "ok", &value).expect_err("token over http");
        assert_eq!(e.reason, "InsecureEndpoint");
        assert!(!e.to_string().contains("t0k3n"));
        assert!(check(&dialect(), &https, &token, "ok", &value).is_ok());

        let half = creds(&[("tls.crt", "-----BEGIN CERTIFICATE-----")]);
        let e = check(&dialect(), &https, &half, "ok", &value).expect_err("cert without key");
        assert_eq!(e.class, ErrorClass::Credentials);

        let no_endpoint = target(serde_json::json!({"dialect": "ServiceFabricMesh"}));
        assert_eq!(
            reason(check(&dialect(), &no_endpoint, &none, "ok", &value)),
            "InvalidSpec"
        );
        let bad_version = target(serde_json::json!({
            "dialect": "ServiceFabricMesh", "endpoint": "http://h:1",
            "serviceFabricMesh": {"apiVersion": "6.4&x=1"}
        }));
        assert_eq!(
            reason(check(&dialect(), &bad_version, &none, "ok", &value)),
            "InvalidSpec"
        );
    }

    #[test]
    fn garbage_certificates_are_a_credentials_error_without_their_text() {
        let d = dialect();
        let https = target(
            serde_json::json!({"dialect": "ServiceFabricMesh", "endpoint": "https://h:19080"}),
        );
        let c = creds(&[
            ("tls.crt", "not-a-cert-SENTINEL"),
            ("tls.key", "not-a-key-SENTINEL"),
        ]);
        let want = desired();
        let req = Request {
            rate_limit: None,
            target: &https,
            remote_name: "n",
            credentials: &c,
            desired: &want,
            last: None,
            store: None,
        };
        let err = d.conn(&req).err().expect("garbage PEM is refused");
        assert_eq!(err.class, ErrorClass::Credentials);
        assert!(!err.to_string().contains("SENTINEL"));
    }

    #[test]
    fn capabilities_say_content_type_is_fixed() {
        let t = target(serde_json::json!({"dialect": "ServiceFabricMesh"}));
        let caps = dialect().capabilities(&t);
        assert_eq!(caps.content_type, Support::Immutable);
        assert_eq!(caps.description, Support::Mutable);
        assert_eq!(caps.labels, Support::Unsupported);
    }
}
