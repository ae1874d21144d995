//! Docker's connections, made by SecretSync for bollard: one connection per call over the unix socket, TCP or
//! TLS, whose answer is read up to the kit's cap. bollard reads and decodes a whole answer in memory and offers
//! no limit of its own; counting the bytes on the connection is the one place where a daemon streaming gigabytes
//! can be stopped. (One connection per call: a connection's count is one answer's size.)

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bollard::errors::Error as DockerError;
use bollard::{API_DEFAULT_VERSION, BollardRequest, Docker};
use hyper::Response;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

use crate::dialects::kit::http::MAX_RESPONSE_BYTES;

/// bollard's own timeout (it bounds the answer's headers); the kit's deadline bounds each whole call.
const TIMEOUT_SECS: u64 = 30;
/// An answer's headers, on top of the body's cap.
const HEADER_ALLOWANCE: usize = 64 * 1024;

/// Where the daemon listens.
pub enum Dial {
    Unix(PathBuf),
    Tcp(String),
    Tls {
        addr: String,
        server_name: ServerName<'static>,
        config: Arc<rustls::ClientConfig>,
    },
}

/// A Docker answer larger than the cap; found in an error's sources by [`is_too_large`].
#[derive(Debug, thiserror::Error)]
#[error("Docker's answer is larger than {MAX_RESPONSE_BYTES} bytes; it was not read")]
pub struct AnswerTooLarge;

/// Whether `err` was caused by an answer over the cap.
pub fn is_too_large(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        // An io::Error's `source` skips the error it wraps, so each wrapper is opened here.
        let io = match e.downcast_ref::<DockerError>() {
            Some(DockerError::IOError { err }) => Some(err),
            _ => e.downcast_ref::<io::Error>(),
        };
        let found = e.is::<AnswerTooLarge>()
            || io
                .and_then(|io| io.get_ref())
                .is_some_and(|inner| inner.is::<AnswerTooLarge>());
        if found {
            return true;
        }
        current = e.source();
    }
    false
}

/// A bollard client whose every call dials `dial` afresh.
pub fn docker(dial: Dial) -> Result<Docker, DockerError> {
    let dial = Arc::new(dial);
    Docker::connect_with_custom_transport(
        move |request: BollardRequest| {
            let dial = dial.clone();
            async move { send(&dial, request).await }
        },
        Some("http://docker"),
        TIMEOUT_SECS,
        API_DEFAULT_VERSION,
    )
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

async fn send(dial: &Dial, mut request: BollardRequest) -> Result<Response<Incoming>, DockerError> {
    let io: Box<dyn Io> = match dial {
        Dial::Unix(path) => Box::new(UnixStream::connect(path).await?),
        Dial::Tcp(addr) => Box::new(TcpStream::connect(addr).await?),
        Dial::Tls {
            addr,
            server_name,
            config,
        } => {
            let tcp = TcpStream::connect(addr).await?;
            let connector = tokio_rustls::TlsConnector::from(config.clone());
            Box::new(connector.connect(server_name.clone(), tcp).await?)
        }
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(Capped {
        inner: io,
        left: MAX_RESPONSE_BYTES + HEADER_ALLOWANCE,
    }))
    .await?;
    tokio::spawn(async move {
        // Ends with the answer (or its error, which the request's future reports).
        let _ = connection.await;
    });
    // On a connection of its own, a request names its path only.
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    *request.uri_mut() = path.parse().map_err(|_| {
        DockerError::from(io::Error::new(io::ErrorKind::InvalidInput, "request path"))
    })?;
    request
        .headers_mut()
        .entry(hyper::header::HOST)
        .or_insert(hyper::header::HeaderValue::from_static("docker"));
    Ok(sender.send_request(request).await?)
}

/// A connection that refuses to read more than `left` bytes.
struct Capped {
    inner: Box<dyn Io>,
    left: usize,
}

impl AsyncRead for Capped {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = buf.filled().len() - before;
                match this.left.checked_sub(read) {
                    Some(left) => {
                        this.left = left;
                        Poll::Ready(Ok(()))
                    }
                    None => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        AnswerTooLarge,
                    ))),
                }
            }
            other => other,
        }
    }
}

impl AsyncWrite for Capped {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_over_the_cap_is_found_under_io_and_hyper_errors() {
        let io = io::Error::new(io::ErrorKind::InvalidData, AnswerTooLarge);
        assert!(is_too_large(&io));
        assert!(is_too_large(&DockerError::from(io)));
        assert!(!is_too_large(&io::Error::other("reset")));
    }
}
