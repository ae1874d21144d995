//! The test bed's Vault seen through the `vault` CLI of the same build (`$VAULT_BIN`, the vendor's own client):
//! what the Vault dialect stored, read back from outside, and a second writer for the check-and-set test. Paths are
//! under the KV v2 mount `secret/`; the CLI runs with the root token unless a function takes one.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn var(v: &str) -> String {
    std::env::var(v).unwrap_or_else(|_| {
        panic!(
            "{v} is not set: run `make testbed` first, then `set -a; source .testbed/env; set +a`"
        )
    })
}

/// Runs `vault ARGS` as `token` with `stdin` as its input.
pub fn vault_as(token: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(var("VAULT_BIN"))
        .args(args)
        .env("VAULT_ADDR", var("VAULT_ENDPOINT"))
        .env("VAULT_CACERT", var("VAULT_CA_CERT"))
        .env("VAULT_TOKEN", token)
        // A namespace or another server from the caller's shell must not redirect the read-back.
        .env_remove("VAULT_NAMESPACE")
        .env_remove("VAULT_CLIENT_CERT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("$VAULT_BIN runs");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(input.as_bytes()).expect("vault reads stdin");
    }
    child.wait_with_output().expect("vault finishes")
}

/// `vault ARGS` as root: its JSON answer, `None` when the CLI says the path has nothing (exit code 2), and a panic
/// with the CLI's output on any other failure.
fn json(args: &[&str], stdin: Option<&str>) -> Option<Value> {
    let out = vault_as(&var("VAULT_ROOT_TOKEN"), args, stdin);
    match out.status.code() {
        Some(0) => Some(serde_json::from_slice(&out.stdout).expect("vault prints JSON")),
        Some(2) => None,
        _ => panic!(
            "vault {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// `vault kv get`: the current version's `{"data": {...}, "metadata": {...}}`, or `None` when the path has no
/// readable current version (never written, deleted or destroyed).
pub fn kv_get(path: &str) -> Option<Value> {
    json(&["kv", "get", "-format=json", "-mount=secret", path], None).map(|v| v["data"].clone())
}

/// `vault kv get -version=N`: that version's `{"data", "metadata"}`, as `kv_get`.
pub fn kv_get_version(path: &str, version: u64) -> Option<Value> {
    let v = format!("-version={version}");
    json(
        &["kv", "get", "-format=json", "-mount=secret", &v, path],
        None,
    )
    .map(|v| v["data"].clone())
}

/// `vault kv metadata get`: `current_version`, `max_versions`, `custom_metadata`, `versions`, ..., or `None`
/// when the path has no metadata.
pub fn kv_metadata(path: &str) -> Option<Value> {
    json(
        &[
            "kv",
            "metadata",
            "get",
            "-format=json",
            "-mount=secret",
            path,
        ],
        None,
    )
    .map(|v| v["data"].clone())
}

/// `vault kv put` of the map `data` (given on stdin, so values never reach a command line): the new version's
/// metadata (`version`, `created_time`, ...).
pub fn kv_put(path: &str, data: &Value) -> Value {
    json(
        &["kv", "put", "-format=json", "-mount=secret", path, "-"],
        Some(&data.to_string()),
    )
    .map(|v| v["data"].clone())
    .expect("vault kv put answers")
}

/// `vault kv metadata delete`: the path's metadata and every version, gone (nothing to do when there is none).
pub fn kv_metadata_delete(path: &str) {
    let out = vault_as(
        &var("VAULT_ROOT_TOKEN"),
        &["kv", "metadata", "delete", "-mount=secret", path],
        None,
    );
    assert!(
        out.status.success(),
        "vault kv metadata delete {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
