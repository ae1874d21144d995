//! OpenStack Barbican (Key Manager API v1) with Keystone v3 tokens. What users set and see (settings, credentials,
//! naming, metadata, rotation, requests, errors) is in `docs/src/dialects/barbican.md`; this is how it is built.
//!
//! # The wire flow
//!
//! A secret is made in Barbican's two documented steps, `POST /v1/secrets` (name, `secret_type: opaque`, the
//! creation tag below; no payload) and one `PUT /v1/secrets/{uuid}` of the raw payload, with the metadata
//! (`PUT …/metadata`, our marker) written between them. The payload travels raw, never inside JSON, because Barbican
//! strips surrounding whitespace from a JSON payload. Payloads are write-once, so a changed value is a new secret and
//! rotation is "create, point the status at it, delete the superseded".
//!
//! `observe` lists `GET /v1/secrets?name=…`; Barbican matches names with SQL `LIKE`, so only exact matches are kept.
//! Names are not unique: the newest secret carrying this SecretSync's marker is the current one, and the listing is
//! handed to `apply` in the plan's `Detail` so it is never read twice.
//!
//! # Crash safety
//!
//! `POST` is not idempotent, so every write acts on the listing `observe` made in the same reconcile and never
//! leaves a second secret: a value write first completes the newest secret of ours when it has no payload (a crash
//! between the `POST` and the payload), and makes a new one only otherwise. Superseded and left-over secrets of ours
//! are deleted after each value write, and all of them with the SecretSync. A payload `PUT` answered 404 (the secret
//! vanished) makes a new secret; 409 (already has a payload) reads the payload back and accepts it only if it is
//! this value.
//!
//! Between the `POST` and the metadata write a secret has no marker, and Barbican takes no metadata in the `POST`.
//! What a `POST` can carry and what never changes afterwards are the secret's own fields, so the **creation tag**
//! goes in `mode` (a cipher-mode field Barbican stores, lists and leaves uninterpreted for a stored secret):
//! `secretsync:` and the SecretSync's uid. An unmarked, payload-less secret of that name is this SecretSync's crash
//! leftover, claimed and completed, only when it carries this tag and was made by SecretSync's own Keystone user.
//! Nothing else is ever inferred to be ours: in a project several tenants share, another SecretSync's secret of the
//! same name, made by the same user, looks exactly like a leftover between its own two steps; it is left alone (and
//! seen as another SecretSync's secret still being created, so not adopted as unmarked either).
//!
//! The trade-off: a leftover without this SecretSync's tag is never completed nor deleted by it, and stays as an
//! empty secret until someone deletes it. A leaked empty secret is the price of never deleting someone else's.
//!
//! # Retries
//!
//! Every call goes through the kit's transport, which repeats a non-idempotent request only when Barbican proved it
//! did not act on it (429, or no connection made). The create `POST` and the payload `PUT` (a second one is answered
//! 409) are not idempotent; listings, metadata reads and writes, payload reads and deletes are.

mod auth;
mod wire;

use std::collections::BTreeMap;

use async_trait::async_trait;
use reqwest::Method;

pub use wire::SecretEntry;

use super::kit::session::Paged;
use super::kit::signin::Renewing;
use super::kit::token_cache::TokenCache;
use super::kit::{self, Auth, Exchange, Idempotency, Transport, code};
use super::{Dialect, DialectError, ErrorClass, Outcome, Request, Shared};
use crate::api::{BarbicanSettings, DialectKind, Target};
use crate::plan::{
    Capabilities, Detail, Metadata, Observed, Owner, Remote, RemoteRef, RemoteState, Support, Write,
};
use crate::value::{Credentials, SecretValue};
use auth::{Access, KeystoneSignIn, NOAUTH_USER, ProjectHeaders, Token};
use wire::{Code, Item, Kind};

const DIALECT: &str = "Barbican";
const DEFAULT_MAX_PAYLOAD: u32 = 20_000;
const DEFAULT_INTERFACE: &str = "public";
/// Barbican's largest list page.
const PAGE: usize = 100;
/// Same-named secrets looked at, newest first. More than this many means something else is wrong.
const MAX_LISTED: usize = 500;
/// Pages read for one listing. Barbican matches `name` with SQL `LIKE`, so pages may hold other names too, but a
/// store that keeps sending full pages of them (or ignores `offset`) would otherwise hold a worker for ever.
const MAX_PAGES: usize = 20;
const MAX_INSPECTED: usize = 50;

pub struct Barbican {
    transport: Transport,
    tokens: TokenCache<Token>,
    keystone: Transport,
}

impl Barbican {
    pub fn new(shared: Shared) -> Self {
        Barbican {
            tokens: TokenCache::default(),
            keystone: Transport::new(DIALECT, shared.clone(), auth::decode_keystone),
            transport: Transport::new(DIALECT, shared, wire::decode),
        }
    }
}

fn settings(target: &Target) -> BarbicanSettings {
    target.barbican.as_deref().cloned().unwrap_or_default()
}

/// The Barbican root (without `/v1`) from an endpoint URL.
fn barbican_base(raw: &str, origin: &str) -> Result<String, DialectError> {
    kit::endpoint::versioned_root(raw, "/v1").map_err(|why| {
        DialectError::permanent(
            "InvalidSpec",
            format!("the Barbican endpoint from {origin} {why}"),
        )
    })
}

/// The key-manager endpoint of the Keystone catalog that the store's `interface` and `region` name.
fn catalog_endpoint(target: &Target, token: &Token) -> Result<String, DialectError> {
    let s = settings(target);
    let interface = s.interface.as_deref().unwrap_or(DEFAULT_INTERFACE);
    let region = s.region.as_deref();
    let url = token.endpoint(interface, region).ok_or_else(|| {
        DialectError::permanent(
            "NoKeyManagerEndpoint",
            format!(
                "the Keystone catalog has no key-manager endpoint with interface {interface}{}; set the store's \
                 endpoint or barbican.interface/region",
                region.map(|r| format!(" in region {r}")).unwrap_or_default()
            ),
        )
    })?;
    barbican_base(url, "the Keystone catalog")
}

/// One authenticated conversation with a Barbican endpoint (one reconcile's worth).
pub struct Session<'a> {
    /// With a Keystone token ([`KeystoneSignIn`]) or the no-auth headers ([`ProjectHeaders`]).
    http: kit::session::Session<'a>,
    /// The `creator_id` Barbican records for secrets this session makes, when known.
    creator: Option<String>,
}

impl Barbican {
    /// Opens a session for a request's target and credentials: reads the access mode, fetches (or reuses) a
    /// Keystone token and finds the endpoint. Public for tests and tools that need single Barbican calls.
    pub async fn session<'a>(&'a self, req: &Request<'_>) -> Result<Session<'a>, DialectError> {
        let access = auth::access(req.target, req.credentials)?;
        let endpoint = req.target.endpoint.as_deref();
        let endpoint = (endpoint.map(|e| barbican_base(e, "the store's endpoint"))).transpose()?;
        let (base, auth, creator): (_, Box<dyn Auth + 'a>, _) = match access {
            // `access` takes no-auth mode only with the store's endpoint.
            Access::NoAuth { project_id } => {
                let auth = Box::new(ProjectHeaders(project_id));
                (
                    endpoint.unwrap_or_default(),
                    auth,
                    Some(NOAUTH_USER.to_owned()),
                )
            }
            Access::Keystone(ks) => {
                let keystone = &self.keystone;
                let auth = Renewing::new(&self.tokens, KeystoneSignIn { keystone, ks });
                let token = auth.token().await?;
                let base = match endpoint {
                    Some(base) => base,
                    None => catalog_endpoint(req.target, &token)?,
                };
                (base, Box::new(auth), token.user_id.clone())
            }
        };
        let http = kit::session::Session {
            transport: &self.transport,
            client: self.transport.shared().http.clone(),
            base,
            suffix: String::new(),
            rate: req.rate_limit,
            auth,
        };
        Ok(Session { http, creator })
    }
}

impl Session<'_> {
    /// The URL of a secret (and `tail` below it); a reference whose UUID could be more than a path segment is
    /// refused.
    fn secret_url(&self, uuid: &str, tail: &str) -> Result<String, DialectError> {
        if !wire::valid_uuid(uuid) {
            return Err(DialectError::permanent(
                "InvalidReference",
                format!("{uuid:?} is not a Barbican secret UUID"),
            ));
        }
        Ok(format!("{}/v1/secrets/{uuid}{tail}", self.http.base))
    }

    /// Every secret whose name is exactly `name`, newest first (at most [`MAX_LISTED`]).
    pub async fn list_named(&self, name: &str) -> Result<Vec<SecretEntry>, DialectError> {
        let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
        let url = |offset| {
            let query = format!("name={encoded}&limit={PAGE}&offset={offset}&sort=created:desc");
            format!("{}/v1/secrets?{query}", self.http.base)
        };
        let (mut out, mut offset) = (Vec::new(), 0);
        let paged = self.http.pages("list", url(0), MAX_PAGES, |reply| {
            let page = reply.json::<wire::SecretList>("list")?.unwrap_or_default();
            let count = page.secrets.len();
            let named = page.secrets.into_iter();
            out.extend(named.filter(|s| s.name.as_deref() == Some(name)));
            offset += count;
            let total = page.total.map(|t| t as usize).unwrap_or(usize::MAX);
            let last = count < PAGE || offset >= total || out.len() >= MAX_LISTED;
            Ok((!last).then(|| url(offset)))
        });
        match paged.await? {
            Paged::Complete => Ok(out),
            Paged::Absent => Err(DialectError::permanent(
                "NotBarbican",
                format!(
                    "{}/v1/secrets answered 404: the endpoint is not a Barbican API root",
                    self.http.base
                ),
            )),
            Paged::Cut => Err(DialectError::permanent(
                "ListingTooLong",
                format!(
                    "listing the secrets named like {name:?} went past {MAX_PAGES} pages of {PAGE}: the store sends \
                     more than it should (it may ignore offset); nothing was written"
                ),
            )),
        }
    }

    /// A secret's user metadata; `None` when the secret is gone.
    pub async fn metadata(
        &self,
        uuid: &str,
    ) -> Result<Option<BTreeMap<String, String>>, DialectError> {
        let url = self.secret_url(uuid, "/metadata")?;
        let reply = self
            .http
            .send(Exchange::new("get_metadata", &Method::GET, &url))
            .await?;
        Ok(reply
            .json::<wire::MetadataDoc>("get_metadata")?
            .map(|doc| doc.metadata))
    }

    /// Replaces a secret's user metadata; `false` when the secret is gone.
    pub async fn set_metadata(
        &self,
        uuid: &str,
        meta: &BTreeMap<String, String>,
    ) -> Result<bool, DialectError> {
        let url = self.secret_url(uuid, "/metadata")?;
        // A map of strings always serializes.
        let body = serde_json::to_vec(&serde_json::json!({ "metadata": meta })).unwrap_or_default();
        // Replaces the whole metadata with the same document each time: idempotent (the method's default).
        let exchange = Exchange::new("put_metadata", &Method::PUT, &url).json(&body);
        Ok(!self.http.send(exchange).await?.absent)
    }

    /// `POST /v1/secrets` without a payload, tagged as `owner`'s ([`wire::creation_tag`]). Returns the new
    /// secret's UUID and reference.
    pub async fn create_empty(
        &self,
        name: &str,
        owner: &Owner,
    ) -> Result<(String, String), DialectError> {
        let mut body = serde_json::json!({"name": name, "secret_type": "opaque"});
        if let Some(tag) = wire::creation_tag(owner) {
            body["mode"] = tag.into();
        }
        // A tree of strings always serializes.
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let url = format!("{}/v1/secrets", self.http.base);
        // Each POST makes another secret: sent again only when Barbican proved it did not act on it (429, or no
        // connection). After a timeout or a 5xx the next reconcile's listing finds what was made.
        let exchange = Exchange::new("create", &Method::POST, &url).json(&body);
        let reply = self.http.send(exchange).await?;
        let made = match reply.json::<wire::CreatedRef>("create")? {
            Some(made) => made.secret_ref,
            None => return Err(wire::not_found(&reply)),
        };
        let uuid = wire::uuid_of(&made).to_owned();
        self.secret_url(&uuid, "")?;
        tracing::info!(dialect = DIALECT, secret = %uuid, name, "created a Barbican secret (no payload yet)");
        Ok((uuid, made))
    }

    /// `PUT /v1/secrets/{uuid}` with the raw payload. Errors carry the documented meanings: reason
    /// `PayloadRejected` (400, 415 and other refusals), `SecretNotFound` (404), `PayloadAlreadySet` (409),
    /// `PayloadTooLarge` (413).
    pub async fn put_payload(
        &self,
        uuid: &str,
        value: &SecretValue,
        content_type: &'static str,
    ) -> Result<(), DialectError> {
        let url = self.secret_url(uuid, "")?;
        // Not idempotent although a PUT: a payload is write-once, and a second PUT is answered 409. A PUT that
        // may have been applied is left to `fill`'s read-back in the next reconcile.
        let exchange = Exchange::new("put_payload", &Method::PUT, &url)
            .body(content_type, value.expose())
            .idempotency(Idempotency::NotIdempotent);
        match self.http.send(exchange).await {
            Ok(reply) if reply.absent => Err(wire::not_found(&reply)),
            Ok(_) => Ok(()),
            Err(e) if code::is(&e, Code::Rejected) => {
                Err(DialectError::permanent("PayloadRejected", e.message))
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the secret's payload is exactly `value` (read back with `GET …/payload`).
    pub async fn payload_equals(
        &self,
        uuid: &str,
        value: &SecretValue,
        content_type: &'static str,
    ) -> Result<bool, DialectError> {
        let url = self.secret_url(uuid, "/payload")?;
        let exchange = Exchange::new("get_payload", &Method::GET, &url).accept(content_type);
        match self.http.send(exchange).await {
            Ok(reply) => Ok(!reply.absent && reply.body.as_slice() == value.expose()),
            // Stored with another content type.
            Err(e) if code::is(&e, Code::NotAcceptable) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes a secret; a missing one is fine.
    pub async fn delete_secret(&self, uuid: &str) -> Result<(), DialectError> {
        let url = self.secret_url(uuid, "")?;
        let reply = self
            .http
            .send(Exchange::new("delete", &Method::DELETE, &url))
            .await?;
        if !reply.absent {
            tracing::info!(dialect = DIALECT, secret = %uuid, "deleted a Barbican secret");
        }
        Ok(())
    }

    /// The same-named secrets with their metadata, classified for `owner`, newest first.
    async fn survey(&self, name: &str, owner: &Owner) -> Result<Vec<Item>, DialectError> {
        let entries = self.list_named(name).await?;
        if entries.len() > MAX_INSPECTED {
            tracing::warn!(
                dialect = DIALECT,
                name,
                count = entries.len(),
                "many Barbican secrets share this name; only the newest are looked at"
            );
        }
        let mut items = Vec::with_capacity(entries.len().min(MAX_INSPECTED));
        for entry in entries.into_iter().take(MAX_INSPECTED) {
            let Some(meta) = self.metadata(entry.uuid()).await? else {
                continue;
            };
            let markers = wire::split_metadata(&meta);
            items.push(Item::new(entry, markers, owner, self.creator.as_deref()));
        }
        wire::newest_first(&mut items);
        Ok(items)
    }

    /// What `observe` surveyed (see [`surveyed`]), or a new survey for an observation that carries none.
    async fn items(
        &self,
        req: &Request<'_>,
        observed: &Observed,
    ) -> Result<Vec<Item>, DialectError> {
        match surveyed(observed) {
            Some(items) => Ok(items.to_vec()),
            None => self.survey(req.remote_name, &req.desired.owner).await,
        }
    }

    /// Puts the payload into a secret of ours; `Ok(false)` when the secret is unusable (gone, or holding another
    /// value, in which case it is deleted). A permanent refusal deletes the empty secret and is returned.
    async fn fill(
        &self,
        uuid: &str,
        value: &SecretValue,
        content_type: &'static str,
    ) -> Result<bool, DialectError> {
        let Err(e) = self.put_payload(uuid, value, content_type).await else {
            return Ok(true);
        };
        match code::of::<Code>(&e) {
            Some(&Code::NotFound) => {
                tracing::info!(dialect = DIALECT, secret = %uuid, "the secret vanished before its payload was written");
                Ok(false)
            }
            // A retried PUT whose first attempt went through, or someone else's payload.
            Some(&Code::PayloadAlreadySet) => {
                if self.payload_equals(uuid, value, content_type).await? {
                    return Ok(true);
                }
                tracing::warn!(dialect = DIALECT, secret = %uuid, "secret of ours holds another payload; replacing it");
                self.delete_secret(uuid).await?;
                Ok(false)
            }
            _ if e.class == ErrorClass::Permanent => {
                if let Err(d) = self.delete_secret(uuid).await {
                    tracing::warn!(dialect = DIALECT, secret = %uuid, error = %d, "could not delete the secret whose payload was refused");
                }
                Err(e)
            }
            _ => Err(e),
        }
    }

    /// The two documented steps, with the markers between them. A secret that vanishes before its payload is
    /// written is made once more.
    async fn create(
        &self,
        req: &Request<'_>,
        meta: &BTreeMap<String, String>,
        value: &SecretValue,
        content_type: &'static str,
    ) -> Result<(String, String), DialectError> {
        for _ in 0..2 {
            let (uuid, secret_ref) = self
                .create_empty(req.remote_name, &req.desired.owner)
                .await?;
            if self.set_metadata(&uuid, meta).await?
                && self.fill(&uuid, value, content_type).await?
            {
                return Ok((uuid, secret_ref));
            }
        }
        Err(DialectError::retry(
            "RemoteGone",
            "the new Barbican secret vanished twice before its payload was written; will try again",
        ))
    }

    /// Create, NewVersion and Replace: complete the secret a crash left without its payload, or make one holding
    /// the value; then delete what it supersedes.
    async fn write(
        &self,
        req: &Request<'_>,
        observed: &Observed,
        value: &SecretValue,
    ) -> Result<Outcome, DialectError> {
        let owner = &req.desired.owner;
        let name = req.remote_name;
        let mut items = self.items(req, observed).await?;
        // The planner agreed to take over the secret it was shown: mark it as ours (without a digest, so it
        // counts as superseded) before anything else, so a crash cannot leave it unaccounted for.
        if let Observed::Present(r) = observed
            && !owner.owns(r.owner.as_ref())
            && let Some(uuid) = uuid_of(&r.reference)
        {
            let meta = wire::join_metadata(owner, None, &r.metadata.labels);
            if self.set_metadata(&uuid, &meta).await? {
                tracing::info!(dialect = DIALECT, secret = %uuid, name, "adopted a Barbican secret");
                for item in items.iter_mut().filter(|i| i.entry.uuid() == uuid) {
                    let markers = wire::split_metadata(&meta);
                    *item = Item::new(item.entry.clone(), markers, owner, self.creator.as_deref());
                }
            } else {
                items.retain(|i| i.entry.uuid() != uuid);
            }
        }
        let content_type = wire::wire_content_type(req.desired.metadata.content_type.as_deref());
        let meta = wire::join_metadata(
            owner,
            Some(&req.desired.digest),
            &req.desired.metadata.labels,
        );
        let completed = match wire::interrupted(&items) {
            Some(item) => {
                let uuid = item.entry.uuid();
                tracing::info!(dialect = DIALECT, secret = %uuid, "completing a Barbican secret left without payload");
                let done = self.set_metadata(uuid, &meta).await?
                    && self.fill(uuid, value, content_type).await?;
                done.then(|| (uuid.to_owned(), item.entry.secret_ref.clone()))
            }
            None => None,
        };
        let (uuid, secret_ref) = match completed {
            Some(done) => done,
            None => self.create(req, &meta, value, content_type).await?,
        };
        let keep = settings(req.target).keep_superseded.unwrap_or(0) as usize;
        for old in wire::prune(&items, &uuid, keep) {
            if let Err(e) = self.delete_secret(old).await {
                tracing::warn!(
                    dialect = DIALECT,
                    secret = %old,
                    error = %e,
                    "could not delete a superseded Barbican secret; the next write tries again"
                );
            }
        }
        Ok(Outcome::Ready(reference(name, &secret_ref)))
    }

    /// UpdateMetadata: the user's labels (and, adopting a secret that already holds the value, the markers that
    /// make it ours) on the secret `observe` found.
    async fn update_metadata(
        &self,
        req: &Request<'_>,
        observed: &Observed,
    ) -> Result<Outcome, DialectError> {
        let gone = || {
            DialectError::retry(
                "RemoteGone",
                "the Barbican secret disappeared; will re-create it",
            )
        };
        let Observed::Present(remote) = observed else {
            return Err(gone());
        };
        let uuid = uuid_of(&remote.reference).ok_or_else(gone)?;
        let digest = remote.digest.as_deref().unwrap_or(&req.desired.digest);
        let meta = wire::join_metadata(
            &req.desired.owner,
            Some(digest),
            &req.desired.metadata.labels,
        );
        match self.set_metadata(&uuid, &meta).await? {
            true => Ok(Outcome::Ready(remote.reference.clone())),
            false => Err(gone()),
        }
    }
}

fn reference(name: &str, secret_ref: &str) -> RemoteRef {
    RemoteRef {
        name: name.to_owned(),
        id: Some(secret_ref.to_owned()),
        version: None,
    }
}

/// Every same-named secret `observe` looked at, with its metadata, newest first.
struct Survey(Vec<Item>);

/// What `observe` surveyed, so that `apply` and `delete` act on it without listing again: nothing when it found
/// nothing, and `None` for an observation that did not come from this dialect's `observe`.
fn surveyed(observed: &Observed) -> Option<&[Item]> {
    match observed {
        Observed::Absent => Some(&[]),
        Observed::Present(r) => r.detail.get::<Survey>().map(|s| s.0.as_slice()),
    }
}

fn uuid_of(r: &RemoteRef) -> Option<String> {
    let uuid = wire::uuid_of(r.id.as_deref()?);
    wire::valid_uuid(uuid).then(|| uuid.to_owned())
}

#[async_trait]
impl Dialect for Barbican {
    fn destinations(&self, target: &Target, credentials: &Credentials) -> Vec<String> {
        target
            .endpoint
            .iter()
            .cloned()
            .chain(credentials.text("authUrl").map(str::to_owned))
            .collect()
    }

    fn endpoint_from_answers(&self, target: &Target) -> bool {
        target.endpoint.is_none()
    }

    fn kind(&self) -> DialectKind {
        DialectKind::Barbican
    }

    fn capabilities(&self, _target: &Target) -> Capabilities {
        Capabilities {
            content_type: Support::WithValue,
            description: Support::Unsupported,
            labels: Support::Mutable,
        }
    }

    fn check(&self, req: &Request<'_>, value: &SecretValue) -> Result<(), DialectError> {
        let target = req.target;
        auth::access(target, req.credentials)?;
        if let Some(e) = target.endpoint.as_deref() {
            barbican_base(e, "the store's endpoint")?;
        }
        if !wire::valid_name(req.remote_name) {
            return Err(DialectError::permanent(
                "InvalidName",
                "Barbican secret names are 1-255 characters without leading or trailing whitespace or control \
                 characters (set spec.target.remoteName)",
            ));
        }
        let caps = self.capabilities(target);
        super::kit::metadata::refuse_unsupported(DIALECT, caps, &req.desired.metadata)?;
        let content_type = match target.content_type.as_deref() {
            None => wire::OCTET_STREAM,
            Some(ct) => wire::normalize_content_type(ct).ok_or_else(|| {
                DialectError::permanent(
                    "UnsupportedContentType",
                    format!(
                        "Barbican payloads are text/plain or application/octet-stream; spec.target.contentType is \
                         {ct:?}"
                    ),
                )
            })?,
        };
        for (k, v) in &target.labels {
            if let Some(problem) = wire::label_problem(k, v) {
                return Err(DialectError::permanent("InvalidLabel", problem));
            }
        }
        if value.is_empty() {
            return Err(DialectError::permanent(
                "EmptyValue",
                "Barbican cannot store an empty payload; the source value is empty",
            ));
        }
        let max = settings(target).max_payload_bytes;
        let limit =
            "Barbican's limit (barbican.maxPayloadBytes, Barbican's max_allowed_secret_in_bytes)";
        kit::metadata::at_most(value, max.unwrap_or(DEFAULT_MAX_PAYLOAD) as usize, limit)?;
        if content_type == wire::TEXT_PLAIN && value.expose_str().is_none() {
            return Err(DialectError::permanent(
                "ValueNotText",
                "spec.target.contentType is text/plain but the value is not UTF-8; Barbican could store it but \
                 never serve it back (leave contentType unset for application/octet-stream)",
            ));
        }
        Ok(())
    }

    async fn observe(&self, req: &Request<'_>) -> Result<Observed, DialectError> {
        let s = self.session(req).await?;
        let items = s.survey(req.remote_name, &req.desired.owner).await?;
        let Some(item) = wire::current(&items) else {
            return Ok(Observed::Absent);
        };
        let spec_ct = req.desired.metadata.content_type.as_deref();
        let remote = Remote {
            reference: reference(req.remote_name, &item.entry.secret_ref),
            owner: match item.kind {
                // Our crash leftover (our creation tag, our user): claimed, so the next write completes it.
                Kind::Orphan => Some(req.desired.owner.clone()),
                _ => item.markers.owner.clone(),
            },
            owner_exists: true,
            // A digest counts only on a marked secret that holds a payload.
            digest: (item.entry.has_payload() && item.markers.owner.is_some())
                .then(|| item.markers.digest.clone())
                .flatten(),
            metadata: Metadata {
                content_type: wire::reported_content_type(item.entry.content_type(), spec_ct),
                description: None,
                labels: item.markers.labels.clone(),
            },
            // Another SecretSync's, its markers still to come: not a secret to adopt as unmarked.
            state: match item.unfinished_elsewhere() {
                true => RemoteState::Creating,
                false => RemoteState::Ready,
            },
            detail: Detail::default(),
        };
        Ok(Observed::Present(Remote {
            detail: Detail::new(Survey(items)),
            ..remote
        }))
    }

    async fn apply(
        &self,
        req: &Request<'_>,
        write: &Write,
        observed: &Observed,
        value: &SecretValue,
    ) -> Result<Outcome, DialectError> {
        let s = self.session(req).await?;
        match write {
            Write::Create | Write::NewVersion | Write::Replace { .. } => {
                s.write(req, observed, value).await
            }
            Write::UpdateMetadata => s.update_metadata(req, observed).await,
        }
    }

    async fn delete(&self, req: &Request<'_>, observed: &Observed) -> Result<(), DialectError> {
        if let Observed::Absent = observed {
            return Ok(());
        }
        let s = self.session(req).await?;
        let mut first_error = None;
        for item in s.items(req, observed).await?.iter().filter(|i| i.mine()) {
            if let Err(e) = s.delete_secret(item.entry.uuid()).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialects::fixtures::{creds, desired, target};

    fn dialect() -> Barbican {
        Barbican::new(Shared::new(10, 10, crate::metrics::Metrics::new()))
    }

    fn check(
        target: &Target,
        credentials: &Credentials,
        name: &str,
        value: &SecretValue,
    ) -> Result<(), DialectError> {
        crate::dialects::fixtures::check(&dialect(), target, credentials, name, value)
    }

    #[test]
    fn check_refuses_what_cannot_work_before_any_call() {
        let noauth = target(
            serde_json::json!({"dialect": "Barbican", "endpoint": "http://127.0.0.1:9311",
            "barbican": {"projectId": "p"}}),
        );
        let none = Credentials::default();
        let v = SecretValue::from("  value with spaces \n");
        assert!(check(&noauth, &none, "db password", &v).is_ok());
        let reason = |r: Result<(), DialectError>| r.expect_err("refused").reason;
        assert_eq!(
            reason(check(&noauth, &none, &"n".repeat(256), &v)),
            "InvalidName"
        );
        assert_eq!(reason(check(&noauth, &none, " x", &v)), "InvalidName");
        assert_eq!(
            reason(check(&noauth, &none, "ok", &SecretValue::new(vec![]))),
            "EmptyValue"
        );
        let big = SecretValue::new(vec![b'x'; 20_001]);
        let e = check(&noauth, &none, "ok", &big).expect_err("too large");
        assert_eq!(
            (e.class, e.reason),
            (ErrorClass::Permanent, "PayloadTooLarge")
        );
        assert!(e.message.contains("20000"));
        assert!(check(&noauth, &none, "ok", &SecretValue::new(vec![b'x'; 20_000])).is_ok());
        let raised = target(
            serde_json::json!({"dialect": "Barbican", "endpoint": "http://h:1",
            "barbican": {"projectId": "p", "maxPayloadBytes": 30000}}),
        );
        assert!(check(&raised, &none, "ok", &big).is_ok());

        let text = target(
            serde_json::json!({"dialect": "Barbican", "endpoint": "http://h:1",
            "contentType": "text/plain; charset=utf-8", "barbican": {"projectId": "p"}}),
        );
        assert!(check(&text, &none, "ok", &v).is_ok());
        assert_eq!(
            reason(check(&text, &none, "ok", &SecretValue::new(vec![0xff]))),
            "ValueNotText"
        );
        let pkcs8 = target(
            serde_json::json!({"dialect": "Barbican", "endpoint": "http://h:1",
            "contentType": "application/pkcs8", "barbican": {"projectId": "p"}}),
        );
        assert_eq!(
            reason(check(&pkcs8, &none, "ok", &v)),
            "UnsupportedContentType"
        );
        let mut described = desired();
        described.metadata.description = Some("d".into());
        let req = Request {
            target: &noauth,
            remote_name: "ok",
            rate_limit: None,
            credentials: &none,
            desired: &described,
            last: None,
            store: None,
        };
        assert_eq!(reason(dialect().check(&req, &v)), "DescriptionUnsupported");
        let labelled = target(
            serde_json::json!({"dialect": "Barbican", "endpoint": "http://h:1",
            "labels": {"Team": "a"}, "barbican": {"projectId": "p"}}),
        );
        assert_eq!(reason(check(&labelled, &none, "ok", &v)), "InvalidLabel");

        let keystone = target(serde_json::json!({"dialect": "Barbican"}));
        let partial = creds(&[
            ("authUrl", "http://k:5000"),
            ("username", "u"),
            ("password", "SENTINEL"),
        ]);
        let e = check(&keystone, &partial, "ok", &v).expect_err("no project");
        assert_eq!(e.class, ErrorClass::Credentials);
        assert!(!e.message.contains("SENTINEL"));
        let full = creds(&[
            ("authUrl", "http://k:5000"),
            ("username", "u"),
            ("password", "p"),
            ("projectName", "demo"),
        ]);
        assert!(check(&keystone, &full, "ok", &v).is_ok());
    }

    #[test]
    fn endpoints_lose_a_trailing_v1() {
        assert_eq!(
            barbican_base("http://b:9311/v1/", "x").unwrap(),
            "http://b:9311"
        );
        assert_eq!(
            barbican_base("https://b/key-manager", "x").unwrap(),
            "https://b/key-manager"
        );
        assert!(barbican_base("unix:///x", "x").is_err());
    }

    #[test]
    fn capabilities_keep_labels_mutable_and_the_content_type_with_the_value() {
        let caps = dialect().capabilities(&target(serde_json::json!({"dialect": "Barbican"})));
        assert_eq!(caps.content_type, Support::WithValue);
        assert_eq!(caps.description, Support::Unsupported);
        assert_eq!(caps.labels, Support::Mutable);
    }

    #[test]
    fn apply_acts_on_what_observe_listed_and_lists_again_only_without_it() {
        let absent = Observed::Absent;
        assert_eq!(surveyed(&absent).map(<[Item]>::len), Some(0));
        let remote = Remote {
            reference: reference(
                "n",
                "http://b/v1/secrets/985e595e-8bdf-4c69-917a-5b9ca9f7ce9b",
            ),
            owner: None,
            owner_exists: true,
            digest: None,
            metadata: Metadata::default(),
            state: RemoteState::Ready,
            detail: Detail::default(),
        };
        let foreign = Observed::Present(remote.clone());
        assert!(
            surveyed(&foreign).is_none(),
            "not this dialect's observation"
        );
        let entry = SecretEntry {
            secret_ref: remote.reference.id.clone().unwrap_or_default(),
            ..Default::default()
        };
        let item = Item::new(
            entry,
            wire::split_metadata(&BTreeMap::new()),
            &desired().owner,
            None,
        );
        let listed = Observed::Present(Remote {
            detail: Detail::new(Survey(vec![item.clone()])),
            ..remote
        });
        assert_eq!(surveyed(&listed), Some(&[item][..]));
    }

    #[test]
    fn references_give_back_their_uuid() {
        let r = reference(
            "n",
            "http://b/v1/secrets/985e595e-8bdf-4c69-917a-5b9ca9f7ce9b",
        );
        assert_eq!(
            uuid_of(&r).as_deref(),
            Some("985e595e-8bdf-4c69-917a-5b9ca9f7ce9b")
        );
        assert_eq!(uuid_of(&reference("n", "http://b/v1/secrets/..")), None);
    }
}
