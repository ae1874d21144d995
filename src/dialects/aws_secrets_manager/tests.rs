use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use zeroize::Zeroizing;

use super::*;
use crate::dialects::ErrorClass;
use crate::dialects::fixtures::{self, reply};
use crate::dialects::kit::Verdict;
use crate::metrics::Metrics;

fn dialect() -> AwsSecretsManager {
    AwsSecretsManager::new(Shared::new(100, 100, Metrics::new()))
}

fn target(endpoint: &str) -> Target {
    fixtures::target(serde_json::json!({
        "dialect": "AWSSecretsManager",
        "endpoint": endpoint,
        "awsSecretsManager": {"region": "eu-west-1"},
    }))
}

fn keys() -> Credentials {
    fixtures::creds(&[
        ("accessKeyId", "AKIDEXAMPLE"),
        ("secretAccessKey", "wJalrXUtnFEMI"),
    ])
}

fn error(status: u16, code: &str) -> DialectError {
    let body =
        serde_json::json!({"__type": code, "message": "CANARY the store's words"}).to_string();
    match decode(&reply(status, &body)) {
        Verdict::Error(e) => e,
        other => panic!("{code}: an error, not {other:?}"),
    }
}

#[test]
fn documented_codes_map_to_classes_and_the_message_is_never_shown() {
    let cases = [
        ("ThrottlingException", ErrorClass::Retry),
        ("InternalServiceError", ErrorClass::Retry),
        ("AccessDeniedException", ErrorClass::Credentials),
        ("UnrecognizedClientException", ErrorClass::Credentials),
        (
            "com.amazonaws.secretsmanager#InvalidSignatureException",
            ErrorClass::Credentials,
        ),
        ("ResourceExistsException", ErrorClass::Conflict),
        ("InvalidRequestException", ErrorClass::Conflict),
        ("LimitExceededException", ErrorClass::Permanent),
        ("InvalidParameterException", ErrorClass::Permanent),
    ];
    for (code, class) in cases {
        let e = error(400, code);
        assert_eq!(e.class, class, "{code}");
        let short = code.rsplit('#').next().unwrap();
        assert!(e.message.contains(short), "{code}: {}", e.message);
        assert!(!format!("{e} {e:?}").contains("CANARY"), "{code}");
    }
    // Not found is "absent", whatever status carries it (AWS answers 400, moto 404).
    for status in [400, 404] {
        let body = r#"{"__type":"ResourceNotFoundException","message":"m"}"#;
        assert!(matches!(decode(&reply(status, body)), Verdict::Absent));
    }
    // A code SecretSync does not know is not repeated; the status decides.
    let unknown = error(503, "CANARYException");
    assert_eq!(unknown.class, ErrorClass::Retry);
    assert!(!unknown.message.contains("CANARY"));
    assert_eq!(error(400, "CANARYException").class, ErrorClass::Permanent);
    // The signature checks in front of the service answer XML.
    let xml = "<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>CANARY</Message></Error></ErrorResponse>";
    match decode(&reply(403, xml)) {
        Verdict::Error(e) => {
            assert_eq!(e.class, ErrorClass::Credentials);
            assert!(e.message.contains("SignatureDoesNotMatch") && !e.message.contains("CANARY"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(decode(&reply(200, "{}")), Verdict::Success));
}

fn signer(token: Option<&str>) -> SigV4 {
    SigV4 {
        keys: Arc::new(AwsKeys {
            access_key_id: Zeroizing::new("AKIDEXAMPLE".into()),
            secret_access_key: Zeroizing::new("wJalrXUtnFEMI".into()),
            session_token: token.map(|t| Zeroizing::new(t.to_owned())),
        }),
        region: "eu-west-1".into(),
        service: "secretsmanager",
    }
}

fn sign_with(s: &SigV4, target: &str, body: &[u8]) -> BTreeMap<String, String> {
    let headers = [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", target),
    ];
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_765_000_000);
    s.headers("POST", "https://127.0.0.1:8443/", &headers, body, at)
        .expect("signs")
        .into_iter()
        .collect()
}

#[test]
fn the_signature_covers_the_action_the_body_and_the_region() {
    let plain = sign_with(&signer(None), "secretsmanager.DescribeSecret", b"{}");
    let auth = &plain["authorization"];
    assert!(
        auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20251206/eu-west-1/secretsmanager/aws4_request"
        ),
        "{auth}"
    );
    assert!(
        auth.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-target"),
        "{auth}"
    );
    assert_eq!(plain["x-amz-date"], "20251206T054640Z");
    assert!(!plain.contains_key("x-amz-security-token"));
    assert!(!auth.contains("wJalrXUtnFEMI"));
    // Another action, another body: another signature.
    let other = sign_with(&signer(None), "secretsmanager.DeleteSecret", b"{}");
    assert_ne!(other["authorization"], *auth);
    let body = sign_with(
        &signer(None),
        "secretsmanager.DescribeSecret",
        b"{\"SecretId\":\"x\"}",
    );
    assert_ne!(body["authorization"], *auth);
    // Temporary credentials send their session token, signed.
    let temp = sign_with(
        &signer(Some("SESSION")),
        "secretsmanager.DescribeSecret",
        b"{}",
    );
    assert_eq!(temp["x-amz-security-token"], "SESSION");
    assert!(temp["authorization"].contains("x-amz-security-token"));
}

#[test]
fn the_marker_round_trips_through_tags_next_to_the_labels() {
    let mut desired = fixtures::desired();
    desired.metadata.labels = [("team".to_owned(), "payments".to_owned())].into();
    desired.owner.scope = crate::plan::Scope {
        cluster: "c1".into(),
        namespace_uid: "ns-uid".into(),
    };
    let tags = wanted_tags(&desired, "v-1");
    let map: BTreeMap<String, String> = tags.into_iter().map(|t| (t.key, t.value)).collect();
    assert_eq!(map.len(), 1 + OUR_TAGS);
    assert_eq!(map["team"], "payments");
    assert_eq!(map[VERSION_TAG], "v-1");
    assert_eq!(
        TAGS.read(|k| map.get(k).map(String::as_str)),
        Some(Marker::of(&desired))
    );
    assert!(
        map.iter()
            .all(|(k, v)| valid_tag_text(k) && valid_tag_text(v)),
        "{map:?}"
    );
    let ours = map.keys().filter(|k| ownership::is_reserved(k)).count();
    assert_eq!(ours, OUR_TAGS);
}

#[test]
fn check_refuses_what_secrets_manager_cannot_keep() {
    let d = dialect();
    let t = target("https://secretsmanager.eu-west-1.amazonaws.com");
    let ok = SecretValue::from("v");
    assert!(fixtures::check(&d, &t, &keys(), "prod/db-password", &ok).is_ok());
    let refused = |name: &str, value: &SecretValue, creds: &Credentials| {
        fixtures::check(&d, &t, creds, name, value)
            .expect_err(name)
            .reason
    };
    assert_eq!(refused("bad name!", &ok, &keys()), "InvalidName");
    let big = SecretValue::new(vec![b'x'; MAX_VALUE + 1]);
    assert_eq!(refused("n", &big, &keys()), "PayloadTooLarge");
    assert_eq!(
        refused("n", &ok, &fixtures::creds(&[("accessKeyId", "A")])),
        "MissingCredentials"
    );
    let http = target("http://secretsmanager.example");
    let e = fixtures::check(&d, &http, &keys(), "n", &ok).expect_err("http");
    assert_eq!(e.reason, "InsecureEndpoint");
    assert!(fixtures::check(&d, &target("http://127.0.0.1:9"), &keys(), "n", &ok).is_ok());
}

#[test]
fn public_hosts_are_the_regional_api_and_sts_hosts() {
    let hosts = dialect().public_hosts();
    for host in [
        "secretsmanager.eu-west-1.amazonaws.com",
        "sts.us-east-1.amazonaws.com",
        "sts.amazonaws.com",
        "secretsmanager.cn-north-1.amazonaws.com.cn",
    ] {
        assert!(hosts.contains(&host), "{host}");
    }
    assert!(
        !hosts.iter().any(|h| h.contains('*')),
        "no wildcard reaches S3 buckets"
    );
}

/// A loopback Secrets Manager that answers `answers` in turn (then 200 `{}`) and keeps each request's body.
async fn scripted(answers: Vec<(u16, &'static str)>) -> (String, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    tokio::spawn(async move {
        let mut answers = answers.into_iter();
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body = loop {
                let n = conn.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        break Some(body.to_owned());
                    }
                }
            };
            let Some(body) = body else { continue };
            seen.lock().unwrap().push(body);
            let (status, answer) = answers.next().unwrap_or((200, "{}"));
            let response = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
            let _ = conn.write_all(response.as_bytes()).await;
        }
    });
    (url, bodies)
}

fn token_of(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["ClientRequestToken"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_retried_write_sends_its_token_again_and_the_next_write_a_new_one() {
    let (url, bodies) = scripted(vec![
        (500, r#"{"__type":"InternalServiceError"}"#),
        (200, "{}"),
        (200, "{}"),
        (200, "{}"),
        (200, "{}"),
    ])
    .await;
    let t = target(&url);
    let creds = keys();
    let desired = fixtures::desired();
    let req = Request {
        rate_limit: None,
        target: &t,
        remote_name: "app",
        credentials: &creds,
        desired: &desired,
        last: None,
        store: None,
    };
    let value = SecretValue::from("v1");
    let d = dialect();
    let written = d
        .apply(
            &req,
            &crate::plan::Write::NewVersion,
            &Observed::Absent,
            &value,
        )
        .await
        .expect("written after one retry");
    let bodies_now = bodies.lock().unwrap().clone();
    // PutSecretValue twice (the 500, then its retry), then TagResource.
    assert_eq!(bodies_now.len(), 3, "{bodies_now:?}");
    let first = token_of(&bodies_now[0]);
    assert_eq!(first.len(), 36);
    assert_eq!(
        token_of(&bodies_now[1]),
        first,
        "the retry made another version"
    );
    let Outcome::Ready(reference) = written else {
        panic!()
    };
    assert_eq!(reference.version.as_deref(), Some(first.as_str()));
    d.apply(
        &req,
        &crate::plan::Write::NewVersion,
        &Observed::Absent,
        &value,
    )
    .await
    .expect("written");
    let again = token_of(&bodies.lock().unwrap()[3]);
    assert!(
        !again.is_empty() && again != first,
        "a new write reused a token"
    );
}

#[test]
fn the_store_decides_where_and_as_whom_and_the_secretsync_its_secret() {
    use crate::controller::stores::resolve::{Namespace, StoreObject, resolve};
    let store: crate::api::StoreSpec = serde_json::from_value(serde_json::json!({
        "dialect": "AWSSecretsManager",
        "credentialsRef": {"name": "aws"},
        "awsSecretsManager": {
            "region": "eu-west-1",
            "roleArn": "arn:aws:iam::123456789012:role/writer",
            "stsEndpoint": "https://sts.eu-west-1.amazonaws.com",
        },
    }))
    .expect("store");
    let target = fixtures::target(serde_json::json!({
        "storeRef": {"kind": "Store", "name": "aws"},
        "awsSecretsManager": {"kmsKeyId": "alias/team", "recoveryWindowDays": 7},
    }));
    let ns = Namespace {
        name: "team-a",
        labels: None,
    };
    let conn =
        resolve(&target, &ns, Some(StoreObject::Namespaced(&store)), false).expect("resolves");
    let s = conn.target.aws_secrets_manager.expect("settings");
    assert_eq!(s.region.as_deref(), Some("eu-west-1"));
    assert_eq!(
        s.role_arn.as_deref(),
        Some("arn:aws:iam::123456789012:role/writer")
    );
    assert_eq!(s.kms_key_id.as_deref(), Some("alias/team"));
    assert_eq!(s.recovery_window_days, Some(7));
    let dests = dialect().destinations(
        &fixtures::target(serde_json::json!({
            "dialect": "AWSSecretsManager",
            "awsSecretsManager": *s,
        })),
        &keys(),
    );
    assert_eq!(
        dests,
        [
            "https://secretsmanager.eu-west-1.amazonaws.com",
            "https://sts.eu-west-1.amazonaws.com"
        ]
    );
}
