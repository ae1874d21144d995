//! End to end on a real node: `deploy/` applied with kubectl runs two SecretSync pods on the test bed's node
//! (tests/testbed/node/: containerd, kubelet, kube-proxy, kube-scheduler, kube-controller-manager), with the image
//! built by `make image` (or its static binary, without a dockerd) and imported into the node's containerd.
//!
//! One test, in phases that share the Deployment: the pods become Ready through their own probes, hardened and
//! admitted under the `restricted` Pod Security level; one holds the Lease; the examples reach Ready (all five,
//! some with a test-bed substitution, see tests/testbed/node/README.md) and a source change reaches each store; deleting the leader pod
//! hands over within the lease time without a second write; a namespace holding a SecretSync with
//! deletionPolicy: Delete goes away with its remote secret; a rolling update never leaves no replica ready and an
//! eviction honours the PDB; and the audit log shows every request the pods made with their own mounted token,
//! none denied, none outside deploy/'s RBAC.
//!
//! Skipped when the environment configures no node (`TESTBED_NODE` unset or 0); fails when it is configured
//! (`make test`, `make testbed`) but not up.
//!
//! Why deploy/ runs in `secretsync-system` as is, next to tests/e2e.rs (which applies the same deploy/ there and
//! runs the controller as host processes under the same ServiceAccount and Lease): the two never overlap. Cargo runs
//! test binaries one after another; this file holds a single test; and the image is imported as
//! `testbed.invalid/secretsync:<tag>`, a name only this test's kustomize overlay uses, so the Deployment that
//! e2e.rs (or helm.rs) leaves behind with `secretsync:<version>` never gets a running pod. When this test ends,
//! pass or fail, it deletes the Deployment and waits for its pods to be gone, so no controller of ours outlives it.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

mod support;
use support::{env, substitute};
#[path = "support/aws_call.rs"]
mod aws_call;
#[path = "support/cluster.rs"]
#[allow(dead_code)]
mod cluster;
#[path = "support/ssm_call.rs"]
mod ssm_call;
#[path = "support/vault_cli.rs"]
mod vault_cli;
use cluster::{
    SYSTEM_NS, install_crds_and_namespace, kubectl, kubectl_json, kubectl_try, ready_reason, root,
    sf_writes, wait_for,
};
#[path = "support/rbac_audit.rs"]
mod rbac_audit;
use rbac_audit::{SA_USER, audit_lines, audited, covers, granted};
#[path = "support/metrics_access.rs"]
mod metrics_access;
use metrics_access::{MetricsClient, scrape_at};

const SELECTOR: &str = "app.kubernetes.io/name=secretsync";
/// deploy/ sets no lease time: the controller's default.
const LEASE_SECONDS: u64 = 15;

/// The node's settings, or `None` (and the test is skipped) when the environment configures no node.
struct Node {
    ip: String,
    containerd: String,
}

fn node() -> Option<Node> {
    if std::env::var("TESTBED_NODE").unwrap_or_default() != "1" {
        eprintln!(
            "TESTBED_NODE is not 1: no node is configured, node_e2e skipped (`make testbed` starts one)"
        );
        return None;
    }
    let Ok(ip) = std::env::var("TESTBED_NODE_IP") else {
        panic!(
            "TESTBED_NODE=1 but the node is not up (no TESTBED_NODE_IP): see the test bed's logs \
             (kubelet.log, node-runtime.log, kube-controller-manager.log)"
        );
    };
    Some(Node {
        ip,
        containerd: env("TESTBED_NODE_CONTAINERD"),
    })
}

/// Takes down what the test made, pass or fail: the Deployment (and waits for its pods to be gone, so no
/// controller of ours is left acting on later tests' objects), the cluster-wide admission binding deploy/
/// installs (as tests/e2e.rs does), the Lease and the test's namespaces.
struct Cleanup {
    namespaces: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        // First the SecretSyncs and namespaces, while the controller still runs to release their finalizers.
        for ns in &self.namespaces {
            let _ = kubectl_try(
                &["-n", ns, "delete", "ssync", "--all", "--timeout=60s"],
                None,
            );
            let _ = kubectl_try(
                &[
                    "delete",
                    "namespace",
                    ns,
                    "--ignore-not-found",
                    "--timeout=60s",
                ],
                None,
            );
            // The Key Vault example's ClusterStore and its credentials, named after the namespace
            // (`examples_for_pods`).
            let _ = kubectl_try(&["delete", "clusterstore", ns, "--ignore-not-found"], None);
            let _ = kubectl_try(
                &[
                    "-n",
                    SYSTEM_NS,
                    "delete",
                    "secret",
                    &format!("{ns}-azure"),
                    "--ignore-not-found",
                ],
                None,
            );
        }
        let _ = kubectl_try(
            &[
                "-n",
                SYSTEM_NS,
                "delete",
                "deployment",
                "secretsync",
                "--ignore-not-found",
                "--timeout=60s",
            ],
            None,
        );
        let _ = kubectl_try(
            &[
                "-n",
                SYSTEM_NS,
                "wait",
                "--for=delete",
                "pod",
                "-l",
                SELECTOR,
                "--timeout=60s",
            ],
            None,
        );
        let _ = kubectl_try(
            &[
                "delete",
                "validatingadmissionpolicybinding",
                "secretsync-stores-only",
                "--ignore-not-found",
            ],
            None,
        );
        let _ = kubectl_try(
            &[
                "-n",
                SYSTEM_NS,
                "delete",
                "lease",
                "secretsync",
                "--ignore-not-found",
            ],
            None,
        );
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

/// The deploy/ pods that exist and are not being deleted, with their JSON.
fn pods() -> Vec<Value> {
    kubectl_json(&["-n", SYSTEM_NS, "get", "pods", "-l", SELECTOR])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect()
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

fn name(obj: &Value) -> String {
    obj["metadata"]["name"].as_str().unwrap_or("").to_owned()
}

fn ready_pods() -> Vec<String> {
    pods().iter().filter(|p| is_ready(p)).map(name).collect()
}

fn lease_holder() -> String {
    kubectl_try(
        &[
            "-n",
            SYSTEM_NS,
            "get",
            "lease",
            "secretsync",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ],
        None,
    )
    .unwrap_or_default()
}

fn rollout() {
    let out = kubectl_try(
        &[
            "-n",
            SYSTEM_NS,
            "rollout",
            "status",
            "deployment/secretsync",
            "--timeout=180s",
        ],
        None,
    );
    if let Err(e) = out {
        panic!("{e}\n{}", diagnostics());
    }
    wait_for("two ready pods", Duration::from_secs(60), || {
        ready_pods().len() == 2
    });
}

/// What a failure report needs: pods, their events, the controller's logs.
fn diagnostics() -> String {
    let mut out =
        kubectl_try(&["-n", SYSTEM_NS, "get", "pods", "-o", "wide"], None).unwrap_or_else(|e| e);
    out += &kubectl_try(
        &["-n", SYSTEM_NS, "get", "events", "--sort-by=.lastTimestamp"],
        None,
    )
    .unwrap_or_else(|e| e);
    for p in pods() {
        out += &format!("--- log of {}\n", name(&p));
        out += &kubectl_try(&["-n", SYSTEM_NS, "logs", &name(&p), "--tail=40"], None)
            .unwrap_or_else(|e| e);
    }
    out
}

/// `kubectl -n SYSTEM_NS logs POD` (the API server reaches the kubelet on the node).
fn pod_log(pod: &str) -> String {
    kubectl_try(&["-n", SYSTEM_NS, "logs", pod], None).unwrap_or_default()
}

fn ssync(ns: &str, name: &str) -> Value {
    kubectl_json(&["-n", ns, "get", "ssync", name])
}

fn sf_exists(remote: &str) -> bool {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!(
            "{}/Resources/Secrets/{remote}?api-version=6.4-preview",
            env("SF_ENDPOINT")
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout) == "200"
}

/// A test-bed endpoint as pods reach it: the node's IP (DNATed to the same port on 127.0.0.1) for 127.0.0.1.
fn for_pods(text: &str, node: &Node) -> String {
    text.replace("127.0.0.1", &node.ip)
}

/// The SecretSyncs of the examples the node runs, by name: every example of deploy/examples/.
const EXAMPLES: [&str; 7] = [
    "db-password-aws",
    "db-password-azure",
    "db-password-barbican",
    "db-password-sf",
    "db-password-swarm",
    "db-password-tencent",
    "db-password-vault",
];

/// `text` with `from` replaced by `to`; panics when `from` is not there (the example changed under the test).
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "no {from:?} in the example");
    text.replacen(from, to, 1)
}

/// The examples as pods run them: written for the host, they are moved into the namespace `ns` (the Key Vault
/// ClusterStore is named `ns` too, and its credentials Secret `ns-azure`), with remote name `remote`, every
/// test-bed address at the node's IP (`for_pods`), and two test-bed substitutions that the node's network needs
/// (tests/testbed/node/README.md): Docker Swarm over the engine's mutual-TLS TCP port with a credentials Secret
/// holding the client certificate, since a pod under the `restricted` level cannot mount the engine's socket;
/// and Tencent SSM at the emulator's HTTPS port with the test bed's CA as the store's `caBundle`, since the
/// dialect takes plain HTTP only on loopback.
fn examples_for_pods(ns: &str, remote: &str, node: &Node) -> String {
    let read = |f: &str| std::fs::read_to_string(root().join("deploy/examples").join(f)).unwrap();
    // The example names Barbican's URL (a namespaced Store may not follow Keystone's catalog, which lists the
    // host's loopback address anyway): `for_pods` moves it to the node's IP like every other address.
    let barbican = read("barbican.yaml");
    assert!(
        barbican.contains("  endpoint: ${BARBICAN_ENDPOINT}\n"),
        "the Barbican example names its endpoint"
    );
    // The example's ClusterStore over the engine's socket becomes a Store of the namespace over TLS: a namespaced
    // Store may reach the node's address, which the overlay lists in --namespaced-store-hosts (`overlay`).
    let swarm = [
        (
            "kind: ClusterStore\nmetadata:\n  name: docker-swarm\nspec:\n",
            "kind: Store\nmetadata:\n  name: docker-swarm\n  namespace: examples\nspec:\n",
        ),
        (
            "  endpoint: unix://${DOCKER_SWARM_SOCKET}\n",
            "  endpoint: ${DOCKER_SWARM_TLS_ENDPOINT}\n  credentialsRef:\n    name: docker-swarm-tls\n",
        ),
        ("  conditions:\n    - namespaces: [examples]\n", ""),
        (
            "      kind: ClusterStore\n      name: docker-swarm\n",
            "      kind: Store\n      name: docker-swarm\n",
        ),
    ]
    .iter()
    .fold(read("docker-swarm.yaml"), |text, (from, to)| {
        replace_once(&text, from, to)
    });
    let pem = |var: &str| std::fs::read_to_string(env(var)).unwrap();
    // A JSON string is a YAML scalar: the PEM's line breaks survive as escapes.
    let tencent = replace_once(
        &read("tencent-ssm.yaml"),
        "  endpoint: ${SSM_ENDPOINT}\n",
        &format!(
            "  endpoint: ${{SSM_TLS_ENDPOINT}}\n  caBundle: {}\n",
            serde_json::Value::String(pem("SSM_CA_CERT"))
        ),
    );
    let swarm_tls = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "docker-swarm-tls", "namespace": ns},
        "stringData": {"ca.crt": pem("DOCKER_SWARM_CA_CERT"), "tls.crt": pem("DOCKER_SWARM_CLIENT_CERT"),
                       "tls.key": pem("DOCKER_SWARM_CLIENT_KEY")},
    });
    let azure = replace_once(
        &read("azure-key-vault.yaml"),
        "namespaces: [examples]\n",
        &format!("namespaces: [{ns}]\n"),
    )
    .replace("name: azure-key-vault\n", &format!("name: {ns}\n"))
    .replace("name: azure-credentials\n", &format!("name: {ns}-azure\n"));
    let text = [
        read("00-namespace.yaml"),
        read("aws-secrets-manager.yaml"),
        read("vault.yaml"),
        read("service-fabric-mesh.yaml"),
        azure,
        barbican,
        swarm,
        swarm_tls.to_string(),
        tencent,
    ]
    .join("\n---\n")
    .replace("name: examples\n", &format!("name: {ns}\n"))
    .replace("namespace: examples\n", &format!("namespace: {ns}\n"))
    .replace(
        "remoteName: db-password\n",
        &format!("remoteName: {remote}\n"),
    );
    for_pods(&substitute(&text), node)
}

/// curl with `args`; its output, or a panic with curl's error and the reply.
fn curl(args: &[&str], stdin: Option<&str>) -> String {
    cluster::run(
        "curl",
        &[&["-sS", "--fail-with-body"], args].concat(),
        stdin,
    )
    .unwrap_or_else(|e| panic!("curl {args:?}: {e}"))
}

/// What the store of an example's SecretSync `s` holds, read on the host through the store's own API: the value,
/// or for Docker Swarm (whose API never returns a value) the owner label of the secret the status names.
fn held(s: &Value) -> String {
    let remote = &s["status"]["remote"];
    let json = |text: String| serde_json::from_str::<Value>(&text).unwrap();
    match name(s).as_str() {
        "db-password-sf" => json(curl(
            &[
                "-X",
                "POST",
                &format!(
                    "{}/Resources/Secrets/{}/values/{}/list_value?api-version=6.4-preview",
                    env("SF_ENDPOINT"),
                    remote["name"].as_str().unwrap(),
                    remote["version"].as_str().unwrap()
                ),
            ],
            None,
        ))["value"]
            .as_str()
            .unwrap()
            .to_owned(),
        "db-password-azure" => {
            let ca = env("AZUREKV_CA_CERT");
            let token = json(curl(
                &[
                    "--cacert",
                    &ca,
                    "--data-urlencode",
                    "grant_type=client_credentials",
                    "--data-urlencode",
                    &format!("client_id={}", env("AZUREKV_CLIENT_ID")),
                    "--data-urlencode",
                    &format!("client_secret={}", env("AZUREKV_CLIENT_SECRET")),
                    "--data-urlencode",
                    "scope=https://vault.azure.net/.default",
                    &format!(
                        "{}/{}/oauth2/v2.0/token",
                        env("AZUREKV_AUTHORITY"),
                        env("AZUREKV_TENANT_ID")
                    ),
                ],
                None,
            ))["access_token"]
                .as_str()
                .unwrap()
                .to_owned();
            json(curl(
                &[
                    "--cacert",
                    &ca,
                    "-H",
                    &format!("Authorization: Bearer {token}"),
                    &format!(
                        "{}/secrets/{}?api-version=7.4",
                        env("AZUREKV_ENDPOINT"),
                        remote["name"].as_str().unwrap()
                    ),
                ],
                None,
            ))["value"]
                .as_str()
                .unwrap()
                .to_owned()
        }
        "db-password-barbican" => {
            let auth = serde_json::json!({"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": env("KEYSTONE_USERNAME"), "domain": {"name": "Default"},
                    "password": env("KEYSTONE_PASSWORD")}}},
                "scope": {"project": {"name": env("KEYSTONE_PROJECT"), "domain": {"name": "Default"}}}}});
            let headers = curl(
                &[
                    "-o",
                    "/dev/null",
                    "-D",
                    "-",
                    "-H",
                    "Content-Type: application/json",
                    "--data-binary",
                    "@-",
                    &format!("{}/auth/tokens", env("KEYSTONE_AUTH_URL")),
                ],
                Some(&auth.to_string()),
            );
            let token = headers
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("x-subject-token")
                        .then(|| v.trim().to_owned())
                })
                .expect("a Keystone token");
            // The status records the secret's reference, which Barbican makes from its own (loopback) address.
            curl(
                &[
                    "-H",
                    &format!("X-Auth-Token: {token}"),
                    "-H",
                    "Accept: text/plain",
                    &format!("{}/payload", remote["id"].as_str().unwrap()),
                ],
                None,
            )
        }
        "db-password-swarm" => {
            let out = Command::new("/usr/bin/docker")
                .args(["-H", &format!("unix://{}", env("DOCKER_SWARM_SOCKET"))])
                .args(["secret", "inspect", "--format"])
                .arg(r#"{{index .Spec.Labels "secretsync.io/owner"}}"#)
                .arg(remote["name"].as_str().unwrap())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "docker secret inspect: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        }
        "db-password-tencent" => {
            // Through the emulator's plain-HTTP listener on the host: the store the pods wrote over HTTPS.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let answer = runtime.block_on(ssm_call::call(
                &env("SSM_SECRET_ID"),
                &env("SSM_SECRET_KEY"),
                "GetSecretValue",
                serde_json::json!({"SecretName": remote["name"], "VersionId": remote["version"]}),
            ));
            answer["SecretString"]
                .as_str()
                .unwrap_or_else(|| panic!("GetSecretValue: {answer}"))
                .to_owned()
        }
        "db-password-aws" => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let (_, answer) = runtime.block_on(aws_call::call(
                "GetSecretValue",
                serde_json::json!({"SecretId": remote["name"]}),
            ));
            answer["SecretString"]
                .as_str()
                .unwrap_or_else(|| panic!("GetSecretValue: {answer}"))
                .to_owned()
        }
        "db-password-vault" => {
            let name = remote["name"].as_str().expect("a remote name");
            let current =
                vault_cli::kv_get(name).unwrap_or_else(|| panic!("nothing at secret/{name}"));
            current["data"]["value"]
                .as_str()
                .unwrap_or_else(|| panic!("vault kv get {name}: {current}"))
                .to_owned()
        }
        other => panic!("no store check for {other}"),
    }
}

/// What `held` should find for the SecretSync `s` when its source holds `value`.
fn expected(s: &Value, value: &str) -> String {
    match name(s).as_str() {
        "db-password-swarm" => format!(
            "{}/{}",
            s["metadata"]["namespace"].as_str().unwrap(),
            name(s)
        ),
        _ => value.to_owned(),
    }
}

/// The container's process on the host, through the node's containerd: (uid, effective capabilities, whether
/// its root filesystem is mounted read-only).
fn container_process(node: &Node, container_id: &str) -> (String, String, bool) {
    let out = Command::new("ctr")
        .args(["-a", &node.containerd, "-n", "k8s.io", "tasks", "ls"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    let pid = list
        .lines()
        .find(|l| l.starts_with(container_id))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("container {container_id} not in `ctr tasks ls`:\n{list}"))
        .to_owned();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .map(|l| l[k.len()..].trim().to_owned())
            .unwrap_or_default()
    };
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let root_ro = mountinfo.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 5 && f[4] == "/" && f[5].split(',').any(|o| o == "ro")
    });
    (field("Uid:"), field("CapEff:"), root_ro)
}

fn evict(pod: &str) -> Result<String, String> {
    let body = format!(
        r#"{{"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {{"name": "{pod}", "namespace": "{SYSTEM_NS}"}}}}"#
    );
    kubectl_try(
        &[
            "create",
            "--raw",
            &format!("/api/v1/namespaces/{SYSTEM_NS}/pods/{pod}/eviction"),
            "-f",
            "-",
        ],
        Some(&body),
    )
}

/// The kustomize overlay this test applies: deploy/ as it is, with the image imported into the node, and the
/// node's address (where the pods reach the test bed's stores) as the namespaced Stores' allowed host: pods do not
/// inherit the test's environment (`.testbed/env` sets `SECRETSYNC_NAMESPACED_STORE_HOSTS` for host processes).
fn overlay(dir: &std::path::Path, tag: &str, node: &Node) -> PathBuf {
    let path = dir.join(format!("overlay-{tag}"));
    std::fs::create_dir_all(&path).unwrap();
    // kustomize takes no absolute path as a resource: deploy/ relative to the overlay, through /.
    let up = "../".repeat(path.components().count() - 1);
    let deploy = root().join("deploy");
    let deploy = format!("{up}{}", deploy.strip_prefix("/").unwrap().display());
    let hosts = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "secretsync"},
        "spec": {"template": {"spec": {"containers": [{"name": "secretsync",
            "env": [{"name": "SECRETSYNC_NAMESPACED_STORE_HOSTS", "value": node.ip}]}]}}}});
    // JSON is YAML: the kustomization as a JSON document, its patch a strategic merge on the container's env.
    let kustomization = serde_json::json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [deploy],
        "images": [{"name": "secretsync", "newName": "testbed.invalid/secretsync", "newTag": tag}],
        "patches": [{"patch": hosts.to_string()}],
    });
    std::fs::write(path.join("kustomization.yaml"), kustomization.to_string()).unwrap();
    path
}

#[test]
fn deploy_runs_on_the_node() {
    let Some(node) = node() else { return };
    let started = Instant::now();
    let audit = env("TESTBED_AUDIT_LOG");
    let audit_start = audit_lines(&audit);
    let dir = tempfile::tempdir().unwrap();
    let example_ns = unique("node-e2e");
    let doomed_ns = unique("node-e2e-doomed");
    let _cleanup = Cleanup {
        namespaces: vec![example_ns.clone(), doomed_ns.clone()],
    };

    // The image, built and imported under two tags (the second one for the rolling update).
    let t = Instant::now();
    let image = Command::new("bash")
        .arg(root().join("tests/testbed/node/image.sh"))
        .args(["a", "b"])
        .status()
        .unwrap();
    assert!(image.success(), "tests/testbed/node/image.sh failed");
    eprintln!("image built and imported in {:?}", t.elapsed());

    // --- deploy/ on the node: two pods Ready through their own probes, hardened, under `restricted`.
    install_crds_and_namespace();
    let _ = kubectl_try(
        &[
            "-n",
            SYSTEM_NS,
            "delete",
            "lease",
            "secretsync",
            "--ignore-not-found",
        ],
        None,
    );
    let t = Instant::now();
    let a = overlay(dir.path(), "a", &node);
    kubectl(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-k",
            a.to_str().unwrap(),
        ],
        None,
    );
    rollout();
    eprintln!("deploy/ applied to two Ready pods in {:?}", t.elapsed());
    let ns = kubectl_json(&["get", "namespace", SYSTEM_NS]);
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "restricted",
        "deploy/'s namespace does not enforce the restricted level"
    );
    // The API server enforces it: a pod without that hardening is refused there.
    let refused = kubectl_try(
        &[
            "-n",
            SYSTEM_NS,
            "run",
            "unhardened",
            "--image=testbed.invalid/pause:1",
            "--dry-run=server",
        ],
        None,
    );
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("violates PodSecurity \"restricted")),
        "a pod breaking the restricted level was not refused: {refused:?}"
    );
    let running = pods();
    assert_eq!(running.len(), 2, "{}", diagnostics());
    for pod in &running {
        assert_eq!(pod["spec"]["nodeName"], env("TESTBED_NODE_NAME"));
        assert_eq!(
            pod["spec"]["containers"][0]["image"],
            "testbed.invalid/secretsync:a"
        );
        let status = &pod["status"]["containerStatuses"][0];
        assert_eq!(status["ready"], true);
        assert_eq!(status["restartCount"], 0, "{}", diagnostics());
        // The pod's own token, mounted by the ServiceAccount admission plugin.
        let mounts = pod["spec"]["containers"][0]["volumeMounts"].to_string();
        assert!(
            mounts.contains("/var/run/secrets/kubernetes.io/serviceaccount"),
            "no service-account token mounted: {mounts}"
        );
        // What the container really is on the node: uid 65532, no capabilities, a read-only root.
        let id = status["containerID"]
            .as_str()
            .unwrap()
            .trim_start_matches("containerd://")
            .to_owned();
        let (uid, caps, root_ro) = container_process(&node, &id);
        assert!(uid.starts_with("65532"), "uid {uid}");
        assert_eq!(caps, "0000000000000000", "effective capabilities");
        assert!(root_ro, "the root filesystem is writable");
    }

    // --- one pod holds the Lease; the other stands by (Ready, not reconciling).
    let names: Vec<String> = running.iter().map(name).collect();
    wait_for("a pod holds the Lease", Duration::from_secs(60), || {
        names.contains(&lease_holder())
    });
    let leader = lease_holder();
    let follower = names.iter().find(|n| **n != leader).unwrap().clone();
    let leads = |pod: &str| pod_log(pod).contains("became the leader");
    wait_for("the leader says so", Duration::from_secs(30), || {
        leads(&leader)
    });
    assert!(!leads(&follower), "both pods lead:\n{}", pod_log(&follower));

    // --- /metrics of a pod, over HTTPS with the certificate it made at start: 401 without a token, 200 with the
    // token of a ServiceAccount bound to secretsync-metrics-reader (the pod's TokenReview and SubjectAccessReview
    // with its own token are in the RBAC check at the end). The probes answered on their own port all along.
    let pod_ip = kubectl_json(&["-n", SYSTEM_NS, "get", "pod", &leader])["status"]["podIP"]
        .as_str()
        .expect("the leader's pod IP")
        .to_owned();
    assert_eq!(
        scrape_at(&pod_ip, 8443, None).0,
        401,
        "/metrics without a token"
    );
    let reader = MetricsClient::new(SYSTEM_NS, "node-e2e-metrics-reader", true);
    let (status, text) = scrape_at(&pod_ip, 8443, Some(&reader.token));
    assert_eq!(status, 200, "/metrics with the reader role: {text}");
    assert!(text.contains("secretsync_leader 1"), "{text}");
    drop(reader);

    // --- the examples, as written but in their own namespace, with the stores at the node's IP and two test-bed
    // substitutions (see `examples_for_pods`), applied at once; each reaches Ready and its store holds the value.
    let remote = format!("db-password-{example_ns}");
    kubectl(
        &["apply", "-f", "-"],
        Some(&examples_for_pods(&example_ns, &remote, &node)),
    );
    let t = Instant::now();
    let waited = kubectl_try(
        &[
            "-n",
            &example_ns,
            "wait",
            "--for=condition=Ready",
            "ssync",
            "--all",
            "--timeout=120s",
        ],
        None,
    );
    if let Err(e) = waited {
        panic!(
            "the examples are not Ready: {e}\n{}\n{}",
            kubectl(
                &["-n", &example_ns, "get", "ssync,store", "-o", "yaml"],
                None
            ),
            diagnostics()
        );
    }
    eprintln!("the examples Ready in {:?}", t.elapsed());
    let synced = || -> Vec<Value> {
        let list = kubectl_json(&["-n", &example_ns, "get", "ssync"]);
        let mut items = list["items"].as_array().cloned().unwrap_or_default();
        items.sort_by_key(name);
        items
    };
    let applied: Vec<String> = synced().iter().map(name).collect();
    assert_eq!(applied, EXAMPLES, "the examples applied");
    assert!(sf_exists(&remote), "no secret {remote} in the store");
    let value = "correct horse battery staple";
    for s in synced() {
        assert_eq!(held(&s), expected(&s, value), "{}", name(&s));
    }
    let version = |ns: &str| ssync(ns, "db-password-sf")["status"]["remote"]["version"].clone();
    let change = |value: &str| {
        kubectl(
            &[
                "-n",
                &example_ns,
                "patch",
                "secret",
                "db-password",
                "-p",
                &format!(r#"{{"stringData":{{"password":"{value}"}}}}"#),
            ],
            None,
        );
    };
    // A source change reaches every store: each SecretSync reports a new synced digest, and each store holds the
    // new value (Docker Swarm: a new secret, named after the new value's digest).
    let before: Vec<(Value, Value)> = synced()
        .iter()
        .map(|s| {
            (
                s["status"]["syncedDigest"].clone(),
                s["status"]["remote"]["name"].clone(),
            )
        })
        .collect();
    let t = Instant::now();
    change("rotated-on-the-node");
    let took = wait_for(
        "the source change reaches every store",
        Duration::from_secs(30),
        || {
            synced().iter().zip(&before).all(|(s, (digest, _))| {
                s["status"]["syncedDigest"] != *digest && ready_reason(s) == "True/Synced"
            })
        },
    );
    eprintln!("source change to the {} stores: {took:?}", EXAMPLES.len());
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "a source change took {:?} to reach the stores",
        t.elapsed()
    );
    for (s, (_, remote_before)) in synced().iter().zip(&before) {
        assert_eq!(held(s), expected(s, "rotated-on-the-node"), "{}", name(s));
        if name(s) == "db-password-swarm" {
            assert_ne!(
                s["status"]["remote"]["name"], *remote_before,
                "no new swarm secret for the new value"
            );
        }
    }

    // --- the leader pod is deleted: the other takes over within the lease time; the Deployment replaces it;
    // nothing in sync is written again, and a change afterwards is written once.
    let writes = sf_writes(&remote);
    let t = Instant::now();
    kubectl(
        &["-n", SYSTEM_NS, "delete", "pod", &leader, "--wait=false"],
        None,
    );
    // The leader releases the Lease as it stops, so a standby takes over at once: the old standby, or (often
    // first to ask) the replacement pod the Deployment starts within a second.
    let took = wait_for(
        "another pod takes over",
        Duration::from_secs(LEASE_SECONDS + 10),
        || {
            let holder = lease_holder();
            !holder.is_empty() && holder != leader
        },
    );
    let new_leader = lease_holder();
    eprintln!(
        "handover after deleting the leader pod: {took:?} (lease {LEASE_SECONDS} s) to {} pod",
        if new_leader == follower {
            "the standby"
        } else {
            "the replacement"
        }
    );
    assert!(
        took < Duration::from_secs(LEASE_SECONDS),
        "handover took {took:?}, more than the lease time"
    );
    assert!(
        pods().iter().any(|p| name(p) == new_leader),
        "the Lease is held by {new_leader}, not a pod of the Deployment"
    );
    wait_for(
        "the Deployment replaces the pod",
        Duration::from_secs(120),
        || {
            let ready = ready_pods();
            ready.len() == 2 && !ready.contains(&leader)
        },
    );
    eprintln!("replacement pod Ready {:?} after the deletion", t.elapsed());
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        sf_writes(&remote),
        writes,
        "the new leader wrote an in-sync secret again"
    );
    assert_eq!(
        ready_reason(&ssync(&example_ns, "db-password-sf")),
        "True/Synced"
    );
    let before = version(&example_ns);
    change("rotated-after-failover");
    wait_for(
        "the new leader pushes a change",
        Duration::from_secs(30),
        || {
            let s = ssync(&example_ns, "db-password-sf");
            s["status"]["remote"]["version"] != before && ready_reason(&s) == "True/Synced"
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    let delta = sf_writes(&remote) - writes;
    // One value version, the description listing the versions, at most one prune (retainVersions: 2).
    assert!(
        delta <= 3,
        "{delta} writes for one change: something wrote twice"
    );

    // --- a namespace holding a SecretSync with deletionPolicy: Delete is deleted: its remote secret goes, and the
    // namespace goes away (kube-controller-manager's namespace controller, the controller's finalizers). The store
    // is a Store of that namespace: the namespace controller deletes all of its objects at once, and the Store's
    // finalizer secretsync.io/store-in-use keeps it until the cleanup has used it.
    let doomed_remote = unique("node-e2e-doomed");
    let objects = format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: {doomed_ns}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: src, namespace: {doomed_ns}}}
stringData: {{k: doomed-value}}
---
apiVersion: secretsync.io/v1alpha1
kind: Store
metadata: {{name: sf, namespace: {doomed_ns}}}
spec:
  dialect: ServiceFabricMesh
  endpoint: "{}"
---
apiVersion: secretsync.io/v1alpha1
kind: SecretSync
metadata: {{name: doomed, namespace: {doomed_ns}}}
spec:
  source: {{secretRef: {{name: src, key: k}}}}
  target: {{storeRef: {{kind: Store, name: sf}}, remoteName: {doomed_remote}}}
  deletionPolicy: Delete
"#,
        for_pods(&env("SF_ENDPOINT"), &node)
    );
    kubectl(&["apply", "-f", "-"], Some(&objects));
    kubectl(
        &[
            "-n",
            &doomed_ns,
            "wait",
            "--for=condition=Ready",
            "ssync/doomed",
            "--timeout=60s",
        ],
        None,
    );
    assert!(sf_exists(&doomed_remote), "the remote secret was not made");
    let t = Instant::now();
    kubectl(&["delete", "namespace", &doomed_ns, "--timeout=120s"], None);
    eprintln!(
        "namespace with a Delete SecretSync gone in {:?}",
        t.elapsed()
    );
    assert!(
        !sf_exists(&doomed_remote),
        "the remote secret outlived its namespace"
    );

    // --- a rolling update to a new image tag: at every moment at least one replica is ready.
    let stop = Arc::new(AtomicBool::new(false));
    let min_ready = Arc::new(AtomicUsize::new(usize::MAX));
    let samples = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (stop, min_ready, samples) = (stop.clone(), min_ready.clone(), samples.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                // Every pod of the Deployment, terminating or not: a terminating pod that still reports Ready
                // is still behind the Service until it is gone.
                let list = kubectl_json(&["-n", SYSTEM_NS, "get", "pods", "-l", SELECTOR]);
                let ready = list["items"]
                    .as_array()
                    .map(|p| p.iter().filter(|p| is_ready(p)).count())
                    .unwrap_or(0);
                min_ready.fetch_min(ready, Ordering::SeqCst);
                samples.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let t = Instant::now();
    let b = overlay(dir.path(), "b", &node);
    kubectl(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-k",
            b.to_str().unwrap(),
        ],
        None,
    );
    rollout();
    stop.store(true, Ordering::SeqCst);
    watcher.join().unwrap();
    eprintln!(
        "rolling update in {:?}; fewest ready replicas seen: {} ({} samples)",
        t.elapsed(),
        min_ready.load(Ordering::SeqCst),
        samples.load(Ordering::SeqCst)
    );
    assert!(samples.load(Ordering::SeqCst) >= 5, "too few samples");
    assert!(
        min_ready.load(Ordering::SeqCst) >= 1,
        "a moment with no replica ready during the rolling update"
    );
    for pod in pods() {
        assert_eq!(
            pod["spec"]["containers"][0]["image"],
            "testbed.invalid/secretsync:b"
        );
    }
    wait_for(
        "a pod of the new image holds the Lease",
        Duration::from_secs(LEASE_SECONDS + 10),
        || ready_pods().contains(&lease_holder()),
    );

    // --- the PDB (minAvailable: 1): one of the two pods may be evicted, then not the other.
    wait_for(
        "the PDB allows one disruption",
        Duration::from_secs(60),
        || {
            kubectl_json(&["-n", SYSTEM_NS, "get", "pdb", "secretsync"])["status"]["disruptionsAllowed"]
                == 1
        },
    );
    let ready = ready_pods();
    assert_eq!(ready.len(), 2);
    evict(&ready[0]).unwrap_or_else(|e| panic!("the first eviction was refused: {e}"));
    let second = evict(&ready[1]);
    assert!(
        second
            .as_ref()
            .is_err_and(|e| e.contains("disruption budget") || e.contains("429")),
        "the second eviction was not refused by the PDB: {second:?}"
    );
    rollout();

    // --- RBAC: every request of the ServiceAccount came from these pods' own mounted tokens, none was denied,
    // and each was one deploy/'s roles grant. (Whether every grant is used is tests/e2e.rs's job: it drives the
    // workload-identity and failed-cleanup paths this test does not.)
    std::thread::sleep(Duration::from_secs(2)); // the audit log is written in batches
    let rbac_audit::Audited {
        used,
        denied,
        pods: by_pod,
        ..
    } = audited(&audit, audit_start);
    assert!(!used.is_empty(), "no request of {SA_USER} in the audit log");
    assert!(denied.is_empty(), "the pods were denied: {denied:#?}");
    assert!(
        by_pod.iter().all(|p| p.is_some()),
        "a request of {SA_USER} was made with a token not bound to a pod"
    );
    let pods_seen: BTreeSet<String> = by_pod.into_iter().flatten().collect();
    assert!(
        pods_seen.contains(&leader) && pods_seen.contains(&follower),
        "the audit log does not show both first pods: {pods_seen:?}"
    );
    let granted = granted();
    let ungranted: Vec<_> = used
        .iter()
        .filter(|u| !granted.iter().any(|grant| covers(grant, u)))
        .collect();
    assert!(ungranted.is_empty(), "used but not granted: {ungranted:#?}");
    eprintln!(
        "audited: {} kinds of request from {} pods; node_e2e took {:?}",
        used.len(),
        pods_seen.len(),
        started.elapsed()
    );
}
