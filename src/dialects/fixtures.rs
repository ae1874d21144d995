//! Inputs the dialects' unit tests share.

use super::{Dialect, DialectError, Request};
use crate::api::Target;
use crate::plan::{Desired, Metadata, Owner, WritePolicy};
use crate::value::{Credentials, SecretValue};

pub fn target(json: serde_json::Value) -> Target {
    serde_json::from_value(json).expect("target parses")
}

pub fn creds(pairs: &[(&str, &str)]) -> Credentials {
    Credentials::new(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), SecretValue::from(*v)))
            .collect(),
    )
}

/// One SecretSync's desired state, `ns/app` with uid `u-1`.
pub fn desired() -> Desired {
    Desired {
        digest: format!("hmac-sha256:{}", "ab".repeat(32)),
        earlier_digest: None,
        metadata: Metadata::default(),
        owner: Owner {
            namespace: "ns".into(),
            name: "app".into(),
            uid: "u-1".into(),
            scope: Default::default(),
        },
        policy: WritePolicy::Replace,
        adopt_existing: false,
        // A store that lets adoptExisting take anything: what a dialect does when the planner adopts.
        adoption: crate::plan::Adoption::UnmarkedOrOrphaned,
        allow_replace: false,
    }
}

/// Runs a dialect's `check` for the SecretSync of [`desired`], named `name`.
pub fn check(
    dialect: &impl Dialect,
    target: &Target,
    credentials: &Credentials,
    name: &str,
    value: &SecretValue,
) -> Result<(), DialectError> {
    let want = desired();
    dialect.check(&request(target, name, credentials, &want), value)
}

/// A request for `desired` named `name` through `target`, outside any store.
pub fn request<'a>(
    target: &'a Target,
    name: &'a str,
    credentials: &'a Credentials,
    desired: &'a Desired,
) -> Request<'a> {
    Request {
        rate_limit: None,
        target,
        remote_name: name,
        credentials,
        desired,
        last: None,
        store: None,
    }
}

/// A store's answer as the kit's transport hands it to a decoder.
pub fn reply(status: u16, body: &str) -> super::kit::Reply {
    super::kit::Reply {
        status,
        headers: Default::default(),
        body: zeroize::Zeroizing::new(body.as_bytes().to_vec()),
        absent: false,
    }
}
