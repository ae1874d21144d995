//! Secrets Manager's JSON 1.1 shapes, and its error codes mapped to how SecretSync handles them.

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::super::kit::retry::THROTTLED;
use super::super::kit::{Reply, Verdict};
use crate::dialects::DialectError;
use crate::value::SecretValue;

/// The value as Secrets Manager takes it: text as `SecretString`, other bytes as `SecretBinary` (base64 in JSON).
pub enum Payload<'a> {
    Text(&'a str),
    Binary(Zeroizing<String>),
}

impl<'a> Payload<'a> {
    pub fn of(value: &'a SecretValue) -> Self {
        match value.expose_str() {
            Some(text) => Payload::Text(text),
            None => Payload::Binary(Zeroizing::new(
                base64::engine::general_purpose::STANDARD.encode(value.expose()),
            )),
        }
    }
}

#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// One request's body. Every field but the secret's name is optional; the value's fields borrow the value, and
/// the serialized body is wiped when dropped.
#[derive(Serialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_id: Option<&'a str>,
    /// Made once per write and sent by each of its attempts: a repeat cannot make a second version, and it
    /// becomes the new version's ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_request_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_string: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_binary: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag_keys: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_window_in_days: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_delete_without_recovery: Option<bool>,
}

impl<'a> Body<'a> {
    pub fn id(name: &'a str) -> Self {
        Body {
            secret_id: Some(name),
            ..Default::default()
        }
    }

    pub fn value(mut self, token: &'a str, payload: &'a Payload<'a>) -> Self {
        self.client_request_token = Some(token);
        match payload {
            Payload::Text(t) => self.secret_string = Some(t),
            Payload::Binary(b) => self.secret_binary = Some(b.as_str()),
        }
        self
    }

    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        // A struct of strings, numbers and flags always serializes.
        Zeroizing::new(serde_json::to_vec(self).unwrap_or_default())
    }
}

/// `GetSecretValue`'s answer: the value, read only to take over a secret written outside SecretSync.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Value {
    #[serde(default)]
    pub secret_string: Option<String>,
    #[serde(default)]
    pub secret_binary: Option<String>,
}

impl Value {
    /// The value's bytes (a binary one decoded), wiped when dropped; `None` for an answer without a value.
    pub fn into_secret(self) -> Option<SecretValue> {
        let Value {
            secret_string,
            secret_binary,
        } = self;
        let text = secret_string.map(Zeroizing::new);
        let binary = secret_binary.map(Zeroizing::new);
        if let Some(t) = &text {
            return Some(SecretValue::new(t.as_bytes().to_vec()));
        }
        let b = binary?;
        base64::engine::general_purpose::STANDARD
            .decode(b.as_bytes())
            .ok()
            .map(SecretValue::new)
    }
}

/// A fresh `ClientRequestToken`: a random UUID (version 4), as the SDKs make them.
pub fn request_token() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct TagOut {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Described {
    #[serde(rename = "ARN", default)]
    pub arn: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub kms_key_id: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<TagOut>>,
    #[serde(default)]
    pub version_ids_to_stages: Option<BTreeMap<String, Vec<String>>>,
    /// Set while the secret is scheduled for deletion.
    #[serde(default)]
    pub deleted_date: Option<serde_json::Value>,
}

impl Described {
    /// The version readers get (`AWSCURRENT`).
    pub fn current_version(&self) -> Option<&str> {
        self.version_ids_to_stages
            .as_ref()?
            .iter()
            .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
            .map(|(id, _)| id.as_str())
    }
}

#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Written {
    #[serde(rename = "ARN", default)]
    pub arn: Option<String>,
    #[serde(default)]
    pub version_id: Option<String>,
}

/// Secrets Manager's documented error codes (and the signature errors of AWS's front door) that may be shown.
pub const KNOWN_CODES: &[&str] = &[
    "ResourceNotFoundException",
    "ResourceExistsException",
    "InvalidRequestException",
    "InvalidParameterException",
    "InvalidNextTokenException",
    "LimitExceededException",
    "ThrottlingException",
    "InternalServiceError",
    "ServiceUnavailable",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "InvalidClientTokenId",
    "ExpiredTokenException",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "RequestExpired",
    "EncryptionFailure",
    "DecryptionFailure",
    "PreconditionNotMetException",
    "ValidationException",
];

/// The error code of an answer: JSON `__type` (after a `namespace#` and before a `:`), the
/// `x-amzn-ErrorType` header, or an XML `<Code>` of the signature checks in front of the service.
pub fn error_code(reply: &Reply) -> Option<&'static str> {
    #[derive(Deserialize)]
    struct Error {
        #[serde(rename = "__type", default)]
        kind: String,
    }
    let from_json = serde_json::from_slice::<Error>(&reply.body)
        .ok()
        .map(|e| e.kind);
    let from_header = reply
        .headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let from_xml = (std::str::from_utf8(&reply.body).ok())
        .and_then(|xml| super::auth::element(xml, "Code"))
        .map(str::to_owned);
    [from_json, from_header, from_xml]
        .into_iter()
        .flatten()
        .find_map(|raw| {
            let code = raw.rsplit('#').next().unwrap_or_default();
            let code = code.split(':').next().unwrap_or_default();
            super::super::kit::text::known_code(code, KNOWN_CODES)
        })
}

/// How SecretSync handles a documented code; the store's message is never shown.
pub fn map_error(status: u16, code: Option<&'static str>, reply: &Reply) -> DialectError {
    let Some(code) = code else {
        return DialectError::from_status(status, "", reply.retry_after());
    };
    let text = format!("Secrets Manager answered {code} (HTTP {status})");
    match code {
        "ThrottlingException" => {
            DialectError::retry(THROTTLED, text).with_retry_after(reply.retry_after())
        }
        "InternalServiceError" | "ServiceUnavailable" => {
            DialectError::retry("BackendError", text).with_retry_after(reply.retry_after())
        }
        "AccessDeniedException" => DialectError::credentials("Forbidden", text),
        "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "InvalidClientTokenId"
        | "ExpiredTokenException"
        | "IncompleteSignature"
        | "MissingAuthenticationToken"
        | "RequestExpired" => DialectError::credentials("CredentialsRejected", text),
        "ResourceExistsException" => DialectError::conflict("SecretExists", text),
        // Above all a secret scheduled for deletion that this SecretSync may not restore; retried slowly.
        "InvalidRequestException" => DialectError::conflict(
            "InvalidState",
            format!(
                "{text}: the secret is scheduled for deletion, or its state does not allow the call"
            ),
        ),
        "LimitExceededException" => DialectError::permanent("LimitExceeded", text),
        "EncryptionFailure" | "DecryptionFailure" => DialectError::permanent(
            "KmsKeyUnusable",
            format!("{text}: check awsSecretsManager.kmsKeyId and the key's policy"),
        ),
        _ if status >= 500 => DialectError::retry("BackendError", text),
        _ => DialectError::permanent("BackendRejected", text),
    }
}

/// Secrets Manager's reading of an answer: 2xx success, `ResourceNotFoundException` absent (AWS answers it
/// with 400), the rest by code, else by status.
pub fn decode(reply: &Reply) -> Verdict {
    if reply.ok() {
        return Verdict::Success;
    }
    match error_code(reply) {
        Some("ResourceNotFoundException") => Verdict::Absent,
        code => Verdict::Error(map_error(reply.status, code, reply)),
    }
}
