//! One signed call to the test bed's AWS Secrets Manager (moto), made as a client of the real service makes it
//! (SigV4 with the test bed's IAM user): the outside view of what SecretSync wrote.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::SystemTime;

use secretsync::dialects::aws_secrets_manager::{AwsKeys, SigV4};
use serde_json::Value;
use zeroize::Zeroizing;

fn var(v: &str) -> String {
    std::env::var(v).unwrap_or_else(|_| panic!("{v} is not set: source .testbed/env"))
}

/// `action` with `body`: the HTTP status and the answer (`null` when it is not JSON).
pub async fn call(action: &str, body: Value) -> (u16, Value) {
    let signer = SigV4 {
        keys: Arc::new(AwsKeys {
            access_key_id: Zeroizing::new(var("AWSSM_ACCESS_KEY_ID")),
            secret_access_key: Zeroizing::new(var("AWSSM_SECRET_ACCESS_KEY")),
            session_token: None,
        }),
        region: var("AWSSM_REGION"),
        service: "secretsmanager",
    };
    let url = format!("{}/", var("AWSSM_ENDPOINT"));
    let target = format!("secretsmanager.{action}");
    let body = body.to_string();
    let headers = [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", target.as_str()),
    ];
    let signed = signer
        .headers("POST", &url, &headers, body.as_bytes(), SystemTime::now())
        .expect("signs");
    let ca = std::fs::read(var("AWSSM_CA_CERT")).expect("moto's CA");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA PEM"))
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let mut req = client.post(&url).body(body);
    let signed = signed.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    for (k, v) in headers.iter().copied().chain(signed) {
        req = req.header(k, v);
    }
    let resp = req.send().await.expect("moto reachable");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}
