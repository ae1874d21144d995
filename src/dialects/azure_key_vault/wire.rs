//! Key Vault's and Entra ID's shapes on the wire: the bodies SecretSync sends, the bundles it reads (never their
//! value), and their errors, typed ([`Code`]) and mapped to classes and reasons.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::TAGS;
use crate::dialects::DialectError;
use crate::dialects::kit::ownership::Marker;
use crate::dialects::kit::{Reply, Verdict, decode_with, oauth, text};
use crate::plan::{Desired, Owner};

#[derive(Serialize)]
struct Attributes {
    enabled: bool,
}

/// A Set Secret body (with `value`) or an Update Secret one (without).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<&'a str>,
    tags: &'a BTreeMap<String, String>,
    attributes: Attributes,
}

/// The body of a write of `desired`, as an enabled version with the user's labels and SecretSync's marker as its
/// tags. A Set Secret body holds the plaintext, so it lives in a buffer that is wiped when dropped.
pub fn body(value: Option<&str>, desired: &Desired) -> Zeroizing<Vec<u8>> {
    let body = Body {
        value,
        content_type: desired
            .metadata
            .content_type
            .as_deref()
            .filter(|c| !c.is_empty()),
        tags: &TAGS.with_labels(&Marker::of(desired), &desired.metadata.labels),
        attributes: Attributes { enabled: true },
    };
    let mut out = Zeroizing::new(Vec::with_capacity(value.map_or(0, str::len) + 512));
    // Strings and a map of strings always serialize.
    let _ = serde_json::to_writer(&mut *out, &body);
    out
}

#[derive(Deserialize, Default, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct BundleAttributes {
    pub enabled: Option<bool>,
    pub created: Option<i64>,
    pub updated: Option<i64>,
    pub recovery_level: Option<String>,
}

impl BundleAttributes {
    /// Whether a deleted secret can be purged (a vault with purge protection says it cannot).
    pub fn purgeable(&self) -> bool {
        self.recovery_level
            .as_deref()
            .is_none_or(|l| l.contains("Purgeable"))
    }
}

/// A SecretBundle, SecretItem or DeletedSecretBundle, without its value: serde skips the `value` field, and the
/// reply's bytes are wiped when dropped.
#[derive(Deserialize, Default, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    pub id: Option<String>,
    pub content_type: Option<String>,
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub attributes: BundleAttributes,
    pub managed: Option<bool>,
}

impl Bundle {
    /// The bundle of a reply (a GET of a secret carries the value: the reply's body is wiped when dropped).
    pub fn read(reply: &Reply) -> Result<Bundle, DialectError> {
        serde_json::from_slice(&reply.body).map_err(|_| {
            DialectError::retry("BackendError", "Key Vault sent an unreadable secret bundle")
        })
    }

    /// The version: the last segment of `…/secrets/{name}/{version}`.
    pub fn version(&self) -> Option<String> {
        let id = self.id.as_deref()?;
        let (base, last) = id.trim_end_matches('/').rsplit_once('/')?;
        (!base.ends_with("/secrets") && valid_version(last)).then(|| last.to_owned())
    }

    pub fn marker(&self) -> Option<Marker> {
        let tags = self.tags.as_ref()?;
        TAGS.read(|k| tags.get(k).map(String::as_str))
    }

    pub fn owner(&self) -> Option<Owner> {
        self.marker().map(|m| m.owner)
    }

    pub fn owned_by(&self, owner: &Owner) -> bool {
        owner.owns(self.owner().as_ref())
    }
}

pub fn valid_version(v: &str) -> bool {
    !v.is_empty() && v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric())
}

/// A page of versions.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    #[serde(default)]
    pub value: Vec<Bundle>,
    pub next_link: Option<String>,
}

/// The KeyVaultError codes SecretSync knows (Key Vault's documented `code` and `innererror.code` values): the only
/// part of an error body ever shown. `message` is never read.
const KNOWN_CODES: &[&str] = &[
    "BadParameter",
    "BadArgument",
    "Unauthorized",
    "AccessDenied",
    "Forbidden",
    "ForbiddenByPolicy",
    "ForbiddenByFirewall",
    "ForbiddenByRbac",
    "ForbiddenByConnection",
    "NotFound",
    "SecretNotFound",
    "Conflict",
    "ObjectIsDeletedButRecoverable",
    "ObjectIsBeingDeleted",
    "ObjectIsBeingRecovered",
    "SecretDisabled",
    "PayloadTooLarge",
    "Throttled",
    "TooManyRequests",
    "InternalServerError",
    "ServiceUnavailable",
];

/// The answers the dialect acts on, attached to their errors (see [`crate::dialects::kit::code`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Code {
    /// The name is held by a soft-deleted secret (`ObjectIsDeletedButRecoverable`).
    #[error("ObjectIsDeletedButRecoverable")]
    SoftDeleted,
    /// A deletion, purge or recovery of the name is still running.
    #[error("ObjectIsBeingDeleted or ObjectIsBeingRecovered")]
    Deleting,
    /// The current version is disabled: its value cannot be read.
    #[error("SecretDisabled")]
    Disabled,
}

/// The known codes of a KeyVaultError: its code and the innermost known `innererror` code (three deep at most).
fn codes(body: &[u8]) -> (Option<&'static str>, Option<&'static str>) {
    let inner = [
        "/error/innererror/innererror/innererror/code",
        "/error/innererror/innererror/code",
        "/error/innererror/code",
    ];
    let known = |pointers: &[&str]| text::known_at(body, pointers, KNOWN_CODES);
    (known(&["/error/code"]), known(&inner))
}

/// Maps a failed reply to an error, by KeyVaultError code first (the innermost one the body has), then by status.
pub fn map_error(status: u16, body: &[u8], retry_after: Option<Duration>) -> DialectError {
    let (code, inner) = codes(body);
    let detail = match (code, inner) {
        (Some(c), Some(i)) => format!("{c} ({i})"),
        (Some(c), None) | (None, Some(c)) => c.to_owned(),
        (None, None) => String::new(),
    };
    let text = match (detail.as_str(), text::status_words(status)) {
        ("", "") => format!("Key Vault answered HTTP {status}"),
        ("", words) => format!("Key Vault answered HTTP {status} ({words})"),
        (detail, _) => format!("Key Vault answered HTTP {status}: {detail}"),
    };
    match (status, inner.or(code)) {
        (409, Some("ObjectIsDeletedButRecoverable")) => DialectError::conflict(
            "SoftDeleted",
            format!("{text} (recover or purge it, or let SecretSync do so)"),
        )
        .with_source(Code::SoftDeleted),
        (409, Some("ObjectIsBeingDeleted" | "ObjectIsBeingRecovered")) => {
            DialectError::retry("BackendDeleting", text)
                .with_retry_after(retry_after.or(Some(Duration::from_secs(2))))
                .with_source(Code::Deleting)
        }
        (403, Some("SecretDisabled")) => {
            DialectError::conflict("SecretDisabled", text).with_source(Code::Disabled)
        }
        (401, _) => DialectError::credentials(
            "Unauthorized",
            format!(
                "{text} (the vault refused the token: check tenantId and clientId, and that the vault belongs to \
                 that tenant)"
            ),
        ),
        (403, _) => DialectError::credentials(
            "Forbidden",
            format!(
                "{text} (the identity needs the Key Vault Secrets Officer role, or an access policy with get, \
                 list, set, delete, recover and purge on secrets)"
            ),
        ),
        (400, _) => DialectError::permanent("BackendRejected", text),
        _ => DialectError::from_status(status, &detail, retry_after),
    }
}

/// Key Vault's reading of an answer: 404 is "no such secret (or deleted secret)", failures by [`map_error`].
pub fn decode(reply: &Reply) -> Verdict {
    decode_with(reply, map_error)
}

/// Entra ID's reading of a token request's answer: the OAuth `error` when it is a known one and the AADSTS
/// number of `error_description` (see [`aadsts_code`]); nothing else of the answer.
pub fn decode_token(reply: &Reply) -> Verdict {
    if reply.ok() {
        return Verdict::Success;
    }
    Verdict::Error(token_error(reply.status, &reply.body, reply.retry_after()))
}

pub fn token_error(status: u16, body: &[u8], retry_after: Option<Duration>) -> DialectError {
    let reply = oauth::TokenReply::read(body);
    let aadsts = reply.error_description.as_deref().and_then(aadsts_code);
    let detail = match (reply.error(), aadsts) {
        (Some(e), Some(n)) => format!(": {e} ({n})"),
        (Some(e), None) => format!(": {e}"),
        (None, Some(n)) => format!(": {n}"),
        (None, None) => String::new(),
    };
    oauth::refused(status, &detail, retry_after)
}

/// The first `AADSTS<digits>` of an Entra `error_description`, rebuilt from its digits: Entra's documented error
/// number names the cause (AADSTS7000215: wrong client secret, AADSTS700016: unknown application), and digits
/// carry nothing of the answer. The description itself is free text and never shown.
fn aadsts_code(description: &str) -> Option<String> {
    let at = description.find("AADSTS")?;
    let digits: String = description[at + "AADSTS".len()..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .take(9)
        .collect();
    (!digits.is_empty()).then(|| format!("AADSTS{digits}"))
}
