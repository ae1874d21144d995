//! The Docker Engine API's secret shapes, and its answers mapped to how SecretSync handles them.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::dialects::DialectError;
use crate::dialects::kit::{self, Reply, Verdict};

/// A secret as `GET /secrets` and `GET /secrets/{id}` describe it (what SecretSync reads of it).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Secret {
    #[serde(rename = "ID")]
    pub id: Option<String>,
    pub version: Option<ObjectVersion>,
    pub created_at: Option<String>,
    pub spec: Option<Spec>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ObjectVersion {
    pub index: Option<u64>,
}

/// A secret's spec: its name and labels (`POST /secrets/{id}/update` takes these, and only the labels change).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Spec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<HashMap<String, String>>,
}

/// The body of `POST /secrets/create`.
#[derive(Serialize)]
pub struct CreateBody<'a> {
    #[serde(rename = "Name")]
    pub name: &'a str,
    #[serde(rename = "Labels")]
    pub labels: &'a HashMap<String, String>,
    /// Standard base64 (the API page says URL-safe, but the daemon decodes the standard alphabet).
    #[serde(rename = "Data")]
    pub data: &'a str,
}

/// The answer to `POST /secrets/create`.
#[derive(Debug, Default, Deserialize)]
pub struct Created {
    #[serde(rename = "ID")]
    pub id: String,
}

/// The answer to `GET /version` (what of it is read).
#[derive(Debug, Default, Deserialize)]
pub struct Version {
    #[serde(rename = "ApiVersion")]
    pub api_version: Option<String>,
}

/// An API version, `major.minor`.
pub fn api_version(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Docker's error body; its message is read to tell the documented cases apart, and never shown.
#[derive(Deserialize)]
struct ErrorBody {
    message: Option<String>,
}

/// The answers the dialect acts on, attached to their errors (see [`kit::code`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Code {
    #[error("the secret is in use by a service")]
    InUse,
    #[error("the name is taken")]
    NameTaken,
    #[error("update out of sequence")]
    OutOfSequence,
}

/// 2xx success, 404 "no such secret", the rest by status and, for the cases Docker tells apart only in words,
/// its message. The answer's own words are never shown: the endpoint may be something other than Docker (an
/// internal service a Store's author wanted to read through the controller).
pub fn decode(reply: &Reply) -> Verdict {
    let status = reply.status;
    match status {
        200..=299 => return Verdict::Success,
        404 => return Verdict::Absent,
        _ => {}
    }
    let message = serde_json::from_slice::<ErrorBody>(&reply.body)
        .ok()
        .and_then(|b| b.message)
        .unwrap_or_default();
    let said = |what: &str| format!("Docker answered HTTP {status} ({what})");
    Verdict::Error(match status {
        400 if message.contains("in use") => {
            DialectError::conflict("SecretInUse", said(&Code::InUse.to_string()))
                .with_source(Code::InUse)
        }
        _ if message.contains("update out of sequence") => DialectError::conflict(
            "UpdateOutOfSequence",
            said(&Code::OutOfSequence.to_string()),
        )
        .with_source(Code::OutOfSequence),
        400 => DialectError::permanent("BadParameter", said("bad parameter")),
        409 => DialectError::conflict("NameTaken", said(&Code::NameTaken.to_string()))
            .with_source(Code::NameTaken),
        503 => DialectError::retry("NotSwarmManager", said("the node is not a swarm manager")),
        _ => DialectError::from_status(status, "", reply.retry_after()),
    })
}

/// The metrics outcome of an answer: a secret kept because a service uses it is `in_use`.
pub fn outcome(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Error(e) if kit::code::is(e, Code::InUse) => "in_use",
        other => kit::http::outcome(other),
    }
}

/// "No such secret" where that is a failure, in the words of the other answers.
pub fn not_found() -> DialectError {
    DialectError::retry(
        "SecretNotFound",
        "Docker answered HTTP 404 (no such secret)",
    )
}
