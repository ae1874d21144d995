//! The controller end to end on the test bed: a real kube-apiserver (the CRD from `crds/`, real watches, Events,
//! finalizers and server-side-applied status) and the Service Fabric emulator as the store, whose fidelity is
//! proven separately with the official SDK. Each test runs its own controller, scoped to a namespace of its own,
//! so tests run in parallel without seeing each other's objects.
//!
//! Every test also checks that the values it pushed appear in no status, no Event and no log line.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use secretsync::api::{ClusterStore, SecretSync, Store};
use secretsync::controller;
use secretsync::dialects::{Registry, Shared};
use secretsync::metrics::Metrics;
use secretsync::plan::digest::DigestKey;
use serde_json::{Value, json};

mod support;
use support::status::{phase, ready as ready_reason};
use support::unique::unique;
use support::{LogCapture, env, substitute};

/// Every log record of the process, at trace level for our code and the HTTP stacks.
fn logs() -> &'static LogCapture {
    LogCapture::install("trace,h2=debug,hyper_util=debug,rustls=debug,tower=debug")
}

fn captured() -> String {
    logs().text()
}

// ---- the test bed ----

async fn admin() -> Client {
    support::admin::admin().await
}

/// How a test's controller runs.
struct Opts {
    /// Requests a second (and burst) per store endpoint.
    rate: u32,
    concurrency: u16,
    cleanup_timeout: Duration,
    /// A SecretSync (by name, in the bed's namespace) whose reconcile panics.
    panic_on: Option<&'static str>,
    /// Watch every namespace, handling only SecretSyncs labelled for this bed (`Bed::apply_in` labels them).
    all_namespaces: bool,
    /// `--allow-inline-targets`.
    allow_inline: bool,
    /// `--token-audiences` (default: Entra ID's only).
    token_audiences: Vec<String>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            rate: 50,
            concurrency: 4,
            cleanup_timeout: Duration::from_secs(600),
            panic_on: None,
            all_namespaces: false,
            allow_inline: false,
            token_audiences: controller::store_limits::StoreLimits::default().token_audiences,
        }
    }
}

/// One test's world: a namespace, a controller watching only it, and handles to the API.
struct Bed {
    client: Client,
    ns: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    http: reqwest::Client,
    opts: Opts,
    metrics: Arc<Metrics>,
}

const BED_LABEL: &str = "secretsync-test-bed";

/// The hosts a namespaced Store of the test bed reaches (`--namespaced-store-hosts`, from .testbed/env).
fn testbed_hosts() -> Vec<String> {
    env("SECRETSYNC_NAMESPACED_STORE_HOSTS")
        .split(',')
        .map(str::to_owned)
        .collect()
}

async fn create_namespace(client: &Client, prefix: &str) -> String {
    let ns = format!("{prefix}-{:08x}", rand::random::<u32>());
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .expect("namespace created");
    ns
}

impl Bed {
    async fn new(prefix: &str) -> Bed {
        Bed::with(prefix, Opts::default()).await
    }

    async fn with_rate(prefix: &str, rate: u32) -> Bed {
        Bed::with(
            prefix,
            Opts {
                rate,
                ..Opts::default()
            },
        )
        .await
    }

    async fn with(prefix: &str, opts: Opts) -> Bed {
        logs();
        let client = admin().await;
        support::crds::install_crds(&client).await;
        let ns = create_namespace(&client, prefix).await;
        let mut bed = Bed {
            client,
            ns,
            stop: None,
            task: None,
            http: reqwest::Client::new(),
            opts,
            metrics: Metrics::new(),
        };
        bed.put_store(
            "sf",
            json!({"dialect": "ServiceFabricMesh", "endpoint": env("SF_ENDPOINT")}),
        )
        .await;
        bed.start();
        bed
    }

    /// The same test bed seen from another namespace (no controller of its own).
    fn view(&self, ns: &str) -> Bed {
        Bed {
            client: self.client.clone(),
            ns: ns.to_owned(),
            stop: None,
            task: None,
            http: reqwest::Client::new(),
            opts: Opts::default(),
            metrics: Metrics::new(),
        }
    }

    /// Polls a namespaced Store's `Ready` condition until it is `status/reason`.
    async fn wait_store_ready(&self, name: &str, expect: &str) -> Value {
        let stores: Api<Store> = Api::namespaced(self.client.clone(), &self.ns);
        let end = Instant::now() + LONG;
        loop {
            let status = serde_json::to_value(&stores.get(name).await.unwrap().status).unwrap();
            if ready_reason(&status) == expect {
                return status;
            }
            assert!(
                Instant::now() < end,
                "Store {name} never {expect}: {status}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// A namespaced Store in this bed's namespace.
    async fn put_store(&self, name: &str, spec: Value) {
        self.put_store_in(&self.ns, name, spec).await
    }

    async fn put_store_in(&self, ns: &str, name: &str, spec: Value) {
        let obj = json!({
            "apiVersion": "secretsync.io/v1alpha1", "kind": "Store",
            "metadata": {"name": name}, "spec": spec,
        });
        Api::<Store>::namespaced(self.client.clone(), ns)
            .patch(
                name,
                &PatchParams::apply("secretsync-tests").force(),
                &Patch::Apply(&obj),
            )
            .await
            .expect("Store applied");
    }

    /// A ClusterStore, deleted when the bed finishes (its name should start with the bed's namespace).
    async fn put_cluster_store(
        &self,
        name: &str,
        spec: Value,
    ) -> Result<ClusterStore, kube::Error> {
        let obj = json!({
            "apiVersion": "secretsync.io/v1alpha1", "kind": "ClusterStore",
            "metadata": {"name": name, "labels": {BED_LABEL: self.ns}}, "spec": spec,
        });
        Api::<ClusterStore>::all(self.client.clone())
            .patch(
                name,
                &PatchParams::apply("secretsync-tests").force(),
                &Patch::Apply(&obj),
            )
            .await
    }

    fn start(&mut self) {
        let metrics = Metrics::new();
        self.metrics = metrics.clone();
        let rate = self.opts.rate;
        // The operator trusts the Key Vault stand-in's CA for namespaced Stores' sign-ins, as the test bed's does.
        let shared = Shared::new(rate, rate, metrics.clone()).with_identity_provider_ca(
            std::fs::read_to_string(env("AZUREKV_CA_CERT")).expect("the stand-in's CA"),
        );
        let config = controller::Config {
            namespaces: if self.opts.all_namespaces {
                vec![]
            } else {
                vec![self.ns.clone()]
            },
            selector: self
                .opts
                .all_namespaces
                .then(|| format!("{BED_LABEL}={}", self.ns)),
            concurrency: self.opts.concurrency,
            digest_key: DigestKey::new(rand::random::<[u8; 32]>().to_vec()).unwrap(),
            cluster_id: "test-bed".into(),
            metrics,
            ready: Arc::new(AtomicBool::new(false)),
            instance: format!("test-{}", self.ns),
            cleanup_timeout: self.opts.cleanup_timeout,
            panic_on: self.opts.panic_on.map(|name| format!("{}/{name}", self.ns)),
            allow_inline_targets: self.opts.allow_inline,
            limits: controller::store_limits::StoreLimits {
                namespaced_store_hosts: testbed_hosts(),
                token_audiences: self.opts.token_audiences.clone(),
            },
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let client = self.client.clone();
        self.task = Some(tokio::spawn(async move {
            controller::run(client, config, Registry::standard(&shared), async move {
                let _ = rx.await;
            })
            .await;
        }));
        self.stop = Some(tx);
    }

    async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("controller stops within 30 s")
                .expect("controller did not panic");
        }
    }

    fn syncs(&self) -> Api<SecretSync> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    async fn put_secret(&self, name: &str, data: Value) {
        let secret: Secret = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name},
            "stringData": data,
        }))
        .unwrap();
        self.secrets()
            .patch(
                name,
                &PatchParams::apply("secretsync-tests").force(),
                &Patch::Apply(&secret),
            )
            .await
            .expect("Secret applied");
    }

    /// Sets (or with `None` removes) a label on a Secret, as another field manager than `put_secret`'s, so that
    /// later `put_secret` calls keep it.
    async fn label_secret(&self, name: &str, key: &str, value: Option<&str>) {
        self.secrets()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {key: value}}})),
            )
            .await
            .expect("Secret labelled");
    }

    async fn apply(&self, name: &str, spec: Value) -> Result<SecretSync, kube::Error> {
        self.apply_in(&self.ns, name, spec).await
    }

    /// Applies a SecretSync in any namespace, labelled for this bed's controller.
    async fn apply_in(&self, ns: &str, name: &str, spec: Value) -> Result<SecretSync, kube::Error> {
        let obj = json!({
            "apiVersion": "secretsync.io/v1alpha1", "kind": "SecretSync",
            "metadata": {"name": name, "labels": {BED_LABEL: self.ns}},
            "spec": spec,
        });
        Api::<SecretSync>::namespaced(self.client.clone(), ns)
            .patch(
                name,
                &PatchParams::apply("secretsync-tests").force(),
                &Patch::Apply(&obj),
            )
            .await
    }

    async fn status(&self, name: &str) -> Value {
        match self.syncs().get_opt(name).await.expect("get SecretSync") {
            Some(s) => serde_json::to_value(&s.status).unwrap(),
            None => Value::Null,
        }
    }

    /// Polls the status until `pred` holds; panics with the last status after `limit`.
    async fn wait_status(
        &self,
        name: &str,
        limit: Duration,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> Value {
        let end = Instant::now() + limit;
        loop {
            let status = self.status(name).await;
            if pred(&status) {
                return status;
            }
            if Instant::now() > end {
                let events: Vec<String> = self
                    .events()
                    .await
                    .iter()
                    .map(|e| {
                        format!(
                            "{:?} {:?} {:?}",
                            e.event_time.as_ref().map(|t| t.0.to_string()),
                            e.reason,
                            e.note
                        )
                    })
                    .collect();
                let generation = self
                    .syncs()
                    .get_opt(name)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|s| s.metadata.generation);
                panic!(
                    "status of {name} (generation {generation:?}) never matched within {limit:?}; last: {status:#}\nEvents in {}: {events:#?}",
                    self.ns
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Like `wait_status`, but only a status the controller wrote for the SecretSync's current spec counts
    /// (`status.observedGeneration` equals `metadata.generation` as it is now). Right after a spec change,
    /// `wait_status` can be satisfied at once by the previous generation's status, before the controller has seen
    /// the change.
    async fn wait_observed(
        &self,
        name: &str,
        limit: Duration,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> Value {
        let generation = self
            .syncs()
            .get(name)
            .await
            .expect("get SecretSync")
            .metadata
            .generation;
        assert!(generation.is_some(), "{name} has no generation");
        self.wait_status(name, limit, |s| {
            s["observedGeneration"].as_i64() == generation && pred(s)
        })
        .await
    }

    async fn events(&self) -> Vec<Event> {
        Api::<Event>::namespaced(self.client.clone(), &self.ns)
            .list(&ListParams::default())
            .await
            .expect("list Events")
            .items
    }

    async fn wait_event(&self, reason: &str, kind: &str) -> Event {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(e) =
                self.events().await.into_iter().find(|e| {
                    e.reason.as_deref() == Some(reason) && e.type_.as_deref() == Some(kind)
                })
            {
                return e;
            }
            if Instant::now() > end {
                panic!("no {kind} Event {reason}; have {:#?}", self.events().await);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Fails when any value appears in a status, an Event or a log line.
    async fn assert_no_leak(&self, values: &[&str]) {
        let syncs = self.syncs().list(&ListParams::default()).await.unwrap();
        let statuses =
            serde_json::to_string(&syncs.items.iter().map(|s| &s.status).collect::<Vec<_>>())
                .unwrap();
        let events = serde_json::to_string(&self.events().await).unwrap();
        let logs = captured();
        assert!(!logs.is_empty(), "log capture is not working");
        for v in values {
            assert!(!statuses.contains(v), "a value leaked into a status");
            assert!(!events.contains(v), "a value leaked into an Event");
            assert!(!logs.contains(v), "a value leaked into the logs");
        }
    }

    /// Deletes a SecretSync and waits until it is gone (its finalizer released).
    async fn delete_until_gone(&self, name: &str) {
        self.syncs()
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
        let end = Instant::now() + LONG;
        while self.syncs().get_opt(name).await.unwrap().is_some() {
            assert!(Instant::now() < end, "SecretSync {name} was never released");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn finish(mut self) {
        self.stop().await;
        let _ = Api::<ClusterStore>::all(self.client.clone())
            .delete_collection(
                &DeleteParams::default(),
                &ListParams::default().labels(&format!("{BED_LABEL}={}", self.ns)),
            )
            .await;
        let _ = Api::<Namespace>::all(self.client.clone())
            .delete(&self.ns, &DeleteParams::default())
            .await;
    }

    // ---- the store ----

    fn sf(&self, path: &str) -> String {
        format!("{}{path}", env("SF_ENDPOINT"))
    }

    /// The plaintext of a value version of a remote secret, read back through the privileged list_value call.
    async fn remote_value(&self, name: &str, version: &str) -> Option<String> {
        let url = self.sf(&format!(
            "/Resources/Secrets/{name}/values/{version}/list_value?api-version=6.4-preview"
        ));
        let resp = self.http.post(url).send().await.unwrap();
        if resp.status() == 404 {
            return None;
        }
        assert!(resp.status().is_success(), "list_value: {}", resp.status());
        let body: Value = resp.json().await.unwrap();
        body["value"].as_str().map(str::to_owned)
    }

    /// The value version a status names holds `value` in the store.
    async fn assert_remote_holds(&self, status: &Value, name: &str, value: &str) {
        let version = status["remote"]["version"]
            .as_str()
            .expect("a remote version");
        assert_eq!(
            self.remote_value(name, version).await.as_deref(),
            Some(value)
        );
    }

    async fn remote_exists(&self, name: &str) -> bool {
        let url = self.sf(&format!(
            "/Resources/Secrets/{name}?api-version=6.4-preview"
        ));
        let status = self.http.get(url).send().await.unwrap().status();
        assert!(status == 200 || status == 404, "GET secret: {status}");
        status == 200
    }

    /// Requests that reached the store for one remote secret: (reads, writes).
    async fn remote_stats(&self, name: &str) -> (u64, u64) {
        let body: Value = self
            .http
            .get(self.sf(&format!("/_emulator/stats/{name}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            body["reads"].as_u64().unwrap_or(0),
            body["writes"].as_u64().unwrap_or(0),
        )
    }

    async fn fault_on(&self, name: &str, method: Option<&str>, status: u16, times: u32) {
        // The emulator's default code is a transient one; an access error carries Service Fabric's own.
        let code = match status {
            401 | 403 => "FABRIC_E_ACCESS_DENIED",
            _ => "FABRIC_E_CENTRAL_SECRET_SERVICE_GENERIC",
        };
        let mut fault = json!({"secret": name, "status": status, "times": times, "code": code});
        if let Some(m) = method {
            fault["method"] = json!(m);
        }
        let resp = self
            .http
            .post(self.sf("/_emulator/faults"))
            .json(&fault)
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_success(),
            "fault not installed: {}",
            resp.status()
        );
    }
}

fn sf_spec(secret: &str, key: &str, remote: &str, extra: Value) -> Value {
    let mut spec = json!({
        "source": {"secretRef": {"name": secret, "key": key}},
        "target": {"storeRef": {"kind": "Store", "name": "sf"}, "remoteName": remote},
    });
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        spec[k] = v;
    }
    spec
}

const LONG: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_reports_creating_then_ready_follows_changes_and_deletes() {
    let bed = Bed::new("ctl-life").await;
    let remote = unique("life");
    let v1 = format!("first-{}", unique("v"));
    let v2 = format!("second-{}", unique("v"));
    bed.put_secret("db", json!({"password": v1, "user": "app"}))
        .await;
    let created = bed
        .apply(
            "db",
            sf_spec(
                "db",
                "password",
                &remote,
                json!({"deletionPolicy": "Delete"}),
            ),
        )
        .await
        .expect("valid SecretSync accepted");
    let generation = created.metadata.generation.unwrap();

    // The emulator keeps a new resource Creating for a second: the status must say so before Ready.
    let mut seen = Vec::new();
    let ready = bed
        .wait_status("db", LONG, |s| {
            let p = phase(s).to_owned();
            if seen.last() != Some(&p) {
                seen.push(p);
            }
            phase(s) == "Ready"
        })
        .await;
    assert!(
        seen.iter().any(|p| p == "Creating"),
        "phases seen: {seen:?}"
    );
    assert_eq!(ready_reason(&ready), "True/Synced");
    assert_eq!(ready["observedGeneration"], json!(generation));
    assert!(
        ready["syncedDigest"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
    let version = ready["remote"]["version"]
        .as_str()
        .expect("remote version in status")
        .to_owned();
    assert_eq!(
        bed.remote_value(&remote, &version).await.as_deref(),
        Some(v1.as_str())
    );
    bed.wait_event("Synced", "Normal").await;
    let sync = bed.syncs().get("db").await.unwrap();
    let status_manager = sync
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .find(|f| f.subresource.as_deref() == Some("status"))
        .expect("status has a field manager");
    assert_eq!(
        (
            status_manager.manager.as_deref(),
            status_manager.operation.as_deref()
        ),
        (Some("secretsync"), Some("Apply")),
        "status is written by server-side apply as `secretsync`"
    );
    assert!(
        sync.metadata
            .finalizers
            .unwrap_or_default()
            .contains(&controller::FINALIZER.to_owned())
    );

    // A change to the source Secret is pushed without waiting for the refresh interval (1h by default).
    bed.put_secret("db", json!({"password": v2, "user": "app"}))
        .await;
    let moved = bed
        .wait_status("db", LONG, |s| {
            s["remote"]["version"]
                .as_str()
                .is_some_and(|v| v != version)
        })
        .await;
    let version2 = moved["remote"]["version"].as_str().unwrap();
    assert_eq!(
        bed.remote_value(&remote, version2).await.as_deref(),
        Some(v2.as_str())
    );
    assert_ne!(moved["syncedDigest"], ready["syncedDigest"]);

    // In sync: a refresh must cost reads only. Changing a key the SecretSync does not read writes nothing.
    let (_, writes_before) = bed.remote_stats(&remote).await;
    bed.put_secret("db", json!({"password": v2, "user": "other"}))
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, writes_after) = bed.remote_stats(&remote).await;
    assert_eq!(
        writes_after, writes_before,
        "an unchanged value caused a write"
    );

    // deletionPolicy Delete: the remote secret goes, then the finalizer, then the object.
    bed.delete_until_gone("db").await;
    assert!(
        !bed.remote_exists(&remote).await,
        "remote secret left behind"
    );
    bed.assert_no_leak(&[&v1, &v2]).await;
    bed.finish().await;
}

/// `spec.source.selector` on the real API server and its watches: labelling a Secret pushes it within seconds,
/// unlabelling it deletes its remote secret (`deletionPolicy: Delete`), and `status.remotes` follows; nothing is
/// polled (the refresh interval is an hour).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selector_follows_secrets_as_they_are_labelled_and_unlabelled() {
    let bed = Bed::new("ctl-select").await;
    let prefix = unique("sel");
    let values: Vec<String> = (0..4).map(|i| format!("v{i}-{}", unique("x"))).collect();
    for (i, v) in values.iter().enumerate() {
        bed.put_secret(&format!("s{i}"), json!({"password": v}))
            .await;
    }
    for i in 0..3 {
        bed.label_secret(&format!("s{i}"), "push", Some("yes"))
            .await;
    }
    bed.apply(
        "team",
        json!({
            "source": {"selector": {"matchLabels": {"push": "yes"}}},
            "target": {"storeRef": {"kind": "Store", "name": "sf"}, "remoteName": format!("{prefix}-{{secret}}")},
            "data": [{"secretKey": "password", "property": "pw"}],
            "deletionPolicy": "Delete",
        }),
    )
    .await
    .expect("a selector SecretSync is accepted");
    let names = |s: &Value| -> Vec<String> {
        s["remotes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["inSync"] == true)
            .map(|r| r["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let three = bed
        .wait_status("team", LONG, |s| names(s).len() == 3 && phase(s) == "Ready")
        .await;
    assert_eq!(three["remotesInSync"], "3/3");
    let version = |s: &Value, name: &str| -> String {
        s["remotes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["name"] == name)
            .and_then(|r| r["version"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let first = format!("{prefix}-s0");
    assert_eq!(
        bed.remote_value(&first, &version(&three, &first)).await,
        Some(json!({"pw": values[0]}).to_string())
    );
    assert!(!bed.remote_exists(&format!("{prefix}-s3")).await);

    bed.label_secret("s3", "push", Some("yes")).await;
    bed.wait_status("team", LONG, |s| names(s).len() == 4).await;
    assert!(bed.remote_exists(&format!("{prefix}-s3")).await);

    bed.label_secret("s1", "push", None).await;
    let after = bed
        .wait_status("team", LONG, |s| {
            names(s).len() == 3 && s["remotesInSync"] == "3/3"
        })
        .await;
    assert!(!names(&after).contains(&format!("{prefix}-s1")));
    assert!(
        !bed.remote_exists(&format!("{prefix}-s1")).await,
        "the unlabelled Secret's remote secret was deleted"
    );
    bed.wait_event("PreviousRemoteDeleted", "Normal").await;

    bed.delete_until_gone("team").await;
    for i in [0, 2, 3] {
        assert!(!bed.remote_exists(&format!("{prefix}-s{i}")).await);
    }
    let shown: Vec<&str> = values.iter().map(String::as_str).collect();
    bed.assert_no_leak(&shown).await;
    bed.finish().await;
}

/// What the store's credentials Secret wakes on the real API server: refused credentials are reported on the
/// SecretSync and by the store's own check, and fixing the Secret (the SecretSync untouched) brings both back through
/// the watch on it. What a refusal does to the next attempt is in `tests/pipeline.rs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_credentials_secret_wakes_its_secretsyncs_and_the_stores_check() {
    let bed = Bed::new("ctl-creds").await;
    let remote = format!("instant-{}", unique("creds"));
    let value = unique("cred-value");
    let wrong_token = unique("wrong-token");
    bed.put_secret("s", json!({"k": value})).await;
    let ca = std::fs::read_to_string(env("SF_CA_CERT")).unwrap();
    bed.put_secret("sf-creds", json!({"token": wrong_token, "ca.crt": ca}))
        .await;
    bed.put_store(
        "sf-token",
        json!({"dialect": "ServiceFabricMesh", "endpoint": env("SF_TOKEN_ENDPOINT"),
               "credentialsRef": {"name": "sf-creds"}}),
    )
    .await;
    let spec = json!({
        "source": {"secretRef": {"name": "s", "key": "k"}},
        "target": {"storeRef": {"kind": "Store", "name": "sf-token"}, "remoteName": remote},
    });
    bed.apply("c", spec).await.unwrap();
    bed.wait_status("c", LONG, |s| ready_reason(s) == "False/Unauthorized")
        .await;
    // The stores' own checks say the same without any SecretSync.
    let store = bed.wait_store_ready("sf-token", "False/Unauthorized").await;
    assert_eq!(store["conditions"][0]["observedGeneration"], 1);
    bed.wait_store_ready("sf", "True/Checked").await;
    let metrics = bed.metrics.render();
    for (store, ready) in [("sf-token", 0), ("sf", 1)] {
        let line = format!(
            "secretsync_store_ready{{store=\"Store/{}/{store}\"}} {ready}",
            bed.ns
        );
        assert!(metrics.contains(&line), "no {line} in {metrics}");
    }

    // Fixing the store's credentials Secret is enough (the SecretSync is not touched): the watch on it triggers a
    // new attempt.
    let token = std::fs::read_to_string(env("SF_TOKEN_FILE"))
        .unwrap()
        .trim()
        .to_owned();
    bed.put_secret("sf-creds", json!({"token": token, "ca.crt": ca}))
        .await;
    bed.wait_status("c", LONG, |s| phase(s) == "Ready").await;
    // The store's own check runs again at once (not at its next 5-minute round).
    bed.wait_store_ready("sf-token", "True/Checked").await;
    bed.assert_no_leak(&[&value, &wrong_token, &token]).await;
    bed.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_rejects_manifests_the_schema_can_catch() {
    let bed = Bed::new("ctl-schema").await;
    let ok = || sf_spec("s", "k", "fine", json!({}));
    let ok_with = |pointer: &str, value: Value| {
        let mut spec = ok();
        let (parent, field) = pointer.rsplit_once('/').expect("a JSON pointer");
        spec.pointer_mut(parent).expect("a field of the spec")[field] = value;
        spec
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "no-store",
            json!({"source": {"secretRef": {"name": "s"}}, "target": {}}),
            "set spec.target.storeRef",
        ),
        (
            "store-and-dialect",
            json!({"source": {"secretRef": {"name": "s"}},
                   "target": {"storeRef": {"kind": "Store", "name": "sf"}, "dialect": "Barbican"}}),
            "not both",
        ),
        (
            "store-and-endpoint",
            ok_with("/target/endpoint", json!("https://elsewhere.example")),
            "the store decides the endpoint and credentials",
        ),
        (
            "store-and-credentials",
            ok_with("/target/credentialsRef", json!({"name": "someone-elses"})),
            "the store decides the endpoint and credentials",
        ),
        (
            "store-and-authority",
            ok_with(
                "/target/azureKeyVault",
                json!({"authorityHost": "https://evil.example"}),
            ),
            "the store decides azureKeyVault.authorityHost",
        ),
        (
            "bad-store-kind",
            json!({"source": {"secretRef": {"name": "s"}},
                   "target": {"storeRef": {"kind": "Vault", "name": "x"}}}),
            "Unsupported value",
        ),
        (
            "bad-dialect",
            json!({"source": {"secretRef": {"name": "s"}}, "target": {"dialect": "Keychain"}}),
            "Unsupported value",
        ),
        ("no-source", json!({"target": ok()["target"]}), "source"),
        (
            "azure-no-endpoint",
            json!({"source": {"secretRef": {"name": "s"}}, "target": {"dialect": "AzureKeyVault"}}),
            "AzureKeyVault needs spec.target.endpoint",
        ),
        (
            "swarm-name",
            json!({"source": {"secretRef": {"name": "s"}},
                   "target": {"dialect": "DockerSwarm", "remoteName": "x".repeat(80)}}),
            "DockerSwarm secret names",
        ),
        (
            "reserved-label",
            ok_with("/target/labels", json!({"secretsync.io/owner": "me"})),
            "reserved",
        ),
        (
            "bad-interval",
            ok_with("/refreshInterval", json!("5 days")),
            "refreshInterval",
        ),
        (
            "data-and-key",
            ok_with("/data", json!([{"secretKey": "k", "property": "p"}])),
            "spec.data and spec.source.secretRef.key are exclusive",
        ),
        (
            "rule-two-ways",
            json!({"source": {"secretRef": {"name": "s"}},
                   "target": {"storeRef": {"kind": "Store", "name": "sf"}},
                   "data": [{"secretKey": "k", "secretKeyRegex": "k.*"}]}),
            "set secretKey (one key) or secretKeyRegex",
        ),
        (
            "ref-and-selector",
            json!({"source": {"secretRef": {"name": "s"}, "selector": {"matchLabels": {"a": "b"}}},
                   "target": {"storeRef": {"kind": "Store", "name": "sf"}, "remoteName": "{secret}"}}),
            "not both",
        ),
        (
            "empty-selector",
            json!({"source": {"selector": {}},
                   "target": {"storeRef": {"kind": "Store", "name": "sf"}, "remoteName": "{secret}"}}),
            "an empty spec.source.selector would select every Secret",
        ),
        (
            "selector-one-name",
            json!({"source": {"selector": {"matchLabels": {"a": "b"}}},
                   "target": {"storeRef": {"kind": "Store", "name": "sf"}, "remoteName": "shared"}}),
            "must contain {secret}",
        ),
        (
            "selector-rule-one-name",
            json!({"source": {"selector": {"matchLabels": {"a": "b"}}},
                   "target": {"storeRef": {"kind": "Store", "name": "sf"}, "remoteName": "{secret}"},
                   "data": [{"secretKey": "k", "remoteName": "fixed"}]}),
            "must contain {secret}",
        ),
    ];
    for (name, spec, expect) in cases {
        match bed.apply(name, spec).await {
            Ok(_) => panic!("{name}: an invalid SecretSync was accepted"),
            Err(kube::Error::Api(e)) => {
                assert_eq!(e.code, 422, "{name}: {}", e.message);
                assert!(
                    e.message.contains(expect),
                    "{name}: {:?} does not mention {expect:?}",
                    e.message
                );
            }
            Err(e) => panic!("{name}: unexpected error {e}"),
        }
    }
    bed.apply("fine", ok())
        .await
        .expect("a valid SecretSync is accepted");

    // Stores: a namespaced Store cannot reach into another namespace; a ClusterStore must say which.
    let store = json!({
        "apiVersion": "secretsync.io/v1alpha1", "kind": "Store", "metadata": {"name": "reach"},
        "spec": {"dialect": "ServiceFabricMesh", "endpoint": "https://sf.example",
                 "credentialsRef": {"name": "c", "namespace": "kube-system"}},
    });
    let refused = Api::<Store>::namespaced(bed.client.clone(), &bed.ns)
        .patch(
            "reach",
            &PatchParams::apply("secretsync-tests").force(),
            &Patch::Apply(&store),
        )
        .await;
    assert!(
        matches!(&refused, Err(kube::Error::Api(e)) if e.code == 422 && e.message.contains("reads its credentials from its own namespace")),
        "{refused:?}"
    );
    let refused = bed
        .put_cluster_store(
            &format!("{}-nowhere", bed.ns),
            json!({"dialect": "TencentSSM", "tencentSSM": {"region": "ap-1"}, "credentialsRef": {"name": "c"}}),
        )
        .await;
    assert!(
        matches!(&refused, Err(kube::Error::Api(e)) if e.code == 422 && e.message.contains("names the namespace of its credentials Secret")),
        "{refused:?}"
    );
    // caBundle: read by TencentSSM (an endpoint behind a private CA), refused where no dialect would read it.
    let with_ca = |dialect: &str| {
        json!({"dialect": dialect, "tencentSSM": {"region": "ap-1"}, "caBundle": "PEM",
               "credentialsRef": {"name": "c", "namespace": bed.ns}})
    };
    bed.put_cluster_store(&format!("{}-ssm-ca", bed.ns), with_ca("TencentSSM"))
        .await
        .expect("a TencentSSM store with a caBundle is accepted");
    let mut barbican = with_ca("Barbican");
    barbican.as_object_mut().map(|o| o.remove("tencentSSM"));
    let refused = bed
        .put_cluster_store(&format!("{}-barbican-ca", bed.ns), barbican)
        .await;
    assert!(
        matches!(&refused, Err(kube::Error::Api(e)) if e.code == 422 && e.message.contains("Barbican trusts the system's roots")),
        "{refused:?}"
    );
    bed.finish().await;
}

/// The core behaviours through every dialect against its own backend: the targets and credentials Secrets come
/// from `deploy/examples/` (so the examples are proven too), the source, remote name and policies from the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dialect_creates_follows_a_change_and_deletes_through_the_controller() {
    let bed = Bed::new("ctl-dialects").await;
    let v1 = unique("first-value");
    let v2 = unique("second-value");
    bed.put_secret("src", json!({"k": v1})).await;
    // The Barbican example's store pushes only Secrets labelled for export.
    bed.label_secret("src", "secretsync.io/export", Some("true"))
        .await;
    let mut examples: Vec<_> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/examples"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
    examples.sort();
    let mut syncs = Vec::new();
    let mut specs = Vec::new();
    for file in examples {
        let text = substitute(&std::fs::read_to_string(&file).unwrap());
        for doc in yaml_serde::Deserializer::from_str(&text) {
            let mut doc: Value = serde::Deserialize::deserialize(doc).unwrap();
            let name = doc["metadata"]["name"].as_str().unwrap().to_owned();
            match doc["kind"].as_str() {
                // Store credentials, in the team's namespace or the platform's: here both are the bed's.
                Some("Secret") if name != "db-password" => {
                    doc["metadata"]["namespace"] = json!(bed.ns);
                    let secret: Secret = serde_json::from_value(doc).unwrap();
                    bed.secrets()
                        .patch(
                            &name,
                            &PatchParams::apply("secretsync-tests").force(),
                            &Patch::Apply(&secret),
                        )
                        .await
                        .expect("credentials Secret applied");
                }
                Some("Store") => bed.put_store(&name, doc["spec"].clone()).await,
                Some("ClusterStore") => {
                    let mut spec = doc["spec"].clone();
                    if spec.get("credentialsRef").is_some() {
                        spec["credentialsRef"]["namespace"] = json!(bed.ns);
                    }
                    spec["conditions"] = json!([{"namespaces": [bed.ns]}]);
                    bed.put_cluster_store(&format!("{}-{name}", bed.ns), spec)
                        .await
                        .expect("example ClusterStore accepted");
                }
                Some("SecretSync") => {
                    let mut spec = doc["spec"].clone();
                    assert!(
                        spec["target"]["dialect"].is_null(),
                        "{name}: the examples use stores"
                    );
                    if spec["target"]["storeRef"]["kind"] == "ClusterStore" {
                        let store = spec["target"]["storeRef"]["name"].as_str().unwrap();
                        spec["target"]["storeRef"]["name"] = json!(format!("{}-{store}", bed.ns));
                    }
                    spec["source"] = json!({"secretRef": {"name": "src", "key": "k"}});
                    spec["target"]["remoteName"] =
                        json!(format!("ss{:08x}", rand::random::<u32>()));
                    spec["deletionPolicy"] = json!("Delete");
                    bed.apply(&name, spec.clone())
                        .await
                        .expect("example target accepted");
                    specs.push(spec);
                    syncs.push(name);
                }
                _ => {}
            }
        }
    }
    assert_eq!(syncs.len(), 7, "one example per dialect: {syncs:?}");

    // The other ways in: Barbican without Keystone, the swarm over mutual TLS, Service Fabric's 202 path.
    let read = |var: &str| std::fs::read_to_string(env(var)).unwrap();
    bed.put_secret(
        "swarm-tls",
        json!({
            "ca.crt": read("DOCKER_SWARM_CA_CERT"),
            "tls.crt": read("DOCKER_SWARM_CLIENT_CERT"),
            "tls.key": read("DOCKER_SWARM_CLIENT_KEY"),
        }),
    )
    .await;
    bed.put_store(
        "barbican-noauth",
        json!({"dialect": "Barbican", "endpoint": env("BARBICAN_NOAUTH_ENDPOINT"),
               "barbican": {"projectId": "secretsync-tests"}}),
    )
    .await;
    bed.put_store(
        "swarm-mtls",
        json!({"dialect": "DockerSwarm", "endpoint": env("DOCKER_SWARM_TLS_ENDPOINT"),
               "credentialsRef": {"name": "swarm-tls"}}),
    )
    .await;
    let source = json!({"secretRef": {"name": "src", "key": "k"}});
    let through = |store: &str, remote: String| json!({"storeRef": {"kind": "Store", "name": store}, "remoteName": remote});
    let variants = [
        (
            "barbican-noauth",
            through("barbican-noauth", unique("noauth")),
        ),
        ("swarm-mtls", through("swarm-mtls", unique("mtls"))),
        (
            "sf-accepted",
            through("sf", format!("accepted-{}", unique("sf"))),
        ),
    ];
    for (name, target) in variants {
        let spec = json!({"source": source, "target": target, "deletionPolicy": "Delete"});
        bed.apply(name, spec.clone())
            .await
            .expect("variant accepted");
        specs.push(spec);
        syncs.push(name.to_owned());
    }
    // A 202 with no body: the store is still creating, and the status says so before Ready.
    let mut phases: Vec<String> = Vec::new();
    bed.wait_status("sf-accepted", LONG, |s| {
        if phases.last().map(String::as_str) != Some(phase(s)) {
            phases.push(phase(s).to_owned());
        }
        phase(s) == "Ready"
    })
    .await;
    assert!(
        phases.iter().any(|p| p == "Creating"),
        "202 path phases: {phases:?}"
    );

    let mut digests = Vec::new();
    for name in &syncs {
        let s = bed.wait_status(name, LONG, |s| phase(s) == "Ready").await;
        assert_eq!(ready_reason(&s), "True/Synced", "{name}");
        digests.push(s["syncedDigest"].clone());
    }
    bed.put_secret("src", json!({"k": v2})).await;
    for (name, old) in syncs.iter().zip(&digests) {
        bed.wait_status(name, LONG, |s| {
            phase(s) == "Ready" && &s["syncedDigest"] != old
        })
        .await;
    }

    // A rename under deletionPolicy Delete: each dialect deletes the old remote secret once the new one is in sync.
    for (name, spec) in syncs.iter().zip(specs.iter_mut()) {
        spec["target"]["remoteName"] = json!(format!("rn{:08x}", rand::random::<u32>()));
        bed.apply(name, spec.clone())
            .await
            .expect("rename accepted");
    }
    for (name, spec) in syncs.iter().zip(&specs) {
        let s = bed
            .wait_status(name, LONG, |s| {
                // A ClusterStore's default template puts the namespace first.
                let wanted = spec["target"]["remoteName"].as_str().unwrap();
                let synced = s["syncedTarget"]["remoteName"].as_str().unwrap_or("");
                phase(s) == "Ready"
                    && (synced == wanted || synced == format!("{}-{wanted}", bed.ns))
            })
            .await;
        assert_eq!(ready_reason(&s), "True/Synced", "{name}");
    }
    let events = bed.events().await;
    for name in &syncs {
        assert!(
            events
                .iter()
                .any(|e| e.reason.as_deref() == Some("PreviousRemoteDeleted")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name.as_str())),
            "{name}: no PreviousRemoteDeleted Event"
        );
    }

    for name in &syncs {
        bed.syncs()
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    for name in &syncs {
        let end = Instant::now() + LONG;
        while let Some(s) = bed.syncs().get_opt(name).await.unwrap() {
            assert!(
                Instant::now() < end,
                "{name} never released its finalizer: {:#}",
                serde_json::to_value(&s.status).unwrap()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    bed.assert_no_leak(&[&v1, &v2]).await;
    bed.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_store_does_not_hold_up_another_store() {
    // Two requests a second per endpoint: 30 SecretSyncs on one endpoint are some 45 s of work for it.
    let bed = Bed::with_rate("ctl-fair", 2).await;
    bed.put_secret("s", json!({"k": unique("fair")})).await;
    let run = unique("busy");
    for i in 0..30 {
        bed.apply(
            &format!("busy-{i}"),
            sf_spec("s", "k", &format!("instant-{run}-{i}"), json!({})),
        )
        .await
        .unwrap();
    }
    // The same emulator under another name is another store to SecretSync, with its own limiter.
    let other = env("SF_ENDPOINT").replace("127.0.0.1", "localhost");
    assert_ne!(other, env("SF_ENDPOINT"));
    bed.put_store(
        "sf-other",
        json!({"dialect": "ServiceFabricMesh", "endpoint": other}),
    )
    .await;
    let mut spec = sf_spec("s", "k", &format!("instant-{run}-other"), json!({}));
    spec["target"]["storeRef"]["name"] = json!("sf-other");
    bed.apply("other-store", spec).await.unwrap();

    bed.wait_status("other-store", LONG, |s| phase(s) == "Ready")
        .await;
    let busy_ready = bed
        .syncs()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|s| {
            s.name_any().starts_with("busy-")
                && s.status.as_ref().and_then(|s| s.phase) == Some(secretsync::api::Phase::Ready)
        })
        .count();
    eprintln!("busy SecretSyncs Ready when the other store's was: {busy_ready} of 30");
    // Without a cap per store, every worker would be waiting on the busy endpoint's limiter and the other
    // store's object would come after (nearly) all 30 of them.
    assert!(
        busy_ready < 15,
        "the other store waited for {busy_ready} of 30 busy SecretSyncs"
    );
    bed.finish().await;
}

// ---- hostile input and isolation ----

/// Rewrites a stored SecretSync straight in etcd, past the API server's validation: what an object written before
/// the CRD tightened looks like to the controller.
async fn rewrite_in_etcd(ns: &str, name: &str, change: impl FnOnce(&mut Value)) {
    support::etcd::rewrite_in_etcd(
        &format!("/registry/secretsync.io/secretsyncs/{ns}/{name}"),
        change,
    )
    .await
}

fn condition_message(s: &Value) -> String {
    s["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// The real API server's part: the CRD's range refuses an unusable `refreshInterval` at apply, and an object that
/// carries one anyway (written into etcd past validation) fails on its own while the controller's watch goes on
/// with the others. What the reconcile reports for it is in `tests/pipeline.rs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_refresh_interval_is_refused_and_fails_only_its_own_object() {
    let bed = Bed::new("ctl-interval").await;
    let run = unique("interval");
    bed.put_secret("s", json!({"k": unique("v1")})).await;
    let with_interval = |remote: &str, interval: &str| {
        sf_spec(
            "s",
            "k",
            &format!("instant-{run}-{remote}"),
            json!({"refreshInterval": interval}),
        )
    };

    // At apply time: the value that used to crash the controller, and intervals outside 10s..720h.
    for bad in [
        "99999999999999999999h",
        "9s",
        "721h",
        "1s".repeat(17).as_str(),
    ] {
        let err = bed
            .apply("refused", with_interval("refused", bad))
            .await
            .expect_err(&format!("refreshInterval {bad:?} must be rejected"));
        match err {
            kube::Error::Api(e) => assert_eq!(e.code, 422, "{bad}: {}", e.message),
            e => panic!("{bad}: {e}"),
        }
    }
    bed.apply("on-change", with_interval("on-change", "0s"))
        .await
        .expect("0s (re-read only on change) is accepted");
    bed.syncs()
        .delete("on-change", &DeleteParams::default())
        .await
        .unwrap();

    // An object that carries such a value anyway is Failed on its own; the others carry on.
    bed.apply("good", with_interval("good", "1h"))
        .await
        .unwrap();
    bed.apply("bad", with_interval("bad", "1h")).await.unwrap();
    for name in ["good", "bad"] {
        bed.wait_status(name, LONG, |s| phase(s) == "Ready").await;
    }
    rewrite_in_etcd(&bed.ns, "bad", |o| {
        o["spec"]["refreshInterval"] = json!("99999999999999999999h")
    })
    .await;
    let s = bed
        .wait_status("bad", LONG, |s| {
            ready_reason(s) == "False/InvalidRefreshInterval"
        })
        .await;
    assert!(
        condition_message(&s).contains("too large"),
        "{}",
        condition_message(&s)
    );

    let before = bed.status("good").await["syncedDigest"].clone();
    bed.put_secret("s", json!({"k": unique("v2")})).await;
    bed.wait_status("good", LONG, |s| {
        phase(s) == "Ready" && s["syncedDigest"] != before
    })
    .await;
    assert_eq!(
        ready_reason(&bed.status("bad").await),
        "False/InvalidRefreshInterval",
        "nothing is read or written for the invalid object"
    );
    bed.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_reconcile_fails_only_its_own_object_and_is_retried_with_backoff() {
    let bed = Bed::with(
        "ctl-panic",
        Opts {
            panic_on: Some("boom"),
            ..Opts::default()
        },
    )
    .await;
    let run = unique("panic");
    bed.put_secret("s", json!({"k": unique("v1")})).await;
    bed.apply(
        "boom",
        sf_spec("s", "k", &format!("instant-{run}-boom"), json!({})),
    )
    .await
    .unwrap();
    bed.apply(
        "fine",
        sf_spec("s", "k", &format!("instant-{run}-fine"), json!({})),
    )
    .await
    .unwrap();

    let s = bed
        .wait_status("boom", LONG, |s| ready_reason(s) == "False/InternalError")
        .await;
    assert_eq!(phase(&s), "Failed");
    bed.wait_event("InternalError", "Warning").await;
    let fine = bed.wait_status("fine", LONG, |s| phase(s) == "Ready").await;
    // A Store whose check panics (as one did on a token endpoint claiming a u64::MAX lifetime) is reported not
    // ready; the check runs outside the reconciles' guard, and uncaught it would end the process. Read from this
    // controller's metrics: the controllers of other tests that watch every namespace check this Store too, without
    // the panic, and write its Ready condition as well.
    bed.put_store(
        "boom",
        json!({"dialect": "ServiceFabricMesh", "endpoint": env("SF_ENDPOINT")}),
    )
    .await;
    let store_ready = |store: &str, ready: u8| {
        format!(
            "secretsync_store_ready{{store=\"Store/{}/{store}\"}} {ready}",
            bed.ns
        )
    };
    let end = Instant::now() + LONG;
    loop {
        let metrics = bed.metrics.render();
        if metrics.contains(&store_ready("boom", 0)) && metrics.contains(&store_ready("sf", 1)) {
            break;
        }
        assert!(
            Instant::now() < end,
            "the panicking store check was never reported: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let panics = |text: &str| -> u64 {
        // The object panics before its store is resolved: its dialect label is "unresolved".
        text.lines()
            .find(|l| l.starts_with("secretsync_reconcile_panics_total{"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    // Retried with backoff (1 s, then 2 s, 4 s, ...): more than once, but nowhere near a tight loop.
    let started = Instant::now();
    while panics(&bed.metrics.render()) < 3 {
        assert!(
            started.elapsed() < LONG,
            "the panicking object was not retried: {}",
            bed.metrics.render()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let n = panics(&bed.metrics.render());
    assert!(
        n <= 8,
        "{n} panics in a few seconds: retried in a tight loop"
    );

    // Every other object carries on: a change still reaches the store.
    bed.put_secret("s", json!({"k": unique("v2")})).await;
    bed.wait_status("fine", LONG, |s| s["syncedDigest"] != fine["syncedDigest"])
        .await;
    // The controller is still running; `finish` fails if its task panicked.
    bed.finish().await;
}

/// A store that accepts connections and never answers.
async fn hanging_store() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    (url, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_whose_stores_hang_does_not_hold_up_other_namespaces() {
    // Four workers, every SecretSync of the busy namespace on a store of its own: the per-store share alone would
    // let them take every worker.
    let bed = Bed::with(
        "ctl-nsfair",
        Opts {
            all_namespaces: true,
            ..Opts::default()
        },
    )
    .await;
    let other_ns = create_namespace(&bed.client, "ctl-nsfair-other").await;
    let run = unique("nsfair");
    bed.put_secret("s", json!({"k": unique("v")})).await;
    let mut stores = Vec::new();
    for i in 0..8 {
        let (url, task) = hanging_store().await;
        stores.push(task);
        bed.put_store(
            &format!("hung-{i}"),
            json!({"dialect": "ServiceFabricMesh", "endpoint": url}),
        )
        .await;
        let mut spec = sf_spec("s", "k", &format!("instant-{run}-{i}"), json!({}));
        spec["target"]["storeRef"]["name"] = json!(format!("hung-{i}"));
        bed.apply(&format!("hung-{i}"), spec).await.unwrap();
    }
    // Let the hung namespace's objects reach the workers first.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let other = Bed {
        client: bed.client.clone(),
        ns: other_ns.clone(),
        stop: None,
        task: None,
        http: reqwest::Client::new(),
        opts: Opts::default(),
        metrics: Metrics::new(),
    };
    other.put_secret("s", json!({"k": unique("v")})).await;
    other
        .put_store(
            "sf",
            json!({"dialect": "ServiceFabricMesh", "endpoint": env("SF_ENDPOINT")}),
        )
        .await;
    bed.apply_in(
        &other_ns,
        "other",
        sf_spec("s", "k", &format!("instant-{run}-other"), json!({})),
    )
    .await
    .unwrap();
    let started = Instant::now();
    // The hung stores hold a request for the client's 30 s timeout; without a share per namespace the other
    // namespace's object would wait at least that long.
    other
        .wait_status("other", Duration::from_secs(20), |s| phase(s) == "Ready")
        .await;
    eprintln!("other namespace Ready after {:?}", started.elapsed());
    for i in 0..8 {
        assert_ne!(
            phase(&bed.status(&format!("hung-{i}")).await),
            "Ready",
            "hung-{i} cannot be Ready: its store never answers"
        );
    }
    for task in stores {
        task.abort();
    }
    bed.finish().await;
    let _ = Api::<Namespace>::all(other.client.clone())
        .delete(&other_ns, &DeleteParams::default())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_cleanup_in_a_terminating_namespace_lets_go_after_the_timeout() {
    let bed = Bed::with(
        "ctl-nsgone",
        Opts {
            cleanup_timeout: Duration::from_secs(8),
            ..Opts::default()
        },
    )
    .await;
    let remote = format!("instant-{}", unique("nsgone"));
    let value = unique("nsgone-value");
    bed.put_secret("s", json!({"k": value})).await;
    bed.apply(
        "b",
        sf_spec("s", "k", &remote, json!({"deletionPolicy": "Delete"})),
    )
    .await
    .unwrap();
    bed.wait_status("b", LONG, |s| phase(s) == "Ready").await;

    // The store refuses every DELETE, and the namespace is being deleted (the test bed has no namespace
    // controller, so the test deletes the SecretSync itself, as that controller would).
    bed.fault_on(&remote, Some("DELETE"), 500, 1000).await;
    Api::<Namespace>::all(bed.client.clone())
        .delete(&bed.ns, &DeleteParams::default())
        .await
        .unwrap();
    bed.syncs()
        .delete("b", &DeleteParams::default())
        .await
        .unwrap();
    let deleted = Instant::now();
    let s = bed
        .wait_status("b", LONG, |s| ready_reason(s) == "False/DeletionBlocked")
        .await;
    assert!(
        condition_message(&s).contains("namespace is being deleted"),
        "{}",
        condition_message(&s)
    );
    let end = Instant::now() + LONG;
    while bed.syncs().get_opt("b").await.unwrap().is_some() {
        assert!(Instant::now() < end, "the finalizer was never released");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = deleted.elapsed();
    eprintln!("released {took:?} after deletion (timeout 8 s)");
    assert!(
        took >= Duration::from_secs(7),
        "released before the timeout: {took:?}"
    );
    assert!(
        bed.remote_exists(&remote).await,
        "the remote secret is left in place"
    );

    // New Events cannot be created in a terminating namespace: the warning is on the Namespace.
    let end = Instant::now() + Duration::from_secs(30);
    let event = loop {
        let events = Api::<Event>::namespaced(bed.client.clone(), "default")
            .list(&ListParams::default())
            .await
            .unwrap()
            .items;
        if let Some(e) = events.into_iter().find(|e| {
            e.reason.as_deref() == Some("RemoteSecretLeft")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(bed.ns.as_str())
        }) {
            break e;
        }
        assert!(Instant::now() < end, "no RemoteSecretLeft Event");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    let note = event.note.unwrap_or_default();
    assert!(note.contains(&remote), "{note}");
    assert!(
        bed.metrics
            .render()
            .contains("secretsync_remote_secrets_left_total{dialect=\"ServiceFabricMesh\"} 1"),
        "{}",
        bed.metrics.render()
    );
    bed.assert_no_leak(&[&value]).await;
    bed.finish().await;
}

/// Whether the store's finalizer that keeps it for its SecretSyncs' cleanups is on the Store.
async fn store_protected(bed: &Bed, name: &str) -> Option<bool> {
    Api::<Store>::namespaced(bed.client.clone(), &bed.ns)
        .get_opt(name)
        .await
        .unwrap()
        .map(|s| {
            s.finalizers()
                .iter()
                .any(|f| f == "secretsync.io/store-in-use")
        })
}

/// A namespace deleted as a whole: Kubernetes deletes its Secrets, its Store and its SecretSyncs at once, yet
/// every `deletionPolicy: Delete` SecretSync still deletes its remote secret through the namespace's own Store
/// (kept by its finalizer) with the store's credentials (remembered, their Secret being gone), and the namespace
/// goes. Needs kube-controller-manager's namespace controller, which runs with the test bed's node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_namespace_takes_its_remote_secrets_through_its_own_store() {
    if std::env::var("TESTBED_NODE").as_deref() != Ok("1") {
        eprintln!(
            "skipped: needs the test bed's node (its kube-controller-manager deletes namespaces)"
        );
        return;
    }
    let bed = Bed::new("ctl-teardown").await;
    // Another shard (a controller watching every namespace with a selector that matches none of this bed's
    // SecretSyncs) sees the Stores too: it must not release one that this bed's SecretSyncs still need.
    let other_shard = Bed::with(
        "ctl-teardown-shard",
        Opts {
            all_namespaces: true,
            ..Opts::default()
        },
    )
    .await;
    // Service Fabric over https with a bearer token: a store whose credentials live in a Secret of the namespace.
    let read = |var: &str| std::fs::read_to_string(env(var)).unwrap();
    bed.put_secret(
        "sf-token",
        json!({"token": read("SF_TOKEN_FILE").trim(), "ca.crt": read("SF_CA_CERT")}),
    )
    .await;
    let store = json!({
        "dialect": "ServiceFabricMesh",
        "endpoint": env("SF_TOKEN_ENDPOINT"),
        "credentialsRef": {"name": "sf-token"},
    });
    bed.put_store("tls", store.clone()).await;
    bed.put_store("other", store).await;
    let value = unique("teardown-value");
    bed.put_secret("s", json!({"k": value})).await;
    let delete = |store: &str, remote: &str| {
        let mut spec = through("Store", store, "s", remote);
        spec["deletionPolicy"] = json!("Delete");
        spec
    };
    let remotes: Vec<String> = (0..3).map(|i| unique(&format!("teardown-{i}"))).collect();
    bed.apply("a", delete("tls", &remotes[0])).await.unwrap();
    bed.apply("b", delete("tls", &remotes[1])).await.unwrap();
    bed.apply("c", delete("other", &remotes[2])).await.unwrap();
    for name in ["a", "b", "c"] {
        bed.wait_observed(name, LONG, |s| phase(s) == "Ready").await;
    }
    for remote in &remotes {
        assert!(bed.remote_exists(remote).await, "{remote} was not made");
    }
    assert_eq!(store_protected(&bed, "tls").await, Some(true));
    assert_eq!(store_protected(&bed, "other").await, Some(true));

    // A store whose last user switched to Retain keeps its protection until it is deleted, then goes at once.
    let mut retain = delete("other", &remotes[2]);
    retain["deletionPolicy"] = json!("Retain");
    bed.apply("c", retain).await.unwrap();
    bed.wait_observed("c", LONG, |s| phase(s) == "Ready").await;
    Api::<Store>::namespaced(bed.client.clone(), &bed.ns)
        .delete("other", &DeleteParams::default())
        .await
        .unwrap();
    let end = Instant::now() + LONG;
    while store_protected(&bed, "other").await.is_some() {
        assert!(Instant::now() < end, "an unused store was kept");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The namespace goes, and every remote secret of a Delete SecretSync with it.
    let t = Instant::now();
    Api::<Namespace>::all(bed.client.clone())
        .delete(&bed.ns, &DeleteParams::default())
        .await
        .unwrap();
    let end = Instant::now() + Duration::from_secs(120);
    while Api::<Namespace>::all(bed.client.clone())
        .get_opt(&bed.ns)
        .await
        .unwrap()
        .is_some()
    {
        assert!(
            Instant::now() < end,
            "the namespace is still there; SecretSyncs: {:?}",
            bed.syncs().list(&ListParams::default()).await.map(|l| l
                .items
                .into_iter()
                .map(|s| (s.name_any(), s.status))
                .collect::<Vec<_>>())
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!("the namespace went in {:?}", t.elapsed());
    assert!(
        !bed.remote_exists(&remotes[0]).await,
        "a's remote secret outlived its namespace"
    );
    assert!(
        !bed.remote_exists(&remotes[1]).await,
        "b's remote secret outlived its namespace"
    );
    assert!(
        bed.remote_exists(&remotes[2]).await,
        "c (Retain) kept its remote secret"
    );
    bed.assert_no_leak(&[&value, read("SF_TOKEN_FILE").trim()])
        .await;
    bed.finish().await;
    other_shard.finish().await;
}

// ---- stores: who may push where ----

/// A TCP listener that counts every connection made to it: a host no store names.
async fn tripwire() -> (
    String,
    Arc<std::sync::atomic::AtomicUsize>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    let task = tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(conn);
        }
    });
    (url, hits, task)
}

fn through(kind: &str, store: &str, secret: &str, remote: &str) -> Value {
    json!({
        "source": {"secretRef": {"name": secret, "key": "k"}},
        "target": {"storeRef": {"kind": kind, "name": store}, "remoteName": remote},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_store_serves_only_the_namespaces_it_admits() {
    let bed = Bed::with(
        "ctl-tenancy-a",
        Opts {
            all_namespaces: true,
            ..Opts::default()
        },
    )
    .await;
    let b = bed.view(&create_namespace(&bed.client, "ctl-tenancy-b").await);
    let shared = format!("{}-shared", bed.ns);
    let run = unique("tenancy");
    let (remote_a, remote_b) = (format!("instant-{run}-a"), format!("instant-{run}-b"));
    let (value_a, value_b) = (unique("value-a"), unique("value-b"));
    bed.put_secret("s", json!({"k": value_a})).await;
    b.put_secret("s", json!({"k": value_b})).await;

    // B names the ClusterStore before it exists: StoreNotFound, and it recovers by itself once it does.
    bed.apply_in(&b.ns, "x", through("ClusterStore", &shared, "s", &remote_b))
        .await
        .unwrap();
    let s = b.wait_status("x", LONG, |s| phase(s) == "Failed").await;
    assert_eq!(ready_reason(&s), "False/StoreNotFound");
    bed.put_cluster_store(
        &shared,
        json!({"dialect": "ServiceFabricMesh", "endpoint": env("SF_ENDPOINT"),
               "conditions": [{"namespaces": [bed.ns]}]}),
    )
    .await
    .unwrap();
    bed.apply("x", through("ClusterStore", &shared, "s", &remote_a))
        .await
        .unwrap();
    let s = bed.wait_status("x", LONG, |s| phase(s) == "Ready").await;
    assert_eq!(
        s["store"],
        json!({"kind": "ClusterStore", "name": shared, "dialect": "ServiceFabricMesh"})
    );
    let s = b
        .wait_status("x", LONG, |s| ready_reason(s) == "False/StoreNotAllowed")
        .await;
    assert!(condition_message(&s).contains(&b.ns), "{s}");
    b.wait_event("StoreNotAllowed", "Warning").await;
    let metrics = bed.metrics.render();
    assert!(
        metrics.contains(&format!(
            "secretsync_store_refusals_total{{store=\"ClusterStore/{shared}\",reason=\"StoreNotAllowed\"}}"
        )),
        "{metrics}"
    );
    // A's namespaced Store is not B's: the name resolves in B's namespace only.
    bed.apply_in(
        &b.ns,
        "y",
        through("Store", "sf", "s", &format!("{remote_b}-y")),
    )
    .await
    .unwrap();
    let s = b.wait_status("y", LONG, |s| phase(s) == "Failed").await;
    assert_eq!(ready_reason(&s), "False/StoreNotFound");
    // A name that is no store labels no counter: SecretSyncs' authors could add series without bound. (The
    // `secretsync_syncs` gauge is counted afresh from the objects there are, so it may name it.)
    let metrics = bed.metrics.render();
    let named = format!("store=\"Store/{}/sf\"", b.ns);
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("secretsync_") && l.contains("_total{") && l.contains(&named)),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "secretsync_store_refusals_total{store=\"unresolved\",reason=\"StoreNotFound\"}"
        ),
        "{metrics}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Under the ClusterStore's default template, B's remote name would be its namespace's.
    let (templated_a, templated_b) = (
        format!("{}-{remote_a}", bed.ns),
        format!("{}-{remote_b}", b.ns),
    );
    assert_eq!(
        bed.remote_stats(&templated_b).await,
        (0, 0),
        "the store heard from B"
    );
    assert_eq!(bed.remote_stats(&format!("{remote_b}-y")).await, (0, 0));

    // The admin admits B by a label and withdraws A: B syncs once its namespace is labelled, A stops pushing.
    bed.put_cluster_store(
        &shared,
        json!({"dialect": "ServiceFabricMesh", "endpoint": env("SF_ENDPOINT"),
               "conditions": [{"namespaceSelector": {"matchLabels": {"secretsync-test/admit": b.ns}}}]}),
    )
    .await
    .unwrap();
    let s = bed
        .wait_status("x", LONG, |s| ready_reason(s) == "False/StoreNotAllowed")
        .await;
    assert_eq!(phase(&s), "Failed");
    Api::<Namespace>::all(bed.client.clone())
        .patch(
            &b.ns,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"secretsync-test/admit": b.ns}}})),
        )
        .await
        .unwrap();
    b.wait_status("x", LONG, |s| phase(s) == "Ready").await;
    let writes_a = bed.remote_stats(&templated_a).await.1;
    assert!(
        writes_a > 0,
        "A's writes are not counted under {templated_a}"
    );
    bed.put_secret("s", json!({"k": unique("value-a2")})).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        bed.remote_stats(&templated_a).await.1,
        writes_a,
        "a namespace no longer admitted still wrote"
    );

    // The store goes while a Delete-policy SecretSync uses it: the deletion is blocked with a way out, not stuck.
    let mut spec = through("ClusterStore", &shared, "s", &remote_b);
    spec["deletionPolicy"] = json!("Delete");
    bed.apply_in(&b.ns, "x", spec.clone()).await.unwrap();
    // Ready under the new spec, so the controller has added its finalizer: x's status is still Ready from before,
    // and a wait on that alone let the test delete x before the controller saw the change (no finalizer, so x went
    // at once and DeletionBlocked never came).
    b.wait_observed("x", LONG, |s| phase(s) == "Ready").await;
    assert!(
        b.syncs()
            .get("x")
            .await
            .unwrap()
            .finalizers()
            .iter()
            .any(|f| f == controller::FINALIZER),
        "deletionPolicy Delete holds the finalizer"
    );
    Api::<ClusterStore>::all(bed.client.clone())
        .delete(&shared, &DeleteParams::default())
        .await
        .unwrap();
    b.syncs()
        .delete("x", &DeleteParams::default())
        .await
        .unwrap();
    let s = b
        .wait_status("x", LONG, |s| ready_reason(s) == "False/DeletionBlocked")
        .await;
    assert!(
        condition_message(&s).contains("deletionPolicy: Retain"),
        "{s}"
    );
    spec["deletionPolicy"] = json!("Retain");
    bed.apply_in(&b.ns, "x", spec).await.unwrap();
    let end = Instant::now() + LONG;
    while b.syncs().get_opt("x").await.unwrap().is_some() {
        assert!(Instant::now() < end, "Retain did not let the SecretSync go");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bed.assert_no_leak(&[&value_a, &value_b]).await;
    b.assert_no_leak(&[&value_a, &value_b]).await;
    bed.finish().await;
    b.finish().await;
}

/// Two teams sharing one ClusterStore (issue #27): the store, not a tenant, decides what a tenant may take, and a
/// name is not an identity. Every case asserts on the store's side (the Service Fabric emulator's values and write
/// counts), not only on statuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_sharing_a_cluster_store_cannot_take_each_others_secrets() {
    let bed = Bed::with(
        "ctl-share-a",
        Opts {
            all_namespaces: true,
            ..Opts::default()
        },
    )
    .await;
    let b = bed.view(&create_namespace(&bed.client, "ctl-share-b").await);
    let run = unique("share");
    let (value_a, value_b) = (unique("value-a"), unique("value-b"));
    bed.put_secret("s", json!({"k": value_a})).await;
    b.put_secret("s", json!({"k": value_b})).await;
    let both = json!([{"namespaces": [bed.ns, b.ns]}]);

    // The default template: both teams write `db` and each gets its own remote secret.
    let per_tenant = format!("{}-per-tenant", bed.ns);
    bed.put_cluster_store(
        &per_tenant,
        json!({"dialect": "ServiceFabricMesh", "endpoint": env("SF_ENDPOINT"), "conditions": both}),
    )
    .await
    .unwrap();
    let db = format!("db-{run}");
    bed.apply("db", through("ClusterStore", &per_tenant, "s", &db))
        .await
        .unwrap();
    bed.apply_in(&b.ns, "db", through("ClusterStore", &per_tenant, "s", &db))
        .await
        .unwrap();
    for (view, value) in [(&bed, &value_a), (&b, &value_b)] {
        let s = view.wait_status("db", LONG, |s| phase(s) == "Ready").await;
        let name = format!("{}-{db}", view.ns);
        assert_eq!(s["remote"]["name"], json!(name), "{s}");
        bed.assert_remote_holds(&s, &name, value).await;
    }
    assert!(
        !bed.remote_exists(&db).await,
        "the untemplated name was written"
    );

    // A store that keeps names as written: ownership markers decide.
    let as_written = format!("{}-as-written", bed.ns);
    let store = |adoption: &str| {
        json!({"dialect": "ServiceFabricMesh", "endpoint": env("SF_ENDPOINT"), "conditions": both,
               "remoteNameTemplate": "{remoteName}", "adoption": adoption})
    };
    bed.put_cluster_store(&as_written, store("Never"))
        .await
        .unwrap();

    // Take-over: A's secret, left with Retain when A's SecretSync went, is not B's to adopt unless the store says so.
    let x = format!("instant-x-{run}");
    bed.apply("x", through("ClusterStore", &as_written, "s", &x))
        .await
        .unwrap();
    let s = bed.wait_status("x", LONG, |s| phase(s) == "Ready").await;
    bed.assert_remote_holds(&s, &x, &value_a).await;
    let a_version = s["remote"]["version"].as_str().unwrap().to_owned();
    bed.delete_until_gone("x").await;
    let mut adopt = through("ClusterStore", &as_written, "s", &x);
    adopt["adoptExisting"] = json!(true);
    bed.apply_in(&b.ns, "x", adopt).await.unwrap();
    let s = b
        .wait_status("x", LONG, |s| ready_reason(s) == "False/AdoptionNotAllowed")
        .await;
    assert!(s["remote"].is_null(), "B holds A's remote: {s}");
    let writes = bed.remote_stats(&x).await.1;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        bed.remote_stats(&x).await.1,
        writes,
        "B wrote to A's secret"
    );
    assert_eq!(
        bed.remote_value(&x, &a_version).await.as_deref(),
        Some(value_a.as_str())
    );
    // The store's admin allows orphans to be adopted: now B takes it.
    bed.put_cluster_store(&as_written, store("UnmarkedOrOrphaned"))
        .await
        .unwrap();
    let s = b.wait_status("x", LONG, |s| phase(s) == "Ready").await;
    bed.assert_remote_holds(&s, &x, &value_b).await;

    // Squatting: B writes Y first; A's IfNotExists is a Conflict over it, not Ready, and shows none of B's ids.
    let y = format!("instant-y-{run}");
    bed.apply_in(&b.ns, "y", through("ClusterStore", &as_written, "s", &y))
        .await
        .unwrap();
    let b_status = b.wait_status("y", LONG, |s| phase(s) == "Ready").await;
    let mut keep = through("ClusterStore", &as_written, "s", &y);
    keep["updatePolicy"] = json!("IfNotExists");
    bed.apply("y", keep).await.unwrap();
    let s = bed
        .wait_status("y", LONG, |s| ready_reason(s) == "False/Conflict")
        .await;
    assert!(s["remote"].is_null(), "A holds B's remote: {s}");
    assert!(
        !s.to_string().contains(&b.ns),
        "the conflict names the other tenant: {s}"
    );
    bed.assert_remote_holds(&b_status, &y, &value_b).await;

    // A template whose names the dialect refuses: InvalidSpec naming the template, before any call.
    let slashed = format!("{}-slashed", bed.ns);
    bed.put_cluster_store(
        &slashed,
        json!({"dialect": "ServiceFabricMesh", "endpoint": env("SF_ENDPOINT"), "conditions": both,
               "remoteNameTemplate": "{namespace}/{remoteName}"}),
    )
    .await
    .unwrap();
    let z = format!("instant-z-{run}");
    bed.apply("z", through("ClusterStore", &slashed, "s", &z))
        .await
        .unwrap();
    let s = bed
        .wait_status("z", LONG, |s| ready_reason(s) == "False/InvalidSpec")
        .await;
    assert!(
        condition_message(&s).contains("remoteNameTemplate \"{namespace}/{remoteName}\""),
        "{s}"
    );
    bed.assert_no_leak(&[&value_a, &value_b]).await;
    b.assert_no_leak(&[&value_a, &value_b]).await;
    bed.finish().await;
    b.finish().await;
}

/// The race behind a_cluster_store_serves_only_the_namespaces_it_admits's rare timeouts under load, made
/// deterministic: the controller lags behind a change from Retain to Delete (stopped for two seconds). The status
/// still reads Ready from the previous generation, so a plain `wait_status` returns before the finalizer is there,
/// and a SecretSync deleted then goes at once, without its cleanup or a DeletionBlocked status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_after_a_spec_change_waits_for_the_controller_to_see_it() {
    let mut bed = Bed::new("ctl-lag").await;
    let view = bed.view(&bed.ns);
    let remote = format!("instant-{}", unique("lag"));
    let value = unique("value");
    bed.put_secret("s", json!({"k": value})).await;
    bed.apply("x", sf_spec("s", "k", &remote, json!({})))
        .await
        .unwrap();
    bed.wait_status("x", LONG, |s| phase(s) == "Ready").await;
    bed.stop().await;
    bed.apply(
        "x",
        sf_spec("s", "k", &remote, json!({"deletionPolicy": "Delete"})),
    )
    .await
    .unwrap();
    tokio::join!(
        view.wait_observed("x", LONG, |s| phase(s) == "Ready"),
        async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            bed.start();
        }
    );
    assert!(
        bed.syncs()
            .get("x")
            .await
            .unwrap()
            .finalizers()
            .iter()
            .any(|f| f == controller::FINALIZER),
        "the wait returned before the controller handled deletionPolicy: Delete"
    );
    bed.delete_until_gone("x").await;
    assert!(
        !bed.remote_exists(&remote).await,
        "the remote secret was deleted with x"
    );
    bed.assert_no_leak(&[&value]).await;
    bed.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secretsync_field_sends_a_credential_or_value_to_a_host_no_store_names() {
    let bed = Bed::new("ctl-hostile").await;
    let (evil, hits, task) = tripwire().await;
    let value = unique("value");
    bed.put_secret("s", json!({"k": value})).await;
    // Stores with real credentials: the Key Vault stand-in (a client secret for Entra ID) and Barbican behind
    // Keystone (a project token). Their Secrets sit in the team's namespace, as a team admin's Store has them.
    let ca = std::fs::read_to_string(env("AZUREKV_CA_CERT")).unwrap();
    bed.put_secret(
        "kv",
        json!({"tenantId": env("AZUREKV_TENANT_ID"), "clientId": env("AZUREKV_CLIENT_ID"),
               "clientSecret": env("AZUREKV_CLIENT_SECRET"), "ca.crt": ca}),
    )
    .await;
    bed.put_store(
        "kv",
        json!({"dialect": "AzureKeyVault", "endpoint": env("AZUREKV_ENDPOINT"),
               "credentialsRef": {"name": "kv"},
               "azureKeyVault": {"authorityHost": env("AZUREKV_AUTHORITY")}}),
    )
    .await;
    bed.put_secret(
        "os",
        json!({"authUrl": env("KEYSTONE_AUTH_URL"), "username": env("KEYSTONE_USERNAME"),
               "password": env("KEYSTONE_PASSWORD"), "userDomainName": "Default",
               "projectName": env("KEYSTONE_PROJECT"), "projectDomainName": "Default"}),
    )
    .await;
    bed.put_store(
        "os",
        json!({"dialect": "Barbican", "endpoint": env("BARBICAN_ENDPOINT"),
               "credentialsRef": {"name": "os"}}),
    )
    .await;
    let stores = [
        ("kv", "hostile-kv"),
        ("os", "hostile-os"),
        ("sf", "hostile-sf"),
    ];
    for (store, name) in stores {
        bed.apply(name, through("Store", store, "s", &unique("hostile")))
            .await
            .unwrap();
        bed.wait_status(name, LONG, |s| phase(s) == "Ready").await;
        // What the schema refuses next to storeRef, written straight into etcd: every field that once chose a
        // host or a credential, all pointing at the tripwire.
        rewrite_in_etcd(&bed.ns, name, |obj| {
            let t = &mut obj["spec"]["target"];
            t["endpoint"] = json!(evil);
            t["credentialsRef"] = json!({"name": "kv"});
            match store {
                "kv" => t["azureKeyVault"] = json!({"authorityHost": evil, "apiVersion": "7.5"}),
                "os" => t["barbican"] = json!({"projectId": "p", "interface": "admin"}),
                _ => t["serviceFabricMesh"] = json!({"apiVersion": "6.4-preview"}),
            }
        })
        .await;
    }
    // An inline target at the tripwire, with a credentials Secret it could not otherwise read.
    bed.apply(
        "hostile-inline",
        json!({"source": {"secretRef": {"name": "s", "key": "k"}},
               "target": {"dialect": "AzureKeyVault", "endpoint": evil, "credentialsRef": {"name": "kv"},
                          "azureKeyVault": {"authorityHost": evil}}}),
    )
    .await
    .unwrap();
    bed.wait_status("hostile-inline", LONG, |s| {
        ready_reason(s) == "False/InlineTargetNotAllowed"
    })
    .await;
    // A change makes every object push again with its rewritten spec.
    bed.put_secret("s", json!({"k": unique("value-2")})).await;
    for (_, name) in stores {
        let s = bed
            .wait_status(name, LONG, |s| {
                s["observedGeneration"].as_i64() == Some(2) && phase(s) == "Ready"
            })
            .await;
        assert_eq!(s["store"]["kind"], "Store", "{name}: {s}");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the controller connected to a host that no store names"
    );
    task.abort();
    bed.assert_no_leak(&[
        &value,
        &env("AZUREKV_CLIENT_SECRET"),
        &env("KEYSTONE_PASSWORD"),
    ])
    .await;
    bed.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_identity_through_a_store_presents_its_namespaces_service_account() {
    // The operator lists the API server's own audience too, to prove the TokenReview guard behind the list.
    let api_audience = "https://kubernetes.default.svc.cluster.local";
    let bed = Bed::with(
        "ctl-wi",
        Opts {
            token_audiences: vec!["api://AzureADTokenExchange".into(), api_audience.into()],
            ..Opts::default()
        },
    )
    .await;
    let value = unique("wi-value");
    bed.put_secret("s", json!({"k": value})).await;
    let account: k8s_openapi::api::core::v1::ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "vault-writer"}})).unwrap();
    Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(bed.client.clone(), &bed.ns)
        .create(&PostParams::default(), &account)
        .await
        .unwrap();
    // Entra ID's side: an app registration trusting exactly this ServiceAccount of the test bed's issuer.
    let ca = std::fs::read_to_string(env("AZUREKV_CA_CERT")).unwrap();
    let control = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .build()
        .unwrap();
    let subject = format!("system:serviceaccount:{}:vault-writer", bed.ns);
    let app: Value = control
        .post(format!("{}/federate", env("AZUREKV_CONTROL")))
        .json(&json!({"issuer": env("TESTBED_SA_ISSUER"), "subject": subject,
                      "public_key": std::fs::read_to_string(env("TESTBED_SA_PUBLIC_KEY")).unwrap()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    bed.put_secret(
        "wi",
        json!({"tenantId": env("AZUREKV_TENANT_ID"), "clientId": app["client_id"]}),
    )
    .await;
    let vault = |credentials: &str| {
        json!({"dialect": "AzureKeyVault", "endpoint": env("AZUREKV_ENDPOINT"),
               "credentialsRef": {"name": credentials}, "caBundle": ca,
               "azureKeyVault": {"authorityHost": env("AZUREKV_AUTHORITY")}})
    };
    let mut spec = vault("wi");
    spec["serviceAccountRef"] = json!({"name": "vault-writer"});
    bed.put_store("vault", spec).await;
    bed.apply("wi", through("Store", "vault", "s", &unique("wi")))
        .await
        .unwrap();
    bed.wait_status("wi", LONG, |s| phase(s) == "Ready").await;
    let seen: Value = control
        .get(format!("{}/subjects", env("AZUREKV_CONTROL")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Every assertion presented to this app registration: the ServiceAccount's, and nothing else.
    support::assert_presented_only(&seen, app["client_id"].as_str().unwrap(), &subject);

    // A namespaced Store whose credentials ask for the controller's own identity is refused before any call.
    bed.put_secret(
        "own",
        json!({"tenantId": env("AZUREKV_TENANT_ID"), "clientId": env("AZUREKV_WI_CLIENT_ID"),
               "workloadIdentity": "true"}),
    )
    .await;
    bed.put_store("own", vault("own")).await;
    bed.apply("own", through("Store", "own", "s", &unique("own")))
        .await
        .unwrap();
    let s = bed.wait_status("own", LONG, |s| phase(s) == "Failed").await;
    assert_eq!(ready_reason(&s), "False/StoreNotAllowed");
    assert!(condition_message(&s).contains("serviceAccountRef"), "{s}");

    // A store asking for a token this cluster's API server would accept, to be sent to an identity provider of
    // the store admin's choosing: refused, and nothing reaches that host.
    let (evil, hits, task) = tripwire().await;
    // A Store of the `wi` credentials with `audience`, its authority host the tripwire, and a SecretSync through
    // it; returns the SecretSync's status once Failed.
    let refused_audience = |name: &'static str, audience: &'static str| {
        let mut spec = vault("wi");
        spec["serviceAccountRef"] = json!({"name": "vault-writer", "audience": audience});
        spec["azureKeyVault"]["authorityHost"] = json!(evil);
        let bed = &bed;
        async move {
            bed.put_store(name, spec).await;
            bed.apply(name, through("Store", name, "s", &unique("aud")))
                .await
                .unwrap();
            bed.wait_status(name, LONG, |s| phase(s) == "Failed").await
        }
    };
    let s = refused_audience("api-audience", api_audience).await;
    assert_eq!(ready_reason(&s), "False/StoreNotAllowed");
    assert!(condition_message(&s).contains("API server"), "{s}");

    // A tenant's Store asking for a token another service would accept (Vault's Kubernetes auth, istiod), to be
    // posted to the tenant's own HTTPS listener trusted through the tenant's CA: the audience is not the
    // operator's, so no token is requested and the listener hears nothing, from the store check either.
    let s = refused_audience("vault-audience", "vault").await;
    assert_eq!(ready_reason(&s), "False/StoreNotAllowed");
    assert!(condition_message(&s).contains("--token-audiences"), "{s}");
    bed.wait_store_ready("vault-audience", "False/StoreNotAllowed")
        .await;

    // An authority host that is neither Entra ID's nor in the operator's list: the Store itself says why.
    let mut spec = vault("wi");
    spec["serviceAccountRef"] = json!({"name": "vault-writer"});
    spec["azureKeyVault"]["authorityHost"] = json!("https://catcher.team-b.svc:8443");
    bed.put_store("catcher", spec).await;
    bed.apply("catcher", through("Store", "catcher", "s", &unique("c")))
        .await
        .unwrap();
    let s = bed
        .wait_status("catcher", LONG, |s| phase(s) == "Failed")
        .await;
    assert_eq!(ready_reason(&s), "False/StoreNotAllowed");
    let store = bed
        .wait_store_ready("catcher", "False/EndpointNotAllowed")
        .await;
    assert!(
        store.to_string().contains("--namespaced-store-hosts"),
        "{store}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    task.abort();
    bed.assert_no_leak(&[&value]).await;
    bed.finish().await;
}

/// A namespaced Store (a namespace admin's) reaches neither the controller's own machine (a unix socket, the
/// default Docker socket) nor a host outside the operator's `--namespaced-store-hosts`; an endpoint that would let
/// its author pick more than a host (user information, a query, a fragment, a control character) is refused when
/// applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespaced_store_reaches_only_what_the_operator_allows() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let bed = Bed::new("ctl-reach").await;
    bed.put_secret("s", json!({"k": unique("reach-value")}))
        .await;
    // A canary socket on the controller's machine: any connection to it is counted.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("canary.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let canary = tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(conn);
        }
    });
    let stores = [
        ("default-socket", json!({"dialect": "DockerSwarm"})),
        (
            "canary-socket",
            json!({"dialect": "DockerSwarm", "endpoint": format!("unix://{}", path.display())}),
        ),
        (
            "elsewhere",
            json!({"dialect": "ServiceFabricMesh", "endpoint": "http://10.0.3.7:8080"}),
        ),
    ];
    for (name, spec) in &stores {
        bed.put_store(name, spec.clone()).await;
        bed.apply(name, through("Store", name, "s", &unique(name)))
            .await
            .unwrap();
    }
    for (name, _) in &stores {
        let s = bed.wait_status(name, LONG, |s| phase(s) == "Failed").await;
        assert_eq!(ready_reason(&s), "False/StoreNotAllowed", "{name}: {s}");
        let store = bed.wait_store_ready(name, "False/EndpointNotAllowed").await;
        let why = if name.ends_with("socket") {
            "unix socket"
        } else {
            "--namespaced-store-hosts"
        };
        assert!(store.to_string().contains(why), "{name}: {store}");
    }
    // Refused by the schema when applied.
    for endpoint in [
        "http://127.0.0.1:8080/admin/config#",
        "http://127.0.0.1:8080/p?x=1",
        "http://user@127.0.0.1:8080",
        "unix://\u{0}canary",
        "http://127.0.0.1:8080/\r\nHost: evil",
    ] {
        let obj = json!({
            "apiVersion": "secretsync.io/v1alpha1", "kind": "Store", "metadata": {"name": "shaped"},
            "spec": {"dialect": "ServiceFabricMesh", "endpoint": endpoint},
        });
        let refused = Api::<Store>::namespaced(bed.client.clone(), &bed.ns)
            .patch(
                "shaped",
                &PatchParams::apply("secretsync-tests").force(),
                &Patch::Apply(&obj),
            )
            .await;
        assert!(
            matches!(&refused, Err(kube::Error::Api(e)) if e.code == 422),
            "{endpoint:?}: {refused:?}"
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the canary socket was reached"
    );
    canary.abort();
    bed.finish().await;
}

/// A store that answers every request with `status`, `body` and a header carrying `canary`.
async fn canary_store(status: &'static str, body: String, canary: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut buf = vec![0u8; 65536];
            let _ = conn.read(&mut buf).await;
            let answer = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nx-canary: {canary}\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(answer.as_bytes()).await;
        }
    });
    url
}

/// Whatever a store answers, its words reach no status (the SecretSync's or the Store's), Event, log line or
/// metric: an internal service a Store points at cannot be read through the controller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_store_answer_reaches_a_status_an_event_a_log_or_a_metric() {
    let bed = Bed::new("ctl-canary").await;
    let canary = unique("CANARY");
    bed.put_secret("s", json!({"k": unique("canary-value")}))
        .await;
    let error = json!({"Error": {"Code": canary, "Message": canary}}).to_string();
    let answers = [
        ("c404", "404 Not Found", error.clone()),
        ("c500", "500 Internal Server Error", error.clone()),
        ("c403", "403 Forbidden", error),
        (
            "c200",
            "200 OK",
            json!({"name": canary, "properties": canary}).to_string(),
        ),
    ];
    for (name, status, body) in answers.iter().cloned() {
        let url = canary_store(status, body, canary.clone()).await;
        bed.put_store(
            name,
            json!({"dialect": "ServiceFabricMesh", "endpoint": url}),
        )
        .await;
        let mut spec = sf_spec("s", "k", &unique(name), json!({}));
        spec["target"]["storeRef"]["name"] = json!(name);
        bed.apply(name, spec).await.unwrap();
    }
    for (name, _, _) in &answers {
        bed.wait_status(name, LONG, |s| phase(s) == "Failed").await;
    }
    // The stores' own checks, and the Events of the failures, have had their time.
    tokio::time::sleep(Duration::from_secs(2)).await;
    bed.assert_no_leak(&[&canary]).await;
    let stores = serde_json::to_string(
        &Api::<Store>::namespaced(bed.client.clone(), &bed.ns)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|s| &s.status)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    assert!(
        stores.contains("Ready"),
        "the stores were checked: {stores}"
    );
    assert!(
        !stores.contains(&canary),
        "a store's answer in a Store's status: {stores}"
    );
    let metrics = bed.metrics.render();
    assert!(!metrics.contains(&canary), "a store's answer in a metric");
    bed.finish().await;
}

/// deploy/'s admission policy, bound to `ns` only and renamed for it (the shipped binding covers the cluster, and
/// other tests here use inline targets).
async fn bind_admission_policy_to(client: &Client, ns: &str) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/base/admission-policy.yaml"
    ))
    .unwrap();
    let policy_name = format!("{ns}-stores-only");
    for doc in yaml_serde::Deserializer::from_str(&text) {
        let mut doc: Value = serde::Deserialize::deserialize(doc).unwrap();
        doc["metadata"]["name"] = json!(policy_name);
        doc["metadata"]["labels"] = json!({BED_LABEL: ns});
        let plural = match doc["kind"].as_str().unwrap() {
            "ValidatingAdmissionPolicy" => "validatingadmissionpolicies",
            "ValidatingAdmissionPolicyBinding" => {
                assert_eq!(doc["spec"]["validationActions"], json!(["Deny"]));
                doc["spec"]["policyName"] = json!(policy_name);
                doc["spec"]["matchResources"] = json!({"namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": ns}}});
                "validatingadmissionpolicybindings"
            }
            other => panic!("unexpected {other} in the admission policy file"),
        };
        let resource = kube::discovery::ApiResource {
            group: "admissionregistration.k8s.io".into(),
            version: "v1".into(),
            api_version: "admissionregistration.k8s.io/v1".into(),
            kind: doc["kind"].as_str().unwrap().into(),
            plural: plural.into(),
        };
        let api: Api<kube::api::DynamicObject> = Api::all_with(client.clone(), &resource);
        let obj: kube::api::DynamicObject = serde_json::from_value(doc).unwrap();
        api.patch(
            &policy_name,
            &PatchParams::apply("secretsync-tests").force(),
            &Patch::Apply(&obj),
        )
        .await
        .expect("admission policy applied");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_admission_policy_refuses_inline_targets_at_apply() {
    let bed = Bed::with(
        "ctl-admission",
        Opts {
            allow_inline: true,
            ..Opts::default()
        },
    )
    .await;
    bed.put_secret("s", json!({"k": unique("v")})).await;
    let inline = |remote: &str| {
        json!({
            "source": {"secretRef": {"name": "s", "key": "k"}},
            "target": {"dialect": "ServiceFabricMesh", "endpoint": env("SF_ENDPOINT"), "remoteName": remote},
            "deletionPolicy": "Delete",
        })
    };
    // One inline SecretSync from before the policy, synced under a finalizer.
    let old_remote = format!("instant-{}", unique("before"));
    bed.apply("before", inline(&old_remote)).await.unwrap();
    bed.wait_status("before", LONG, |s| phase(s) == "Ready")
        .await;
    bind_admission_policy_to(&bed.client, &bed.ns).await;

    // Policies take effect within seconds: poll until a new inline SecretSync is refused.
    let end = Instant::now() + LONG;
    let refusal = loop {
        match bed.apply("new", inline(&unique("new"))).await {
            Err(kube::Error::Api(e)) => break e,
            Ok(_) => {
                let _ = bed.syncs().delete("new", &DeleteParams::default()).await;
                assert!(
                    Instant::now() < end,
                    "the admission policy never refused an inline target"
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    };
    assert!(
        refusal.message.contains("spec.target.storeRef"),
        "{}",
        refusal.message
    );
    // Through a store: accepted.
    bed.apply(
        "stored",
        sf_spec("s", "k", &format!("instant-{}", unique("ok")), json!({})),
    )
    .await
    .expect("a SecretSync through a store is accepted");
    // The existing inline object: its target cannot change, but it can be let go (Retain) and deleted; the
    // controller's finalizer removal passes.
    let mut moved = inline(&old_remote);
    moved["target"]["endpoint"] = json!("https://elsewhere.example");
    assert!(
        bed.apply("before", moved).await.is_err(),
        "an inline target was changed"
    );
    let mut retain = inline(&old_remote);
    retain["deletionPolicy"] = json!("Retain");
    bed.apply("before", retain)
        .await
        .expect("Retain on an existing inline SecretSync");
    bed.delete_until_gone("before").await;
    for plural in [
        "validatingadmissionpolicybindings",
        "validatingadmissionpolicies",
    ] {
        let resource = kube::discovery::ApiResource {
            group: "admissionregistration.k8s.io".into(),
            version: "v1".into(),
            api_version: "admissionregistration.k8s.io/v1".into(),
            kind: String::new(),
            plural: plural.into(),
        };
        let api: Api<kube::api::DynamicObject> = Api::all_with(bed.client.clone(), &resource);
        let _ = api
            .delete(&format!("{}-stores-only", bed.ns), &DeleteParams::default())
            .await;
    }
    bed.finish().await;
}
