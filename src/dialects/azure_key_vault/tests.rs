use super::wire::{Bundle, body};
use super::*;
use crate::dialects::ErrorClass;
use crate::dialects::fixtures::{creds, desired, target};
use crate::dialects::kit::tls::TlsSettings;

/// What the vault is trusted by: `ca.crt` next to the public roots.
fn vault_tls(creds: &Credentials) -> Result<TlsSettings<'_>, DialectError> {
    tls::store_ca(
        creds,
        &url::Url::parse("https://kv.vault.azure.net").unwrap(),
    )
}

fn dialect() -> AzureKeyVault {
    AzureKeyVault::new(Shared::new(10, 10, crate::metrics::Metrics::new()))
}

fn secret_creds() -> Credentials {
    creds(&[("tenantId", "t"), ("clientId", "c"), ("clientSecret", "s")])
}

fn check_with(
    target: &Target,
    credentials: &Credentials,
    name: &str,
    value: &SecretValue,
) -> Result<(), DialectError> {
    crate::dialects::fixtures::check(&dialect(), target, credentials, name, value)
}

#[test]
fn names_follow_the_set_secret_pattern() {
    assert!(valid_name("db-password-1"));
    assert!(valid_name(&"a".repeat(127)));
    assert!(!valid_name(&"a".repeat(128)));
    assert!(!valid_name(""));
    assert!(!valid_name("db_password"));
    assert!(!valid_name("db.password"));
    assert!(!valid_name("a/b"));
    assert!(!valid_name("ümlaut"));
}

#[test]
fn check_refuses_what_cannot_work_before_any_call() {
    let t = target(
        serde_json::json!({"dialect": "AzureKeyVault", "endpoint": "https://v.vault.azure.net"}),
    );
    let c = secret_creds();
    let v = SecretValue::from("v");
    assert!(check_with(&t, &c, "ok-name", &v).is_ok());
    let reason = |r: Result<(), DialectError>| r.expect_err("refused").reason;
    assert_eq!(reason(check_with(&t, &c, "bad_name", &v)), "InvalidName");
    let big = SecretValue::new(vec![b'x'; MAX_VALUE_BYTES + 1]);
    assert_eq!(reason(check_with(&t, &c, "n", &big)), "PayloadTooLarge");
    let exact = SecretValue::new(vec![b'x'; MAX_VALUE_BYTES]);
    assert!(check_with(&t, &c, "n", &exact).is_ok());
    let binary = SecretValue::new(vec![0xff, 0xfe]);
    assert_eq!(reason(check_with(&t, &c, "n", &binary)), "ValueNotText");

    let http = target(
        serde_json::json!({"dialect": "AzureKeyVault", "endpoint": "http://v.vault.azure.net"}),
    );
    assert_eq!(reason(check_with(&http, &c, "n", &v)), "InvalidSpec");
    let path = target(
        serde_json::json!({"dialect": "AzureKeyVault", "endpoint": "https://v.vault.azure.net/secrets"}),
    );
    assert_eq!(reason(check_with(&path, &c, "n", &v)), "InvalidSpec");
    let none = target(serde_json::json!({"dialect": "AzureKeyVault"}));
    assert_eq!(reason(check_with(&none, &c, "n", &v)), "InvalidSpec");

    let described = target(serde_json::json!({
        "dialect": "AzureKeyVault", "endpoint": "https://v.vault.azure.net", "description": "d"
    }));
    assert_eq!(
        reason(check_with(&described, &c, "n", &v)),
        "DescriptionUnsupported"
    );
    let labels: serde_json::Map<String, serde_json::Value> = (0..13)
        .map(|i| (format!("k{i}"), serde_json::json!("v")))
        .collect();
    let many = target(serde_json::json!({
        "dialect": "AzureKeyVault", "endpoint": "https://v.vault.azure.net", "labels": labels
    }));
    assert_eq!(reason(check_with(&many, &c, "n", &v)), "TooManyLabels");
    let long_value = target(serde_json::json!({
        "dialect": "AzureKeyVault", "endpoint": "https://v.vault.azure.net", "labels": {"k": "v".repeat(257)}
    }));
    assert_eq!(
        reason(check_with(&long_value, &c, "n", &v)),
        "InvalidLabels"
    );

    let bad_version = target(serde_json::json!({
        "dialect": "AzureKeyVault", "endpoint": "https://v.vault.azure.net",
        "azureKeyVault": {"apiVersion": "7.5&x=1"}
    }));
    assert_eq!(reason(check_with(&bad_version, &c, "n", &v)), "InvalidSpec");
    let e = check_with(&t, &creds(&[]), "n", &v).expect_err("no credentials");
    assert_eq!(e.class, ErrorClass::Credentials);
}

#[test]
fn capabilities_say_metadata_changes_in_place() {
    let t = target(serde_json::json!({"dialect": "AzureKeyVault"}));
    let caps = dialect().capabilities(&t);
    assert_eq!(caps.content_type, Support::Mutable);
    assert_eq!(caps.labels, Support::Mutable);
    assert_eq!(caps.description, Support::Unsupported);
}

#[test]
fn set_body_has_the_rest_shape_and_tags_carry_no_value() {
    let want = desired();
    let mut d = want.clone();
    d.metadata.labels.insert("team".into(), "a".into());
    d.metadata.content_type = Some("text/plain".into());
    let set = body(Some("s3cr3t"), &d);
    let parsed: serde_json::Value = serde_json::from_slice(&set).unwrap();
    assert_eq!(
        parsed,
        serde_json::json!({
            "value": "s3cr3t",
            "contentType": "text/plain",
            "tags": {
                "team": "a",
                "secretsync-owner": "ns/app",
                "secretsync-owner-uid": "u-1",
                "secretsync-digest": want.digest,
            },
            "attributes": {"enabled": true},
        })
    );
    d.metadata.content_type = None;
    let patch: serde_json::Value = serde_json::from_slice(&body(None, &d)).unwrap();
    assert!(patch.get("value").is_none());
    assert!(patch.get("contentType").is_none());
    assert_eq!(patch["attributes"]["enabled"], true);
}

#[test]
fn bundles_give_version_owner_and_never_keep_the_value() {
    let raw = br#"{"value":"s3cr3t","id":"https://v.vault.azure.net/secrets/n/03bcccc7c8cf4546a0e3e21e52560441",
        "contentType":"text/plain","attributes":{"enabled":true,"created":1,"updated":2,"recoveryLevel":"Recoverable+Purgeable"},
        "tags":{"secretsync-owner":"ns/app","secretsync-owner-uid":"u-1","secretsync-digest":"hmac-sha256:00"}}"#;
    let b: Bundle = serde_json::from_slice(raw).unwrap();
    assert_eq!(
        b.version().as_deref(),
        Some("03bcccc7c8cf4546a0e3e21e52560441")
    );
    assert!(b.owned_by(&desired().owner));
    assert!(!format!("{b:?}").contains("s3cr3t"));
    let item: Bundle =
        serde_json::from_str(r#"{"id":"https://v.vault.azure.net/secrets/n"}"#).unwrap();
    assert_eq!(item.version(), None);
    assert_eq!(item.owner(), None);
    let other: Bundle = serde_json::from_str(
        r#"{"id":"https://v/secrets/n/abc","tags":{"secretsync-owner":"x/y","secretsync-owner-uid":"u-9"}}"#,
    )
    .unwrap();
    assert!(!other.owned_by(&desired().owner));
}

#[test]
fn key_vault_errors_map_by_code_then_status() {
    let body = |code: &str, inner: Option<&str>| {
        let mut e = serde_json::json!({"error": {"code": code, "message": "m"}});
        if let Some(i) = inner {
            e["error"]["innererror"] = serde_json::json!({"code": i});
        }
        serde_json::to_vec(&e).unwrap()
    };
    let e = map_error(
        409,
        &body("Conflict", Some("ObjectIsDeletedButRecoverable")),
        None,
    );
    assert_eq!((e.class, e.reason), (ErrorClass::Conflict, "SoftDeleted"));
    let e = map_error(409, &body("Conflict", Some("ObjectIsBeingDeleted")), None);
    assert_eq!((e.class, e.reason), (ErrorClass::Retry, "BackendDeleting"));
    assert!(e.retry_after.is_some());
    let e = map_error(409, &body("Conflict", None), None);
    assert_eq!(e.class, ErrorClass::Conflict);
    let e = map_error(403, &body("Forbidden", Some("SecretDisabled")), None);
    assert_eq!(e.reason, "SecretDisabled");
    let e = map_error(403, &body("Forbidden", Some("AccessDenied")), None);
    assert_eq!((e.class, e.reason), (ErrorClass::Credentials, "Forbidden"));
    assert!(e.message.contains("Secrets Officer"));
    let e = map_error(401, &body("Unauthorized", None), None);
    assert_eq!(
        (e.class, e.reason),
        (ErrorClass::Credentials, "Unauthorized")
    );
    let e = map_error(400, &body("BadParameter", None), None);
    assert_eq!(e.class, ErrorClass::Permanent);
    let e = map_error(429, b"", Some(Duration::from_secs(9)));
    assert_eq!(
        (e.class, e.retry_after),
        (ErrorClass::Retry, Some(Duration::from_secs(9)))
    );
    assert_eq!(map_error(503, b"<html>", None).class, ErrorClass::Retry);
    assert_eq!(map_error(404, b"", None).class, ErrorClass::Permanent);
    let long = "x".repeat(1000);
    assert!(map_error(400, long.as_bytes(), None).to_string().len() < 400);
    let e = map_error(409, &body("Conflict", Some("ObjectIsBeingDeleted")), None);
    assert_eq!(
        e.message,
        "Key Vault answered HTTP 409: Conflict (ObjectIsBeingDeleted)"
    );
}

/// A canary in every field of Key Vault's and Entra ID's error shapes, in a 200 of the wrong shape and in the
/// challenge header: shown nowhere (the HTTP dialects without HTTPS are checked end to end in hostile_stores).
#[test]
fn no_answer_is_shown_back() {
    const C: &str = "CANARY-4f1c";
    let shapes = serde_json::to_vec(&serde_json::json!({
        "error": {"code": C, "message": C, "innererror": {"code": C, "innererror": {"code": C}}},
        "error_description": C, "message": C,
    }))
    .unwrap();
    for status in [400, 401, 403, 404, 409, 429, 500, 503] {
        let e = map_error(status, &shapes, None);
        assert!(!format!("{e} {e:?}").contains(C), "{e:?}");
        let e = wire::token_error(status, &shapes, None);
        assert!(!format!("{e} {e:?}").contains(C), "{e:?}");
    }
    // A known code with the canary as its message: the code only.
    let known = serde_json::to_vec(&serde_json::json!({
        "error": {"code": "Forbidden", "message": C, "innererror": {"code": "ForbiddenByPolicy", "message": C}},
    }))
    .unwrap();
    let e = map_error(403, &known, None);
    assert!(
        e.message
            .starts_with("Key Vault answered HTTP 403: Forbidden (ForbiddenByPolicy)")
            && !e.message.contains(C),
        "{e:?}"
    );
}

/// What the dialect trusts for the token endpoint of a store of `kind` (see [`tls::sign_in`]).
fn sign_in_tls<'a>(
    d: &'a AzureKeyVault,
    creds: &'a Credentials,
    kind: crate::api::StoreKind,
) -> TlsSettings<'a> {
    let store = crate::dialects::kit::store_id::StoreId::new(kind, "kv", "team-a");
    tls::sign_in(
        d.transport.shared(),
        Some(&store),
        vault_tls(creds).unwrap(),
    )
}

#[test]
fn a_namespaced_stores_ca_vouches_for_its_vault_and_never_for_its_authority_host() {
    use crate::api::StoreKind;
    let creds = creds(&[
        ("tenantId", "t"),
        ("clientId", "c"),
        ("clientSecret", "s"),
        ("ca.crt", "TENANT-CA"),
    ]);
    let plain = dialect();
    let operator = AzureKeyVault::new(
        Shared::new(10, 10, crate::metrics::Metrics::new())
            .with_identity_provider_ca("OPERATOR-CA"),
    );
    for d in [&plain, &operator] {
        assert_eq!(vault_tls(&creds).unwrap().ca, Some("TENANT-CA"));
        let sign_in = sign_in_tls(d, &creds, StoreKind::Store);
        assert_ne!(
            sign_in.ca,
            Some("TENANT-CA"),
            "the Store's CA vouched for its authority host"
        );
        assert!(sign_in.public_roots && sign_in.identity.is_none());
        let cluster = sign_in_tls(d, &creds, StoreKind::ClusterStore);
        assert_eq!(cluster.ca, Some("TENANT-CA"));
    }
    assert_eq!(sign_in_tls(&plain, &creds, StoreKind::Store).ca, None);
    assert_eq!(
        sign_in_tls(&operator, &creds, StoreKind::Store).ca,
        Some("OPERATOR-CA")
    );
}
