use super::*;
use crate::dialects::ErrorClass;
use crate::metrics::Metrics;
use crate::value::Credentials;

fn target(extra: serde_json::Value) -> Target {
    let mut t = serde_json::json!({
        "dialect": "TencentSSM",
        "endpoint": "http://127.0.0.1:9",
        "tencentSSM": {"region": "ap-guangzhou"},
    });
    if let (Some(t), Some(extra)) = (t.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            t.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(t).expect("a valid target")
}

fn creds() -> Credentials {
    Credentials::new(
        [
            ("secretId".to_string(), SecretValue::from("AKIDexample")),
            ("secretKey".to_string(), SecretValue::from("key")),
        ]
        .into(),
    )
}

/// The shared SecretSync, with a uid shaped like Kubernetes' (the marker tests read it back).
fn desired() -> Desired {
    let mut d = crate::dialects::fixtures::desired();
    d.owner.uid = "0b5c3c3e-1111-2222-3333-444455556666".into();
    d
}

use crate::dialects::fixtures::request;

fn dialect() -> TencentSsm {
    TencentSsm::new(Shared::new(10, 10, Metrics::new()))
}

fn check(
    target: &Target,
    name: &str,
    desired: &Desired,
    value: &SecretValue,
) -> Result<(), DialectError> {
    let credentials = creds();
    let req = request(target, name, &credentials, desired);
    dialect().check(&req, value)
}

#[test]
fn names_and_versions_follow_the_documented_rules() {
    assert!(valid_secret_name("a"));
    assert!(valid_secret_name("db-password_2"));
    assert!(valid_secret_name(&"a".repeat(128)));
    assert!(!valid_secret_name(&"a".repeat(129)));
    assert!(!valid_secret_name(""));
    assert!(!valid_secret_name("-a"));
    assert!(!valid_secret_name("_a"));
    assert!(!valid_secret_name("a.b"));
    assert!(!valid_secret_name("a/b"));
    assert!(valid_version_id("v1.0"));
    assert!(valid_version_id("SSM_Current"));
    assert!(valid_version_id(&"v".repeat(64)));
    assert!(!valid_version_id(&"v".repeat(65)));
    assert!(!valid_version_id(".v"));
    assert!(!valid_version_id("v 1"));
}

#[test]
fn marker_round_trips_behind_the_user_description() {
    let d = desired();
    let marker = Marker::new(&d, "ss-3-abababababab");
    for user in [None, Some("plain"), Some("two\nlines")] {
        let full = compose_description(user, &marker);
        assert!(
            full.lines()
                .last()
                .is_some_and(|l| l.starts_with("#secretsync.io "))
        );
        let (back, parsed) = split_description(&full);
        assert_eq!(back.as_deref(), user);
        assert_eq!(parsed.as_ref(), Some(&marker));
    }
    assert!(
        compose_description(None, &marker).contains(r#""secretsync.io/owner":"ns/app""#),
        "documented key spelling"
    );
}

#[test]
fn descriptions_without_a_valid_marker_are_the_users() {
    assert_eq!(split_description(""), (None, None));
    assert_eq!(
        split_description("hello\nworld"),
        (Some("hello\nworld".into()), None)
    );
    let tampered = "x\n#secretsync.io {not json".to_owned();
    assert_eq!(split_description(&tampered), (Some(tampered.clone()), None));
}

#[test]
fn history_versions_carry_a_counter_and_the_short_digest() {
    let d = desired();
    let v = history_version(7, &d.digest);
    assert_eq!(v, "ss-7-abababababab");
    assert!(valid_version_id(&v));
    assert_eq!(history_counter(&v), Some(7));
    assert_eq!(history_counter("SSM_Current"), None);
    assert_eq!(history_counter("ss-x-abababababab"), None);
    assert_eq!(history_counter("ss-1-abc"), None);
}

#[test]
fn documented_codes_map_to_classes() {
    let cases = [
        ("RequestLimitExceeded", ErrorClass::Retry, "Throttled"),
        ("InternalError", ErrorClass::Retry, "BackendError"),
        (
            "AuthFailure.SignatureFailure",
            ErrorClass::Credentials,
            "CredentialsRejected",
        ),
        (
            "AuthFailure.SignatureExpire",
            ErrorClass::Credentials,
            "CredentialsRejected",
        ),
        (
            "AuthFailure.SecretIdNotFound",
            ErrorClass::Credentials,
            "CredentialsRejected",
        ),
        (
            "AuthFailure.TokenFailure",
            ErrorClass::Credentials,
            "CredentialsRejected",
        ),
        (
            "UnauthorizedOperation",
            ErrorClass::Credentials,
            "Unauthorized",
        ),
        (
            "UnauthorizedOperation.AccessKmsError",
            ErrorClass::Credentials,
            "Unauthorized",
        ),
        (
            "ResourceInUse.SecretExists",
            ErrorClass::Conflict,
            "SecretExists",
        ),
        ("ResourceNotFound", ErrorClass::Retry, "RemoteGone"),
        (
            "ResourceUnavailable.ResourceDisabled",
            ErrorClass::Permanent,
            "SecretDisabled",
        ),
        ("LimitExceeded", ErrorClass::Permanent, "LimitExceeded"),
        (
            "InvalidParameterValue",
            ErrorClass::Permanent,
            "BackendRejected",
        ),
        (
            "FailedOperation.AccessKmsError",
            ErrorClass::Permanent,
            "BackendRejected",
        ),
    ];
    for (code, class, reason) in cases {
        let e = map_code(code, "5f0b4a1e-0000-4000-8000-00000000abcd");
        assert_eq!((e.class, e.reason), (class, reason), "{code}");
        assert_eq!(
            e.to_string(),
            format!("Tencent SSM answered {code} (RequestId 5f0b4a1e-0000-4000-8000-00000000abcd)")
        );
    }
}

#[test]
fn pacing_stays_under_the_limit() {
    assert_eq!(pace_for(50).get(), 45);
    assert_eq!(pace_for(100).get(), 90);
    assert_eq!(pace_for(1).get(), 1);
    assert_eq!(pace_for(0).get(), 1);
}

#[test]
fn text_goes_as_string_and_bytes_as_base64() {
    let text = SecretValue::from("s3cr3t");
    let p = Payload::of(&text);
    let body: serde_json::Value =
        serde_json::from_slice(&ValueBody::new("n", Some("v1"), &p).to_bytes()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"SecretName": "n", "VersionId": "v1", "SecretString": "s3cr3t"})
    );
    let binary = SecretValue::new(vec![0xff, 0x00, 0xfe]);
    let p = Payload::of(&binary);
    let body: serde_json::Value =
        serde_json::from_slice(&ValueBody::new("n", None, &p).to_bytes()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"SecretName": "n", "SecretBinary": "/wD+"})
    );
}

#[test]
fn check_accepts_a_plain_target() {
    check(
        &target(serde_json::json!({})),
        "app",
        &desired(),
        &SecretValue::from("v"),
    )
    .unwrap();
}

#[test]
fn check_refuses_what_ssm_cannot_take() {
    let t = target(serde_json::json!({}));
    let v = SecretValue::from("v");
    assert_eq!(
        check(&t, "a.b", &desired(), &v).unwrap_err().reason,
        "InvalidName"
    );

    let mut d = desired();
    d.metadata.labels.insert("team".into(), "a".into());
    assert_eq!(
        check(&t, "app", &d, &v).unwrap_err().reason,
        "LabelsUnsupported"
    );

    let mut d = desired();
    d.metadata.content_type = Some("text/plain".into());
    assert_eq!(
        check(&t, "app", &d, &v).unwrap_err().reason,
        "ContentTypeUnsupported"
    );

    let mut d = desired();
    d.metadata.description = Some("x".repeat(2000));
    assert_eq!(
        check(&t, "app", &d, &v).unwrap_err().reason,
        "DescriptionTooLong"
    );

    let big = SecretValue::from("x".repeat(MAX_VALUE + 1).as_str());
    let err = check(&t, "app", &desired(), &big).unwrap_err();
    assert_eq!(err.reason, "PayloadTooLarge");
    assert!(
        !err.to_string().contains("xxxx"),
        "the value is never shown"
    );
    // Binary values count as their base64 text: 3/4 of the limit in raw bytes already overflows.
    let bin = SecretValue::new(vec![0xff; MAX_VALUE * 3 / 4 + 3]);
    assert_eq!(
        check(&t, "app", &desired(), &bin).unwrap_err().reason,
        "PayloadTooLarge"
    );
}

#[test]
fn check_refuses_bad_settings_and_endpoints() {
    let v = SecretValue::from("v");
    let no_region = target(serde_json::json!({"tencentSSM": {}}));
    assert_eq!(
        check(&no_region, "app", &desired(), &v).unwrap_err().reason,
        "MissingSetting"
    );
    let bad_version = target(serde_json::json!({"tencentSSM": {"region": "r", "versionId": "-x"}}));
    assert_eq!(
        check(&bad_version, "app", &desired(), &v)
            .unwrap_err()
            .reason,
        "InvalidSetting"
    );
    let remote_http = target(serde_json::json!({"endpoint": "http://ssm.tencentcloudapi.com"}));
    assert_eq!(
        check(&remote_http, "app", &desired(), &v)
            .unwrap_err()
            .reason,
        "InsecureEndpoint"
    );
    let with_path = target(serde_json::json!({"endpoint": "https://ssm.tencentcloudapi.com/x"}));
    assert_eq!(
        check(&with_path, "app", &desired(), &v).unwrap_err().reason,
        "InvalidEndpoint"
    );
    let default = target(serde_json::json!({"endpoint": null}));
    check(&default, "app", &desired(), &v).unwrap();
}

#[test]
fn check_wants_both_keys() {
    let t = target(serde_json::json!({}));
    let credentials =
        Credentials::new([("secretId".to_string(), SecretValue::from("AKID"))].into());
    let d = desired();
    let req = request(&t, "app", &credentials, &d);
    let err = dialect().check(&req, &SecretValue::from("v")).unwrap_err();
    assert_eq!(
        (err.class, err.reason),
        (ErrorClass::Credentials, "MissingCredentials")
    );
}

#[test]
fn host_keeps_a_non_default_port() {
    let t = target(serde_json::json!({"endpoint": "http://127.0.0.1:8080"}));
    let credentials = creds();
    let d = desired();
    let req = request(&t, "app", &credentials, &d);
    let d = dialect();
    let ctx = d.context(&req).unwrap();
    assert_eq!(ctx.http.url("/"), "http://127.0.0.1:8080/");
    let host = |endpoint: &str| {
        let url = url::Url::parse(endpoint).unwrap();
        Tc3::new(&url, &credentials).unwrap().host
    };
    assert_eq!(host("http://127.0.0.1:8080"), "127.0.0.1:8080");
    assert_eq!(
        host("https://ssm.ap-guangzhou.tencentcloudapi.com:443"),
        "ssm.ap-guangzhou.tencentcloudapi.com"
    );
}

#[test]
fn an_empty_token_means_permanent_credentials() {
    let t = target(serde_json::json!({}));
    let credentials = Credentials::new(
        [
            ("secretId".to_string(), SecretValue::from("AKIDexample")),
            ("secretKey".to_string(), SecretValue::from("key")),
            ("token".to_string(), SecretValue::from("")),
        ]
        .into(),
    );
    let d = desired();
    let req = request(&t, "app", &credentials, &d);
    let url = url::Url::parse(DEFAULT_ENDPOINT).unwrap();
    assert!(dialect().context(&req).is_ok());
    assert_eq!(Tc3::new(&url, &credentials).unwrap().token, None);
}

use crate::dialects::fixtures::reply;

/// The error the decoder makes of an answer.
fn decoded_error(status: u16, body: &str) -> DialectError {
    match decode(&reply(status, body)) {
        Verdict::Error(e) => e,
        other => panic!("an error, not {other:?}"),
    }
}

fn error_body(code: &str) -> String {
    serde_json::json!({"Response": {"Error": {"Code": code, "Message": "m"}, "RequestId": "r"}})
        .to_string()
}

#[test]
fn the_decoder_reads_the_envelope() {
    assert!(matches!(
        decode(&reply(200, r#"{"Response": {"RequestId": "r"}}"#)),
        Verdict::Success
    ));
    for code in ["ResourceNotFound", "ResourceNotFound.NotExist"] {
        assert!(
            matches!(decode(&reply(200, &error_body(code))), Verdict::Absent),
            "{code}"
        );
    }
    let e = decoded_error(200, &error_body("RequestLimitExceeded"));
    assert_eq!((e.class, e.reason), (ErrorClass::Retry, "Throttled"));
    let e = decoded_error(200, &error_body("ResourceInUse.SecretExists"));
    assert_eq!((e.class, e.reason), (ErrorClass::Conflict, "SecretExists"));
    // Not an API 3.0 answer: worth another try.
    let e = decoded_error(200, "<html>");
    assert_eq!((e.class, e.reason), (ErrorClass::Retry, "BadResponse"));
    // Any other status comes from something in front of SSM: mapped by status, whatever the body says.
    let e = decoded_error(503, &error_body("ResourceNotFound"));
    assert_eq!((e.class, e.reason), (ErrorClass::Retry, "BackendError"));
    let e = decoded_error(403, "");
    assert_eq!(e.class, ErrorClass::Credentials);
}

#[test]
fn only_a_documented_code_and_a_uuid_request_id_are_shown() {
    for code in [
        "CANARY-1",
        "AuthFailure.CANARY-1",
        "Canary.Code",
        "AuthFailure..X",
        "AuthFailure.X y",
        "",
    ] {
        let e = map_code(code, "CANARY-2");
        assert_eq!(
            e.to_string(),
            "Tencent SSM answered an error code SecretSync does not know",
            "{code}"
        );
    }
    // The classification is the code's, shown or not.
    assert_eq!(
        map_code("AuthFailure.CANARY-1", "").reason,
        "CredentialsRejected"
    );
    let long = format!("InvalidParameter.{}", "x".repeat(5000));
    assert!(map_code(&long, "").message.len() < 100);
    let e = decoded_error(
        200,
        r#"{"Response": {"Error": {"Code": "InternalError.Busy", "Message": "CANARY-3"}, "RequestId": "CANARY-4"}}"#,
    );
    assert_eq!(e.to_string(), "Tencent SSM answered InternalError.Busy");
}

#[test]
fn only_creates_are_not_idempotent() {
    for read in [
        "GetSecretValue",
        "DescribeSecret",
        "ListSecretVersionIds",
        "ListSecrets",
    ] {
        assert_eq!(idempotency(read), Idempotency::Idempotent, "{read}");
    }
    for set in [
        "UpdateSecret",
        "UpdateDescription",
        "DisableSecret",
        "DeleteSecret",
        "DeleteSecretVersion",
    ] {
        assert_eq!(idempotency(set), Idempotency::Idempotent, "{set}");
    }
    for create in ["CreateSecret", "PutSecretValue", "SomethingNew"] {
        assert_eq!(idempotency(create), Idempotency::NotIdempotent, "{create}");
    }
}

#[test]
fn the_store_burst_is_honoured_when_set() {
    use crate::api::RateLimit;
    assert_eq!(burst_for(None).get(), 1);
    let rate = |burst| {
        Some(RateLimit {
            requests_per_second: 10,
            burst,
        })
    };
    assert_eq!(burst_for(rate(None)).get(), 1);
    assert_eq!(burst_for(rate(Some(0))).get(), 1);
    assert_eq!(burst_for(rate(Some(5))).get(), 5);
}

fn context_with(pairs: &[(&str, &[u8])]) -> Result<(), DialectError> {
    let t = target(serde_json::json!({}));
    let credentials = Credentials::new(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), SecretValue::new(v.to_vec())))
            .collect(),
    );
    let d = desired();
    let req = request(&t, "app", &credentials, &d);
    dialect().context(&req).map(|_| ())
}

#[test]
fn credentials_are_read_by_the_kit_rule_and_must_be_header_safe() {
    for blank in [&b""[..], b"  \n"] {
        let e = context_with(&[("secretId", blank), ("secretKey", b"k")]).unwrap_err();
        assert_eq!(
            (e.class, e.reason),
            (ErrorClass::Credentials, "MissingCredentials")
        );
        assert!(e.message.contains("secretId"), "{e}");
    }
    let e = context_with(&[("secretId", b"AKID"), ("secretKey", b"")]).unwrap_err();
    assert!(e.message.contains("secretKey"), "{e}");
    // A trailing newline (echo into a Secret) is not part of the key.
    context_with(&[("secretId", b"AKID\n"), ("secretKey", b"k\n")]).unwrap();
    for (key, value) in [
        ("secretKey", "k\u{e9}y-hunter2"),
        ("secretKey", "k ey-hunter2"),
        ("token", "t\u{7f}ok-hunter2"),
    ] {
        let mut pairs: Vec<(&str, &[u8])> = vec![("secretId", b"AKID"), ("secretKey", b"k")];
        pairs.retain(|(k, _)| *k != key);
        pairs.push((key, value.as_bytes()));
        let e = context_with(&pairs).unwrap_err();
        assert_eq!(
            (e.class, e.reason),
            (ErrorClass::Credentials, "InvalidCredentials"),
            "{key}"
        );
        assert!(
            e.message.contains(key) && !e.message.contains("hunter2"),
            "{e}"
        );
    }
}

/// The headers of a POST of `{}` once `auth` has signed it.
async fn signed_headers(auth: &Tc3<'_>) -> reqwest::header::HeaderMap {
    let method = Method::POST;
    let url = "http://127.0.0.1:8080/";
    let exchange = Exchange::new("DescribeSecret", &method, url).json(b"{}");
    auth.authorize(reqwest::Client::new().post(url), &exchange)
        .await
        .unwrap()
        .build()
        .unwrap()
        .headers()
        .clone()
}

#[tokio::test]
async fn each_attempt_is_signed_with_its_own_headers() {
    let auth = Tc3 {
        host: "127.0.0.1:8080".into(),
        secret_id: "AKIDexample",
        secret_key: "key",
        token: None,
    };
    let headers = signed_headers(&auth).await;
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
    let authorization = header("authorization").expect("signed");
    assert!(
        authorization.starts_with("TC3-HMAC-SHA256 Credential=AKIDexample/"),
        "{authorization}"
    );
    assert!(authorization.contains("SignedHeaders=content-type;host"));
    assert!(header("x-tc-timestamp").is_some());
    assert_eq!(header("x-tc-token"), None);
    let auth = Tc3 {
        token: Some("session"),
        ..auth
    };
    assert_eq!(
        signed_headers(&auth)
            .await
            .get("x-tc-token")
            .map(|v| v.to_str().unwrap()),
        Some("session")
    );
}

fn with_ca(endpoint: &str, ca: &str) -> Result<(), DialectError> {
    let t = target(serde_json::json!({ "endpoint": endpoint }));
    let credentials = Credentials::new(
        [
            ("secretId".to_string(), SecretValue::from("AKIDexample")),
            ("secretKey".to_string(), SecretValue::from("key")),
            ("ca.crt".to_string(), SecretValue::from(ca)),
        ]
        .into(),
    );
    let d = desired();
    let req = request(&t, "app", &credentials, &d);
    dialect().check(&req, &SecretValue::from("v"))
}

#[test]
fn a_ca_is_refused_with_plain_http_even_on_loopback() {
    let e = with_ca("http://127.0.0.1:9", "not-a-pem-hunter2").unwrap_err();
    assert_eq!(
        (e.class, e.reason),
        (ErrorClass::Permanent, "InsecureEndpoint")
    );
    assert!(
        e.message.contains("caBundle") && !e.message.contains("hunter2"),
        "{e}"
    );
}

#[test]
fn a_bad_ca_over_https_is_the_kits_credentials_error() {
    let e = with_ca("https://127.0.0.1:9", "not-a-pem-hunter2").unwrap_err();
    assert_eq!(
        (e.class, e.reason),
        (ErrorClass::Credentials, "InvalidCredentials")
    );
    assert!(
        e.message.contains("ca.crt") && !e.message.contains("hunter2"),
        "{e}"
    );
    // A blank key is no CA (the kit's one rule), so plain http:// to loopback still works.
    with_ca("http://127.0.0.1:9", " \n").unwrap();
}

/// The dialects the Store CRD lets set `caBundle`, read from the generated rule's `self.dialect in [...]` list.
fn dialects_allowed_a_ca_bundle() -> Vec<String> {
    let (_, crd) = crate::api::crds()
        .into_iter()
        .find(|(file, _)| *file == "secretsync.io_stores.yaml")
        .expect("the Store CRD");
    let schema = serde_json::to_value(crd).expect("CRD serializes");
    let rules = &schema["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-validations"];
    let rule = rules
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["rule"].as_str())
        .find(|r| r.starts_with("!has(self.caBundle)"))
        .expect("a caBundle rule");
    let list = rule
        .split_once("self.dialect in [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list)
        .expect("a dialect list");
    list.split(',')
        .map(|d| d.trim().trim_matches('\'').to_owned())
        .collect()
}

#[test]
fn the_store_crd_lets_tencent_ssm_set_a_ca_bundle() {
    let allowed = dialects_allowed_a_ca_bundle();
    assert!(allowed.iter().any(|d| d == DIALECT), "{allowed:?}");
    assert!(!allowed.iter().any(|d| d == "Barbican"), "{allowed:?}");
}

#[test]
fn the_next_history_counter_follows_the_highest_and_stops_at_the_last() {
    assert_eq!(next_history_counter(None), Some(1));
    assert_eq!(next_history_counter(Some(41)), Some(42));
    assert_eq!(
        next_history_counter(history_counter(&history_version(
            u64::MAX,
            "abcdef0123456789"
        ))),
        None
    );
}
