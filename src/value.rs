//! Secret values and credentials: zeroized on drop and never printable.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use zeroize::Zeroizing;

/// Bytes of a secret value. `Debug` prints only the length, and the bytes are wiped when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Zeroizing<Vec<u8>>);

impl SecretValue {
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretValue(Zeroizing::new(bytes))
    }

    /// The plaintext. Call it only where the value goes on the wire or into the digest.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The value as UTF-8 text, if it is.
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for SecretValue {
    fn from(s: &str) -> Self {
        SecretValue::new(s.as_bytes().to_vec())
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue(<{} bytes redacted>)", self.0.len())
    }
}

/// A JSON object of text values (the whole-Secret form, and the properties of one remote secret): `{"key": "text", "bin.base64": "<base64>"}`, keys sorted so the digest is stable.
/// Values that are not UTF-8 are base64-encoded under `<key>.base64`.
pub fn json_object(map: &BTreeMap<String, SecretValue>) -> SecretValue {
    let mut out = zeroize::Zeroizing::new(Vec::with_capacity(64));
    out.push(b'{');
    let entries = map.iter().map(|(k, v)| match v.expose_str() {
        Some(text) => (k.clone(), zeroize::Zeroizing::new(text.to_owned())),
        None => (
            format!("{k}.base64"),
            zeroize::Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(v.expose())),
        ),
    });
    let mut sorted: Vec<_> = entries.collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (i, (k, v)) in sorted.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(serde_json::to_string(k).expect("string").as_bytes());
        out.push(b':');
        let encoded = zeroize::Zeroizing::new(serde_json::to_string(v.as_str()).expect("string"));
        out.extend_from_slice(encoded.as_bytes());
    }
    out.push(b'}');
    SecretValue::new(std::mem::take(&mut *out))
}

/// The keys of a credentials Secret. `Debug` prints key names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials(BTreeMap<String, SecretValue>);

/// The credentials key under which the controller hands a dialect the token it requested for a store's
/// ServiceAccount (workload identity). A `/` cannot occur in a Secret's keys, so no credentials Secret can forge it.
pub const SERVICE_ACCOUNT_TOKEN_KEY: &str = "secretsync.io/service-account-token";

impl Credentials {
    pub fn new(map: BTreeMap<String, SecretValue>) -> Self {
        Credentials(map)
    }

    pub fn into_map(self) -> BTreeMap<String, SecretValue> {
        self.0
    }

    pub fn get(&self, key: &str) -> Option<&SecretValue> {
        self.0.get(key)
    }

    /// A key's value as text; `None` when missing or not UTF-8.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|v| v.expose_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether no key came from a credentials Secret: the controller's own keys (the store's identity, a requested
    /// token) contain a `/`, which a Secret's keys cannot.
    pub fn has_no_secret_keys(&self) -> bool {
        self.0.keys().all(|k| k.contains('/'))
    }

    /// A stable, non-reversible identity of these credentials, for caching tokens per credential set.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for (k, v) in &self.0 {
            h.update((k.len() as u64).to_be_bytes());
            h.update(k.as_bytes());
            h.update((v.len() as u64).to_be_bytes());
            h.update(v.expose());
        }
        hex::encode(h.finalize())
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_controllers_own_keys_are_not_secret_keys() {
        let own = |k: &str| Credentials::new([(k.to_string(), SecretValue::from("x"))].into());
        assert!(Credentials::default().has_no_secret_keys());
        assert!(own(SERVICE_ACCOUNT_TOKEN_KEY).has_no_secret_keys());
        assert!(!own("password").has_no_secret_keys());
    }

    #[test]
    fn debug_never_shows_the_value() {
        let v = SecretValue::from("hunter2-very-secret");
        assert_eq!(format!("{v:?}"), "SecretValue(<19 bytes redacted>)");
        let c = Credentials::new([("password".to_string(), v)].into());
        let shown = format!("{c:?}");
        assert!(shown.contains("password"));
        assert!(!shown.contains("hunter2"));
    }

    #[test]
    fn fingerprint_changes_with_any_byte() {
        let a = Credentials::new([("k".to_string(), SecretValue::from("a"))].into());
        let b = Credentials::new([("k".to_string(), SecretValue::from("b"))].into());
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
    }
}
