//! Monitoring with the real tools: Debian's Prometheus and promtool (`PROMETHEUS_BIN`, `PROMTOOL_BIN`, installed
//! by the test bed). The alerts pass `promtool check rules` and their unit tests; a running controller's metrics
//! pass `promtool check metrics`; `/metrics` answers only a token of someone allowed to read it (401, 403, 200); a
//! real Prometheus scrapes the controller over HTTPS with such a token and loads the rules, and its HTTP API
//! returns SecretSync's series with the expected labels; every query of the Grafana dashboard names a series the
//! controller exports and returns data from that Prometheus.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod support;
use support::env;
#[allow(dead_code)]
#[path = "support/cluster.rs"]
mod cluster;
use cluster::{free_port, kubectl, root, run};
#[path = "support/metrics_access.rs"]
mod metrics_access;
use metrics_access::MetricsClient;

const RULES: &str = "deploy/helm/secretsync/files/prometheus-rules.yaml";
const RULE_TESTS: &str = "deploy/monitoring/rules-test.yaml";
const DASHBOARD: &str = "deploy/helm/secretsync/files/grafana-dashboard.json";

fn get(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "5", url])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn the_alert_rules_pass_promtool_check_and_their_unit_tests() {
    let promtool = env("PROMTOOL_BIN");
    let out = run(&promtool, &["check", "rules", RULES], None).unwrap();
    assert!(out.contains("SUCCESS: 11 rules found"), "{out}");
    let out = run(&promtool, &["test", "rules", RULE_TESTS], None).unwrap();
    assert!(out.contains("SUCCESS"), "{out}");
    // Every alert has at least one unit test.
    let rules = std::fs::read_to_string(root().join(RULES)).unwrap();
    let tests = std::fs::read_to_string(root().join(RULE_TESTS)).unwrap();
    for line in rules.lines() {
        if let Some(name) = line.trim().strip_prefix("- alert: ") {
            assert!(
                tests.contains(&format!("alertname: {name}\n")),
                "{name} has no promtool test"
            );
        }
    }
}

/// A child process killed and reaped when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The test's namespace: its SecretSyncs are deleted (while the controller still runs, to release their
/// finalizers) and then the namespace.
struct Namespace(String);

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = run(
            "kubectl",
            &[
                "-n",
                &self.0,
                "delete",
                "secretsyncs",
                "--all",
                "--timeout=30s",
            ],
            None,
        );
        let _ = run(
            "kubectl",
            &["delete", "namespace", &self.0, "--wait=false"],
            None,
        );
    }
}

/// OpenMetrics as the classic text format promtool's linter parses: a counter family's HELP and TYPE name its
/// `_total` series (as Prometheus itself stores them), `# EOF` goes. Nothing else changes.
fn classic_text(openmetrics: &str) -> String {
    let counters: BTreeSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::new();
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let mut parts = line.splitn(4, ' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("#"), Some(kind @ ("HELP" | "TYPE")), Some(name)) if counters.contains(name) => {
                let rest = parts.next().unwrap_or("");
                out.push_str(&format!("# {kind} {name}_total {rest}\n"));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// The names of the series in an exposition.
fn series_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
        .collect()
}

/// `secretsync_*` names in a PromQL expression.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find("secretsync_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

fn query(prometheus: &str, expr: &str) -> Value {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "10", "--get"])
        .arg(format!("{prometheus}/api/v1/query"))
        .args(["--data-urlencode", &format!("query={expr}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "query {expr} failed");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "success", "{expr}: {v}");
    v["data"]["result"].clone()
}

/// The controller's `/metrics` over HTTPS, verifying its certificate against `ca_pem`, with `token` as the bearer
/// token (none: no Authorization header): the status and the body.
fn scrape(url: &str, ca_pem: &str, token: Option<&str>) -> (u16, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let mut request = client.get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e:?}"));
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    })
}

/// A Prometheus scraping `target` over HTTPS as the Prometheus Operator's ServiceMonitor of the chart does: the
/// bearer token from a file, the server's certificate checked against `ca_file`.
fn start_prometheus(dir: &Path, target: &str, ca_file: &Path, token: &str) -> (Process, String) {
    let port = free_port();
    let token_file = dir.join("prometheus-token");
    std::fs::write(&token_file, token).unwrap();
    let config = json!({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [root().join(RULES)],
        "scrape_configs": [{
            "job_name": "secretsync",
            "scheme": "https",
            "authorization": {"type": "Bearer", "credentials_file": token_file},
            "tls_config": {"ca_file": ca_file},
            "static_configs": [{"targets": [target]}],
        }],
    });
    let config_file = dir.join("prometheus.yml");
    std::fs::write(&config_file, config.to_string()).unwrap();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let child = Command::new(env("PROMETHEUS_BIN"))
        .arg(format!("--config.file={}", config_file.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("prometheus starts");
    let url = format!("http://127.0.0.1:{port}");
    let process = Process(child);
    wait_for("Prometheus ready", Duration::from_secs(30), || {
        get(&format!("{url}/-/ready"))
    });
    (process, url)
}

#[test]
fn prometheus_scrapes_a_running_controller() {
    let name = format!("obs-test-{:06x}", rand::random::<u32>() & 0xff_ffff);
    kubectl(&["create", "namespace", &name], None);
    let dir = tempfile::tempdir().unwrap();
    let metrics_port = free_port();
    // The certificate and key come from files, as a chart mounting cert-manager's Secret gives them; clients
    // verify it (127.0.0.1 is its name).
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert_pem = made.cert.pem();
    let (cert_file, key_file) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert_file, &cert_pem).unwrap();
    std::fs::write(&key_file, made.signing_key.serialize_pem()).unwrap();
    let log = std::fs::File::create(dir.path().join("controller.log")).unwrap();
    let controller = Process(
        Command::new(env!("CARGO_BIN_EXE_secretsync"))
            .args(["run", "--log-format", "json", "--leader-election=false"])
            .args(["--kubeconfig", &env("KUBECONFIG")])
            .args(["--namespace", &name])
            .args(["--digest-key-secret", &format!("{name}/digest-key")])
            .args(["--health-addr", &format!("127.0.0.1:{}", free_port())])
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
            .arg("--metrics-tls-cert")
            .arg(&cert_file)
            .arg("--metrics-tls-key")
            .arg(&key_file)
            .args(["--test-panic-on", &format!("{name}/boom")])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("secretsync starts"),
    );
    // Dropped before the controller: its SecretSyncs go while the controller can still release their finalizers.
    let ns = Namespace(name);
    let metrics_url = format!("https://127.0.0.1:{metrics_port}/metrics");
    // Who may read /metrics: nobody without a token, not a ServiceAccount without the reader role, and one bound to
    // deploy/'s secretsync-metrics-reader.
    let stranger = MetricsClient::new(&ns.0, "stranger", false);
    let reader = MetricsClient::new(&ns.0, "prometheus", true);
    wait_for("/metrics answers", Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", metrics_port)).ok()
    });
    let (status, body) = scrape(&metrics_url, &cert_pem, None);
    assert_eq!(status, 401, "without a token: {body}");
    let (status, body) = scrape(&metrics_url, &cert_pem, Some("not-a-token"));
    assert_eq!(status, 401, "with a token the API server rejects: {body}");
    let (status, body) = scrape(&metrics_url, &cert_pem, Some(&stranger.token));
    assert_eq!(status, 403, "with a token lacking the right: {body}");
    assert!(!body.contains("secretsync_"), "series shown to a stranger");
    let (status, body) = scrape(&metrics_url, &cert_pem, Some(&reader.token));
    assert_eq!(status, 200, "with the reader role: {body}");
    assert!(body.contains("secretsync_leader"), "{body}");
    // A SecretSync that syncs, one naming a missing store (a refusal), one whose reconcile panics (test hook).
    let sync = |name: &str, store: &str| {
        json!({"apiVersion": "secretsync.io/v1alpha1", "kind": "SecretSync",
            "metadata": {"name": name, "namespace": ns.0},
            "spec": {"source": {"secretRef": {"name": "src", "key": "k"}},
                     "target": {"storeRef": {"kind": "Store", "name": store},
                                "remoteName": format!("{}-{name}", ns.0)}}})
    };
    let objects = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "src", "namespace": ns.0},
         "stringData": {"k": "v"}},
        {"apiVersion": "secretsync.io/v1alpha1", "kind": "Store", "metadata": {"name": "sf", "namespace": ns.0},
         "spec": {"dialect": "ServiceFabricMesh", "endpoint": env("SF_ENDPOINT")}},
        sync("ok", "sf"), sync("missing", "nowhere"), sync("boom", "sf"),
    ]});
    kubectl(&["apply", "-f", "-"], Some(&objects.to_string()));
    // Once `ok` is Ready (no poll of a store still creating it is due, which could carry the change before the
    // controller sees it), its source changes: the push of that change is timed.
    wait_for("ok Ready", Duration::from_secs(60), || {
        let phase = kubectl(
            &[
                "-n",
                &ns.0,
                "get",
                "secretsyncs",
                "ok",
                "-o",
                "jsonpath={.status.phase}",
            ],
            None,
        );
        (phase == "Ready").then_some(())
    });
    let changed = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "src", "namespace": ns.0}, "stringData": {"k": "v2"}});
    kubectl(&["apply", "-f", "-"], Some(&changed.to_string()));
    let store = format!("Store/{}/sf", ns.0);
    let exposition = wait_for(
        "every kind of series exported",
        Duration::from_secs(60),
        || {
            let (status, text) = scrape(&metrics_url, &cert_pem, Some(&reader.token));
            assert_eq!(status, 200, "{text}");
            let names = series_names(&text);
            [
                "secretsync_reconciles_total",
                "secretsync_backend_requests_total",
                "secretsync_store_refusals_total",
                "secretsync_reconcile_panics_total",
                "secretsync_remote_writes_total",
                "secretsync_push_latency_seconds_count",
                "secretsync_syncs",
                "secretsync_leader",
            ]
            .iter()
            .all(|n| names.contains(*n))
            .then_some(text)
            .filter(|t| t.contains(&format!("secretsync_store_ready{{store=\"{store}\"}} 1")))
        },
    );

    // promtool's linter: names, types, units and help texts.
    assert!(exposition.ends_with("# EOF\n"), "OpenMetrics expected");
    let out = run(
        &env("PROMTOOL_BIN"),
        &["check", "metrics"],
        Some(&classic_text(&exposition)),
    )
    .unwrap_or_else(|e| panic!("promtool check metrics: {e}"));
    assert!(out.trim().is_empty(), "promtool check metrics: {out}");

    // A real Prometheus scrapes it (OpenMetrics, negotiated) and loads the alert rules.
    let (prometheus, url) = start_prometheus(
        dir.path(),
        &format!("127.0.0.1:{metrics_port}"),
        &cert_file,
        &reader.token,
    );
    let ok = wait_for("reconciles scraped", Duration::from_secs(30), || {
        let r = query(
            &url,
            r#"secretsync_reconciles_total{job="secretsync",dialect="ServiceFabricMesh",result="ok"}"#,
        );
        r.as_array().filter(|a| !a.is_empty()).cloned()
    });
    assert_eq!(
        ok[0]["metric"]["instance"],
        json!(format!("127.0.0.1:{metrics_port}"))
    );
    let ready = query(
        &url,
        &format!(r#"secretsync_store_ready{{store="{store}"}}"#),
    );
    assert_eq!(ready[0]["value"][1], "1", "{ready}");
    let refusals = query(&url, "secretsync_store_refusals_total");
    assert!(
        refusals
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["metric"]["reason"] == "StoreNotFound"
                && s["metric"]["store"] == "unresolved"),
        "{refusals}"
    );
    let requests = query(
        &url,
        r#"secretsync_backend_requests_total{dialect="ServiceFabricMesh",outcome="ok"}"#,
    );
    assert!(
        requests
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["metric"]["operation"].is_string())
            && !requests.as_array().unwrap().is_empty(),
        "{requests}"
    );
    let buckets = query(
        &url,
        r#"secretsync_reconcile_duration_seconds_bucket{le="+Inf"}"#,
    );
    // This controller runs without leader election: it leads.
    let leader = query(&url, "secretsync_leader");
    assert_eq!(leader[0]["value"][1], "1", "{leader}");
    // A store that does not exist is `unresolved`: a tenant's free text never becomes a label.
    let failed = query(
        &url,
        r#"secretsync_syncs{store="unresolved",phase="Failed"}"#,
    );
    assert_eq!(failed[0]["value"][1], "1", "{failed}");
    let named = query(&url, r#"secretsync_syncs{store=~".*nowhere.*"}"#);
    assert_eq!(named.as_array().map(Vec::len), Some(0), "{named}");
    assert!(!buckets.as_array().unwrap().is_empty());
    let rules: Value = serde_json::from_str(&get(&format!("{url}/api/v1/rules")).unwrap()).unwrap();
    let loaded: Vec<&Value> = rules["data"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(loaded.len(), 11, "{rules}");
    assert!(loaded.iter().all(|r| r["health"] != "err"), "{rules}");

    // The dashboard: valid JSON; every query names series the controller exports, and returns data.
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join(DASHBOARD)).unwrap())
            .expect("the dashboard is valid JSON");
    let exported = series_names(&exposition);
    let mut exprs: Vec<String> = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            exprs.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    for var in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(q) = var["query"]["query"].as_str() {
            exprs.push(q.to_owned());
        }
    }
    assert!(exprs.len() >= 10);
    // Two scrapes at least for rate().
    std::thread::sleep(Duration::from_secs(3));
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{expr} names no SecretSync series");
        for name in &names {
            assert!(exported.contains(name), "{expr}: {name} is not exported");
        }
        if expr.starts_with("label_values(") {
            continue;
        }
        let promql = expr
            .replace("$__rate_interval", "1m")
            .replace("$dialect", ".*")
            .replace("$store", ".*");
        let result = query(&url, &promql);
        assert!(
            !result.as_array().unwrap().is_empty(),
            "{promql} returned nothing"
        );
    }

    drop(prometheus);
    drop((stranger, reader));
    drop(ns);
    drop(controller);
}
