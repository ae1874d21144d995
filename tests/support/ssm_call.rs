//! One signed call to the test bed's Tencent SSM emulator, made the way a client of the real service makes it
//! (TC3-HMAC-SHA256 with its own key pair): the outside view of what SecretSync wrote.
#![allow(dead_code)]

use secretsync::dialects::tencent_ssm::sign;
use serde_json::Value;

/// `action` with `body` as the key pair `id`/`secret`; returns the `Response` object.
pub async fn call(id: &str, secret: &str, action: &str, body: Value) -> Value {
    let var = |v: &str| {
        std::env::var(v).unwrap_or_else(|_| panic!("{v} is not set: source .testbed/env"))
    };
    let endpoint = var("SSM_ENDPOINT");
    let host = endpoint.trim_start_matches("http://").to_owned();
    let payload = body.to_string();
    let timestamp = chrono::Utc::now().timestamp();
    let authorization = sign::Signable {
        method: "POST",
        query: "",
        content_type: "application/json",
        host: &host,
        payload: payload.as_bytes(),
        timestamp,
        service: "ssm",
    }
    .authorization(id, secret);
    let response: Value = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
        .post(&endpoint)
        .header("Content-Type", "application/json")
        .header("Authorization", authorization)
        .header("X-TC-Action", action)
        .header("X-TC-Version", "2019-09-23")
        .header("X-TC-Timestamp", timestamp.to_string())
        .header("X-TC-Region", var("SSM_REGION"))
        .body(payload)
        .send()
        .await
        .expect("emulator reachable")
        .json()
        .await
        .expect("a JSON answer");
    response["Response"].clone()
}
