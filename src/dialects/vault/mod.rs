//! HashiCorp Vault (and OpenBao) KV version 2 over its HTTP API, through the kit's transport. What users set and
//! see (settings, credentials, paths, metadata, errors) is in `docs/src/dialects/vault.md`; this is how it is built.
//!
//! # Why the wire flow is shaped this way
//!
//! - The digest counts only for the version it was recorded with: any other current version (someone's
//!   `vault kv put`, a rollback, a deleted or destroyed version) is drift, found without reading the value.
//! - Value first (check-and-set), metadata second: an interruption leaves a digest of an older version, which the
//!   next reconcile writes over. A create marks the path before its `cas=0` write so that an interrupted create is
//!   recognised as ours, and takes the mark off again when that write finds someone else's path.
//! - A `maxVersions` change alone reaches the planner as a reserved label that differs: a metadata update, not a
//!   new version.
//! - Sign-ins go to the store's own endpoint only (no other host receives a credential), through the kit's
//!   `signin::Renewing`: a 401 signs in again at once; a token refused otherwise (Vault answers 403 for a revoked
//!   one) is forgotten so that the next reconcile signs in again.
//! - Every request repeats safely: a value write repeated with the same `cas` fails instead of writing twice.

mod auth;
mod wire;

use async_trait::async_trait;
use reqwest::Method;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use super::kit::ownership::{self, Keys};
use super::kit::session::Session;
use super::kit::signin::Renewing;
use super::kit::tls::ClientCache;
use super::kit::token_cache::TokenCache;
use super::kit::{Auth, Exchange, Idempotency, Ignored, NoAuth, Transport};
use super::{Dialect, DialectError, ErrorClass, Outcome, Request, Shared};
use crate::api::{DialectKind, Target, VaultSettings, valid_vault_path};
use crate::plan::{
    Capabilities, Desired, Detail, Metadata, Observed, Remote, RemoteRef, RemoteState, Support,
    Write,
};
use crate::value::SecretValue;

const DIALECT: &str = "Vault";
const KEYS: Keys = Keys::Dashed;
/// The version the recorded digest belongs to, next to the kit's marker.
const VERSION_KEY: &str = "secretsync-version";
/// Shown to the planner as a label only while the path's `max_versions` is not the one asked for.
const MAX_VERSIONS_KEY: &str = "secretsync-max-versions";
/// Vault keeps 64 `custom_metadata` keys; SecretSync writes 5 (owner, uid, scope, digest, version).
pub const MAX_LABELS: usize = 64 - 5;

pub struct Vault {
    transport: Transport,
    login: Transport,
    clients: ClientCache,
    tokens: TokenCache<Zeroizing<String>>,
}

impl Vault {
    pub fn new(shared: Shared) -> Self {
        Vault {
            clients: ClientCache::new(&shared),
            login: Transport::new(DIALECT, shared.clone(), wire::decode_login),
            transport: Transport::new(DIALECT, shared, wire::decode),
            tokens: TokenCache::default(),
        }
    }
}

fn settings(target: &Target) -> &VaultSettings {
    static NONE: std::sync::LazyLock<VaultSettings> = std::sync::LazyLock::new(Default::default);
    target.vault.as_deref().unwrap_or(&NONE)
}

/// The mount and the path under it (`pathPrefix/remoteName`), checked.
fn location(s: &VaultSettings, remote_name: &str) -> Result<(String, String), DialectError> {
    let c = &s.connection;
    let mount = c.mount.as_deref().unwrap_or("secret");
    let path = match c.path_prefix.as_deref() {
        Some(prefix) => format!("{prefix}/{remote_name}"),
        None => remote_name.to_owned(),
    };
    let settings_ok = valid_vault_path(mount)
        && c.path_prefix.as_deref().is_none_or(valid_vault_path)
        && c.namespace.as_deref().is_none_or(valid_vault_path);
    if !settings_ok {
        return Err(DialectError::permanent(
            "InvalidSetting",
            "vault.mount, vault.pathPrefix and vault.namespace are segments of letters, digits and _.@+=- \
             separated by single '/'",
        ));
    }
    if !valid_vault_path(remote_name) || path.len() > 512 {
        return Err(DialectError::permanent(
            "InvalidName",
            "Vault remote names are paths of at most 512 characters: segments of letters, digits and _.@+=- \
             separated by single '/', none of them '.' or '..'",
        ));
    }
    Ok((mount.to_owned(), path))
}

fn endpoint(target: &Target) -> Result<url::Url, DialectError> {
    let text = target.endpoint.as_deref().ok_or_else(|| {
        DialectError::permanent(
            "InvalidSpec",
            "Vault needs the store's endpoint (the server's address)",
        )
    })?;
    super::kit::endpoint::secure_root(text, "the store's endpoint", "https://vault.example:8200")
}

/// Where and as whom one reconcile's requests go, and the path they are about.
struct Ctx<'a> {
    http: Session<'a>,
    mount: String,
    path: String,
    settings: &'a VaultSettings,
}

impl Ctx<'_> {
    fn url(&self, kind: &str) -> String {
        (self.http).url(&format!("/v1/{}/{kind}/{}", self.mount, self.path))
    }
}

/// An operation on the path: its name in metrics, its method and its API (`data` or `metadata`).
type Op = (&'static str, Method, &'static str);
const READ_METADATA: Op = ("ReadMetadata", Method::GET, "metadata");
const WRITE_METADATA: Op = ("WriteMetadata", Method::POST, "metadata");
const DELETE_METADATA: Op = ("DeleteMetadata", Method::DELETE, "metadata");
const READ_DATA: Op = ("ReadData", Method::GET, "data");
const WRITE_DATA: Op = ("WriteData", Method::POST, "data");

impl Vault {
    async fn context<'a>(&'a self, req: &'a Request<'a>) -> Result<Ctx<'a>, DialectError> {
        let s = settings(req.target);
        let (mount, path) = location(s, req.remote_name)?;
        let url = endpoint(req.target)?;
        let client = self
            .clients
            .client(super::kit::tls::store_ca(req.credentials, &url)?)?;
        let session = |transport, auth| Session {
            transport,
            client: client.clone(),
            base: url.as_str().trim_end_matches('/').to_owned(),
            suffix: String::new(),
            rate: req.rate_limit,
            auth,
        };
        let conn = &s.connection;
        let auth: Box<dyn Auth + 'a> = match auth::identity(req.credentials, conn)? {
            auth::Identity::Token(t) => Box::new(auth::VaultToken(t)),
            auth::Identity::Login { mount, fields } => {
                let store = req.store.as_ref().map(|s| s.store_key());
                let ns = conn.namespace.as_deref().unwrap_or_default();
                let who = req.credentials.fingerprint();
                let login = auth::Login {
                    http: session(&self.login, Box::new(NoAuth)),
                    namespace: auth::namespace(conn),
                    mount,
                    fields,
                    key: format!("{store:?}|{url}|{ns}|{mount}|{who}"),
                };
                let renewing = Renewing::new(&self.tokens, login);
                // Signed in before the first call, so that a refused sign-in is this reconcile's error as it is.
                renewing.token().await?;
                Box::new(renewing)
            }
        };
        Ok(Ctx {
            http: session(&self.transport, auth),
            mount,
            path,
            settings: s,
        })
    }

    /// `op` on the path through the kit's transport; `None` when nothing is there.
    async fn call<T: DeserializeOwned + Default>(
        &self,
        ctx: &Ctx<'_>,
        (operation, method, api): &Op,
        body: Option<&[u8]>,
    ) -> Result<Option<T>, DialectError> {
        let url = ctx.url(api);
        let ns = auth::namespace(&ctx.settings.connection);
        let mut exchange = Exchange::new(operation, method, &url)
            .headers(ns.as_slice())
            .idempotency(Idempotency::Idempotent);
        if let Some(body) = body {
            exchange = exchange.json(body);
        }
        let reply = ctx.http.send(exchange).await;
        let reply = reply.map_err(|e| super::kit::text::during(operation, e))?;
        reply.json(operation)
    }

    /// Writes the path's metadata: the user's labels, the marker (with the digest of `version` when given) and
    /// `max_versions`.
    async fn write_metadata(
        &self,
        ctx: &Ctx<'_>,
        desired: &Desired,
        version: Option<u64>,
    ) -> Result<(), DialectError> {
        let mut marker = ownership::Marker::of(desired);
        if version.is_none() {
            marker.digest = None;
        }
        let mut custom = KEYS.with_labels(&marker, &desired.metadata.labels);
        if let Some(v) = version {
            custom.insert(VERSION_KEY.to_owned(), v.to_string());
        }
        let body = wire::MetadataWrite {
            custom_metadata: custom,
            max_versions: ctx.settings.max_versions,
        };
        // A map of strings and a number always serializes.
        let body = serde_json::to_vec(&body).unwrap_or_default();
        self.call::<Ignored>(ctx, &WRITE_METADATA, Some(&body))
            .await?;
        Ok(())
    }

    /// Writes `value` as a new version if the current one is still `cas`; the new version.
    async fn write_value(
        &self,
        ctx: &Ctx<'_>,
        value: &SecretValue,
        cas: u64,
    ) -> Result<u64, DialectError> {
        let body = wire::data_body(value, cas);
        let written: Option<wire::Envelope<wire::KvVersion>> =
            self.call(ctx, &WRITE_DATA, Some(&body)).await?;
        Ok(written.map_or(cas + 1, |w| w.data.version))
    }
}

/// What `observe` read that `apply` needs.
struct Seen {
    current_version: u64,
}

#[async_trait]
impl Dialect for Vault {
    fn kind(&self) -> DialectKind {
        DialectKind::Vault
    }

    fn capabilities(&self, _target: &Target) -> Capabilities {
        Capabilities {
            content_type: Support::Unsupported,
            description: Support::Unsupported,
            labels: Support::Mutable,
        }
    }

    fn check(&self, req: &Request<'_>, _value: &SecretValue) -> Result<(), DialectError> {
        let s = settings(req.target);
        location(s, req.remote_name)?;
        let url = endpoint(req.target)?;
        super::kit::tls::store_ca(req.credentials, &url)?;
        auth::identity(req.credentials, &s.connection)?;
        let meta = &req.desired.metadata;
        if meta.content_type.is_some() || meta.description.is_some() {
            return Err(DialectError::permanent(
                "DescriptionUnsupported",
                "Vault KV keeps no content type or description; remove spec.target.contentType and description",
            ));
        }
        let labels = &meta.labels;
        let too_long = |(k, v): (&String, &String)| k.len() > 128 || v.len() > 512;
        if labels.len() > MAX_LABELS || labels.iter().any(too_long) {
            return Err(DialectError::permanent(
                "InvalidLabels",
                format!(
                    "Vault custom metadata: at most {MAX_LABELS} labels (SecretSync uses 5 of 64 keys), keys of at \
                     most 128 bytes, values of at most 512"
                ),
            ));
        }
        Ok(())
    }

    async fn observe(&self, req: &Request<'_>) -> Result<Observed, DialectError> {
        let ctx = self.context(req).await?;
        let Some(reply) = self
            .call::<wire::Envelope<wire::Metadata>>(&ctx, &READ_METADATA, None)
            .await?
        else {
            return Ok(Observed::Absent);
        };
        let m = reply.data;
        let custom = m.custom_metadata.clone().unwrap_or_default();
        let marker = KEYS.read(|k| custom.get(k).map(String::as_str));
        let current = m.current_version.to_string();
        let recorded = custom.get(VERSION_KEY) == Some(&current) && m.current_readable();
        let mut labels = ownership::user_labels(&custom);
        if let Some(want) = ctx
            .settings
            .max_versions
            .filter(|want| *want != m.max_versions)
        {
            labels.insert(
                MAX_VERSIONS_KEY.to_owned(),
                format!("{} (want {want})", m.max_versions),
            );
        }
        Ok(Observed::Present(Remote {
            reference: RemoteRef {
                name: req.remote_name.to_owned(),
                id: Some(format!("{}/{}", ctx.mount, ctx.path)),
                version: (m.current_version > 0).then_some(current),
            },
            owner: marker.as_ref().map(|m| m.owner.clone()),
            owner_exists: true,
            digest: marker.and_then(|m| m.digest).filter(|_| recorded),
            metadata: Metadata {
                content_type: None,
                description: None,
                labels,
            },
            state: RemoteState::Ready,
            detail: Detail::new(Seen {
                current_version: m.current_version,
            }),
        }))
    }

    async fn apply(
        &self,
        req: &Request<'_>,
        write: &Write,
        observed: &Observed,
        value: &SecretValue,
    ) -> Result<Outcome, DialectError> {
        let ctx = self.context(req).await?;
        let current = match observed {
            Observed::Present(r) => r.detail.get::<Seen>().map_or(0, |s| s.current_version),
            Observed::Absent => 0,
        };
        let version = match write {
            Write::Create => {
                self.write_metadata(&ctx, req.desired, None).await?;
                let version = match self.write_value(&ctx, value, 0).await {
                    Err(e) if e.class == ErrorClass::Conflict => {
                        // Someone else created the path since it was observed: it is theirs, unmarked again.
                        let empty = br#"{"custom_metadata":{}}"#;
                        let _ = self
                            .call::<Ignored>(&ctx, &WRITE_METADATA, Some(empty))
                            .await;
                        return Err(e);
                    }
                    written => written?,
                };
                self.write_metadata(&ctx, req.desired, Some(version))
                    .await?;
                version
            }
            // The planner asks for a replacement only where `allows_replace`: here it is a new value.
            Write::NewVersion | Write::Replace { .. } => {
                let version = self.write_value(&ctx, value, current).await?;
                self.write_metadata(&ctx, req.desired, Some(version))
                    .await?;
                version
            }
            Write::UpdateMetadata => {
                self.write_metadata(&ctx, req.desired, Some(current))
                    .await?;
                current
            }
        };
        Ok(Outcome::Ready(RemoteRef {
            name: req.remote_name.to_owned(),
            id: Some(format!("{}/{}", ctx.mount, ctx.path)),
            version: Some(version.to_string()),
        }))
    }

    async fn read_value(
        &self,
        req: &Request<'_>,
        _remote: &Remote,
    ) -> Result<Option<SecretValue>, DialectError> {
        let ctx = self.context(req).await?;
        let read: Option<wire::Envelope<wire::KvVersion>> =
            self.call(&ctx, &READ_DATA, None).await?;
        Ok(read
            .and_then(|r| r.data.data)
            .as_ref()
            .and_then(wire::value_of))
    }

    async fn delete(&self, req: &Request<'_>, _observed: &Observed) -> Result<(), DialectError> {
        let ctx = self.context(req).await?;
        // Every version and the metadata; nothing there is gone already.
        self.call::<Ignored>(&ctx, &DELETE_METADATA, None).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
