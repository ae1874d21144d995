//! Vault's KV version 2 and login shapes, and its answers mapped to how SecretSync handles them.

use std::collections::BTreeMap;

use base64::Engine;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::super::kit::retry::THROTTLED;
use super::super::kit::{Reply, Verdict};
use crate::dialects::DialectError;
use crate::value::SecretValue;

/// Vault's answers put what was asked for under `data`.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Envelope<T> {
    pub data: T,
}

/// `GET {mount}/metadata/{path}`.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Metadata {
    pub current_version: u64,
    pub max_versions: u32,
    /// Vault answers `null` for a path without any.
    pub custom_metadata: Option<BTreeMap<String, String>>,
    pub versions: BTreeMap<String, Version>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Version {
    /// Empty unless the version was deleted (soft: `vault kv delete`).
    pub deletion_time: String,
    pub destroyed: bool,
}

impl Metadata {
    /// Whether readers get a value: the current version exists and is neither deleted nor destroyed.
    pub fn current_readable(&self) -> bool {
        self.versions
            .get(&self.current_version.to_string())
            .is_some_and(|v| v.deletion_time.is_empty() && !v.destroyed)
    }
}

/// `POST {mount}/data/{path}`: the version written; `GET` of it: its fields.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct KvVersion {
    pub version: u64,
    pub data: Option<BTreeMap<String, Wiped>>,
}

/// `POST {mount}/metadata/{path}`.
#[derive(serde::Serialize)]
pub struct MetadataWrite {
    pub custom_metadata: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_versions: Option<u32>,
}

/// `POST auth/{mount}/login`.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Login {
    pub auth: LoginAuth,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LoginAuth {
    pub client_token: Wiped,
    /// Seconds; 0 for a token that does not expire.
    pub lease_duration: u64,
}

/// A string wiped when dropped.
#[derive(Default)]
pub struct Wiped(pub Zeroizing<String>);

impl<'de> Deserialize<'de> for Wiped {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Wiped(Zeroizing::new(s)))
    }
}

/// The value a KV map holds, the inverse of [`data_body`]: the field `value` (or `value.base64`) alone is that
/// value, any other map the whole-Secret JSON object. `None` for a map that no SecretSync value makes.
pub fn value_of(fields: &BTreeMap<String, Wiped>) -> Option<SecretValue> {
    let single = |name: &str| (fields.len() == 1).then(|| fields.get(name)).flatten();
    if let Some(Wiped(text)) = single("value") {
        return Some(SecretValue::new(text.as_bytes().to_vec()));
    }
    if let Some(Wiped(b64)) = single("value.base64") {
        return base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .ok()
            .map(SecretValue::new);
    }
    if fields.is_empty() {
        return None;
    }
    let map: BTreeMap<&str, &str> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.0.as_str()))
        .collect();
    // Sorted keys, no spaces: the form the controller gives a whole Secret. A map of strings always serializes.
    let json = Zeroizing::new(serde_json::to_vec(&map).unwrap_or_default());
    Some(SecretValue::new(json.to_vec()))
}

/// The body of a value write: `options.cas` and the KV map. A whole Secret (the controller's JSON object of
/// strings) is one field per key as it stands; any other value is the field `value` (`value.base64` for bytes
/// that are not text). Wiped when dropped.
pub fn data_body(value: &SecretValue, cas: u64) -> Zeroizing<Vec<u8>> {
    let mut body = Zeroizing::new(Vec::with_capacity(value.len() + 64));
    body.extend_from_slice(format!(r#"{{"options":{{"cas":{cas}}},"data":"#).as_bytes());
    let whole_secret = serde_json::from_slice::<BTreeMap<String, Wiped>>(value.expose())
        .is_ok_and(|m| !m.is_empty());
    if whole_secret {
        body.extend_from_slice(value.expose());
    } else {
        let (field, text) = match value.expose_str() {
            Some(text) => ("value", Zeroizing::new(text.to_owned())),
            None => (
                "value.base64",
                Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(value.expose())),
            ),
        };
        // A string always serializes.
        let text = Zeroizing::new(serde_json::to_vec(text.as_str()).unwrap_or_default());
        body.extend_from_slice(format!(r#"{{"{field}":"#).as_bytes());
        body.extend_from_slice(&text);
        body.push(b'}');
    }
    body.push(b'}');
    body
}

const CAS_MISMATCH: &str = "another writer changed the path since it was read (check-and-set)";

/// Phrases of Vault's `errors` that SecretSync recognises, each with its own words; the store's text itself is
/// never shown (it can quote what was sent).
const PHRASES: &[(&str, &str)] = &[
    ("check-and-set parameter did not match", CAS_MISMATCH),
    (
        "check-and-set parameter required",
        "the mount requires check-and-set",
    ),
    ("permission denied", "permission denied"),
    ("no handler for route", "no such mount or route"),
    ("sealed", "Vault is sealed"),
    ("standby", "the node is a standby"),
    ("custom_metadata", "Vault refused the custom metadata"),
    ("max_versions", "Vault refused max_versions"),
    (
        "rate limit quota exceeded",
        "a rate limit quota was exceeded",
    ),
    ("invalid role or secret id", "invalid role or secret ID"),
    ("invalid secret id", "invalid role or secret ID"),
    ("invalid role name", "no such role"),
    ("namespace not found", "no such namespace"),
];

/// The answer's `errors` (Vault's error shape), empty when it has none or is no JSON.
fn errors(reply: &Reply) -> Vec<String> {
    #[derive(Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<String>,
    }
    serde_json::from_slice::<Errors>(&reply.body)
        .map(|e| e.errors)
        .unwrap_or_default()
}

/// Our words for what the answer's `errors` say, when any phrase is known.
pub fn known(reply: &Reply) -> Option<&'static str> {
    errors(reply).iter().find_map(|e| {
        let e = e.to_ascii_lowercase();
        PHRASES
            .iter()
            .find(|(phrase, _)| e.contains(phrase))
            .map(|(_, ours)| *ours)
    })
}

/// Whether the answer is a 404 without errors: Vault's "nothing at this path" (a missing mount names its route).
fn nothing_here(reply: &Reply) -> bool {
    reply.status == 404 && errors(reply).is_empty()
}

/// How SecretSync handles an answer of the KV engine.
pub fn decode(reply: &Reply) -> Verdict {
    if reply.ok() {
        return Verdict::Success;
    }
    if nothing_here(reply) {
        return Verdict::Absent;
    }
    Verdict::Error(map_error(reply, "Vault"))
}

/// How SecretSync handles an answer of a login: any refusal is the credentials'.
pub fn decode_login(reply: &Reply) -> Verdict {
    if reply.ok() {
        return Verdict::Success;
    }
    let e = map_error(reply, "Vault login");
    Verdict::Error(match e.class {
        crate::dialects::ErrorClass::Retry => e,
        _ => DialectError::credentials("CredentialsRejected", e.message),
    })
}

fn map_error(reply: &Reply, who: &str) -> DialectError {
    let status = reply.status;
    let words = known(reply);
    let text = match words {
        Some(words) => format!("{who} answered HTTP {status}: {words}"),
        None => format!("{who} answered HTTP {status}"),
    };
    let after = reply.retry_after();
    match (status, words) {
        (400, Some(CAS_MISMATCH)) => DialectError::conflict("Conflict", text),
        (503, _) | (_, Some("Vault is sealed")) | (_, Some("the node is a standby")) | (473, _) => {
            DialectError::retry("StoreSealed", text).with_retry_after(after)
        }
        (429, _) => DialectError::retry(THROTTLED, text).with_retry_after(after),
        (401 | 403, _) => DialectError::credentials("Forbidden", text),
        (404, Some("no such mount or route")) => DialectError::permanent("MountNotFound", text),
        (400, Some("Vault refused the custom metadata")) => {
            DialectError::permanent("InvalidLabels", text)
        }
        (500..=599, _) => DialectError::retry("BackendError", text).with_retry_after(after),
        _ => DialectError::permanent("BackendRejected", text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialects::fixtures::reply;

    fn error(status: u16, body: &str) -> DialectError {
        match decode(&reply(status, body)) {
            Verdict::Error(e) => e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn answers_map_to_classes_in_our_own_words() {
        assert!(matches!(
            decode(&reply(404, r#"{"errors":[]}"#)),
            Verdict::Absent
        ));
        let cas = error(
            400,
            r#"{"errors":["check-and-set parameter did not match the current version"]}"#,
        );
        assert_eq!(
            (cas.class, cas.reason),
            (crate::dialects::ErrorClass::Conflict, "Conflict")
        );
        let sealed = error(503, r#"{"errors":["Vault is sealed"]}"#);
        assert_eq!(sealed.reason, "StoreSealed");
        assert_eq!(error(473, "").reason, "StoreSealed");
        assert_eq!(error(429, "").reason, THROTTLED);
        assert_eq!(
            error(403, r#"{"errors":["permission denied"]}"#).reason,
            "Forbidden"
        );
        let route = error(
            404,
            r#"{"errors":["no handler for route \"nope/metadata/x\". route entry not found."]}"#,
        );
        assert_eq!(route.reason, "MountNotFound");
        assert!(!route.message.contains("nope"), "{}", route.message);
        assert_eq!(error(500, "").class, crate::dialects::ErrorClass::Retry);
    }

    #[test]
    fn a_hostile_error_text_is_never_shown() {
        let canary = "CANARY-db_password=hunter2";
        for status in [400, 403, 404, 418, 500, 503] {
            let e = error(
                status,
                &format!(r#"{{"errors":["{canary}", "also {canary}"]}}"#),
            );
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains(&status.to_string()), "{shown}");
        }
        let login = match decode_login(&reply(
            400,
            &format!(r#"{{"errors":["invalid role or secret ID {canary}"]}}"#),
        )) {
            Verdict::Error(e) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!(login.reason, "CredentialsRejected");
        assert!(
            !login.message.contains("hunter2")
                && login.message.contains("invalid role or secret ID")
        );
    }

    #[test]
    fn values_become_kv_maps() {
        let body = |v: &[u8]| {
            let b = data_body(&SecretValue::new(v.to_vec()), 3);
            serde_json::from_slice::<serde_json::Value>(&b).expect("JSON")
        };
        let whole = body(br#"{"password":"p\"w","user":"admin"}"#);
        assert_eq!(whole["options"]["cas"], 3);
        assert_eq!(
            whole["data"],
            serde_json::json!({"password": "p\"w", "user": "admin"})
        );
        assert_eq!(
            body(b"s3cret\n")["data"],
            serde_json::json!({"value": "s3cret\n"})
        );
        // JSON that is not an object of strings is one value.
        assert_eq!(
            body(br#"{"n":1}"#)["data"],
            serde_json::json!({"value": "{\"n\":1}"})
        );
        assert_eq!(
            body(b"\xff\x00")["data"],
            serde_json::json!({"value.base64": "/wA="})
        );
    }

    #[test]
    fn a_kv_map_reads_back_as_the_value_that_wrote_it() {
        for value in [
            &br#"{"password":"p\"w","user":"admin"}"#[..],
            b"s3cret\n",
            b"\xff\x00",
            br#"{"n":1}"#,
        ] {
            let body = data_body(&SecretValue::new(value.to_vec()), 0);
            #[derive(Deserialize)]
            struct Body {
                data: BTreeMap<String, Wiped>,
            }
            let fields = serde_json::from_slice::<Body>(&body).expect("JSON").data;
            assert_eq!(value_of(&fields).expect("a value").expose(), value);
        }
        assert!(value_of(&BTreeMap::new()).is_none());
    }

    #[test]
    fn only_a_live_current_version_is_readable() {
        let m: Metadata = serde_json::from_value(serde_json::json!({
            "current_version": 2,
            "custom_metadata": null,
            "versions": {"1": {"deletion_time": "", "destroyed": false}, "2": {"deletion_time": "2026-12-07T20:00:00Z", "destroyed": false}},
        }))
        .expect("metadata");
        assert!(!m.current_readable());
        assert!(m.custom_metadata.is_none());
    }
}
