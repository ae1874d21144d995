//! Reading a store's endpoint URL, with one wording for what is missing or malformed.

use crate::api::Target;
use crate::dialects::DialectError;

/// The store's endpoint as a URL. `missing` says what the dialect needs there (shown when no endpoint is set).
pub fn required(target: &Target, missing: &str) -> Result<url::Url, DialectError> {
    let endpoint = target
        .endpoint
        .as_deref()
        .ok_or_else(|| DialectError::permanent("InvalidSpec", missing))?;
    parse(endpoint, "InvalidSpec")
}

/// `endpoint` as a URL; a malformed one is a permanent error with `reason`.
pub fn parse(endpoint: &str, reason: &'static str) -> Result<url::Url, DialectError> {
    url::Url::parse(endpoint).map_err(|e| {
        DialectError::permanent(reason, format!("the store's endpoint is not a URL: {e}"))
    })
}
