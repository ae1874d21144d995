//! TC3-HMAC-SHA256, the request signature of Tencent Cloud API 3.0, written from the published algorithm.
//!
//! The canonical request always signs `content-type` and `host`, like Tencent's own SDKs, so a proxy that adds
//! headers cannot break the signature. The service name is passed in rather than taken from the host's first
//! label, because an endpoint override (a private endpoint, an emulator on `127.0.0.1`) has no such label.

use chrono::DateTime;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub const ALGORITHM: &str = "TC3-HMAC-SHA256";
const SIGNED_HEADERS: &str = "content-type;host";

/// What one signature covers.
pub struct Signable<'a> {
    pub method: &'a str,
    /// The URL-encoded query string (empty for POST).
    pub query: &'a str,
    pub content_type: &'a str,
    /// `host` or `host:port`, exactly as the `Host` header is sent.
    pub host: &'a str,
    pub payload: &'a [u8],
    /// Unix seconds, also sent as `X-TC-Timestamp`.
    pub timestamp: i64,
    pub service: &'a str,
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac(key: &[u8], msg: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(msg);
    Zeroizing::new(mac.finalize().into_bytes().to_vec())
}

/// The UTC date of a timestamp, `YYYY-MM-DD`, as the credential scope wants it.
pub fn scope_date(timestamp: i64) -> String {
    DateTime::from_timestamp(timestamp, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

impl Signable<'_> {
    pub fn canonical_request(&self) -> String {
        format!(
            "{}\n/\n{}\ncontent-type:{}\nhost:{}\n\n{}\n{}",
            self.method,
            self.query,
            self.content_type.trim().to_ascii_lowercase(),
            self.host.trim().to_ascii_lowercase(),
            SIGNED_HEADERS,
            sha256_hex(self.payload)
        )
    }

    pub fn credential_scope(&self) -> String {
        format!(
            "{}/{}/tc3_request",
            scope_date(self.timestamp),
            self.service
        )
    }

    pub fn string_to_sign(&self) -> String {
        format!(
            "{ALGORITHM}\n{}\n{}\n{}",
            self.timestamp,
            self.credential_scope(),
            sha256_hex(self.canonical_request().as_bytes())
        )
    }

    /// The derived key: HMAC chain over date, service and `tc3_request`, starting from `"TC3" + SecretKey`.
    pub fn signing_key(&self, secret_key: &str) -> Zeroizing<Vec<u8>> {
        let mut first = Zeroizing::new(Vec::with_capacity(3 + secret_key.len()));
        first.extend_from_slice(b"TC3");
        first.extend_from_slice(secret_key.as_bytes());
        let k_date = hmac(&first, scope_date(self.timestamp).as_bytes());
        let k_service = hmac(&k_date, self.service.as_bytes());
        hmac(&k_service, b"tc3_request")
    }

    pub fn signature(&self, secret_key: &str) -> String {
        hex::encode(&*hmac(
            &self.signing_key(secret_key),
            self.string_to_sign().as_bytes(),
        ))
    }

    /// The `Authorization` header value.
    pub fn authorization(&self, secret_id: &str, secret_key: &str) -> String {
        format!(
            "{ALGORITHM} Credential={secret_id}/{}, SignedHeaders={SIGNED_HEADERS}, Signature={}",
            self.credential_scope(),
            self.signature(secret_key)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Tencent's published POST example (API 3.0 signature documentation). The asterisks are part of the key and
    // the \u escapes are literal ASCII in the body.
    const POST_BODY: &str =
        r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;

    fn post_vector() -> Signable<'static> {
        Signable {
            method: "POST",
            query: "",
            content_type: "application/json; charset=utf-8",
            host: "cvm.tencentcloudapi.com",
            payload: POST_BODY.as_bytes(),
            timestamp: 1551113065,
            service: "cvm",
        }
    }

    #[test]
    fn published_post_vector_matches_at_every_step() {
        let s = post_vector();
        assert_eq!(
            sha256_hex(s.payload),
            "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        assert_eq!(
            sha256_hex(s.canonical_request().as_bytes()),
            "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(s.credential_scope(), "2019-02-25/cvm/tc3_request");
        let key = "Gu5t9xGARNpq86cd98joQYCN3*******";
        assert_eq!(
            hex::encode(&*s.signing_key(key)),
            "8aa8ab5755582f576e94bcfe383b8e29325b0ca90c3590d569221c6a63a091ed"
        );
        assert_eq!(
            s.signature(key),
            "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
        );
        assert_eq!(
            s.authorization("AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******", key),
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/tc3_request, \
             SignedHeaders=content-type;host, \
             Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
        );
    }

    #[test]
    fn published_get_vector_matches() {
        let s = Signable {
            method: "GET",
            query: "Limit=10&Offset=0",
            content_type: "application/x-www-form-urlencoded",
            host: "cvm.tencentcloudapi.com",
            payload: b"",
            timestamp: 1539084154,
            service: "cvm",
        };
        assert_eq!(
            sha256_hex(s.canonical_request().as_bytes()),
            "91c9c192c14460df6c1ffc69e34e6c5e90708de2a6d282cccf957dbf1aa7f3a7"
        );
        assert_eq!(
            s.signature("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"),
            "5da7a33f6993f0614b047e5df4582db9e9bf4672ba50567dba16c6ccf174c474"
        );
    }

    #[test]
    fn every_input_changes_the_signature() {
        let key = "k";
        let base = post_vector().signature(key);
        let mut s = post_vector();
        s.timestamp += 1;
        assert_ne!(s.signature(key), base);
        let mut s = post_vector();
        s.host = "ssm.tencentcloudapi.com";
        assert_ne!(s.signature(key), base);
        let mut s = post_vector();
        s.payload = b"{}";
        assert_ne!(s.signature(key), base);
        assert_ne!(post_vector().signature("other"), base);
    }

    #[test]
    fn scope_uses_the_utc_date() {
        // 2019-02-25T23:59:59Z and one second later fall on different dates.
        assert_eq!(scope_date(1551139199), "2019-02-25");
        assert_eq!(scope_date(1551139200), "2019-02-26");
    }
}
