//! Reading a controller's `/metrics` as a Prometheus does: over HTTPS, with the token of a ServiceAccount bound to
//! deploy/'s ClusterRole `secretsync-metrics-reader`. Needs the crate's `cluster` module.
#![allow(dead_code)]

use std::process::Command;

use serde_json::Value;

use crate::cluster::{kubectl, root, run};

/// The ClusterRole of deploy/base/rbac.yaml that may `get` /metrics.
pub const READER_ROLE: &str = "secretsync-metrics-reader";

/// deploy/'s ClusterRole `secretsync-metrics-reader`, as JSON.
pub fn reader_role() -> Value {
    let text = std::fs::read_to_string(root().join("deploy/base/rbac.yaml"))
        .expect("deploy/base/rbac.yaml");
    yaml_serde::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("rbac.yaml parses"))
        .find(|doc: &Value| doc["kind"] == "ClusterRole" && doc["metadata"]["name"] == READER_ROLE)
        .expect("deploy/base/rbac.yaml has the ClusterRole secretsync-metrics-reader")
}

/// A ServiceAccount in an existing namespace, optionally bound to the reader role, with a token from the
/// TokenRequest API; the account and its binding are deleted when dropped.
pub struct MetricsClient {
    pub namespace: String,
    pub name: String,
    pub token: String,
    binding: Option<String>,
}

impl MetricsClient {
    /// `name` in `namespace`, bound to deploy/'s reader role (applied first, as deploy/ writes it) when `reader`.
    pub fn new(namespace: &str, name: &str, reader: bool) -> MetricsClient {
        // What a run killed before its cleanup left behind would make `create` fail.
        let binding_name = format!("{namespace}-{name}");
        let _ = run(
            "kubectl",
            &[
                "delete",
                "clusterrolebinding",
                &binding_name,
                "--ignore-not-found",
            ],
            None,
        );
        let _ = run(
            "kubectl",
            &[
                "-n",
                namespace,
                "delete",
                "serviceaccount",
                name,
                "--ignore-not-found",
            ],
            None,
        );
        kubectl(&["-n", namespace, "create", "serviceaccount", name], None);
        let binding = reader.then(|| {
            kubectl(
                &["apply", "--server-side", "--force-conflicts", "-f", "-"],
                Some(&reader_role().to_string()),
            );
            let binding = binding_name;
            kubectl(
                &[
                    "create",
                    "clusterrolebinding",
                    &binding,
                    "--clusterrole",
                    READER_ROLE,
                    "--serviceaccount",
                    &format!("{namespace}:{name}"),
                ],
                None,
            );
            binding
        });
        let token = kubectl(
            &["-n", namespace, "create", "token", name, "--duration=1h"],
            None,
        )
        .trim()
        .to_owned();
        MetricsClient {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            token,
            binding,
        }
    }
}

impl Drop for MetricsClient {
    fn drop(&mut self) {
        if let Some(binding) = &self.binding {
            let _ = run(
                "kubectl",
                &[
                    "delete",
                    "clusterrolebinding",
                    binding,
                    "--ignore-not-found",
                ],
                None,
            );
        }
        let _ = run(
            "kubectl",
            &[
                "-n",
                &self.namespace,
                "delete",
                "serviceaccount",
                &self.name,
                "--ignore-not-found",
                "--wait=false",
            ],
            None,
        );
    }
}

/// GET https://127.0.0.1:`port`/metrics with `token` (none: no Authorization header), not verifying the
/// controller's self-signed certificate: the HTTP status and the body.
pub fn scrape(port: u16, token: Option<&str>) -> (u16, String) {
    scrape_at("127.0.0.1", port, token)
}

/// [`scrape`] at `host` (a pod's IP, say).
pub fn scrape_at(host: &str, port: u16, token: Option<&str>) -> (u16, String) {
    let mut curl = Command::new("curl");
    curl.args(["-sk", "--max-time", "10", "-w", "\n%{http_code}"]);
    if let Some(token) = token {
        curl.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    let out = curl
        .arg(format!("https://{host}:{port}/metrics"))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}
