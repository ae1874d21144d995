//! A `secretsync run` process started by a test, its JSON log in a file: the replicas of tests/e2e.rs and
//! tests/leadership.rs. Needs the crate's `cluster` module. Each crate uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::cluster::free_port;

/// One controller process; killed when dropped, and its log printed if the test is failing.
pub struct Replica {
    pub name: String,
    /// Where its probes (`/healthz`, `/readyz`) listen, on 127.0.0.1.
    pub port: u16,
    /// Where its HTTPS `/metrics` listens, on 127.0.0.1 (a self-signed certificate; a token is needed).
    pub metrics_port: u16,
    child: Option<Child>,
    log: PathBuf,
}

impl Replica {
    /// Starts `secretsync run` with `name` as its leader-election identity, `kubeconfig`, JSON logs at debug level
    /// into `dir/<name>.log`, metrics on a free port, and `args` (lease settings, namespace) after those.
    pub fn start(name: &str, kubeconfig: &Path, dir: &Path, args: &[&str]) -> Replica {
        let log = dir.join(format!("{name}.log"));
        let port = free_port();
        let metrics_port = free_port();
        let file = std::fs::File::create(&log).expect("replica log file");
        let child = Command::new(env!("CARGO_BIN_EXE_secretsync"))
            .args(["run", "--log-format", "json", "--identity", name])
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--health-addr", &format!("127.0.0.1:{port}")])
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
            .args(args)
            .env("RUST_LOG", "info,secretsync=debug")
            .stdout(file.try_clone().expect("replica log file"))
            .stderr(file)
            .spawn()
            .expect("secretsync starts");
        Replica {
            name: name.to_owned(),
            port,
            metrics_port,
            child: Some(child),
            log,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The times of the log records whose message contains `message`.
    pub fn logged(&self, message: &str) -> Vec<SystemTime> {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|r| r["message"].as_str().is_some_and(|m| m.contains(message)))
            .map(|r| time(r["timestamp"].as_str().expect("timestamp")))
            .collect()
    }

    pub fn leads(&self) -> bool {
        !self.logged("became the leader").is_empty()
    }

    /// Reconciles that wrote to the store, by when they started writing.
    pub fn writes(&self) -> Vec<SystemTime> {
        self.logged("writing to the store")
    }

    /// Log lines of reconciles and status changes.
    pub fn reconciles(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("\"reconcile\"") || l.contains("status changed"))
            .count()
    }

    /// Whether /readyz answers 200.
    pub fn ready(&self) -> bool {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("http://127.0.0.1:{}/readyz", self.port))
            .output()
            .expect("curl runs");
        String::from_utf8_lossy(&out.stdout) == "200"
    }

    /// The process ID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The exit status, once the process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().expect("try_wait"))
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then the process must end within 20 s.
    pub fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let end = Instant::now() + Duration::from_secs(20);
            while Instant::now() < end {
                if c.try_wait().expect("try_wait").is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
            panic!("{} did not stop within 20 s of SIGTERM", self.name);
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("log of {}:\n{}", self.name, self.log());
        }
        self.kill();
    }
}

/// A log record's timestamp.
pub fn time(rfc3339: &str) -> SystemTime {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("{rfc3339}: {e}"))
        .into()
}
