//! The metrics server's TLS: a certificate from files (reloaded when they change, so a rotated certificate takes
//! effect without a restart) or one made at start, and a listener whose handshakes run beside each other.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rustls::crypto::ring::{default_provider, sign::any_supported_type};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::Error;

/// A client that opens a connection and says nothing holds a handshake slot this long at most.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; further connections wait in the kernel's backlog.
const HANDSHAKES: usize = 32;

pub(super) fn server_config(
    cert_files: Option<(PathBuf, PathBuf)>,
) -> Result<Arc<rustls::ServerConfig>, Error> {
    let resolver: Arc<dyn ResolvesServerCert> = match cert_files {
        Some((cert, key)) => Arc::new(FileCert::load(cert, key)?),
        None => Arc::new(Fixed(self_signed()?)),
    };
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Certificate(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: &PrivateKeyDer<'_>,
) -> Result<Arc<CertifiedKey>, Error> {
    let signer = any_supported_type(key).map_err(|e| Error::Certificate(e.to_string()))?;
    Ok(Arc::new(CertifiedKey::new(chain, signer)))
}

/// For scrapers that skip verification or pin this certificate: made fresh at every start, never written down.
fn self_signed() -> Result<Arc<CertifiedKey>, Error> {
    let names = vec!["localhost".to_owned(), "secretsync".to_owned()];
    let made =
        rcgen::generate_simple_self_signed(names).map_err(|e| Error::Certificate(e.to_string()))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    certified_key(vec![made.cert.der().clone()], &key)
}

#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// A certificate and key from PEM files, read again when either file's modification time changes (a mounted
/// Secret is replaced when cert-manager renews it). A change that does not load keeps the previous pair.
struct FileCert {
    cert: PathBuf,
    key: PathBuf,
    current: Mutex<(Option<SystemTime>, Option<SystemTime>, Arc<CertifiedKey>)>,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn read_pair(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, Error> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })
    };
    let pem_error = |path: &Path, e: rustls::pki_types::pem::Error| {
        Error::Certificate(format!("{}: {e}", path.display()))
    };
    let chain = CertificateDer::pem_slice_iter(&read(cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(cert, e))?;
    if chain.is_empty() {
        return Err(Error::Certificate(format!(
            "{}: no certificate",
            cert.display()
        )));
    }
    let private = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|e| pem_error(key, e))?;
    certified_key(chain, &private)
}

impl FileCert {
    fn load(cert: PathBuf, key: PathBuf) -> Result<FileCert, Error> {
        let stamps = (modified(&cert), modified(&key));
        let pair = read_pair(&cert, &key)?;
        Ok(FileCert {
            cert,
            key,
            current: Mutex::new((stamps.0, stamps.1, pair)),
        })
    }
}

impl std::fmt::Debug for FileCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileCert")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl FileCert {
    fn current(&self) -> Arc<CertifiedKey> {
        let stamps = (modified(&self.cert), modified(&self.key));
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if (current.0, current.1) != stamps {
            match read_pair(&self.cert, &self.key) {
                Ok(pair) => {
                    tracing::info!(cert = %self.cert.display(), "metrics certificate reloaded");
                    *current = (stamps.0, stamps.1, pair);
                }
                // Half-written during a rotation, most likely: tried again at the next handshake.
                Err(e) => tracing::warn!(error = %e, "metrics certificate not reloaded"),
            }
        }
        current.2.clone()
    }
}

impl ResolvesServerCert for FileCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// Hands axum connections whose TLS handshake is done; handshakes run in their own tasks, so one slow client
/// cannot hold up the others' scrapes.
pub(super) struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, std::net::SocketAddr)>,
    local: std::net::SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    pub(super) fn new(
        tcp: TcpListener,
        local: std::net::SocketAddr,
        config: Arc<rustls::ServerConfig>,
    ) -> TlsListener {
        let (tx, ready) = mpsc::channel(HANDSHAKES);
        let acceptor = TlsAcceptor::from(config);
        let slots = Arc::new(Semaphore::new(HANDSHAKES));
        let accepting = tokio::spawn(async move {
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let (stream, peer) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors, typically: give the process a moment.
                        tracing::debug!(error = %e, "accepting a metrics connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let shaken =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                    drop(slot);
                    if let Ok(Ok(tls)) = shaken {
                        let _ = tx.send((tls, peer)).await;
                    }
                });
            }
        });
        TlsListener {
            ready,
            local,
            accepting,
        }
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // Only after the accepting task ended, which happens only when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str, stamp: SystemTime) -> CertificateDer<'static> {
        let made = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        for (file, text) in [
            ("tls.crt", made.cert.pem()),
            ("tls.key", made.signing_key.serialize_pem()),
        ] {
            std::fs::write(dir.join(file), text).unwrap();
            let f = std::fs::File::options()
                .write(true)
                .open(dir.join(file))
                .unwrap();
            f.set_modified(stamp).unwrap();
        }
        made.cert.der().clone()
    }

    #[test]
    fn a_renewed_certificate_is_served_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let first = write_pair(dir.path(), "first", t0);
        let files = FileCert::load(dir.path().join("tls.crt"), dir.path().join("tls.key")).unwrap();
        assert_eq!(files.current().cert[0], first);
        let second = write_pair(dir.path(), "second", t0 + Duration::from_secs(60));
        assert_eq!(files.current().cert[0], second, "the renewed pair");
        std::fs::write(dir.path().join("tls.crt"), "half-written").unwrap();
        assert_eq!(files.current().cert[0], second, "the last good pair");
        assert!(
            FileCert::load(dir.path().join("tls.crt"), dir.path().join("tls.key")).is_err(),
            "a start with a broken certificate fails"
        );
    }
}
