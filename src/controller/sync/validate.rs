//! Step 3, validate: what can be refused before any call to the store, from the spec and what was read. Pure.

use super::dereference::Dereferenced;
use super::error::Error;
use crate::api::SecretSync;
use crate::api::duration;
use crate::controller::stores::resolve::{Connection, Refusal};
use crate::dialects::DialectError;

/// A refresh interval the controller cannot use (written before the CRD refused it) stops the object.
pub fn refresh_interval(obj: &SecretSync) -> Result<(), Error> {
    duration::parse_refresh(&obj.spec.refresh_interval)
        .map(|_| ())
        .map_err(Error::InvalidRefreshInterval)
}

/// The dialect's own checks (names, sizes, settings, credential keys) of what is about to be written.
pub fn target(read: &Dereferenced, namespace: &str) -> Result<(), Error> {
    read.dialect
        .check(&read.request(namespace), &read.value)
        .map_err(|e| with_template(e, &read.connection))
}

/// A name the dialect refuses, made by the store's template: the SecretSync's author cannot fix it alone, so the
/// message says where the name came from.
fn with_template(e: DialectError, connection: &Connection) -> Error {
    match connection.name_template() {
        Some(template) if e.reason == "InvalidName" => {
            Error::Refused(Refusal::InvalidSpec(format!(
                "{}; the name is made by the store's remoteNameTemplate {template:?}",
                e.message
            )))
        }
        _ => Error::Dialect(e),
    }
}
