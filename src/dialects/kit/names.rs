//! The name rule most stores share, with their own length and punctuation: ASCII letters and digits, a few
//! punctuation marks, starting with a letter or digit. Checked before a name is put in a path or a body.

/// Whether `name` is 1 to `max` bytes of ASCII letters, digits and the bytes of `punctuation`, starting with a
/// letter or digit.
pub fn plain(name: &str, max: usize, punctuation: &[u8]) -> bool {
    let bytes = name.as_bytes();
    bytes.len() <= max
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && (bytes.iter()).all(|b| b.is_ascii_alphanumeric() || punctuation.contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_start_with_a_letter_or_digit_and_hold_only_the_given_punctuation() {
        assert!(plain("db.conn-1", 9, b".-"));
        assert!(!plain("db.conn-1", 8, b".-"), "too long");
        assert!(!plain("db.conn-1", 9, b"-"), "'.' not allowed");
        for bad in ["", "-x", ".x", "a/b", "a b", "caf\u{e9}"] {
            assert!(!plain(bad, 64, b".-_"), "{bad:?}");
        }
    }
}
