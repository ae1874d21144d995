//! Metadata a store does not keep: asked for anyway, it is refused before any call, in one wording for every
//! dialect, rather than silently dropped.

use crate::dialects::DialectError;
use crate::plan::{Capabilities, Metadata, Support};
use crate::value::SecretValue;

/// Refuses a content type, description or labels that `store` (its name in messages) has no field for, as its
/// dialect's `capabilities` say.
pub fn refuse_unsupported(
    store: &str,
    caps: Capabilities,
    metadata: &Metadata,
) -> Result<(), DialectError> {
    let refuse = |reason, what, field| {
        Err(DialectError::permanent(
            reason,
            format!("{store} keeps no {what} on a secret; remove spec.target.{field}"),
        ))
    };
    if caps.content_type == Support::Unsupported && metadata.content_type.is_some() {
        return refuse("ContentTypeUnsupported", "content type", "contentType");
    }
    if caps.description == Support::Unsupported && metadata.description.is_some() {
        return refuse("DescriptionUnsupported", "description", "description");
    }
    if caps.labels == Support::Unsupported && !metadata.labels.is_empty() {
        return refuse("LabelsUnsupported", "labels", "labels");
    }
    Ok(())
}

/// Refuses a value of more than `max` bytes, before any call; `limit` says whose limit that is.
pub fn at_most(value: &SecretValue, max: usize, limit: &str) -> Result<(), DialectError> {
    size_at_most(value.len(), max, limit)
}

/// [`at_most`] for a value measured as the store receives it (`size` bytes, base64 for instance).
pub fn size_at_most(size: usize, max: usize, limit: &str) -> Result<(), DialectError> {
    if size <= max {
        return Ok(());
    }
    Err(DialectError::permanent(
        "PayloadTooLarge",
        format!("the value is {size} bytes; {limit} is {max} bytes"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_over_the_limit_is_refused_with_its_size() {
        let value = SecretValue::new(vec![b'x'; 11]);
        assert!(at_most(&value, 11, "S's limit").is_ok());
        let e = at_most(&value, 10, "S's limit").unwrap_err();
        assert_eq!(e.reason, "PayloadTooLarge");
        assert_eq!(e.message, "the value is 11 bytes; S's limit is 10 bytes");
        assert!(size_at_most(10, 10, "S's limit").is_ok());
        assert_eq!(
            size_at_most(12, 10, "S's limit").unwrap_err().reason,
            "PayloadTooLarge"
        );
    }

    #[test]
    fn only_what_the_store_lacks_is_refused() {
        let caps = Capabilities {
            content_type: Support::Unsupported,
            description: Support::Mutable,
            labels: Support::Unsupported,
        };
        let mut m = Metadata {
            description: Some("kept".into()),
            ..Default::default()
        };
        assert!(refuse_unsupported("S", caps, &m).is_ok());
        m.labels.insert("team".into(), "a".into());
        let e = refuse_unsupported("S", caps, &m).unwrap_err();
        assert_eq!(e.reason, "LabelsUnsupported");
        assert!(e.message.contains("spec.target.labels"), "{e}");
        m.content_type = Some("text/plain".into());
        let e = refuse_unsupported("S", caps, &m).unwrap_err();
        assert_eq!(e.reason, "ContentTypeUnsupported");
        let caps = Capabilities {
            description: Support::Unsupported,
            ..caps
        };
        m.content_type = None;
        let e = refuse_unsupported("S", caps, &m).unwrap_err();
        assert_eq!(e.reason, "DescriptionUnsupported");
    }
}
