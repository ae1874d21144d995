//! Keyed digests of secret values.
//!
//! Status fields and remote tags must let SecretSync tell "same value" from "changed value" without storing the
//! value. A plain hash would let anyone who can read a tag test guesses offline, so the digest is an HMAC keyed
//! by a controller-held key.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

const PREFIX: &str = "hmac-sha256:";

/// The controller's HMAC key. `Debug` does not print it.
#[derive(Clone)]
pub struct DigestKey(Zeroizing<Vec<u8>>);

impl DigestKey {
    /// Keys shorter than 16 bytes are refused: they would make the digest guessable.
    pub fn new(bytes: Vec<u8>) -> Option<Self> {
        (bytes.len() >= 16).then(|| DigestKey(Zeroizing::new(bytes)))
    }

    /// The digest of `value`, as `hmac-sha256:<64 hex digits>`.
    pub fn digest(&self, value: &[u8]) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(value);
        format!("{PREFIX}{}", hex::encode(mac.finalize().into_bytes()))
    }
}

impl std::fmt::Debug for DigestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DigestKey(<redacted>)")
    }
}

/// The hex part of a digest, for stores whose labels cannot hold ':'.
pub fn hex_part(digest: &str) -> &str {
    digest.strip_prefix(PREFIX).unwrap_or(digest)
}

/// A short form of the digest (its first `n` hex digits) for names and version identifiers.
pub fn short(digest: &str, n: usize) -> &str {
    let hex = hex_part(digest);
    &hex[..n.min(hex.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> DigestKey {
        DigestKey::new(vec![b; 32]).unwrap()
    }

    #[test]
    fn digest_is_keyed_hmac_not_plain_hash() {
        let value = b"password";
        let d = key(1).digest(value);
        assert!(d.starts_with("hmac-sha256:"));
        assert_eq!(hex_part(&d).len(), 64);
        // A different key gives a different digest for the same value.
        assert_ne!(d, key(2).digest(value));
        // And it is not the plain SHA-256 of the value.
        use sha2::Digest;
        let plain = hex::encode(sha2::Sha256::digest(value));
        assert_ne!(hex_part(&d), plain);
    }

    #[test]
    fn digest_matches_rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe" padded to the minimum length is not the vector, so use the raw HMAC
        // through a 16+ byte key from RFC 4231 case 1 (20 bytes of 0x0b).
        let k = DigestKey::new(vec![0x0b; 20]).unwrap();
        assert_eq!(
            hex_part(&k.digest(b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    #[test]
    fn short_keys_are_refused_and_debug_hides_key() {
        assert!(DigestKey::new(vec![1; 15]).is_none());
        assert_eq!(format!("{:?}", key(7)), "DigestKey(<redacted>)");
    }

    #[test]
    fn short_form_takes_leading_hex() {
        assert_eq!(short("hmac-sha256:abcdef0123", 8), "abcdef01");
        assert_eq!(short("abc", 8), "abc");
    }
}
