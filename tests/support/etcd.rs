//! Writing a stored object straight into the test bed's etcd, past the API server's validation: what an object
//! stored before the schema tightened looks like to the controller.

use base64::Engine as _;
use serde_json::{Value, json};

/// Rewrites the object stored under the etcd `key` (`/registry/<group>/<resource>/[<namespace>/]<name>`) with
/// `change`, and bumps its generation as the API server does on a spec change.
pub async fn rewrite_in_etcd(key: &str, change: impl FnOnce(&mut Value)) {
    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
    let etcd = super::env("TESTBED_ETCD");
    let http = reqwest::Client::new();
    let range: Value = http
        .post(format!("{etcd}/v3/kv/range"))
        .json(&json!({"key": b64(key.as_bytes())}))
        .send()
        .await
        .expect("etcd answers")
        .json()
        .await
        .unwrap();
    let stored = base64::engine::general_purpose::STANDARD
        .decode(range["kvs"][0]["value"].as_str().expect("stored in etcd"))
        .unwrap();
    let mut obj: Value = serde_json::from_slice(&stored).expect("CRs are stored as JSON");
    change(&mut obj);
    // The API server bumps the generation on a spec change; a write behind its back must do it itself.
    obj["metadata"]["generation"] = json!(obj["metadata"]["generation"].as_i64().unwrap() + 1);
    let put = http
        .post(format!("{etcd}/v3/kv/put"))
        .json(&json!({"key": b64(key.as_bytes()),
                      "value": b64(&serde_json::to_vec(&obj).unwrap())}))
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "etcd put: {}", put.status());
}
