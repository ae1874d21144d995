//! Running `secretsync convert` on the ESO fixtures and reading what it writes, for tests/convert.rs and
//! tests/convert_apply.rs. Included with `#[path]` by those tests only.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde::Deserialize;
use serde_json::Value;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The input directory of a fixture, relative to the repository root (the tests' working directory).
pub fn fixture(case: &str) -> String {
    format!("tests/fixtures/eso/{case}/eso")
}

/// `secretsync convert <args>` in the repository root, with `stdin` as its input.
pub fn convert(args: &[&str], stdin: Option<&str>) -> Output {
    run(
        Command::new(env!("CARGO_BIN_EXE_secretsync"))
            .arg("convert")
            .args(args),
        stdin,
    )
}

pub fn run(command: &mut Command, stdin: Option<&str>) -> Output {
    use std::io::Write as _;
    let mut child = command
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let mut pipe = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        pipe.write_all(text.as_bytes()).expect("stdin written");
    }
    drop(pipe);
    child.wait_with_output().expect("the command ends")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

/// The objects of a multi-document YAML text (comment-only documents left out).
pub fn objects(yaml: &str) -> Vec<Value> {
    yaml_serde::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).expect("valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

/// Whether every field of `written` is in `read` with the same value (`read` may add defaults).
pub fn contained(written: &Value, read: &Value) -> bool {
    match (written, read) {
        (Value::Object(w), Value::Object(r)) => w
            .iter()
            .all(|(k, v)| r.get(k).is_some_and(|rv| contained(v, rv))),
        _ => written == read,
    }
}
