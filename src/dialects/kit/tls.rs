//! HTTP clients for stores that need their own TLS trust (`ca.crt`) or a client certificate, cached by what they
//! were built from so that a reconcile does not rebuild a TLS configuration.

use std::time::Duration;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::bounded::Lru;
use super::http::http_client;
use crate::dialects::{DialectError, Shared};

/// Clients kept at most; past it the least recently used goes (credentials rotate, and old clients must not pile
/// up; a store with many CAs must not cost the others theirs).
const MAX_CACHED_CLIENTS: usize = 64;

/// What a client is built from. PEM text; errors never quote it.
#[derive(Clone, Copy, Debug, Default)]
pub struct TlsSettings<'a> {
    /// Extra trusted CAs; they replace the built-in roots unless `public_roots` is set.
    pub ca: Option<&'a str>,
    /// Trust the built-in public roots next to `ca` (a store whose token service has a public certificate).
    pub public_roots: bool,
    /// A client certificate and its private key.
    pub identity: Option<(&'a str, &'a str)>,
}

impl TlsSettings<'_> {
    pub fn is_default(&self) -> bool {
        self.ca.is_none() && self.identity.is_none()
    }

    fn key(&self) -> String {
        let mut h = Sha256::new();
        h.update([u8::from(self.public_roots)]);
        for part in [
            self.ca,
            self.identity.map(|i| i.0),
            self.identity.map(|i| i.1),
        ] {
            let part = part.unwrap_or_default();
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        hex::encode(h.finalize())
    }
}

/// For a store with its own PKI (a Service Fabric cluster, a Docker daemon): its `ca.crt` as the only trusted CA
/// (the public roots without one), and the client certificate `tls.crt` with its key `tls.key`, given together.
pub fn own_pki(creds: &crate::value::Credentials) -> Result<TlsSettings<'_>, DialectError> {
    let text = |key| super::credentials::text(creds, key);
    let identity = match (text("tls.crt")?, text("tls.key")?) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => {
            return Err(DialectError::credentials(
                "InvalidCredentials",
                "credentials need both tls.crt and tls.key for a client certificate",
            ));
        }
    };
    Ok(TlsSettings {
        ca: text("ca.crt")?,
        public_roots: false,
        identity,
    })
}

/// The store's `ca.crt` (or caBundle) next to the public roots, for a store reached at `url`: only over https (a
/// CA that would vouch for nothing is a mistake worth saying).
pub fn store_ca<'a>(
    creds: &'a crate::value::Credentials,
    url: &url::Url,
) -> Result<TlsSettings<'a>, DialectError> {
    let ca = super::credentials::text(creds, "ca.crt")?;
    if ca.is_some() && url.scheme() == "http" {
        return Err(DialectError::permanent(
            "InsecureEndpoint",
            "a CA (ca.crt, or the store's caBundle) is only used over https://; the store's endpoint is http://",
        ));
    }
    Ok(TlsSettings {
        ca,
        identity: None,
        public_roots: true,
    })
}

/// What the identity provider a store signs in at (a token endpoint, STS) is trusted by: for a platform admin's
/// store its own trust (`own`); for a namespace admin's Store the public roots and the operator's
/// identity-provider CAs only, never the Store's `caBundle` or `ca.crt`. Its author chose the sign-in host;
/// trusting their CA for it too would let them receive the client secret, assertion or token sent there, on a host
/// they only claim to be the identity provider.
pub fn sign_in<'a>(
    shared: &'a Shared,
    store: Option<&super::store_id::StoreId>,
    own: TlsSettings<'a>,
) -> TlsSettings<'a> {
    if !super::store_id::namespace_admin_wrote(store) {
        return own;
    }
    TlsSettings {
        ca: shared.identity_provider_ca.as_deref(),
        identity: None,
        public_roots: true,
    }
}

/// One cache per dialect instance; [`ClientCache::client`] returns the shared default client when no TLS
/// setting is given.
pub struct ClientCache {
    default: reqwest::Client,
    deadline: Duration,
    clients: Lru<String, reqwest::Client>,
}

impl ClientCache {
    pub fn new(shared: &Shared) -> Self {
        ClientCache {
            default: shared.http.clone(),
            deadline: shared.deadline,
            clients: Lru::new(MAX_CACHED_CLIENTS),
        }
    }

    pub fn client(&self, tls: TlsSettings<'_>) -> Result<reqwest::Client, DialectError> {
        if tls.is_default() {
            return Ok(self.default.clone());
        }
        let key = tls.key();
        if let Some(c) = self.clients.get(&key) {
            return Ok(c);
        }
        let client = build(tls, self.deadline)?;
        self.clients.put(key, client.clone());
        Ok(client)
    }
}

/// The TLS error in `err` or an error it wraps. hyper and reqwest wrap it in `io::Error`s, sometimes one inside
/// another; `io::Error::source` skips the error it holds, so an `io::Error` is opened with `get_ref` instead.
fn tls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        current = match e.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

/// Whether `err` (or an error it wraps) is the store's TLS refusal of the client's certificate, or of its
/// missing one: a credentials problem to fix, not a store to wait for.
pub fn identity_refused(err: &(dyn std::error::Error + 'static)) -> bool {
    use rustls::AlertDescription as A;
    matches!(
        tls_error(err),
        Some(rustls::Error::AlertReceived(
            A::BadCertificate
                | A::CertificateRequired
                | A::CertificateUnknown
                | A::CertificateExpired
                | A::CertificateRevoked
                | A::UnknownCA
                | A::AccessDenied,
        ))
    )
}

/// Why the store's own certificate was not accepted (such as `UnknownIssuer` for a private CA the client was not
/// given), when that is what `err` is. The text names a rustls error kind, never certificate contents.
pub fn server_untrusted(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    match tls_error(err) {
        Some(rustls::Error::InvalidCertificate(why)) => Some(format!("{why:?}")),
        _ => None,
    }
}

fn invalid(message: &str) -> DialectError {
    DialectError::credentials("InvalidCredentials", message)
}

fn build(tls: TlsSettings<'_>, deadline: Duration) -> Result<reqwest::Client, DialectError> {
    let mut builder = http_client(deadline);
    if let Some((cert, key)) = tls.identity {
        let pem = Zeroizing::new(format!("{cert}\n{key}\n"));
        // reqwest's error text could quote parts of the PEM: say only which keys are wrong.
        let identity = reqwest::Identity::from_pem(pem.as_bytes()).map_err(|_| {
            invalid("tls.crt and tls.key are not a PEM certificate and its private key")
        })?;
        builder = builder.identity(identity);
    }
    if let Some(ca) = tls.ca {
        let certs = reqwest::Certificate::from_pem_bundle(ca.as_bytes())
            .map_err(|_| invalid("ca.crt is not a PEM certificate"))?;
        if certs.is_empty() {
            return Err(invalid("ca.crt holds no PEM certificate"));
        }
        if !tls.public_roots {
            builder = builder.tls_built_in_root_certs(false);
        }
        for c in certs {
            builder = builder.add_root_certificate(c);
        }
    }
    builder
        .build()
        .map_err(|_| invalid("cannot build a TLS client from tls.crt, tls.key and ca.crt"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> ClientCache {
        ClientCache::new(&Shared::new(1, 1, crate::metrics::Metrics::new()))
    }

    #[test]
    fn own_pki_wants_the_certificate_and_its_key_together() {
        let creds = |pairs: &[(&str, &str)]| crate::dialects::fixtures::creds(pairs);
        let both = creds(&[("tls.crt", "C"), ("tls.key", "K"), ("ca.crt", "A")]);
        let tls = own_pki(&both).unwrap();
        assert_eq!((tls.ca, tls.identity), (Some("A"), Some(("C", "K"))));
        assert!(!tls.public_roots);
        assert!(own_pki(&creds(&[])).unwrap().is_default());
        for half in [("tls.crt", "C-SENTINEL"), ("tls.key", "K-SENTINEL")] {
            let e = own_pki(&creds(&[half])).unwrap_err();
            assert_eq!(e.reason, "InvalidCredentials");
            assert!(!e.message.contains("SENTINEL"), "{e}");
        }
    }

    #[test]
    fn garbage_pem_is_a_credentials_error_that_does_not_quote_it() {
        let c = cache();
        for tls in [
            TlsSettings {
                ca: Some(
                    "-----BEGIN CERTIFICATE-----\nc2VjcmV0LXNhdWNl\n-----END CERTIFICATE-----",
                ),
                identity: None,
                public_roots: false,
            },
            TlsSettings {
                ca: None,
                identity: Some(("secret-sauce", "more-secret-sauce")),
                public_roots: false,
            },
            TlsSettings {
                ca: Some("secret-sauce"),
                identity: None,
                public_roots: false,
            },
        ] {
            let e = c.client(tls).unwrap_err();
            assert_eq!(e.reason, "InvalidCredentials");
            assert!(!e.message.contains("sauce"), "{}", e.message);
        }
    }

    #[test]
    fn a_refused_client_certificate_is_found_under_io_and_transport_errors() {
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::BadCertificate);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, alert);
        assert!(identity_refused(&io));
        let other = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure),
        );
        assert!(!identity_refused(&other));
        assert!(!identity_refused(&std::io::Error::other("refused")));
    }

    #[test]
    fn an_untrusted_server_certificate_is_told_apart() {
        // As hyper hands it over: an io::Error holding the io::Error that holds the TLS error.
        let untrusted = std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        ));
        assert_eq!(
            server_untrusted(&untrusted).as_deref(),
            Some("UnknownIssuer")
        );
        let refused = rustls::Error::AlertReceived(rustls::AlertDescription::BadCertificate);
        assert_eq!(server_untrusted(&refused), None);
        assert_eq!(server_untrusted(&std::io::Error::other("reset")), None);
    }

    #[test]
    fn the_key_separates_every_input() {
        let a = TlsSettings {
            ca: Some("ab"),
            identity: None,
            public_roots: false,
        };
        let b = TlsSettings {
            ca: None,
            identity: Some(("ab", "")),
            public_roots: false,
        };
        let c = TlsSettings {
            public_roots: true,
            ..a
        };
        assert_ne!(a.key(), c.key());
        assert_ne!(a.key(), b.key());
        assert!(TlsSettings::default().is_default());
    }
}
