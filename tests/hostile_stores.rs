//! Stores that misbehave, served from loopback in the test (no test bed needed), against every HTTP dialect:
//! - a redirect is never followed: a local server answers every request `307 Temporary Redirect` to a second local
//!   listener; the call fails with `Redirected` and the second listener sees no connection (a followed 307 would
//!   replay the request, credentials and body included, to a host that no store names);
//! - an answer larger than 1 MiB is refused as it arrives (`ResponseTooLarge`), whether it announces its length or
//!   streams without one, Docker's too, and the process's peak memory stays within 50 MiB of where it was while
//!   200 MB stream;
//! - an answer that trickles is cut at the deadline, its body included (`BackendTimeout`), Docker's too;
//! - a Docker secret create that times out is not sent again in place (it may have been applied);
//! - a Barbican listing that never ends (full pages of other names, `offset` ignored) is given up after 20 pages;
//! - nothing a store answers is shown back: a canary in error bodies (404, 500, 403, 200), in a 200 of the wrong
//!   shape, in status fields and in header values appears in no error (message, Debug, sources), no log line at
//!   TRACE and no metric, for every HTTP dialect and Docker; Key Vault over HTTPS with a certificate made in the
//!   test, once with a valid Entra ID token (the vault's answers meet the canary) and once without (the sign-in's
//!   do);
//! - with the operator's default limits a namespaced Store reaches its dialect's public cloud hosts only.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use secretsync::api::Target;
use secretsync::dialects::{Dialect, DialectError, ErrorClass, Request, Shared};
use secretsync::metrics::Metrics;
use secretsync::plan::{Desired, Metadata, Observed, Owner, WritePolicy};
use secretsync::value::{Credentials, SecretValue};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod support;

/// Counts the connections made to it.
async fn tripwire() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(conn);
        }
    });
    (url, hits)
}

/// A server on loopback that hands each connection to `handle` in a task of its own; returns its address.
async fn serve<F, Fut>(handle: F) -> std::net::SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(handle(conn));
        }
    });
    addr
}

/// Reads what the client sent first (a request's head, at most 64 KiB).
async fn read_request(conn: &mut TcpStream) {
    let mut buf = vec![0u8; 65536];
    let _ = conn.read(&mut buf).await;
}

/// Answers every request with a 307 to `to`.
async fn redirector(to: String) -> String {
    let addr = serve(move |mut conn| {
        let to = to.clone();
        async move {
            read_request(&mut conn).await;
            let reply = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: {to}/elsewhere\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = conn.write_all(reply.as_bytes()).await;
        }
    })
    .await;
    format!("http://{addr}")
}

fn credentials(pairs: &[(&str, &str)]) -> Credentials {
    Credentials::new(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), SecretValue::from(*v)))
            .collect(),
    )
}

fn desired() -> Desired {
    Desired {
        digest: "hmac-sha256:00112233445566778899aabbccddeeff".into(),
        earlier_digest: None,
        metadata: Metadata::default(),
        owner: Owner {
            namespace: "team-a".into(),
            name: "db".into(),
            uid: "uid-1".into(),
            scope: Default::default(),
        },
        policy: WritePolicy::Replace,
        adopt_existing: false,
        adoption: secretsync::plan::Adoption::default(),
        allow_replace: false,
    }
}

/// A request for the remote secret `name` of `target`, no rate limit, no previous sync.
fn request<'a>(
    target: &'a Target,
    name: &'a str,
    credentials: &'a Credentials,
    desired: &'a Desired,
) -> Request<'a> {
    Request {
        target,
        remote_name: name,
        rate_limit: None,
        credentials,
        desired,
        last: None,
        store: None,
    }
}

/// Each HTTP dialect's reply to one `observe` of a store at `store`.
async fn observe_everywhere(store: &str) -> Vec<(String, DialectError)> {
    observe_with(Shared::new(100, 100, Metrics::new()), store).await
}

async fn observe_with(shared: Shared, store: &str) -> Vec<(String, DialectError)> {
    let cases: Vec<(Arc<dyn Dialect>, serde_json::Value, Credentials)> = vec![
        (
            Arc::new(
                secretsync::dialects::service_fabric_mesh::ServiceFabricMesh::new(shared.clone()),
            ),
            json!({"dialect": "ServiceFabricMesh", "endpoint": store}),
            Credentials::default(),
        ),
        (
            Arc::new(secretsync::dialects::barbican::Barbican::new(
                shared.clone(),
            )),
            json!({"dialect": "Barbican", "endpoint": store, "barbican": {"projectId": "p"}}),
            Credentials::default(),
        ),
        (
            Arc::new(secretsync::dialects::tencent_ssm::TencentSsm::new(
                shared.clone(),
            )),
            json!({"dialect": "TencentSSM", "endpoint": store, "tencentSSM": {"region": "ap-guangzhou"}}),
            credentials(&[
                ("secretId", "AKIDtest"),
                ("secretKey", "tencent-secret-key"),
            ]),
        ),
        (
            Arc::new(secretsync::dialects::vault::Vault::new(shared.clone())),
            json!({"dialect": "Vault", "endpoint": store}),
            credentials(&[("token", "hvs.not-a-real-token")]),
        ),
    ];
    let desired = desired();
    let mut out = Vec::new();
    for (dialect, target, creds) in cases {
        let target: Target = serde_json::from_value(target).unwrap();
        let req = request(&target, "db", &creds, &desired);
        let err = dialect
            .observe(&req)
            .await
            .expect_err("a misbehaving store gives no answer");
        out.push((dialect.kind().to_string(), err));
    }
    out
}

#[tokio::test]
async fn no_dialect_follows_a_redirect() {
    let (elsewhere, hits) = tripwire().await;
    let store = redirector(elsewhere).await;
    for (dialect, err) in observe_everywhere(&store).await {
        assert_eq!(
            (err.class, err.reason),
            (ErrorClass::Permanent, "Redirected"),
            "{dialect}: {err}"
        );
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a redirect was followed to another host"
    );
}

/// Answers every request `200` with a body of `size` bytes, announced in `Content-Length` or streamed without it.
async fn flood(size: usize, announce: bool) -> String {
    let addr = serve(move |mut conn| async move {
        read_request(&mut conn).await;
        let length = if announce {
            format!("Content-Length: {size}\r\n")
        } else {
            String::new()
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{length}Connection: close\r\n\r\n"
        );
        if conn.write_all(head.as_bytes()).await.is_ok() {
            stream_spaces(&mut conn, size).await;
        }
    })
    .await;
    format!("http://{addr}")
}

/// Writes `size` bytes of spaces, 64 KiB at a time, until done or the client goes.
async fn stream_spaces(conn: &mut TcpStream, size: usize) {
    let chunk = vec![b' '; 64 * 1024];
    let mut sent = 0;
    while sent < size {
        if conn.write_all(&chunk).await.is_err() {
            return;
        }
        sent += chunk.len();
    }
}

/// The process's peak resident memory so far (`VmHWM`), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

#[tokio::test]
async fn an_answer_over_one_mebibyte_is_refused_as_it_arrives() {
    let before = peak_rss();
    for announce in [true, false] {
        let store = flood(200 << 20, announce).await;
        for (dialect, err) in observe_everywhere(&store).await {
            assert_eq!(
                (err.class, err.reason),
                (ErrorClass::Permanent, "ResponseTooLarge"),
                "{dialect} (length announced: {announce}): {err}"
            );
        }
    }
    // Docker: bollard would read and decode any answer whole; SecretSync's connection stops at the cap.
    let (endpoint, _) = fake_docker(Daemon::Floods).await;
    let target: Target =
        serde_json::from_value(json!({"dialect": "DockerSwarm", "endpoint": endpoint})).unwrap();
    let docker =
        secretsync::dialects::docker_swarm::DockerSwarm::new(Shared::new(100, 100, Metrics::new()));
    let (desired, creds) = (desired(), Credentials::default());
    let err = docker
        .observe(&docker_request(&target, &desired, &creds))
        .await
        .expect_err("a flooding daemon gives no answer");
    assert_eq!(
        (err.class, err.reason),
        (ErrorClass::Permanent, "ResponseTooLarge"),
        "DockerSwarm: {err}"
    );
    let grown = peak_rss().saturating_sub(before);
    assert!(
        grown < 50 << 20,
        "peak memory grew by {} MiB while stores streamed 200 MB",
        grown >> 20
    );
}

/// Answers every request `200` announcing a large body, then sends it a byte every 100 ms.
async fn trickler() -> String {
    let addr = serve(|mut conn| async move {
        read_request(&mut conn).await;
        let head =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n";
        if conn.write_all(head.as_bytes()).await.is_ok() {
            trickle(&mut conn).await;
        }
    })
    .await;
    format!("http://{addr}")
}

/// Writes a space every 100 ms until the client goes.
async fn trickle(conn: &mut TcpStream) {
    while conn.write_all(b" ").await.is_ok() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A call bounded by the deadline must end; this only catches one that never does.
const NO_HANG: Duration = Duration::from_secs(60);

#[tokio::test]
async fn an_answer_that_trickles_is_cut_at_the_deadline() {
    let store = trickler().await;
    let shared = Shared::new(100, 100, Metrics::new()).with_deadline(Duration::from_secs(1));
    let answers = tokio::time::timeout(NO_HANG, observe_with(shared, &store))
        .await
        .expect("a trickling answer held a call past the deadline");
    for (dialect, err) in answers {
        assert_eq!(
            (err.class, err.reason),
            (ErrorClass::Retry, "BackendTimeout"),
            "{dialect}: {err}"
        );
    }
}

/// How a fake Docker daemon treats requests other than `GET /version`.
#[derive(Clone, Copy)]
enum Daemon {
    /// Announces a body and sends a byte of it every 100 ms.
    Trickles,
    /// Reads the request and never answers.
    Hangs,
    /// Answers 200 with 200 MB of JSON-looking bytes, without announcing a length.
    Floods,
}

/// A Docker Engine API on loopback that negotiates version 1.44 and then misbehaves; counts secret creates.
async fn fake_docker(behaviour: Daemon) -> (String, Arc<AtomicUsize>) {
    let creates = Arc::new(AtomicUsize::new(0));
    let counted = creates.clone();
    let addr = serve(move |conn| daemon_connection(conn, behaviour, counted.clone())).await;
    (format!("tcp://{addr}"), creates)
}

/// One connection to the fake daemon: `GET /version` answered properly, anything else as `behaviour` says.
async fn daemon_connection(mut conn: TcpStream, behaviour: Daemon, creates: Arc<AtomicUsize>) {
    let Some(head) = past_version(&mut conn).await else {
        return;
    };
    if head.starts_with("POST") && head.contains("/secrets/create") {
        creates.fetch_add(1, Ordering::SeqCst);
    }
    let head = match behaviour {
        Daemon::Hangs => {
            tokio::time::sleep(NO_HANG).await;
            return;
        }
        Daemon::Floods => {
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n["
        }
        Daemon::Trickles => {
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n["
        }
    };
    if conn.write_all(head.as_bytes()).await.is_ok() {
        match behaviour {
            Daemon::Floods => stream_spaces(&mut conn, 200 << 20).await,
            _ => trickle(&mut conn).await,
        }
    }
}

/// Answers `GET /version` (API 1.44) as often as asked; the head of the first other request, `None` once the
/// client has gone.
async fn past_version(conn: &mut TcpStream) -> Option<String> {
    let mut buf = vec![0u8; 65536];
    loop {
        let n = match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => n,
        };
        let head = String::from_utf8_lossy(&buf[..n]).to_string();
        if !head.starts_with("GET /version") {
            return Some(head);
        }
        let body = r#"{"ApiVersion":"1.44","Version":"26.1.0"}"#;
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(reply.as_bytes()).await.ok()?;
    }
}

fn docker_request<'a>(
    target: &'a Target,
    desired: &'a Desired,
    creds: &'a Credentials,
) -> Request<'a> {
    Request {
        target,
        remote_name: "db",
        rate_limit: None,
        credentials: creds,
        desired,
        last: None,
        store: None,
    }
}

#[tokio::test]
async fn a_docker_daemon_that_trickles_or_hangs_is_cut_at_the_deadline_and_a_create_is_sent_once() {
    let shared = Shared::new(100, 100, Metrics::new()).with_deadline(Duration::from_secs(1));
    let docker = secretsync::dialects::docker_swarm::DockerSwarm::new(shared);
    let creds = Credentials::default();
    let desired = desired();

    let (endpoint, _) = fake_docker(Daemon::Trickles).await;
    let target: Target =
        serde_json::from_value(json!({"dialect": "DockerSwarm", "endpoint": endpoint})).unwrap();
    let err = tokio::time::timeout(
        NO_HANG,
        docker.observe(&docker_request(&target, &desired, &creds)),
    )
    .await
    .expect("a trickling daemon held a call past the deadline")
    .expect_err("a trickling daemon gives no answer");
    assert_eq!(
        (err.class, err.reason),
        (ErrorClass::Retry, "BackendTimeout"),
        "{err}"
    );

    let (endpoint, creates) = fake_docker(Daemon::Hangs).await;
    let target: Target =
        serde_json::from_value(json!({"dialect": "DockerSwarm", "endpoint": endpoint})).unwrap();
    let value = SecretValue::from("not-a-real-value");
    let err = tokio::time::timeout(
        NO_HANG,
        docker.apply(
            &docker_request(&target, &desired, &creds),
            &secretsync::plan::Write::Create,
            &Observed::Absent,
            &value,
        ),
    )
    .await
    .expect("a hanging daemon held a create past the deadline")
    .expect_err("a hanging daemon creates nothing");
    assert_eq!(
        (err.class, err.reason),
        (ErrorClass::Retry, "BackendTimeout"),
        "{err}"
    );
    assert_eq!(
        creates.load(Ordering::SeqCst),
        1,
        "a create that may have been applied was sent again"
    );
}

/// Answers every request with a full page (100) of secrets named otherwise, without a `total`, whatever the offset.
async fn endless_listing() -> (String, Arc<AtomicUsize>) {
    let pages = Arc::new(AtomicUsize::new(0));
    let counted = pages.clone();
    let secrets: Vec<_> = (0..100)
        .map(|i| {
            json!({"name": format!("db{i}"),
                   "secret_ref": format!("http://127.0.0.1/v1/secrets/00000000-0000-0000-0000-{i:012}")})
        })
        .collect();
    let body = json!({ "secrets": secrets }).to_string();
    let addr = serve(move |mut conn| {
        let (counted, body) = (counted.clone(), body.clone());
        async move {
            read_request(&mut conn).await;
            counted.fetch_add(1, Ordering::SeqCst);
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(reply.as_bytes()).await;
        }
    })
    .await;
    (format!("http://{addr}"), pages)
}

#[tokio::test]
async fn a_barbican_listing_that_never_ends_is_given_up() {
    let (store, pages) = endless_listing().await;
    let dialect =
        secretsync::dialects::barbican::Barbican::new(Shared::new(100, 100, Metrics::new()));
    let target: Target = serde_json::from_value(
        json!({"dialect": "Barbican", "endpoint": store, "barbican": {"projectId": "p"}}),
    )
    .unwrap();
    let desired = desired();
    let creds = Credentials::default();
    let req = request(&target, "db", &creds, &desired);
    let err = tokio::time::timeout(Duration::from_secs(60), dialect.observe(&req))
        .await
        .expect("the listing ended")
        .expect_err("an endless listing is an error");
    assert_eq!(err.reason, "ListingTooLong", "{err:?}");
    assert_eq!(err.class, ErrorClass::Permanent);
    assert_eq!(pages.load(Ordering::SeqCst), 20);
}

/// A cleanup or a store check reads the store without the dialect's `check`: a SecretSync's `remoteName` that is a
/// path must still not reach another path of the store, with the store's credentials.
#[tokio::test]
async fn a_remote_name_that_is_a_path_reaches_no_other_path_of_the_store() {
    let (store, hits) = tripwire().await;
    let dialect = secretsync::dialects::service_fabric_mesh::ServiceFabricMesh::new(Shared::new(
        100,
        100,
        Metrics::new(),
    ));
    let target: Target =
        serde_json::from_value(json!({"dialect": "ServiceFabricMesh", "endpoint": store})).unwrap();
    let desired = desired();
    let creds = Credentials::default();
    for name in [
        "../../$/GetClusterManifest",
        "db?api-version=1",
        "db#x",
        "db/values",
    ] {
        let req = request(&target, name, &creds, &desired);
        let err = dialect
            .observe(&req)
            .await
            .expect_err("a name that is a path is refused");
        assert_eq!(err.reason, "InvalidName", "{name}: {err:?}");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the store was called");
}

/// `CANARY-` and a value no test run repeats.
fn canary() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("CANARY-{:x}{:x}", nanos, std::process::id())
}

/// Every dialect's error shape at once, the canary in every free-text field (and in every code field, where a
/// store might put anything).
fn error_shapes(c: &str) -> serde_json::Value {
    json!({
        // Barbican
        "code": 404, "title": c, "description": c,
        // Keystone, Key Vault, Docker
        "error": {"code": c, "title": c, "message": c, "innererror": {"code": c}},
        "message": c,
        // Entra ID
        "error_description": format!("AADSTS7000215: {c}"),
        // Service Fabric
        "Error": {"Code": c, "Message": c},
        // Tencent SSM
        "Response": {"Error": {"Code": c, "Message": c}, "RequestId": c},
        // Vault
        "errors": [c, format!("check-and-set parameter did not match {c}")],
    })
}

/// Known codes, free text the canary: a code from a closed list may be shown, its message never.
fn known_codes(c: &str) -> serde_json::Value {
    json!({
        "code": 403, "title": "Forbidden", "description": c,
        "error": {"code": "Forbidden", "title": "Forbidden", "message": c,
                  "innererror": {"code": "ForbiddenByPolicy", "message": c}},
        "message": c,
        "Error": {"Code": "FABRIC_E_SECRET_INVALID", "Message": c},
        "Response": {"Error": {"Code": "ResourceInUse.SecretExists", "Message": c}, "RequestId": c},
        "errors": [format!("1 error occurred: permission denied {c}")],
    })
}

/// The HTTP replies of the canary test: status line, extra headers, body.
fn canary_replies(c: &str) -> Vec<String> {
    let json = |status: &str, headers: &str, body: serde_json::Value| {
        let body = body.to_string();
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let canary_headers = format!(
        "X-Canary: {c}\r\nRetry-After: {c}\r\nWWW-Authenticate: Bearer authorization=\"https://login.windows.net/{c}\", resource=\"https://vault.azure.net\", error_description=\"{c}\"\r\nX-Openstack-Request-Id: {c}\r\n"
    );
    let text = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html\r\n{canary_headers}Content-Length: {}\r\nConnection: close\r\n\r\n<html>{c}</html>",
        c.len() + 13
    );
    vec![
        json("404 Not Found", "", error_shapes(c)),
        json("500 Internal Server Error", "", error_shapes(c)),
        json("200 OK", "", error_shapes(c)),
        json("403 Forbidden", "", known_codes(c)),
        json("200 OK", "", known_codes(c)),
        // A 200 of the wrong shape.
        json(
            "200 OK",
            "",
            json!({"properties": c, "Response": c, "secrets": c, "value": c, "message": c, "Version": c}),
        ),
        // A 200 whose status fields carry the canary.
        json(
            "200 OK",
            "",
            json!({"properties": {"status": "Failed", "statusDetails": c},
                   "Response": {"SecretName": "db", "Status": c, "RequestId": c}}),
        ),
        json("401 Unauthorized", &canary_headers, error_shapes(c)),
        json("429 Too Many Requests", &canary_headers, error_shapes(c)),
        text,
    ]
}

/// Answers every request with `reply`.
async fn replying(reply: String) -> String {
    let addr = serve(move |mut conn| {
        let reply = reply.clone();
        async move {
            read_request(&mut conn).await;
            let _ = conn.write_all(reply.as_bytes()).await;
        }
    })
    .await;
    format!("http://{addr}")
}

/// A Docker daemon that negotiates 1.44 and answers everything else with `reply`.
async fn replying_docker(reply: String) -> String {
    let addr = serve(move |mut conn| {
        let reply = reply.clone();
        async move {
            if past_version(&mut conn).await.is_some() {
                let _ = conn.write_all(reply.as_bytes()).await;
            }
        }
    })
    .await;
    format!("tcp://{addr}")
}

/// A self-signed certificate for 127.0.0.1 made for this run: its PEM, which the dialect is given as its CA, and
/// an acceptor serving it.
fn loopback_tls() -> (String, tokio_rustls::TlsAcceptor) {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![made.cert.der().clone()], key)
    .unwrap();
    (
        made.cert.pem(),
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    )
}

/// Reads one request whole (head, and the body its `Content-Length` announces; 64 KiB at most) and returns its
/// head; `None` when the client went first. Answering before the body is read could reset the connection under
/// a client still sending it, and the client would never see the answer.
async fn read_whole_request<S: tokio::io::AsyncRead + Unpin>(conn: &mut S) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n");
        if let Some(end) = end {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let length: usize = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return Some(head);
            }
        }
        if buf.len() > 65536 {
            return None;
        }
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// What a Key Vault canary server answers at Entra ID's token endpoint.
#[derive(Clone, Copy, Debug)]
enum SignIn {
    /// A valid token, so that the vault's calls meet the canary.
    Granted,
    /// The canary reply, like every other path.
    Canary,
}

/// Requests a Key Vault canary server read whole, at the token endpoint and at the vault.
#[derive(Default)]
struct Reached {
    sign_in: AtomicUsize,
    vault: AtomicUsize,
}

/// Key Vault and its Entra ID on one HTTPS listener: every request answered with `reply`, the token endpoint
/// (`POST /{tenant}/oauth2/v2.0/token`) as `sign_in` says.
async fn replying_key_vault(
    tls: tokio_rustls::TlsAcceptor,
    reply: String,
    sign_in: SignIn,
) -> (String, Arc<Reached>) {
    let reached = Arc::new(Reached::default());
    let counted = reached.clone();
    let token =
        json!({"token_type": "Bearer", "expires_in": 3599, "access_token": "not-a-real-token"})
            .to_string();
    let granted = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{token}",
        token.len()
    );
    let addr = serve(move |conn| {
        let (tls, reply, granted, counted) =
            (tls.clone(), reply.clone(), granted.clone(), counted.clone());
        async move {
            let Ok(mut conn) = tls.accept(conn).await else {
                return;
            };
            let Some(head) = read_whole_request(&mut conn).await else {
                return;
            };
            let answer = if head.starts_with("POST ") && head.contains("/oauth2/v2.0/token ") {
                counted.sign_in.fetch_add(1, Ordering::SeqCst);
                match sign_in {
                    SignIn::Granted => granted,
                    SignIn::Canary => reply,
                }
            } else {
                counted.vault.fetch_add(1, Ordering::SeqCst);
                reply
            };
            let _ = conn.write_all(answer.as_bytes()).await;
            let _ = conn.shutdown().await;
        }
    })
    .await;
    (format!("https://{addr}"), reached)
}

/// An error as everything that may show it sees it: its Display, message, reason, Debug and every source's.
fn everything_shown(err: &DialectError) -> String {
    let mut shown = format!("{err}\n{}\n{}\n{err:?}", err.message, err.reason);
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        shown.push_str(&format!("\n{s}\n{s:?}"));
        source = s.source();
    }
    shown
}

#[tokio::test]
async fn no_store_answer_is_shown_back() {
    // Everything at TRACE, through the controller's own filter (which holds crates that quote answers back).
    let logs = support::LogCapture::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter(secretsync::telemetry::env_filter("trace"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    let c = canary();
    let metrics = Metrics::new();
    let shared = Shared::new(100, 100, metrics.clone()).with_deadline(Duration::from_secs(5));
    // Credentials: `{auth}` becomes the Keystone URL of the canary server.
    type Case = (
        Arc<dyn Dialect>,
        serde_json::Value,
        Vec<(&'static str, &'static str)>,
    );
    let dialects: Vec<Case> = vec![
        (
            Arc::new(
                secretsync::dialects::service_fabric_mesh::ServiceFabricMesh::new(shared.clone()),
            ),
            json!({"dialect": "ServiceFabricMesh"}),
            vec![],
        ),
        (
            Arc::new(secretsync::dialects::barbican::Barbican::new(
                shared.clone(),
            )),
            json!({"dialect": "Barbican", "barbican": {"projectId": "p"}}),
            vec![],
        ),
        (
            Arc::new(secretsync::dialects::barbican::Barbican::new(
                shared.clone(),
            )),
            json!({"dialect": "Barbican"}),
            // Keystone mode: the token request meets the answer first.
            vec![
                ("authUrl", "{auth}"),
                ("username", "u"),
                ("password", "p"),
                ("projectName", "p"),
                ("userDomainName", "Default"),
                ("projectDomainName", "Default"),
            ],
        ),
        (
            Arc::new(secretsync::dialects::tencent_ssm::TencentSsm::new(
                shared.clone(),
            )),
            json!({"dialect": "TencentSSM", "tencentSSM": {"region": "ap-guangzhou"}}),
            vec![
                ("secretId", "AKIDtest"),
                ("secretKey", "tencent-secret-key"),
            ],
        ),
        (
            Arc::new(secretsync::dialects::vault::Vault::new(shared.clone())),
            json!({"dialect": "Vault"}),
            vec![("token", "hvs.not-a-real-token")],
        ),
        (
            Arc::new(secretsync::dialects::docker_swarm::DockerSwarm::new(
                shared.clone(),
            )),
            json!({"dialect": "DockerSwarm"}),
            vec![],
        ),
    ];
    // Key Vault is HTTPS only: its vault and Entra ID are one listener with a certificate made here, whose CA the
    // store's `ca.crt` carries. A ClusterStore's (the controller names the store in the request): a namespaced
    // Store's CA is never trusted for the token endpoint, and the sign-in would end at the handshake.
    let key_vault = secretsync::dialects::azure_key_vault::AzureKeyVault::with_workload_env(
        shared.clone(),
        secretsync::dialects::azure_key_vault::WorkloadEnv::default(),
    );
    let (ca, tls) = loopback_tls();
    let key_vault_creds = credentials(&[
        ("tenantId", "00000000-0000-0000-0000-000000000001"),
        ("clientId", "canary-client"),
        ("clientSecret", "not-a-real-secret"),
        ("ca.crt", &ca),
    ]);
    let desired = desired();
    let value = SecretValue::from("not-a-real-value");
    let mut leaks = Vec::new();
    let mut unreached = Vec::new();
    for (n, reply) in canary_replies(&c).into_iter().enumerate() {
        for sign_in in [SignIn::Granted, SignIn::Canary] {
            let (url, reached) = replying_key_vault(tls.clone(), reply.clone(), sign_in).await;
            let target: Target = serde_json::from_value(json!({
                "dialect": "AzureKeyVault", "endpoint": url, "azureKeyVault": {"authorityHost": url}
            }))
            .unwrap();
            let req = Request {
                store: Some(secretsync::dialects::kit::store_id::StoreId::new(
                    secretsync::api::StoreKind::ClusterStore,
                    "canary",
                    "team-a",
                )),
                ..request(&target, "db", &key_vault_creds, &desired)
            };
            let mut shown = Vec::new();
            match key_vault.observe(&req).await {
                Ok(observed) => shown.push(format!("observed {observed:?}")),
                Err(err) => shown.push(everything_shown(&err)),
            }
            if let Err(err) = key_vault
                .apply(
                    &req,
                    &secretsync::plan::Write::Create,
                    &Observed::Absent,
                    &value,
                )
                .await
            {
                shown.push(everything_shown(&err));
            }
            for text in shown {
                if text.contains(&c) {
                    leaks.push(format!(
                        "AzureKeyVault ({sign_in:?} sign-in), reply {n}: {text}"
                    ));
                }
            }
            // Each pass must meet the canary where it means to: a failed handshake or a refused sign-in would
            // leave nothing to show back, and the check above would pass for nothing.
            let (sign_ins, vault) = (
                reached.sign_in.load(Ordering::SeqCst),
                reached.vault.load(Ordering::SeqCst),
            );
            let met = match sign_in {
                SignIn::Granted => sign_ins > 0 && vault > 0,
                SignIn::Canary => sign_ins > 0 && vault == 0,
            };
            if !met {
                unreached.push(format!(
                    "AzureKeyVault ({sign_in:?} sign-in), reply {n}: {sign_ins} sign-ins, {vault} vault calls"
                ));
            }
        }
        let http = replying(reply.clone()).await;
        let docker = replying_docker(reply).await;
        let auth = format!("{http}/v3");
        for (dialect, target, pairs) in &dialects {
            let mut target = target.clone();
            let kind = dialect.kind().to_string();
            let endpoint = if kind == "DockerSwarm" {
                &docker
            } else {
                &http
            };
            target["endpoint"] = json!(endpoint);
            let target: Target = serde_json::from_value(target).unwrap();
            let pairs: Vec<(&str, &str)> = pairs
                .iter()
                .map(|&(k, v)| (k, if v == "{auth}" { auth.as_str() } else { v }))
                .collect();
            let creds = credentials(&pairs);
            let req = request(&target, "db", &creds, &desired);
            let mut shown = Vec::new();
            match dialect.observe(&req).await {
                Ok(observed) => shown.push(format!("observed {observed:?}")),
                Err(err) => shown.push(everything_shown(&err)),
            }
            if let Err(err) = dialect
                .apply(
                    &req,
                    &secretsync::plan::Write::Create,
                    &Observed::Absent,
                    &value,
                )
                .await
            {
                shown.push(everything_shown(&err));
            }
            for text in shown {
                if text.contains(&c) {
                    leaks.push(format!("{kind}, reply {n}: {text}"));
                }
            }
        }
    }
    assert!(
        unreached.is_empty(),
        "Key Vault calls that did not meet the canary where meant to:\n{}",
        unreached.join("\n")
    );
    assert!(
        logs.text().contains("TRACE"),
        "the log capture saw nothing at TRACE"
    );
    let logged: Vec<String> = logs
        .text()
        .lines()
        .filter(|l| l.contains(&c))
        .map(str::to_owned)
        .collect();
    let rendered = metrics.render();
    assert!(
        leaks.is_empty() && logged.is_empty() && !rendered.contains(&c),
        "the canary was shown back:\n{}\nlogged:\n{}\nin metrics: {}",
        leaks.join("\n"),
        logged.join("\n"),
        rendered.contains(&c)
    );
}

/// What the operator's default limits let a namespaced Store reach, with each dialect's own destinations and public
/// hosts as the controller asks them: the documented cloud hosts of Key Vault (and Entra ID) and Tencent SSM, and
/// nothing else; a self-hosted store only once the operator lists its host.
#[test]
fn by_default_a_namespaced_store_reaches_its_dialects_public_cloud_hosts_only() {
    use secretsync::controller::store_limits::{Author, StoreLimits};
    let shared = Shared::new(100, 100, Metrics::new());
    let key_vault: Arc<dyn Dialect> = Arc::new(
        secretsync::dialects::azure_key_vault::AzureKeyVault::with_workload_env(
            shared.clone(),
            secretsync::dialects::azure_key_vault::WorkloadEnv::default(),
        ),
    );
    let tencent: Arc<dyn Dialect> = Arc::new(secretsync::dialects::tencent_ssm::TencentSsm::new(
        shared.clone(),
    ));
    let barbican: Arc<dyn Dialect> = Arc::new(secretsync::dialects::barbican::Barbican::new(
        shared.clone(),
    ));
    let fabric: Arc<dyn Dialect> =
        Arc::new(secretsync::dialects::service_fabric_mesh::ServiceFabricMesh::new(shared.clone()));
    let docker: Arc<dyn Dialect> = Arc::new(secretsync::dialects::docker_swarm::DockerSwarm::new(
        shared.clone(),
    ));
    let cases: Vec<(&Arc<dyn Dialect>, serde_json::Value, &str)> = vec![
        (
            &key_vault,
            json!({"dialect": "AzureKeyVault", "endpoint": "https://team.vault.azure.net"}),
            "Ok",
        ),
        (
            &key_vault,
            json!({"dialect": "AzureKeyVault", "endpoint": "https://team.vault.usgovcloudapi.net",
                   "azureKeyVault": {"authorityHost": "https://login.microsoftonline.us"}}),
            "Ok",
        ),
        (
            &key_vault,
            json!({"dialect": "AzureKeyVault", "endpoint": "https://team.vault.azure.net",
                   "azureKeyVault": {"authorityHost": "https://catcher.team-b.svc:8443"}}),
            "EndpointNotAllowed",
        ),
        (
            &key_vault,
            json!({"dialect": "AzureKeyVault", "endpoint": "https://vault.internal.example"}),
            "EndpointNotAllowed",
        ),
        (&tencent, json!({"dialect": "TencentSSM"}), "Ok"),
        (
            &tencent,
            json!({"dialect": "TencentSSM", "endpoint": "https://ssm.ap-guangzhou.tencentcloudapi.com"}),
            "Ok",
        ),
        (
            &tencent,
            json!({"dialect": "TencentSSM", "endpoint": "http://10.0.3.7:8080"}),
            "EndpointNotAllowed",
        ),
        (
            &barbican,
            json!({"dialect": "Barbican", "endpoint": "https://barbican.internal.example/v1"}),
            "EndpointNotAllowed",
        ),
        (
            &fabric,
            json!({"dialect": "ServiceFabricMesh", "endpoint": "https://sf.internal.example:19080"}),
            "EndpointNotAllowed",
        ),
        (
            &docker,
            json!({"dialect": "DockerSwarm"}),
            "EndpointNotAllowed",
        ),
    ];
    let verdict = |limits: &StoreLimits, dialect: &Arc<dyn Dialect>, target: &Target| match limits
        .admit(
            Author::NamespaceAdmin,
            &dialect.destinations(target, &Credentials::default()),
            dialect.public_hosts(),
            dialect.endpoint_from_answers(target),
        ) {
        Ok(()) => "Ok",
        Err(refusal) => refusal.store_reason(),
    };
    let defaults = StoreLimits::default();
    for (dialect, target, want) in &cases {
        let target: Target = serde_json::from_value(target.clone()).unwrap();
        assert_eq!(verdict(&defaults, dialect, &target), *want, "{target:?}");
    }
    // The operator's list opens a self-hosted store's host, and only that.
    let listed = StoreLimits {
        namespaced_store_hosts: vec!["barbican.internal.example".into()],
        ..StoreLimits::default()
    };
    let target = |endpoint: &str| -> Target {
        serde_json::from_value(json!({"dialect": "Barbican", "endpoint": endpoint})).unwrap()
    };
    assert_eq!(
        verdict(
            &listed,
            &barbican,
            &target("https://barbican.internal.example/v1")
        ),
        "Ok"
    );
    assert_eq!(
        verdict(
            &listed,
            &barbican,
            &target("https://other.internal.example/v1")
        ),
        "EndpointNotAllowed"
    );
}
