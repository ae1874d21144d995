//! Helpers shared by the integration test crates (each crate compiles this module and uses part of it).
#![allow(dead_code)]

use std::sync::{Arc, Mutex, OnceLock};

pub mod admin;
pub mod crds;
mod env;
pub mod etcd;
pub mod status;
pub mod unique;
pub use env::env;

/// Asserts that the Key Vault stand-in's app registration `client_id` was presented at least one client
/// assertion, and only `subject`'s: `seen` is the stand-in's `/subjects` answer.
pub fn assert_presented_only(seen: &serde_json::Value, client_id: &str, subject: &str) {
    let seen: Vec<&str> = seen["subjects"][client_id]
        .as_array()
        .expect("the app saw an assertion")
        .iter()
        .filter_map(serde_json::Value::as_str)
        .collect();
    assert!(
        !seen.is_empty() && seen.iter().all(|s| *s == subject),
        "subjects presented: {seen:?}"
    );
}

/// `${VAR}` replaced from the environment, as `make run` does with envsubst for `deploy/examples/`.
pub fn substitute(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closing brace") + start;
        out.push_str(&env(&rest[start + 2..end]));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Every log line of the test process (tracing, and `log` records bridged into it), for the no-leak checks.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    /// Installs the process's subscriber once, with `filter` (an `EnvFilter` directive such as `trace`), and
    /// returns the capture every later call shares.
    pub fn install(filter: &str) -> &'static LogCapture {
        static CAPTURE: OnceLock<LogCapture> = OnceLock::new();
        CAPTURE.get_or_init(|| {
            let capture = LogCapture::default();
            let writer = capture.clone();
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .init();
            capture
        })
    }

    /// Everything captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}
