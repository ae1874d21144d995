//! AWS Secrets Manager: the JSON 1.1 API (`POST /` with `X-Amz-Target: secretsmanager.<Action>`), signed with SigV4
//! (the `aws-sigv4` crate) through the kit's transport, with no AWS SDK. What users set and see (settings,
//! credentials, naming, tags, requests, errors) is in `docs/src/dialects/aws-secrets-manager.md`; this is how it is
//! built.
//!
//! # Why the wire flow is shaped this way
//!
//! - The marker is tags, read with the secret's metadata: a refresh at rest is one `DescribeSecret` and the value is
//!   not read. `GetSecretValue` is called only to take over a secret written outside SecretSync (`adoptExisting`
//!   where the store's `adoption` allows it), so that one already holding the source's value gets only the marker.
//! - A new value carries a `ClientRequestToken` made once per write and resent by each retry of it: Secrets Manager
//!   treats a repeated token as the same request, so a retry cannot make a second version, and a fresh token per
//!   write makes a value equal to an earlier one still become `AWSCURRENT`. The token is the new version's ID, which
//!   the `secretsync-version` tag records, so a current version other than the tagged one is someone else's write.
//! - Value first, tags second: an interruption leaves an old digest, which the next reconcile writes over.
//!   Labels and the description are written only where they differ; nothing touches resource policies or
//!   replication, which belong to whoever manages the account.
//! - A secret scheduled for deletion counts as absent, and creating its name restores it only as the ownership rules
//!   allow (our marker, or `adoptExisting` as the store's `adoption` allows).
//!
//! # Credentials
//!
//! Web identity exchanges the store's ServiceAccount token with STS `AssumeRoleWithWebIdentity` (unsigned), and the
//! role's credentials are cached per store until 5 minutes before they expire. A namespaced Store's CA never vouches
//! for STS: its token would otherwise go wherever that CA lets the Store point.
//!
//! # Retries
//!
//! Every call repeats safely: reads, calls that set a state, and writes that carry their `ClientRequestToken`.

mod auth;
mod wire;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use reqwest::Method;
use serde::de::DeserializeOwned;

use super::kit::ownership::{self, Keys, Marker};
use super::kit::session::Session;
use super::kit::store_id::namespace_admin_wrote;
use super::kit::tls::{ClientCache, TlsSettings};
use super::kit::{Exchange, Idempotency, Ignored, Transport, credentials};
use super::{Dialect, DialectError, Outcome, Request, Shared};
use crate::api::{AwsSecretsManagerSettings, DialectKind, Target};
use crate::plan::{Adoption, Desired, Support};
use crate::plan::{
    Capabilities, Detail, Metadata, Observed, Remote, RemoteRef, RemoteState, Write,
};
use crate::value::{Credentials, SERVICE_ACCOUNT_TOKEN_KEY, SecretValue};

pub use auth::{Keys as AwsKeys, SigV4, decode_sts, parse_session};
pub use wire::{decode, request_token};

const DIALECT: &str = "AWSSecretsManager";
const SERVICE: &str = "secretsmanager";
const TAGS: Keys = Keys::Dashed;
/// The version SecretSync wrote, next to the kit's marker: a current version other than it was written by
/// someone else.
const VERSION_TAG: &str = "secretsync-version";
pub const MAX_VALUE: usize = 64 * 1024;
const MAX_TAGS: usize = 50;
/// Tags SecretSync writes (owner, uid, scope, digest, version).
const OUR_TAGS: usize = 5;
pub const MAX_LABELS: usize = MAX_TAGS - OUR_TAGS;
const DEFAULT_RECOVERY_DAYS: u8 = 30;

/// The commercial and GovCloud regions, whose API and STS hosts a namespaced Store may reach.
const REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-7",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-south-1",
    "eu-south-2",
    "eu-north-1",
    "il-central-1",
    "me-south-1",
    "me-central-1",
    "mx-central-1",
    "sa-east-1",
    "us-gov-east-1",
    "us-gov-west-1",
    "cn-north-1",
    "cn-northwest-1",
];

static PUBLIC_HOSTS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut hosts = vec!["sts.amazonaws.com"];
    for region in REGIONS {
        for service in [SERVICE, "sts"] {
            let host = format!("{service}.{region}.{}", domain(region));
            hosts.push(Box::leak(host.into_boxed_str()));
        }
    }
    hosts
});

/// The DNS suffix of a region's endpoints.
fn domain(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    }
}

pub struct AwsSecretsManager {
    transport: Transport,
    sts: Transport,
    clients: ClientCache,
    sessions: auth::Sessions,
}

impl AwsSecretsManager {
    pub fn new(shared: Shared) -> Self {
        AwsSecretsManager {
            clients: ClientCache::new(&shared),
            sts: Transport::new(DIALECT, shared.clone(), decode_sts),
            transport: Transport::new(DIALECT, shared, decode),
            sessions: auth::Sessions::default(),
        }
    }
}

fn settings(target: &Target) -> Result<(&AwsSecretsManagerSettings, &str), DialectError> {
    let missing = || {
        DialectError::permanent(
            "MissingSetting",
            "AWSSecretsManager needs awsSecretsManager.region (on the store)",
        )
    };
    let s = target.aws_secrets_manager.as_deref().ok_or_else(missing)?;
    let region = s
        .region
        .as_deref()
        .filter(|r| !r.is_empty())
        .ok_or_else(missing)?;
    if !region
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(DialectError::permanent(
            "InvalidSetting",
            "awsSecretsManager.region (on the store) is not a region name",
        ));
    }
    Ok((s, region))
}

/// An endpoint URL, checked: https (plain http on loopback only), a host and nothing after it.
fn checked_url(text: &str, what: &str) -> Result<url::Url, DialectError> {
    super::kit::endpoint::secure_root(text, what, "https://secretsmanager.eu-west-1.amazonaws.com")
}

fn endpoint(target: &Target, region: &str) -> Result<url::Url, DialectError> {
    let default = format!("https://{SERVICE}.{region}.{}", domain(region));
    checked_url(
        target.endpoint.as_deref().unwrap_or(&default),
        "the store's endpoint",
    )
}

fn sts_endpoint(s: &AwsSecretsManagerSettings, region: &str) -> Result<url::Url, DialectError> {
    let default = format!("https://sts.{region}.{}", domain(region));
    checked_url(
        s.sts_endpoint.as_deref().unwrap_or(&default),
        "awsSecretsManager.stsEndpoint",
    )
}

/// 1-512 of ASCII letters, digits and `/_+=.@-`.
pub fn valid_name(name: &str) -> bool {
    (1..=512).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_+=.@-".contains(&b))
}

/// What a tag key or value may hold: letters, digits, spaces and `_.:/=+-@` (ASCII here, for simplicity).
fn valid_tag_text(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b" _.:/=+-@".contains(&b))
}

/// Where and as whom one reconcile's requests go (every call is a signed `POST /`), and the store's settings.
struct Ctx<'a> {
    http: Session<'a>,
    settings: &'a AwsSecretsManagerSettings,
}

/// How this request proves who it is, before any call.
enum Identity<'a> {
    Static(AwsKeys),
    WebIdentity {
        role_arn: &'a str,
        token: &'a str,
        sts_url: url::Url,
    },
}

fn identity<'a>(
    creds: &'a Credentials,
    s: &'a AwsSecretsManagerSettings,
    region: &str,
) -> Result<Identity<'a>, DialectError> {
    let token = credentials::text(creds, SERVICE_ACCOUNT_TOKEN_KEY)?;
    match (s.role_arn.as_deref(), token) {
        (Some(role_arn), Some(token)) => Ok(Identity::WebIdentity {
            role_arn,
            token,
            sts_url: sts_endpoint(s, region)?,
        }),
        (Some(_), None) => Err(DialectError::credentials(
            "MissingCredentials",
            "awsSecretsManager.roleArn is assumed with the store's ServiceAccount token: set the store's \
             serviceAccountRef",
        )),
        (None, _) => auth::static_keys(creds).map(Identity::Static),
    }
}

/// The store's `ca.crt` (or caBundle), next to the public roots; only over https.
fn tls<'a>(creds: &'a Credentials, url: &url::Url) -> Result<TlsSettings<'a>, DialectError> {
    super::kit::tls::store_ca(creds, url)
}

impl AwsSecretsManager {
    async fn context<'a>(&'a self, req: &'a Request<'a>) -> Result<Ctx<'a>, DialectError> {
        let (s, region) = settings(req.target)?;
        let url = endpoint(req.target, region)?;
        let client = self.clients.client(tls(req.credentials, &url)?)?;
        let keys = match identity(req.credentials, s, region)? {
            Identity::Static(keys) => std::sync::Arc::new(keys),
            Identity::WebIdentity {
                role_arn,
                token,
                sts_url,
            } => {
                let store = req.store.clone().ok_or_else(
                    || {
                        DialectError::permanent(
                            "InvalidSpec",
                            "web identity (awsSecretsManager.roleArn) needs a store with serviceAccountRef",
                        )
                    },
                )?;
                // A namespace admin chose the STS host: their CA must not vouch for where the token goes.
                let sts_tls = if namespace_admin_wrote(req.store.as_ref()) {
                    TlsSettings {
                        ca: self.transport.shared().identity_provider_ca.as_deref(),
                        identity: None,
                        public_roots: true,
                    }
                } else {
                    tls(req.credentials, &sts_url)?
                };
                let who = auth::WebIdentity {
                    store: &store,
                    role_arn,
                    sts_url: sts_url.as_str(),
                    token,
                    client: &self.clients.client(sts_tls)?,
                };
                auth::assume_role(&self.sessions, &self.sts, &who).await?
            }
        };
        let http = Session {
            transport: &self.transport,
            client,
            base: url.as_str().trim_end_matches('/').to_owned(),
            suffix: String::new(),
            rate: req.rate_limit,
            auth: Box::new(SigV4 {
                keys,
                region: region.to_owned(),
                service: SERVICE,
            }),
        };
        Ok(Ctx { http, settings: s })
    }

    /// One signed call through the kit's transport; `None` when the secret does not exist.
    async fn call<T: DeserializeOwned + Default>(
        &self,
        ctx: &Ctx<'_>,
        action: &'static str,
        body: &wire::Body<'_>,
    ) -> Result<Option<T>, DialectError> {
        let method = Method::POST;
        let target = format!("{SERVICE}.{action}");
        let headers = [("x-amz-target", target.as_str())];
        let bytes = body.to_bytes();
        let url = ctx.http.url("/");
        // Every call repeats safely: reads, calls that set a state, and writes with their ClientRequestToken.
        let exchange = Exchange::new(action, &method, &url)
            .body("application/x-amz-json-1.1", &bytes)
            .headers(&headers)
            .idempotency(Idempotency::Idempotent);
        let doing = format!("Secrets Manager {action}");
        let reply = ctx.http.send(exchange).await;
        let reply = reply.map_err(|e| super::kit::text::during(&doing, e))?;
        reply.json(&doing)
    }

    /// A call on a secret that must exist (it was just observed): gone is `RemoteGone`, observed again next time.
    async fn on_secret<T: DeserializeOwned + Default>(
        &self,
        ctx: &Ctx<'_>,
        action: &'static str,
        body: &wire::Body<'_>,
    ) -> Result<T, DialectError> {
        self.call(ctx, action, body).await?.ok_or_else(|| {
            DialectError::retry(
                "RemoteGone",
                format!("Secrets Manager {action}: the secret is gone; it is looked up again"),
            )
        })
    }

    /// Sets the tags that differ from `have` and removes those not wanted.
    async fn sync_tags(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        have: &BTreeMap<String, String>,
        want: &[wire::Tag],
    ) -> Result<(), DialectError> {
        let set: Vec<wire::Tag> = want
            .iter()
            .filter(|t| have.get(&t.key) != Some(&t.value))
            .cloned()
            .collect();
        let gone: Vec<String> = have
            .keys()
            .filter(|k| !want.iter().any(|t| &t.key == *k))
            .cloned()
            .collect();
        if !set.is_empty() {
            let body = wire::Body {
                tags: Some(set),
                ..wire::Body::id(name)
            };
            self.on_secret::<Ignored>(ctx, "TagResource", &body).await?;
        }
        if !gone.is_empty() {
            let body = wire::Body {
                tag_keys: Some(gone),
                ..wire::Body::id(name)
            };
            self.on_secret::<Ignored>(ctx, "UntagResource", &body)
                .await?;
        }
        Ok(())
    }
}

/// What `observe` read that `apply` needs.
#[derive(Default)]
struct Seen {
    tags: BTreeMap<String, String>,
    description: Option<String>,
    kms_differs: bool,
}

impl Seen {
    fn of(d: &wire::Described, s: &AwsSecretsManagerSettings) -> Seen {
        Seen {
            tags: d
                .tags
                .iter()
                .flatten()
                .map(|t| (t.key.clone(), t.value.clone()))
                .collect(),
            // Secrets Manager keeps no empty description apart from none.
            description: d.description.clone().filter(|t| !t.is_empty()),
            kms_differs: s
                .kms_key_id
                .as_deref()
                .is_some_and(|want| !same_key(d.kms_key_id.as_deref(), want)),
        }
    }
}

/// The tags a secret should carry: the user's labels and SecretSync's marker with the version written.
fn wanted_tags(desired: &Desired, version: &str) -> Vec<wire::Tag> {
    let mut tags = TAGS.with_labels(&Marker::of(desired), &desired.metadata.labels);
    tags.insert(VERSION_TAG.to_owned(), version.to_owned());
    let tags = tags.into_iter();
    tags.map(|(key, value)| wire::Tag { key, value }).collect()
}

/// Whether the KMS key Secrets Manager reports is the one asked for (it may report an ARN for an ID or alias).
fn same_key(have: Option<&str>, want: &str) -> bool {
    have.is_some_and(|h| {
        h == want || h.ends_with(&format!("/{want}")) || h.ends_with(&format!(":{want}"))
    })
}

#[async_trait]
impl Dialect for AwsSecretsManager {
    fn kind(&self) -> DialectKind {
        DialectKind::AwsSecretsManager
    }

    fn capabilities(&self, _target: &Target) -> Capabilities {
        Capabilities {
            content_type: Support::Unsupported,
            description: Support::Mutable,
            labels: Support::Mutable,
        }
    }

    fn destinations(&self, target: &Target, _credentials: &Credentials) -> Vec<String> {
        let Ok((s, region)) = settings(target) else {
            return target.endpoint.iter().cloned().collect();
        };
        let mut out = vec![
            target
                .endpoint
                .clone()
                .unwrap_or_else(|| format!("https://{SERVICE}.{region}.{}", domain(region))),
        ];
        if s.role_arn.is_some() {
            out.push(
                s.sts_endpoint
                    .clone()
                    .unwrap_or_else(|| format!("https://sts.{region}.{}", domain(region))),
            );
        }
        out
    }

    fn public_hosts(&self) -> &'static [&'static str] {
        &PUBLIC_HOSTS
    }

    fn check(&self, req: &Request<'_>, value: &SecretValue) -> Result<(), DialectError> {
        let (s, region) = settings(req.target)?;
        let url = endpoint(req.target, region)?;
        tls(req.credentials, &url)?;
        identity(req.credentials, s, region)?;
        if !valid_name(req.remote_name) {
            return Err(DialectError::permanent(
                "InvalidName",
                "AWS Secrets Manager names are 1-512 letters, digits and /_+=.@-",
            ));
        }
        let caps = self.capabilities(req.target);
        super::kit::metadata::refuse_unsupported(
            "AWS Secrets Manager",
            caps,
            &req.desired.metadata,
        )?;
        let labels = &req.desired.metadata.labels;
        if labels.len() > MAX_LABELS {
            return Err(DialectError::permanent(
                "TooManyLabels",
                format!(
                    "AWS Secrets Manager keeps {MAX_TAGS} tags and SecretSync uses {OUR_TAGS}: at most {MAX_LABELS} labels"
                ),
            ));
        }
        let bad = labels.iter().any(|(k, v)| {
            k.len() > 128
                || v.len() > 256
                || k.to_ascii_lowercase().starts_with("aws:")
                || !valid_tag_text(k)
                || !valid_tag_text(v)
        });
        if bad {
            return Err(DialectError::permanent(
                "InvalidLabels",
                "AWS tags: keys of at most 128 and values of at most 256 letters, digits, spaces and _.:/=+-@, \
                 keys not starting with aws:",
            ));
        }
        super::kit::metadata::at_most(value, MAX_VALUE, "AWS Secrets Manager's limit")
    }

    async fn read_value(
        &self,
        req: &Request<'_>,
        _remote: &Remote,
    ) -> Result<Option<SecretValue>, DialectError> {
        let ctx = self.context(req).await?;
        let body = wire::Body::id(req.remote_name);
        let read = self.on_secret::<wire::Value>(&ctx, "GetSecretValue", &body);
        Ok(read.await?.into_secret())
    }

    async fn observe(&self, req: &Request<'_>) -> Result<Observed, DialectError> {
        let ctx = self.context(req).await?;
        let Some(d) = self
            .call::<wire::Described>(&ctx, "DescribeSecret", &wire::Body::id(req.remote_name))
            .await?
        else {
            return Ok(Observed::Absent);
        };
        // Scheduled for deletion: gone for its readers and for a deletion; a create finds it (see `restore`).
        if d.deleted_date.is_some() {
            return Ok(Observed::Absent);
        }
        let seen = Seen::of(&d, ctx.settings);
        let marker = TAGS.read(|k| seen.tags.get(k).map(String::as_str));
        let current = d.current_version().map(str::to_owned);
        // A value someone else put (another current version) or one under another KMS key is written again.
        let rewritten = seen.tags.get(VERSION_TAG).map(String::as_str) != current.as_deref();
        let digest = marker
            .as_ref()
            .and_then(|m| m.digest.clone())
            .filter(|_| !rewritten && !seen.kms_differs);
        Ok(Observed::Present(Remote {
            reference: RemoteRef {
                name: req.remote_name.to_owned(),
                id: d.arn.clone(),
                version: current,
            },
            owner: marker.map(|m| m.owner),
            owner_exists: true,
            digest,
            metadata: Metadata {
                content_type: None,
                description: seen.description.clone(),
                labels: ownership::user_labels(&seen.tags),
            },
            state: RemoteState::Ready,
            detail: Detail::new(seen),
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
        let name = req.remote_name;
        let desired = req.desired;
        let none = Seen::default();
        let (seen, current) = match observed {
            Observed::Present(r) => (
                r.detail.get::<Seen>().unwrap_or(&none),
                r.reference.version.clone(),
            ),
            Observed::Absent => (&none, None),
        };
        let token = wire::request_token();
        let payload = wire::Payload::of(value);
        let writing = Writing {
            ctx: &ctx,
            name,
            desired,
            token: &token,
            payload: &payload,
        };
        let written: wire::Written = match write {
            Write::Create => {
                let body = wire::Body {
                    name: Some(name),
                    description: desired.metadata.description.as_deref(),
                    kms_key_id: ctx.settings.kms_key_id.as_deref(),
                    tags: Some(wanted_tags(desired, &token)),
                    ..Default::default()
                }
                .value(&token, &payload);
                match self.on_secret(&ctx, "CreateSecret", &body).await {
                    Err(e) if e.reason == "SecretExists" => self.restore(&writing, e).await?,
                    written => written?,
                }
            }
            // The planner asks for a replacement only where `allows_replace`: here it is a new value.
            Write::NewVersion | Write::Replace { .. } => self.write_value(&writing, seen).await?,
            Write::UpdateMetadata => {
                let description = desired.metadata.description.as_deref();
                if seen.description.as_deref() != description {
                    // The SDKs always send a token (an idempotency field); without a value it makes no version.
                    let body = wire::Body {
                        description: Some(description.unwrap_or_default()),
                        client_request_token: Some(&token),
                        ..wire::Body::id(name)
                    };
                    self.on_secret::<Ignored>(&ctx, "UpdateSecret", &body)
                        .await?;
                }
                let version = current.unwrap_or_default();
                self.sync_tags(&ctx, name, &seen.tags, &wanted_tags(desired, &version))
                    .await?;
                wire::Written {
                    arn: None,
                    version_id: Some(version),
                }
            }
        };
        Ok(Outcome::Ready(RemoteRef {
            name: name.to_owned(),
            id: written.arn.or_else(|| match observed {
                Observed::Present(r) => r.reference.id.clone(),
                Observed::Absent => None,
            }),
            version: written.version_id.or(Some(token)),
        }))
    }

    async fn delete(&self, req: &Request<'_>, _observed: &Observed) -> Result<(), DialectError> {
        let ctx = self.context(req).await?;
        let s = ctx.settings;
        let body = if s.force_delete_without_recovery {
            wire::Body {
                force_delete_without_recovery: Some(true),
                ..wire::Body::id(req.remote_name)
            }
        } else {
            wire::Body {
                recovery_window_in_days: Some(
                    s.recovery_window_days
                        .unwrap_or(DEFAULT_RECOVERY_DAYS)
                        .clamp(7, 30),
                ),
                ..wire::Body::id(req.remote_name)
            }
        };
        // Absent: gone already.
        self.call::<Ignored>(&ctx, "DeleteSecret", &body).await?;
        Ok(())
    }
}

/// One write of a value: where, for whom, and its token.
struct Writing<'a> {
    ctx: &'a Ctx<'a>,
    name: &'a str,
    desired: &'a Desired,
    token: &'a str,
    payload: &'a wire::Payload<'a>,
}

impl AwsSecretsManager {
    /// A new current version, then the tags that record it.
    async fn write_value(
        &self,
        w: &Writing<'_>,
        seen: &Seen,
    ) -> Result<wire::Written, DialectError> {
        let description = w.desired.metadata.description.as_deref();
        let describe = seen.description.as_deref() != description;
        // With the description or the KMS key changing, one UpdateSecret carries them and the value.
        let (action, body) = if describe || seen.kms_differs {
            let body = wire::Body {
                description: describe.then_some(description.unwrap_or_default()),
                kms_key_id: w
                    .ctx
                    .settings
                    .kms_key_id
                    .as_deref()
                    .filter(|_| seen.kms_differs),
                ..wire::Body::id(w.name)
            };
            ("UpdateSecret", body)
        } else {
            ("PutSecretValue", wire::Body::id(w.name))
        };
        let mut written: wire::Written = self
            .on_secret(w.ctx, action, &body.value(w.token, w.payload))
            .await?;
        let version = written.version_id.get_or_insert_with(|| w.token.to_owned());
        self.sync_tags(w.ctx, w.name, &seen.tags, &wanted_tags(w.desired, version))
            .await?;
        Ok(written)
    }

    /// A create met a secret of that name: one scheduled for deletion is restored and written when it is this
    /// SecretSync's, or unmarked and adoptable through the store; anything else stays the create's `error`.
    async fn restore(
        &self,
        w: &Writing<'_>,
        error: DialectError,
    ) -> Result<wire::Written, DialectError> {
        let Some(d) = self
            .call::<wire::Described>(w.ctx, "DescribeSecret", &wire::Body::id(w.name))
            .await?
            .filter(|d| d.deleted_date.is_some())
        else {
            return Err(error);
        };
        let seen = Seen::of(&d, w.ctx.settings);
        let marker = TAGS.read(|k| seen.tags.get(k).map(String::as_str));
        let desired = w.desired;
        let ours = desired.owner.owns(marker.as_ref().map(|m| &m.owner));
        let adoptable =
            marker.is_none() && desired.adopt_existing && desired.adoption != Adoption::Never;
        if !ours && !adoptable {
            return Err(DialectError::conflict(
                "SecretPendingDeletion",
                format!(
                    "a secret named {} is scheduled for deletion in AWS Secrets Manager and is not this \
                     SecretSync's: restore it by hand, let adoptExisting take it (as the store's adoption \
                     allows) or pick another name",
                    w.name
                ),
            ));
        }
        self.on_secret::<Ignored>(w.ctx, "RestoreSecret", &wire::Body::id(w.name))
            .await?;
        let mut written = self.write_value(w, &seen).await?;
        written.arn = written.arn.or(d.arn);
        Ok(written)
    }
}

#[cfg(test)]
mod tests;
