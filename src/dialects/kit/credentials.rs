//! Reading keys of a store's credentials Secret, with one rule for every dialect: a key that is missing and a
//! key whose value is empty or blank are the same (templates often render every key, empty when unused); a value
//! that is not UTF-8 text is an error naming the key. Values are trimmed (a trailing newline from `echo` into a
//! Secret is not part of a password). Errors name keys, never values.

use zeroize::Zeroizing;

use crate::dialects::DialectError;
use crate::value::Credentials;

/// The key's text, or `None` when it is missing or blank.
pub fn text<'a>(creds: &'a Credentials, key: &str) -> Result<Option<&'a str>, DialectError> {
    let Some(value) = creds.get(key) else {
        return Ok(None);
    };
    let text = value.expose_str().ok_or_else(|| {
        DialectError::credentials(
            "InvalidCredentials",
            format!("credentials key {key} is not UTF-8 text"),
        )
    })?;
    let text = text.trim();
    Ok((!text.is_empty()).then_some(text))
}

/// The key's text; a missing or blank key is a `MissingCredentials` error saying what the key is for.
pub fn required<'a>(
    creds: &'a Credentials,
    key: &str,
    what: &str,
) -> Result<&'a str, DialectError> {
    text(creds, key)?.ok_or_else(|| missing(key, what))
}

/// The key's text (see [`text`]), which must be printable ASCII: it goes into a header or a signature, where
/// anything else could break the request (or end up quoted in a header error).
pub fn ascii<'a>(creds: &'a Credentials, key: &str) -> Result<Option<&'a str>, DialectError> {
    match text(creds, key)? {
        Some(t) if !t.bytes().all(|b| b.is_ascii_graphic()) => Err(DialectError::credentials(
            "InvalidCredentials",
            format!("credentials key {key} must be printable ASCII"),
        )),
        t => Ok(t),
    }
}

/// A `"true"` or `"false"` key (in any case); missing or blank is false.
pub fn flag(creds: &Credentials, key: &str) -> Result<bool, DialectError> {
    match text(creds, key)? {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(DialectError::credentials(
            "InvalidCredentials",
            format!("credentials key {key} must be \"true\" or \"false\""),
        )),
    }
}

/// The error for a key that is needed and absent (or blank).
pub fn missing(key: &str, what: &str) -> DialectError {
    DialectError::credentials(
        "MissingCredentials",
        format!("the credentials Secret needs key {key} ({what}); it is missing or empty"),
    )
}

/// A JSON body that carries credentials, serialized into a buffer wiped when dropped; the strings of `value` are
/// overwritten before it is dropped (serde_json does not zeroize).
pub fn secret_json(mut value: serde_json::Value) -> Zeroizing<Vec<u8>> {
    fn wipe(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(s) => Zeroizing::new(std::mem::take(s)).clear(),
            serde_json::Value::Array(items) => items.iter_mut().for_each(wipe),
            serde_json::Value::Object(map) => map.values_mut().for_each(wipe),
            _ => {}
        }
    }
    // A tree of strings always serializes.
    let body = Zeroizing::new(serde_json::to_vec(&value).unwrap_or_default());
    wipe(&mut value);
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::SecretValue;

    fn creds(pairs: &[(&str, &[u8])]) -> Credentials {
        Credentials::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), SecretValue::new(v.to_vec())))
                .collect(),
        )
    }

    #[test]
    fn missing_empty_and_blank_keys_read_the_same() {
        let c = creds(&[("empty", b""), ("blank", b" \n")]);
        for key in ["absent", "empty", "blank"] {
            assert_eq!(text(&c, key).unwrap(), None, "{key}");
            let e = required(&c, key, "the password").unwrap_err();
            assert_eq!(e.reason, "MissingCredentials");
            assert!(e.message.contains(key) && e.message.contains("the password"));
        }
    }

    #[test]
    fn flags_are_true_or_false_and_nothing_else() {
        let c = creds(&[
            ("on", b"TRUE\n"),
            ("off", b"false"),
            ("odd", b"yes-SENTINEL"),
        ]);
        assert!(flag(&c, "on").unwrap());
        assert!(!flag(&c, "off").unwrap() && !flag(&c, "absent").unwrap());
        let e = flag(&c, "odd").unwrap_err();
        assert_eq!(e.reason, "InvalidCredentials");
        assert!(e.message.contains("odd") && !e.message.contains("SENTINEL"));
    }

    #[test]
    fn a_secret_json_body_is_the_value_serialized() {
        let body = secret_json(serde_json::json!({"auth": {"password": "p", "n": [1, "x"]}}));
        let back: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            back,
            serde_json::json!({"auth": {"password": "p", "n": [1, "x"]}})
        );
    }

    #[test]
    fn ascii_keys_refuse_anything_but_printable_ascii_without_quoting_it() {
        let c = creds(&[
            ("id", b"AKID\n"),
            ("key", b"k ey-SENTINEL"),
            ("t", b"t\x7f"),
        ]);
        assert_eq!(ascii(&c, "id").unwrap(), Some("AKID"));
        assert_eq!(ascii(&c, "absent").unwrap(), None);
        for key in ["key", "t"] {
            let e = ascii(&c, key).unwrap_err();
            assert_eq!(e.reason, "InvalidCredentials");
            assert!(e.message.contains(key) && !e.message.contains("SENTINEL"));
        }
    }

    #[test]
    fn values_are_trimmed() {
        let c = creds(&[("password", b"s3cret\n")]);
        assert_eq!(text(&c, "password").unwrap(), Some("s3cret"));
    }

    #[test]
    fn non_text_is_an_error_naming_the_key_not_the_value() {
        let c = creds(&[("password", b"\xff\xfehunter2")]);
        let e = text(&c, "password").unwrap_err();
        assert_eq!(e.reason, "InvalidCredentials");
        assert!(e.message.contains("password"));
        assert!(!e.message.contains("hunter2"));
    }
}
