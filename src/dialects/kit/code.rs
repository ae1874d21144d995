//! A store's error code, typed. A dialect's decoder attaches the code it read (an enum of the store's documented
//! codes, in its wire module, whose text is SecretSync's own) as the error's source; the dialect's logic asks for
//! it back by type. Nothing branches on an error's reason, which is only what users see.

use crate::dialects::DialectError;

/// The code of type `C` that `err`'s decoder attached, if any.
pub fn of<C: std::error::Error + 'static>(err: &DialectError) -> Option<&C> {
    err.source.as_deref()?.downcast_ref::<C>()
}

/// Whether `err` carries the code `code`.
pub fn is<C: std::error::Error + PartialEq + 'static>(err: &DialectError, code: C) -> bool {
    of::<C>(err) == Some(&code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, thiserror::Error)]
    enum Code {
        #[error("first")]
        First,
        #[error("second")]
        Second,
    }

    #[test]
    fn a_code_is_read_back_by_type_only() {
        let e = DialectError::conflict("Anything", "words").with_source(Code::Second);
        assert!(is(&e, Code::Second));
        assert!(!is(&e, Code::First));
        let io = DialectError::retry("Other", "words").with_source(std::io::Error::other("x"));
        assert_eq!(of::<Code>(&io), None);
        assert_eq!(of::<Code>(&DialectError::retry("None", "words")), None);
    }
}
