use super::*;
use crate::metrics::Metrics;
use crate::plan::WritePolicy;
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

fn desired() -> Desired {
    Desired {
        digest: format!("hmac-sha256:{}", "ab".repeat(32)),
        metadata: Metadata::default(),
        owner: Owner {
            namespace: "ns".into(),
            name: "app".into(),
            uid: "0b5c3c3e-1111-2222-3333-444455556666".into(),
        },
        policy: WritePolicy::Replace,
        adopt_existing: false,
        allow_replace: false,
    }
}

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
    let req = Request {
        rate_limit: None,
        target,
        remote_name: name,
        credentials: &credentials,
        desired,
        last: None,
    };
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
        assert!(full.lines().last().is_some_and(|l| l.starts_with(MARKER)));
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
    let tampered = format!("x\n{MARKER}{{not json");
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
        let e = map_code("PutSecretValue", code, "the message", "req-1");
        assert_eq!((e.class, e.reason), (class, reason), "{code}");
        let shown = e.to_string();
        assert!(shown.contains(code) && shown.contains("the message") && shown.contains("req-1"));
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
    let req = Request {
        rate_limit: None,
        target: &t,
        remote_name: "app",
        credentials: &credentials,
        desired: &d,
        last: None,
    };
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
    let req = Request {
        rate_limit: None,
        target: &t,
        remote_name: "app",
        credentials: &credentials,
        desired: &d,
        last: None,
    };
    let ctx = context(&req).unwrap();
    assert_eq!(ctx.host, "127.0.0.1:8080");
    assert_eq!(ctx.endpoint, "http://127.0.0.1:8080/");
    let t =
        target(serde_json::json!({"endpoint": "https://ssm.ap-guangzhou.tencentcloudapi.com:443"}));
    let req = Request { target: &t, ..req };
    assert_eq!(
        context(&req).unwrap().host,
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
    let req = Request {
        rate_limit: None,
        target: &t,
        remote_name: "app",
        credentials: &credentials,
        desired: &d,
        last: None,
    };
    assert_eq!(context(&req).unwrap().token, None);
}
