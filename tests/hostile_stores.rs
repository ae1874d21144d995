//! Stores that misbehave, served from loopback in the test (no test bed needed), against every HTTP dialect:
//! - a redirect is never followed: a local server answers every request `307 Temporary Redirect` to a second local
//!   listener; the call fails with `Redirected` and the second listener sees no connection (a followed 307 would
//!   replay the request, credentials and body included, to a host that no store names);
//! - an answer larger than 1 MiB is refused as it arrives (`ResponseTooLarge`), whether it announces its length or
//!   streams without one.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use secretsync::api::Target;
use secretsync::dialects::{Dialect, DialectError, ErrorClass, Request, Shared};
use secretsync::metrics::Metrics;
use secretsync::plan::{Desired, Metadata, Owner, WritePolicy};
use secretsync::value::{Credentials, SecretValue};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

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

/// Answers every request with a 307 to `to`.
async fn redirector(to: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let to = to.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = conn.read(&mut buf).await;
                let reply = format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nLocation: {to}/elsewhere\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = conn.write_all(reply.as_bytes()).await;
            });
        }
    });
    url
}

fn credentials(pairs: &[(&str, &str)]) -> Credentials {
    Credentials::new(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), SecretValue::from(*v)))
            .collect(),
    )
}

/// Each HTTP dialect's reply to one `observe` of a store at `store`.
async fn observe_everywhere(store: &str) -> Vec<(String, DialectError)> {
    let shared = Shared::new(100, 100, Metrics::new());
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
    ];
    let desired = Desired {
        digest: String::new(),
        metadata: Metadata::default(),
        owner: Owner {
            namespace: "team-a".into(),
            name: "db".into(),
            uid: "uid-1".into(),
        },
        policy: WritePolicy::Replace,
        adopt_existing: false,
        allow_replace: false,
    };
    let mut out = Vec::new();
    for (dialect, target, creds) in cases {
        let target: Target = serde_json::from_value(target).unwrap();
        let req = Request {
            target: &target,
            remote_name: "db",
            rate_limit: None,
            credentials: &creds,
            desired: &desired,
            last: None,
        };
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
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = conn.read(&mut buf).await;
                let length = if announce {
                    format!("Content-Length: {size}\r\n")
                } else {
                    String::new()
                };
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{length}Connection: close\r\n\r\n"
                );
                if conn.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b' '; 64 * 1024];
                let mut sent = 0;
                while sent < size {
                    if conn.write_all(&chunk).await.is_err() {
                        return;
                    }
                    sent += chunk.len();
                }
            });
        }
    });
    url
}

#[tokio::test]
async fn an_answer_over_one_mebibyte_is_refused_as_it_arrives() {
    for announce in [true, false] {
        let store = flood(64 << 20, announce).await;
        for (dialect, err) in observe_everywhere(&store).await {
            assert_eq!(
                (err.class, err.reason),
                (ErrorClass::Permanent, "ResponseTooLarge"),
                "{dialect} (length announced: {announce}): {err}"
            );
        }
    }
}
