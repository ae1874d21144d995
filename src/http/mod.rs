//! The two HTTP servers: `/healthz` and `/readyz` in plain HTTP for the kubelet's probes, and `/metrics` over HTTPS
//! for those the API server says may read it (`auth`), as controller-runtime's secure metrics do: the exposition
//! names every tenant's stores.

mod auth;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::metrics::Metrics;

pub use auth::{Reviewer, Verdict};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("TLS certificate: {0}")]
    Certificate(String),
}

/// Who may read `/metrics`.
pub enum MetricsAccess {
    /// HTTPS; a bearer token the API server accepts (TokenReview) for a user allowed to `get` the non-resource URL
    /// `/metrics` (SubjectAccessReview).
    Reviewed {
        client: kube::Client,
        /// PEM certificate chain and key; `None`: a self-signed certificate made at start.
        cert_files: Option<(PathBuf, PathBuf)>,
    },
    /// Plain HTTP to anyone (`--metrics-insecure`, local development).
    Open,
}

type Serving = (SocketAddr, tokio::task::JoinHandle<()>);

async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), Error> {
    let bind_error = |source| Error::Bind { addr, source };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    Ok((listener, bound))
}

fn spawn<L>(
    listener: L,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    what: &'static str,
) -> tokio::task::JoinHandle<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, server = what, "HTTP server stopped");
        }
    })
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(ready): State<Arc<AtomicBool>>) -> impl IntoResponse {
    if ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "watches not synced yet")
    }
}

/// Serves `/healthz` and `/readyz` on `addr` until `shutdown` resolves. Returns the bound address (useful with
/// port 0).
pub async fn serve_health(
    addr: SocketAddr,
    ready: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Serving, Error> {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(ready);
    let (listener, bound) = bind(addr).await?;
    Ok((bound, spawn(listener, app, shutdown, "health")))
}

#[derive(Clone)]
struct MetricsState {
    metrics: Arc<Metrics>,
    reviewer: Option<Arc<Reviewer>>,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn refused(status: StatusCode, why: &'static str) -> Response {
    let mut response = (status, why).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

async fn render_metrics(State(s): State<MetricsState>, headers: HeaderMap) -> Response {
    if let Some(reviewer) = &s.reviewer {
        let Some(token) = bearer(&headers) else {
            return refused(StatusCode::UNAUTHORIZED, "a bearer token is required");
        };
        match reviewer.review(token).await {
            Ok(Verdict::Allowed) => {}
            Ok(Verdict::Unauthenticated) => {
                return refused(StatusCode::UNAUTHORIZED, "the token was not accepted");
            }
            Ok(Verdict::Forbidden) => {
                return refused(StatusCode::FORBIDDEN, "not allowed to get /metrics");
            }
            Err(e) => {
                tracing::warn!(error = %e, "reviewing a /metrics client failed");
                return refused(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the client could not be reviewed",
                );
            }
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

/// Serves `/metrics` on `addr` as `access` says until `shutdown` resolves. Returns the bound address.
pub async fn serve_metrics(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    access: MetricsAccess,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Serving, Error> {
    let (listener, bound) = bind(addr).await?;
    let router = |reviewer| {
        Router::new()
            .route("/metrics", get(render_metrics))
            .with_state(MetricsState { metrics, reviewer })
    };
    let task = match access {
        MetricsAccess::Open => spawn(listener, router(None), shutdown, "metrics"),
        MetricsAccess::Reviewed { client, cert_files } => {
            let config = tls::server_config(cert_files)?;
            let app = router(Some(Arc::new(Reviewer::new(client))));
            let listener = tls::TlsListener::new(listener, bound, config);
            spawn(listener, app, shutdown, "metrics")
        }
    };
    Ok((bound, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bearer_token_is_taken() {
        let with = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, value.parse().unwrap());
            bearer(&h).map(str::to_owned)
        };
        assert_eq!(with("Bearer abc"), Some("abc".into()));
        assert_eq!(with("bearer  abc "), Some("abc".into()));
        assert_eq!(with("Basic abc"), None);
        assert_eq!(with("Bearer "), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }
}
