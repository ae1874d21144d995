//! Inputs the dialects' unit tests share.

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
        metadata: Metadata::default(),
        owner: Owner {
            namespace: "ns".into(),
            name: "app".into(),
            uid: "u-1".into(),
        },
        policy: WritePolicy::Replace,
        adopt_existing: false,
        allow_replace: false,
    }
}
