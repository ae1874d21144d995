//! What the emulators share: their HTTPS listeners.

pub mod tls {
    use std::path::Path;
    use std::sync::Arc;

    use axum::Router;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    type Error = Box<dyn std::error::Error>;

    fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
        Ok(CertificateDer::pem_file_iter(path)?.collect::<Result<Vec<_>, _>>()?)
    }

    /// A server configuration with the certificate chain `cert` and its key `key` (PEM files); with `client_ca`,
    /// clients must present a certificate issued by that CA.
    pub fn server_config(
        cert: &Path,
        key: &Path,
        client_ca: Option<&Path>,
    ) -> Result<Arc<rustls::ServerConfig>, Error> {
        // ring, like the rest of the workspace.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = match client_ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in load_certs(ca)? {
                    roots.add(c)?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let config =
            builder.with_single_cert(load_certs(cert)?, PrivateKeyDer::from_pem_file(key)?)?;
        Ok(Arc::new(config))
    }

    /// Serves `app` over TLS on `listener` until the process ends.
    pub async fn serve(
        listener: tokio::net::TcpListener,
        config: Arc<rustls::ServerConfig>,
        app: Router,
    ) {
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                // A failed handshake (an untrusting client, no or a wrong client certificate) only ends that
                // connection.
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
            });
        }
    }
}
