//! kubectl and the test bed's stores, for the tests that drive the controller as a user does (`e2e`,
//! `leadership`). Included with `#[path]` by those tests only, so no other test binary carries unused helpers.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::support::env;

pub const SYSTEM_NS: &str = "secretsync-system";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs kubectl with the admin kubeconfig; panics with its output when it fails.
pub fn kubectl(args: &[&str], stdin: Option<&str>) -> String {
    match kubectl_try(args, stdin) {
        Ok(s) => s,
        Err(e) => panic!("kubectl {}: {e}", args.join(" ")),
    }
}

pub fn kubectl_try(args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    run("kubectl", args, stdin)
}

/// Runs a program in the repository root with `stdin` as its input: its standard output, or on failure both
/// outputs.
pub fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    {
        let mut pipe = child.stdin.take().unwrap();
        if let Some(input) = stdin {
            pipe.write_all(input.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// kubectl with `-o json`, parsed.
pub fn kubectl_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&kubectl(&all, None)).unwrap()
}

/// Polls `check` until it holds; panics after `limit`. Returns how long it took.
pub fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The admin kubeconfig's cluster entry (server and CA).
pub fn cluster() -> Value {
    let admin = kubectl_json(&["config", "view", "--raw", "--minify"]);
    admin["clusters"][0]["cluster"].clone()
}

/// A kubeconfig at `path` for the deploy/ ServiceAccount, with a token from the TokenRequest API, reaching the API
/// server at `server` (the admin kubeconfig's when `None`).
pub fn service_account_kubeconfig(path: &Path, server: Option<&str>) -> PathBuf {
    let token = kubectl(
        &[
            "-n",
            SYSTEM_NS,
            "create",
            "token",
            "secretsync",
            "--duration",
            "1h",
        ],
        None,
    );
    let mut cluster = cluster();
    if let Some(server) = server {
        cluster["server"] = json!(server);
    }
    let config = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "secretsync", "user": {"token": token.trim()}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "secretsync"}}],
        "current-context": "c",
    });
    std::fs::write(path, serde_json::to_string(&config).unwrap()).unwrap();
    path.to_owned()
}

/// `status/reason` of an object's Ready condition.
pub fn ready_reason(obj: &Value) -> String {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .map(|c| {
            format!(
                "{}/{}",
                c["status"].as_str().unwrap_or(""),
                c["reason"].as_str().unwrap_or("")
            )
        })
        .unwrap_or_default()
}

/// Writes the Service Fabric emulator has seen for one remote secret.
pub fn sf_writes(remote: &str) -> u64 {
    let url = format!("{}/_emulator/stats/{remote}", env("SF_ENDPOINT"));
    let out = Command::new("curl").args(["-sf", &url]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v["writes"].as_u64().unwrap_or(0)
}

/// `crds/` applied server-side and Established, and the controller's namespace, as the README installs them.
pub fn install_crds_and_namespace() {
    kubectl(
        &["apply", "--server-side", "--force-conflicts", "-f", "crds/"],
        None,
    );
    kubectl(
        &[
            "wait",
            "--for=condition=Established",
            "crd/secretsyncs.secretsync.io",
            "crd/stores.secretsync.io",
            "crd/clusterstores.secretsync.io",
            "--timeout=60s",
        ],
        None,
    );
    kubectl(
        &["apply", "--server-side", "-f", "deploy/base/namespace.yaml"],
        None,
    );
}

/// deploy/'s admission policy binding covers the whole cluster: a test that installs deploy/ holds one of these,
/// which takes the binding away when the test ends, so that tests run after it may still use inline targets.
pub struct AdmissionBinding;

impl Drop for AdmissionBinding {
    fn drop(&mut self) {
        let _ = kubectl_try(
            &[
                "delete",
                "validatingadmissionpolicybinding",
                "secretsync-stores-only",
                "--ignore-not-found",
            ],
            None,
        );
    }
}
