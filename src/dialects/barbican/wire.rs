//! Barbican's JSON shapes, its error replies, SecretSync's markers in secret metadata, and which of the
//! same-named secrets a listing found is the one the planner is shown.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::dialects::DialectError;
use crate::dialects::kit::ownership::{self, Keys, Marker};
use crate::dialects::kit::retry::THROTTLED;
use crate::dialects::kit::text::{known_at, status_words};
use crate::dialects::kit::{Reply, Verdict, decode_with};
use crate::plan::Owner;

/// SecretSync's user-metadata keys, by the kit's codec (Barbican lower-cases keys and allows `[a-z0-9_-]`):
/// `secretsync-owner-namespace`, `secretsync-owner-name`, `secretsync-owner-uid`, `secretsync-digest`.
const KEYS: Keys = Keys::DashedSplit;

/// Barbican's limit on metadata keys and values and on secret names (characters).
pub(super) const MAX_FIELD: usize = 255;

pub(super) const OCTET_STREAM: &str = "application/octet-stream";
pub(super) const TEXT_PLAIN: &str = "text/plain";

/// One secret as `GET /v1/secrets` lists it.
#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretEntry {
    pub name: Option<String>,
    pub created: Option<String>,
    pub creator_id: Option<String>,
    /// Barbican's cipher `mode`, free text that it stores and lists but never interprets for a stored secret:
    /// SecretSync's creation tag ([`creation_tag`]).
    pub mode: Option<String>,
    /// Present only once the secret has a payload.
    pub content_types: Option<BTreeMap<String, String>>,
    pub secret_ref: String,
}

impl SecretEntry {
    /// The secret's UUID: the last segment of its reference.
    pub fn uuid(&self) -> &str {
        uuid_of(&self.secret_ref)
    }

    pub fn has_payload(&self) -> bool {
        self.content_types.as_ref().is_some_and(|c| !c.is_empty())
    }

    pub fn content_type(&self) -> Option<&str> {
        self.content_types
            .as_ref()?
            .get("default")
            .map(String::as_str)
    }
}

/// The UUID at the end of a secret reference.
pub(super) fn uuid_of(secret_ref: &str) -> &str {
    secret_ref
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
}

#[derive(Deserialize, Default)]
pub(super) struct SecretList {
    #[serde(default)]
    pub secrets: Vec<SecretEntry>,
    pub total: Option<u64>,
}

#[derive(Deserialize, Default)]
pub(super) struct MetadataDoc {
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
pub(super) struct CreatedRef {
    pub secret_ref: String,
}

/// What every creation tag starts with.
const TAG_PREFIX: &str = "secretsync:";

/// What SecretSync sends as the `mode` of every secret it `POST`s for `owner`: `secretsync:` and the SecretSync's
/// uid. The `POST` body has no metadata, and a secret's fields never change after it, so this is the one record
/// that the secret is this SecretSync's from the moment it exists, before its markers are written. `None` (send
/// no tag) without a uid, or if the tag would not be kept as it is.
pub(super) fn creation_tag(owner: &Owner) -> Option<String> {
    let tag = format!("{TAG_PREFIX}{}", owner.uid);
    (!owner.uid.is_empty() && valid_name(&tag)).then_some(tag)
}

/// Whether `id` can be a Barbican secret UUID (and so be put into a URL path as it is).
pub(super) fn valid_uuid(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// What SecretSync's metadata says about a secret.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Markers {
    pub owner: Option<Owner>,
    pub digest: Option<String>,
    /// Every other key: the user's labels.
    pub labels: BTreeMap<String, String>,
    /// Whether the secret had no metadata at all.
    pub empty: bool,
}

pub(super) fn split_metadata(meta: &BTreeMap<String, String>) -> Markers {
    let marker = KEYS.read(|k| meta.get(k).map(String::as_str));
    // A digest without an owner is kept: a crash leftover of SecretSync's own may have only that.
    let digest = meta
        .get("secretsync-digest")
        .filter(|d| !d.is_empty())
        .cloned();
    Markers {
        owner: marker.map(|m| m.owner),
        digest,
        labels: ownership::user_labels(meta),
        empty: meta.is_empty(),
    }
}

/// The whole metadata of a secret SecretSync owns: its markers and the user's labels.
pub(super) fn join_metadata(
    owner: &Owner,
    digest: Option<&str>,
    labels: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let digest = digest.map(str::to_owned);
    KEYS.with_labels(
        &Marker {
            owner: owner.clone(),
            digest,
        },
        labels,
    )
}

/// `text/plain` or `application/octet-stream` from a content type as a user may write it; `None` for
/// anything Barbican cannot take in a payload `PUT`.
pub(super) fn normalize_content_type(ct: &str) -> Option<&'static str> {
    let mut parts = ct.split(';').map(|p| p.trim().to_ascii_lowercase());
    let base = parts.next().unwrap_or_default();
    let params: Vec<String> = parts.filter(|p| !p.is_empty()).collect();
    match base.as_str() {
        "application/octet-stream" if params.is_empty() => Some(OCTET_STREAM),
        "text/plain" if params.iter().all(|p| p.replace(' ', "") == "charset=utf-8") => {
            Some(TEXT_PLAIN)
        }
        _ => None,
    }
}

/// The content type a payload is written with (`application/octet-stream` unless the spec asks for text).
pub(super) fn wire_content_type(spec: Option<&str>) -> &'static str {
    spec.and_then(normalize_content_type)
        .unwrap_or(OCTET_STREAM)
}

/// The remote content type in the spec's own spelling when the two mean the same, so the planner sees no
/// difference between `text/plain; charset=utf-8` and the `text/plain` Barbican reports, nor between no
/// content type and the default `application/octet-stream`.
pub(super) fn reported_content_type(remote: Option<&str>, spec: Option<&str>) -> Option<String> {
    let remote_norm = remote.and_then(normalize_content_type);
    if remote_norm.is_some() && remote_norm == Some(wire_content_type(spec)) {
        return spec.map(str::to_owned);
    }
    remote.map(str::to_owned)
}

/// Barbican strips surrounding whitespace from names; control characters would never match a lookup either.
pub(super) fn valid_name(name: &str) -> bool {
    let n = name.chars().count();
    (1..=MAX_FIELD).contains(&n) && name.trim() == name && !name.chars().any(char::is_control)
}

/// Why a label cannot be stored as Barbican secret metadata, if it cannot.
pub(super) fn label_problem(key: &str, value: &str) -> Option<String> {
    if key.is_empty()
        || key.len() > MAX_FIELD
        || !key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Some(format!(
            "label key {key:?} cannot be Barbican metadata: keys are 1-255 lower-case letters, digits, '-' and '_' \
             (Barbican lower-cases keys, so upper case would never match)"
        ));
    }
    if ownership::is_reserved(key) {
        return Some(format!("label key {key:?} is reserved for SecretSync"));
    }
    if value.chars().count() > MAX_FIELD || value.trim() != value {
        return Some(format!(
            "the value of label {key:?} cannot be Barbican metadata: at most 255 characters, without leading or \
             trailing whitespace (Barbican strips it)"
        ));
    }
    None
}

/// The titles Barbican (`{"code","title","description"}`) and Keystone (`{"error":{"code","title","message"}}`)
/// give their errors: HTTP's names of the statuses they document. The only part of an error body ever shown.
const KNOWN_TITLES: &[&str] = &[
    "Bad Request",
    "Unauthorized",
    "Forbidden",
    "Not Found",
    "Not Acceptable",
    "Conflict",
    "Request Entity Too Large",
    "Unsupported Media Type",
    "Too Many Requests",
    "Internal Server Error",
    "Not Implemented",
    "Service Unavailable",
    "Validation Error",
];

/// `"{who} answered HTTP {status}"`, with the error's title when it is one of the known ones, else HTTP's name
/// for the status.
pub(super) fn answered(who: &str, status: u16, body: &[u8]) -> String {
    // `description` and `message` are never read: they are free text, and a store's author may point the
    // endpoint at a service whose answers they want to read.
    let title = known_at(body, &["/title", "/error/title"], KNOWN_TITLES);
    match title.unwrap_or(status_words(status)) {
        "" => format!("{who} answered HTTP {status}"),
        title => format!("{who} answered HTTP {status} ({title})"),
    }
}

/// The answers a write acts on, attached to the error as its source (see [`crate::dialects::kit::code`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum Code {
    /// 404 where the secret had to exist.
    #[error("Barbican has no such secret")]
    NotFound,
    /// 409 to a payload `PUT`: payloads are write-once.
    #[error("the secret already has a payload")]
    PayloadAlreadySet,
    /// 406: the payload is stored with another content type.
    #[error("the payload is stored with another content type")]
    NotAcceptable,
    /// 400, 415 and other refusals of what was sent.
    #[error("Barbican refused the request")]
    Rejected,
}

/// Barbican's reading of an answer, the one decoder of every Barbican call: 2xx success, 404 absent (callers
/// know what was missing: see [`not_found`]), the rest by status.
pub(super) fn decode(reply: &Reply) -> Verdict {
    decode_with(reply, map_error)
}

/// The error for a 404 where the secret had to exist (a metadata or payload write).
pub(super) fn not_found(reply: &Reply) -> DialectError {
    map_error(404, &reply.body, None)
}

/// Maps a failed Barbican reply to an error.
fn map_error(status: u16, body: &[u8], retry_after: Option<Duration>) -> DialectError {
    let text = answered("Barbican", status, body);
    match status {
        300..=399 => DialectError::redirected(status),
        400 | 415 => DialectError::permanent("BackendRejected", text).with_source(Code::Rejected),
        401 => DialectError::credentials(
            "Unauthorized",
            format!(
                "{text} (the token was refused even after a new one was fetched: check the credentials and that \
                 Barbican trusts this Keystone)"
            ),
        ),
        403 => DialectError::credentials(
            "Forbidden",
            format!(
                "{text} (the Keystone user needs a role that may manage secrets in the project, such as member; \
                 in no-auth mode the policy decides by X-Roles)"
            ),
        ),
        404 => DialectError::retry("SecretNotFound", text).with_source(Code::NotFound),
        // Asked for a payload in a content type the secret was not stored with.
        406 => DialectError::permanent("NotAcceptable", text).with_source(Code::NotAcceptable),
        409 => {
            DialectError::conflict("PayloadAlreadySet", text).with_source(Code::PayloadAlreadySet)
        }
        413 => DialectError::permanent(
            "PayloadTooLarge",
            format!(
                "{text} (the server's max_allowed_secret_in_bytes is lower than barbican.maxPayloadBytes allowed)"
            ),
        ),
        429 => DialectError::retry(THROTTLED, text).with_retry_after(retry_after),
        500..=599 => DialectError::retry("BackendError", text).with_retry_after(retry_after),
        _ => DialectError::permanent("BackendRejected", text).with_source(Code::Rejected),
    }
}

/// How a same-named secret relates to the SecretSync at hand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// Marked as this SecretSync's.
    Ours,
    /// Unmarked and without a payload, and `POST`ed by this SecretSync: its creation tag and SecretSync's
    /// Keystone user. Left behind by a crash between the `POST` and the metadata write (or that write still
    /// to come). Never inferred from anything else: an unmarked, empty secret of the same name and user without
    /// this tag may be another SecretSync's between its own two steps.
    Orphan,
    /// Marked as another SecretSync's.
    Other(Owner),
    /// Not SecretSync's.
    Foreign,
}

/// One same-named secret with its metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Item {
    pub entry: SecretEntry,
    pub markers: Markers,
    pub kind: Kind,
}

impl Item {
    pub fn new(entry: SecretEntry, markers: Markers, owner: &Owner, creator: Option<&str>) -> Item {
        let kind = match &markers.owner {
            Some(o) if owner.owns(Some(o)) => Kind::Ours,
            Some(o) => Kind::Other(o.clone()),
            None if unfinished(&entry, &markers)
                && creation_tag(owner).is_some_and(|t| entry.mode.as_deref() == Some(&*t))
                && creator.is_some_and(|c| entry.creator_id.as_deref() == Some(c)) =>
            {
                Kind::Orphan
            }
            None => Kind::Foreign,
        };
        Item {
            entry,
            markers,
            kind,
        }
    }

    pub fn mine(&self) -> bool {
        matches!(self.kind, Kind::Ours | Kind::Orphan)
    }

    /// Whether this is another SecretSync's secret between its `POST` and its metadata write: someone else's
    /// creation tag, no markers, no payload yet. Its markers are about to follow.
    pub fn unfinished_elsewhere(&self) -> bool {
        self.kind == Kind::Foreign
            && unfinished(&self.entry, &self.markers)
            && self
                .entry
                .mode
                .as_deref()
                .is_some_and(|m| m.starts_with(TAG_PREFIX))
    }
}

/// No metadata and no payload: the state a `POST` leaves a secret in.
fn unfinished(entry: &SecretEntry, markers: &Markers) -> bool {
    markers.empty && !entry.has_payload()
}

/// Sorts newest first (Barbican's `created` timestamps are ISO-8601 in UTC, so text order is time order).
pub(super) fn newest_first(items: &mut [Item]) {
    items.sort_by(|a, b| {
        b.entry
            .created
            .cmp(&a.entry.created)
            .then_with(|| b.entry.secret_ref.cmp(&a.entry.secret_ref))
    });
}

/// The secret the planner is shown, from the same-named secrets sorted newest first: the newest of ours, else
/// our crash leftover (claimed, so that the next write completes it), else the newest of someone else's.
pub(super) fn current(items: &[Item]) -> Option<&Item> {
    let of = |kind: Kind| items.iter().find(|i| i.kind == kind);
    of(Kind::Ours)
        .or_else(|| of(Kind::Orphan))
        .or_else(|| items.first())
}

/// The secret a value write completes rather than making another: the newest of ours when it has no payload
/// yet (a write that a crash interrupted). An unfinished secret older than a finished one is garbage, pruned.
pub(super) fn interrupted(items: &[Item]) -> Option<&Item> {
    items
        .iter()
        .find(|i| i.mine())
        .filter(|i| !i.entry.has_payload())
}

/// The UUIDs of our secrets to delete once `current` holds the value: every other one without a payload, every
/// orphan, and superseded ones beyond the newest `keep`. Never anything that is not ours.
pub(super) fn prune<'a>(items: &'a [Item], current: &str, keep: usize) -> Vec<&'a str> {
    let mut kept = 0;
    let mut out = Vec::new();
    for item in items
        .iter()
        .filter(|i| i.mine() && i.entry.uuid() != current)
    {
        if item.kind == Kind::Ours && item.entry.has_payload() && kept < keep {
            kept += 1;
        } else {
            out.push(item.entry.uuid());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialects::ErrorClass;
    use crate::dialects::kit::code;

    fn owner() -> Owner {
        Owner {
            namespace: "ns".into(),
            name: "app".into(),
            uid: "u-1".into(),
            scope: Default::default(),
        }
    }

    fn entry(uuid: &str, created: &str, payload: bool, creator: &str) -> SecretEntry {
        SecretEntry {
            name: Some("n".into()),
            created: Some(created.into()),
            creator_id: Some(creator.into()),
            mode: None,
            content_types: payload
                .then(|| [("default".to_string(), OCTET_STREAM.to_string())].into()),
            secret_ref: format!("http://b/v1/secrets/{uuid}"),
        }
    }

    fn ours(uuid: &str, created: &str, payload: bool, digest: &str) -> Item {
        let meta = join_metadata(&owner(), Some(digest), &BTreeMap::new());
        Item::new(
            entry(uuid, created, payload, "me"),
            split_metadata(&meta),
            &owner(),
            Some("me"),
        )
    }

    fn bare(uuid: &str, created: &str, payload: bool, creator: &str) -> Item {
        tagged(uuid, created, payload, creator, None)
    }

    /// An unmarked secret whose `POST` carried `mode`.
    fn tagged(uuid: &str, created: &str, payload: bool, creator: &str, mode: Option<&str>) -> Item {
        let entry = SecretEntry {
            mode: mode.map(str::to_owned),
            ..entry(uuid, created, payload, creator)
        };
        Item::new(
            entry,
            split_metadata(&BTreeMap::new()),
            &owner(),
            Some("me"),
        )
    }

    /// Left by a crash of ours between `POST` and the metadata write.
    fn leftover(uuid: &str, created: &str) -> Item {
        tagged(uuid, created, false, "me", Some("secretsync:u-1"))
    }

    #[test]
    fn metadata_round_trips_and_labels_never_shadow_markers() {
        let labels: BTreeMap<String, String> = [
            ("team".to_string(), "a".to_string()),
            ("secretsync-digest".to_string(), "forged".to_string()),
        ]
        .into();
        let meta = join_metadata(&owner(), Some("hmac-sha256:00"), &labels);
        assert_eq!(
            meta.get("secretsync-digest").map(String::as_str),
            Some("hmac-sha256:00")
        );
        let m = split_metadata(&meta);
        assert_eq!(m.owner, Some(owner()));
        assert_eq!(m.digest.as_deref(), Some("hmac-sha256:00"));
        assert_eq!(m.labels, [("team".to_string(), "a".to_string())].into());
        assert!(!m.empty);
        assert!(meta.values().all(|v| v.len() <= MAX_FIELD));
        let none = split_metadata(&BTreeMap::new());
        assert!(none.empty && none.owner.is_none());
    }

    #[test]
    fn content_types_are_compared_by_meaning() {
        assert_eq!(
            normalize_content_type("text/plain; charset=UTF-8"),
            Some(TEXT_PLAIN)
        );
        assert_eq!(
            normalize_content_type("Application/Octet-Stream"),
            Some(OCTET_STREAM)
        );
        assert_eq!(normalize_content_type("application/pkcs8"), None);
        assert_eq!(normalize_content_type("text/plain; charset=latin1"), None);
        assert_eq!(wire_content_type(None), OCTET_STREAM);
        assert_eq!(
            reported_content_type(Some("text/plain"), Some("text/plain;charset=utf-8")).as_deref(),
            Some("text/plain;charset=utf-8")
        );
        assert_eq!(reported_content_type(Some(OCTET_STREAM), None), None);
        assert_eq!(
            reported_content_type(Some(OCTET_STREAM), Some("text/plain")).as_deref(),
            Some(OCTET_STREAM)
        );
        assert_eq!(reported_content_type(None, None), None);
    }

    #[test]
    fn names_and_labels_follow_barbican_rules() {
        assert!(valid_name("db-password_1 (prod)"));
        assert!(valid_name(&"é".repeat(255)));
        assert!(!valid_name(&"x".repeat(256)));
        assert!(!valid_name(""));
        assert!(!valid_name(" padded"));
        assert!(!valid_name("line\nbreak"));
        assert!(label_problem("team", "payments").is_none());
        assert!(label_problem("Team", "x").is_some());
        assert!(label_problem("a.b", "x").is_some());
        assert!(label_problem("secretsync-x", "x").is_some());
        assert!(label_problem("k", " padded").is_some());
        assert!(label_problem("k", &"v".repeat(256)).is_some());
    }

    fn reply(status: u16, body: &[u8], retry_after: Option<u64>) -> Reply {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(secs) = retry_after {
            headers.insert(reqwest::header::RETRY_AFTER, secs.into());
        }
        Reply {
            status,
            headers,
            body: zeroize::Zeroizing::new(body.to_vec()),
            absent: false,
        }
    }

    fn error(status: u16, body: &[u8], retry_after: Option<u64>) -> DialectError {
        match decode(&reply(status, body, retry_after)) {
            Verdict::Error(e) => e,
            other => panic!("HTTP {status} decoded as {other:?}"),
        }
    }

    #[test]
    fn errors_map_to_classes_with_status_and_known_title_only() {
        let body = |code: u16, d: &str| {
            serde_json::to_vec(
                &serde_json::json!({"code": code, "title": "Conflict", "description": d}),
            )
            .unwrap()
        };
        assert!(matches!(decode(&reply(204, b"", None)), Verdict::Success));
        assert!(matches!(decode(&reply(404, b"", None)), Verdict::Absent));
        let e = error(
            409,
            &body(409, "Secret already has data, cannot modify it."),
            None,
        );
        assert_eq!(
            (e.class, e.reason),
            (ErrorClass::Conflict, "PayloadAlreadySet")
        );
        assert!(!e.message.contains("already has data"), "{}", e.message);
        assert!(
            e.message
                .starts_with("Barbican answered HTTP 409 (Conflict)"),
            "{}",
            e.message
        );
        let e = error(413, &body(413, "too large"), None);
        assert_eq!(
            (e.class, e.reason),
            (ErrorClass::Permanent, "PayloadTooLarge")
        );
        assert_eq!(error(401, b"", None).class, ErrorClass::Credentials);
        assert_eq!(error(403, b"", None).class, ErrorClass::Credentials);
        assert_eq!(
            error(400, &body(400, "x"), None).class,
            ErrorClass::Permanent
        );
        assert_eq!(error(406, b"", None).reason, "NotAcceptable");
        assert_eq!(not_found(&reply(404, b"", None)).reason, "SecretNotFound");
        let e = error(429, b"", Some(4));
        assert_eq!(
            (e.class, e.reason, e.retry_after),
            (ErrorClass::Retry, THROTTLED, Some(Duration::from_secs(4)))
        );
        let e = error(503, b"<html><body>down</body></html>", None);
        assert_eq!(e.class, ErrorClass::Retry);
        assert_eq!(
            e.message,
            "Barbican answered HTTP 503 (Service Unavailable)"
        );
        // Keystone's (and keystonemiddleware's) error shape.
        let e = error(
            401,
            br#"{"error": {"code": 401, "title": "Unauthorized", "message": "requires authentication"}}"#,
            None,
        );
        assert!(
            e.message
                .starts_with("Barbican answered HTTP 401 (Unauthorized)")
                && !e.message.contains("requires authentication"),
            "{}",
            e.message
        );
        // A title that is not a known one is not shown either.
        let e = error(
            400,
            br#"{"code": 400, "title": "CANARY title", "description": "CANARY"}"#,
            None,
        );
        assert_eq!(e.message, "Barbican answered HTTP 400 (Bad Request)");
    }

    #[test]
    fn a_body_is_never_quoted() {
        const VALUE: &str = "hunter2-SENTINEL-value";
        for (status, body) in [
            (400, format!("garbage {VALUE} garbage")),
            (500, format!("<html><pre>{VALUE}</pre></html>")),
            (409, format!(r#"{{"payload": "{VALUE}"}}"#)),
            (
                400,
                format!(r#"{{"code": 400, "description": "", "echo": "{VALUE}"}}"#),
            ),
            (413, format!("{{not json {VALUE}")),
            (
                403,
                format!(r#"{{"error": {{"title": "Forbidden", "message": "{VALUE}"}}}}"#),
            ),
            (503, format!(r#""{VALUE}""#)),
        ] {
            let e = error(status, body.as_bytes(), None);
            assert!(!e.message.contains("SENTINEL"), "{}", e.message);
            assert!(
                e.message.contains(&format!("HTTP {status}")),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn uuids_come_from_references() {
        let e = entry("0b4c-11", "t", false, "me");
        assert_eq!(e.uuid(), "0b4c-11");
        assert!(valid_uuid("985e595e-8bdf-4c69-917a-5b9ca9f7ce9b"));
        assert!(!valid_uuid("../x"));
        assert!(!valid_uuid(""));
    }

    #[test]
    fn creation_tags_name_the_secretsync_object() {
        assert_eq!(creation_tag(&owner()).as_deref(), Some("secretsync:u-1"));
        let no_uid = Owner {
            uid: String::new(),
            ..owner()
        };
        assert_eq!(creation_tag(&no_uid), None);
        // Barbican keeps at most 255 characters of a mode: a tag it would refuse or cut is not sent.
        let long = Owner {
            uid: "u".repeat(250),
            ..owner()
        };
        assert_eq!(creation_tag(&long), None);
    }

    #[test]
    fn classification_takes_a_leftover_for_ours_only_by_our_creation_tag() {
        assert_eq!(ours("a", "1", true, "d").kind, Kind::Ours);
        assert_eq!(leftover("a", "1").kind, Kind::Orphan);
        // Unmarked, empty, same Keystone user, but no tag of ours: another SecretSync's between its POST and
        // its metadata write looks exactly like this. Never ours.
        let untagged = bare("a", "1", false, "me");
        assert_eq!(untagged.kind, Kind::Foreign);
        assert!(!untagged.mine() && !untagged.unfinished_elsewhere());
        let theirs = tagged("a", "1", false, "me", Some("secretsync:u-2"));
        assert_eq!(theirs.kind, Kind::Foreign);
        assert!(!theirs.mine() && theirs.unfinished_elsewhere());
        // Our tag, but made by another user, or finished by someone (a payload or metadata): not a leftover.
        let elsewhere = tagged("a", "1", false, "someone", Some("secretsync:u-1"));
        assert_eq!(elsewhere.kind, Kind::Foreign);
        assert_eq!(
            tagged("a", "1", true, "me", Some("secretsync:u-1")).kind,
            Kind::Foreign
        );
        let labelled = Item::new(
            SecretEntry {
                mode: Some("secretsync:u-1".into()),
                ..entry("a", "1", false, "me")
            },
            split_metadata(&[("team".to_string(), "x".to_string())].into()),
            &owner(),
            Some("me"),
        );
        assert_eq!(labelled.kind, Kind::Foreign);
        assert!(!labelled.unfinished_elsewhere());
        assert_eq!(bare("a", "1", true, "me").kind, Kind::Foreign);
        let other = Owner {
            namespace: "ns".into(),
            name: "other".into(),
            uid: "u-2".into(),
            scope: Default::default(),
        };
        let meta = join_metadata(&other, None, &BTreeMap::new());
        let item = Item::new(
            entry("a", "1", true, "me"),
            split_metadata(&meta),
            &owner(),
            Some("me"),
        );
        assert_eq!(item.kind, Kind::Other(other));
        // No identity known (no-auth without a user): nothing is taken for a leftover.
        let item = Item::new(
            SecretEntry {
                mode: Some("secretsync:u-1".into()),
                ..entry("a", "1", false, "me")
            },
            split_metadata(&BTreeMap::new()),
            &owner(),
            None,
        );
        assert_eq!(item.kind, Kind::Foreign);
        // A SecretSync without a uid sends no tag, so nothing can be its leftover.
        let no_uid = Owner {
            uid: String::new(),
            ..owner()
        };
        let item = Item::new(
            SecretEntry {
                mode: Some(TAG_PREFIX.into()),
                ..entry("a", "1", false, "me")
            },
            split_metadata(&BTreeMap::new()),
            &no_uid,
            Some("me"),
        );
        assert_eq!(item.kind, Kind::Foreign);
    }

    /// Issue #27: another SecretSync's secret of the same name, caught between its `POST` and its metadata write
    /// (unmarked, no payload, the same Keystone user), is never reused, completed, pruned or deleted.
    #[test]
    fn another_secretsyncs_unfinished_secret_is_never_claimed() {
        for theirs in [
            bare("theirs", "3", false, "me"),
            tagged("theirs", "3", false, "me", Some("secretsync:u-2")),
        ] {
            // Next to secrets of ours: ours stay current, theirs is not ours to complete or tidy.
            let items = vec![
                theirs.clone(),
                ours("cur", "2", true, "d2"),
                ours("old", "1", true, "d1"),
            ];
            assert_eq!(current(&items).map(|i| i.entry.uuid()), Some("cur"));
            assert_eq!(interrupted(&items), None);
            assert_eq!(prune(&items, "fresh", 0), vec!["cur", "old"]);
            // Alone: someone else's, so a conflict, never completed.
            let alone = vec![theirs.clone()];
            assert_eq!(current(&alone).map(|i| i.entry.uuid()), Some("theirs"));
            assert_eq!(interrupted(&alone), None);
            assert!(prune(&alone, "fresh", 0).is_empty());
            assert!(!theirs.mine(), "delete takes only what is mine");
        }
    }

    #[test]
    fn the_planner_is_shown_our_newest_then_our_leftover_then_the_newest() {
        let mut items = vec![
            ours("old", "2020-01-01T00:00:01", true, "d1"),
            bare("foreign", "2020-01-01T00:00:09", true, "x"),
            ours("new", "2020-01-01T00:00:05", true, "d2"),
        ];
        newest_first(&mut items);
        assert_eq!(items[0].entry.uuid(), "foreign");
        assert_eq!(current(&items).map(|i| i.entry.uuid()), Some("new"));
        assert_eq!(prune(&items, "new", 0), vec!["old"]);
        assert!(prune(&items, "new", 1).is_empty());

        let orphan_only = vec![leftover("o", "2"), bare("f", "1", true, "x")];
        assert_eq!(current(&orphan_only).map(|i| i.entry.uuid()), Some("o"));
        let foreign = vec![bare("f", "1", true, "x")];
        assert_eq!(current(&foreign).map(|i| i.entry.uuid()), Some("f"));
        assert_eq!(current(&[]), None);
    }

    #[test]
    fn a_write_completes_the_newest_unfinished_secret_of_ours_only() {
        // Crash after POST and metadata: the newest of ours has no payload.
        let items = vec![ours("new", "2", false, "d2"), ours("old", "1", true, "d1")];
        assert_eq!(interrupted(&items).map(|i| i.entry.uuid()), Some("new"));
        // Finished: a write makes a new secret.
        let items = vec![ours("new", "2", true, "d2"), ours("old", "1", true, "d1")];
        assert_eq!(interrupted(&items), None);
        // An unfinished secret older than a finished one is garbage, not the one to complete.
        let items = vec![
            ours("new", "2", true, "d1"),
            ours("stale", "1", false, "d2"),
        ];
        assert_eq!(interrupted(&items), None);
        assert_eq!(prune(&items, "fresh", 5), vec!["stale"]);
        // Crash between POST and metadata: the leftover with our creation tag is completed, and pruned when it
        // is not the newest.
        let items = vec![leftover("o", "2"), bare("f", "1", true, "x")];
        assert_eq!(interrupted(&items).map(|i| i.entry.uuid()), Some("o"));
        let items = vec![ours("new", "3", true, "d"), leftover("o", "2")];
        assert_eq!(prune(&items, "new", 5), vec!["o"]);
        // Foreign secrets are never completed or pruned.
        let items = vec![bare("f", "1", false, "x")];
        assert_eq!(interrupted(&items), None);
        assert!(prune(&items, "fresh", 0).is_empty());
    }

    #[test]
    fn the_answers_a_write_acts_on_are_typed() {
        assert_eq!(
            code::of::<Code>(&not_found(&reply(404, b"", None))),
            Some(&Code::NotFound)
        );
        assert_eq!(
            code::of::<Code>(&error(409, b"", None)),
            Some(&Code::PayloadAlreadySet)
        );
        assert_eq!(
            code::of::<Code>(&error(406, b"", None)),
            Some(&Code::NotAcceptable)
        );
        for refused in [400, 415, 405] {
            assert_eq!(
                code::of::<Code>(&error(refused, b"", None)),
                Some(&Code::Rejected),
                "{refused}"
            );
        }
        for other in [401, 403, 413, 429, 503] {
            assert_eq!(code::of::<Code>(&error(other, b"", None)), None, "{other}");
        }
    }
}
