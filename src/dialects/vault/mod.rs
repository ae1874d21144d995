//! HashiCorp Vault (and OpenBao) KV version 2 over its HTTP API, through the kit's transport. What users set and
//! see (settings, credentials, paths, metadata, errors) is in `docs/src/dialects/vault.md`; this is how it is built.
//!
//! # Why the wire flow is shaped this way
//!
//! - The marker, the digest and the version the digest belongs to live in the path's `custom_metadata`: a refresh at
//!   rest is one metadata read, and the value is never read. A current version other than the recorded one (a
//!   `vault kv put` by someone else, a rollback, a deleted or destroyed version) makes the digest unknown, so the
//!   value is written again: drift is found without reading it.
//! - Values are written with check-and-set (`options.cas` = the version observed), so a writer between observe and
//!   apply is a `Conflict`, never a lost update; the next reconcile observes again.
//! - Value first, metadata second: an interruption leaves the old digest's version, which no longer matches the
//!   current version, and the next reconcile writes over it. A create marks the path first (the marker without a
//!   digest) so that an interrupted create is recognised as ours; when its check-and-set then finds that someone
//!   else created the path in between, the mark is taken off again.
//! - `maxVersions` is path metadata; a change of it alone is shown to the planner as a difference of a reserved
//!   label, so that it plans a metadata update and not a new version.
//!
//! # Credentials
//!
//! A token from the credentials Secret is used as it is. AppRole and Kubernetes sign-ins go to the store's own
//! endpoint (so no other host receives a credential) and their token is kept per store and identity in the kit's
//! token cache until two thirds of its lease; a refused token is forgotten, so the next reconcile signs in again.
//!
//! # Retries
//!
//! Reads, metadata writes, deletes and sign-ins repeat safely; a value write repeats safely too, since a second
//! attempt with the same `cas` fails instead of writing twice.

mod auth;
mod wire;

use std::collections::BTreeMap;

use async_trait::async_trait;
use reqwest::Method;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use super::kit::ownership::{self, Keys};
use super::kit::tls::ClientCache;
use super::kit::token_cache::TokenCache;
use super::kit::{Endpoint, Exchange, Idempotency, Pace, Transport};
use super::{Dialect, DialectError, Outcome, Request, Shared};
use crate::api::{DialectKind, Target, VaultSettings, valid_vault_path};
use crate::plan::{
    Capabilities, Desired, Detail, Metadata, Observed, Plan, Remote, RemoteRef, RemoteState,
    Support,
};
use crate::value::SecretValue;

pub use wire::data_body;

const DIALECT: &str = "Vault";
const KEYS: Keys = Keys::Dashed;
/// The version the recorded digest belongs to, next to the kit's marker.
const VERSION_KEY: &str = "secretsync-version";
/// Shown to the planner as a label only while the path's `max_versions` is not the one asked for.
const MAX_VERSIONS_KEY: &str = "secretsync-max-versions";
/// Vault's limits on `custom_metadata`.
const MAX_KEYS: usize = 64;
const MAX_KEY_BYTES: usize = 128;
const MAX_VALUE_BYTES: usize = 512;
/// Keys SecretSync writes (owner, uid, scope, digest, version).
const OUR_KEYS: usize = 5;
pub const MAX_LABELS: usize = MAX_KEYS - OUR_KEYS;

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

fn settings(target: &Target) -> VaultSettings {
    target.vault.as_deref().cloned().unwrap_or_default()
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

/// Where and as whom one reconcile's requests go.
struct Ctx {
    base: String,
    mount: String,
    path: String,
    client: reqwest::Client,
    token: auth::VaultToken,
    namespace: Option<String>,
    rate: Option<crate::api::RateLimit>,
    max_versions: Option<u32>,
    /// The token cache's key when the token came from a sign-in.
    signed_in: Option<String>,
}

impl Ctx {
    fn url(&self, kind: &str) -> String {
        format!("{}v1/{}/{kind}/{}", self.base, self.mount, self.path)
    }
}

impl Vault {
    async fn context(&self, req: &Request<'_>) -> Result<Ctx, DialectError> {
        let s = settings(req.target);
        let (mount, path) = location(&s, req.remote_name)?;
        let url = endpoint(req.target)?;
        let client = self
            .clients
            .client(super::kit::tls::store_ca(req.credentials, &url)?)?;
        let base = url.as_str().to_owned();
        let namespace = s.connection.namespace.clone();
        let (token, signed_in) = match auth::identity(req.credentials, &s.connection)? {
            auth::Identity::Token(t) => (std::sync::Arc::new(Zeroizing::new(t.to_owned())), None),
            auth::Identity::Login {
                mount: method,
                fields,
            } => {
                let store = req
                    .store
                    .as_ref()
                    .map_or_else(|| "inline".to_owned(), |s| s.store_key());
                let key = format!(
                    "{store}|{base}|{}|{method}|{}",
                    namespace.as_deref().unwrap_or_default(),
                    req.credentials.fingerprint()
                );
                let token = match self.tokens.get(&key) {
                    Some(token) => token,
                    None => {
                        let ns = namespace.as_deref().map(|n| [("x-vault-namespace", n)]);
                        let to = auth::Login {
                            url: format!("{base}v1/auth/{method}/login"),
                            client: &client,
                            headers: ns.as_ref().map_or(&[][..], |h| &h[..]),
                            fields: &fields,
                            rate: req.rate_limit,
                            pace_key: &base,
                        };
                        let (token, lease) = auth::login(&self.login, &to).await?;
                        self.tokens.put(key.clone(), token, lease)
                    }
                };
                (token, Some(key))
            }
        };
        Ok(Ctx {
            base,
            mount,
            path,
            client,
            token: auth::VaultToken(token),
            namespace,
            rate: req.rate_limit,
            max_versions: s.max_versions,
            signed_in,
        })
    }

    /// One call through the kit's transport; `None` when nothing is at the path.
    async fn call<T: DeserializeOwned + Default>(
        &self,
        ctx: &Ctx,
        operation: &'static str,
        method: Method,
        url: &str,
        body: Option<&[u8]>,
    ) -> Result<Option<T>, DialectError> {
        let ns = ctx.namespace.as_deref().map(|n| [("x-vault-namespace", n)]);
        let mut exchange = Exchange::new(operation, &method, url)
            .headers(ns.as_ref().map_or(&[][..], |h| &h[..]))
            .idempotency(Idempotency::Idempotent);
        if let Some(body) = body {
            exchange = exchange.json(body);
        }
        let endpoint = Endpoint {
            client: &ctx.client,
            pace: Pace::Store {
                key: &ctx.base,
                rate: ctx.rate,
            },
            auth: &ctx.token,
        };
        let reply = match self.transport.send(&endpoint, &exchange).await {
            Ok(reply) => reply,
            Err(e) => {
                if let (super::ErrorClass::Credentials, Some(key)) = (e.class, &ctx.signed_in) {
                    self.tokens.forget(key);
                }
                return Err(DialectError {
                    message: format!("{operation}: {}", e.message),
                    ..e
                });
            }
        };
        if reply.absent {
            return Ok(None);
        }
        if reply.body.is_empty() {
            return Ok(Some(T::default()));
        }
        serde_json::from_slice(&reply.body).map(Some).map_err(|e| {
            DialectError::retry(
                "BadResponse",
                format!(
                    "{operation}: unexpected answer ({})",
                    super::kit::text::json_position(&e)
                ),
            )
        })
    }

    /// Writes the path's metadata: the user's labels, the marker (with the digest of `version` when given) and
    /// `max_versions`.
    async fn write_metadata(
        &self,
        ctx: &Ctx,
        desired: &Desired,
        version: Option<u64>,
    ) -> Result<(), DialectError> {
        let mut marker = ownership::Marker::of(desired);
        let mut custom: BTreeMap<String, String> = desired.metadata.labels.clone();
        match version {
            Some(v) => {
                custom.insert(VERSION_KEY.to_owned(), v.to_string());
            }
            None => marker.digest = None,
        }
        custom.extend(KEYS.pairs(&marker));
        let body = serde_json::json!({"custom_metadata": custom, "max_versions": ctx.max_versions});
        let mut body = body.as_object().cloned().unwrap_or_default();
        body.retain(|_, v| !v.is_null());
        // A map of strings and a number always serializes.
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        self.call::<Ignored>(
            ctx,
            "WriteMetadata",
            Method::POST,
            &ctx.url("metadata"),
            Some(&bytes),
        )
        .await?;
        Ok(())
    }

    /// Writes `value` as a new version if the current one is still `cas`; the new version.
    async fn write_value(
        &self,
        ctx: &Ctx,
        value: &SecretValue,
        cas: u64,
    ) -> Result<u64, DialectError> {
        let body = wire::data_body(value, cas);
        let written: Option<wire::Written> = self
            .call(
                ctx,
                "WriteData",
                Method::POST,
                &ctx.url("data"),
                Some(&body),
            )
            .await?;
        Ok(written.map_or(cas + 1, |w| w.data.version))
    }
}

#[derive(serde::Deserialize, Default)]
struct Ignored {}

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
        location(&s, req.remote_name)?;
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
        if labels.len() > MAX_LABELS {
            return Err(DialectError::permanent(
                "TooManyLabels",
                format!(
                    "Vault keeps {MAX_KEYS} custom metadata keys and SecretSync uses {OUR_KEYS}: at most {MAX_LABELS} labels"
                ),
            ));
        }
        if labels
            .iter()
            .any(|(k, v)| k.len() > MAX_KEY_BYTES || v.len() > MAX_VALUE_BYTES)
        {
            return Err(DialectError::permanent(
                "InvalidLabels",
                format!(
                    "Vault custom metadata: keys of at most {MAX_KEY_BYTES} bytes, values of at most {MAX_VALUE_BYTES}"
                ),
            ));
        }
        Ok(())
    }

    async fn observe(&self, req: &Request<'_>) -> Result<Observed, DialectError> {
        let ctx = self.context(req).await?;
        let Some(reply) = self
            .call::<wire::MetadataReply>(
                &ctx,
                "ReadMetadata",
                Method::GET,
                &ctx.url("metadata"),
                None,
            )
            .await?
        else {
            return Ok(Observed::Absent);
        };
        let m = reply.data;
        let custom = m.custom_metadata.clone().unwrap_or_default();
        let marker = KEYS.read(|k| custom.get(k).map(String::as_str));
        let current = m.current_version.to_string();
        let recorded = custom.get(VERSION_KEY) == Some(&current) && m.current_readable();
        let mut labels: BTreeMap<String, String> = custom
            .into_iter()
            .filter(|(k, _)| !ownership::is_reserved(k))
            .collect();
        if let Some(want) = ctx.max_versions.filter(|want| *want != m.max_versions) {
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
        plan: &Plan,
        observed: &Observed,
        value: &SecretValue,
    ) -> Result<Outcome, DialectError> {
        let ctx = self.context(req).await?;
        let current = match observed {
            Observed::Present(r) => r.detail.get::<Seen>().map_or(0, |s| s.current_version),
            Observed::Absent => 0,
        };
        let version = match plan {
            Plan::Create => {
                self.write_metadata(&ctx, req.desired, None).await?;
                let version = match self.write_value(&ctx, value, 0).await {
                    Err(e) if e.class == super::ErrorClass::Conflict => {
                        // Someone else created the path since it was observed: it is theirs, unmarked again.
                        let empty = br#"{"custom_metadata":{}}"#;
                        let _ = self
                            .call::<Ignored>(
                                &ctx,
                                "WriteMetadata",
                                Method::POST,
                                &ctx.url("metadata"),
                                Some(empty),
                            )
                            .await;
                        return Err(e);
                    }
                    written => written?,
                };
                self.write_metadata(&ctx, req.desired, Some(version))
                    .await?;
                version
            }
            Plan::NewVersion => {
                let version = self.write_value(&ctx, value, current).await?;
                self.write_metadata(&ctx, req.desired, Some(version))
                    .await?;
                version
            }
            Plan::UpdateMetadata => {
                self.write_metadata(&ctx, req.desired, Some(current))
                    .await?;
                current
            }
            other => {
                return Err(DialectError::permanent(
                    "UnsupportedPlan",
                    format!("the Vault dialect cannot carry out {other:?}"),
                ));
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
        let read: Option<wire::DataReply> = self
            .call(&ctx, "ReadData", Method::GET, &ctx.url("data"), None)
            .await?;
        Ok(read
            .and_then(|r| r.data.data)
            .as_ref()
            .and_then(wire::value_of))
    }

    async fn delete(&self, req: &Request<'_>, _observed: &Observed) -> Result<(), DialectError> {
        let ctx = self.context(req).await?;
        // Every version and the metadata; nothing there is gone already.
        self.call::<Ignored>(
            &ctx,
            "DeleteMetadata",
            Method::DELETE,
            &ctx.url("metadata"),
            None,
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
