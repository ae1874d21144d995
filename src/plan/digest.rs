//! Keyed digests of secret values.
//!
//! Status fields and remote tags must let SecretSync tell "same value" from "changed value" without storing the
//! value. A plain hash would let anyone who can read a tag test guesses offline, so the digest is an HMAC keyed
//! by a controller-held key, and derived per namespace ([`DigestKey::for_namespace`]): a tenant who can list
//! digests in a shared store (Docker shows 8 hex digits in secret names) cannot compare them with another
//! namespace's to learn whether two values are equal, or test guesses of another namespace's value with a value of
//! its own.

use hkdf::Hkdf;
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

    /// The key of one namespace: HKDF-SHA256 of the controller's key, with the namespace's uid as its info (a uid,
    /// not a name: a namespace created again under the same name gets a new key).
    pub fn for_namespace(&self, namespace_uid: &str) -> DigestKey {
        let mut okm = Zeroizing::new(vec![0u8; 32]);
        Hkdf::<Sha256>::new(Some(b"secretsync.io/digest-key/v1"), &self.0)
            .expand(namespace_uid.as_bytes(), &mut okm)
            .expect("32 bytes is within HKDF-SHA256's output limit");
        DigestKey(okm)
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
    fn each_namespace_has_its_own_key() {
        let value = b"password";
        let a = key(1).for_namespace("uid-a");
        let b = key(1).for_namespace("uid-b");
        assert_ne!(a.digest(value), b.digest(value));
        assert_ne!(a.digest(value), key(1).digest(value));
        // Stable: every replica and restart derives the same key.
        assert_eq!(a.digest(value), key(1).for_namespace("uid-a").digest(value));
        // And it depends on the controller's key, not only on the uid.
        assert_ne!(a.digest(value), key(2).for_namespace("uid-a").digest(value));
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
