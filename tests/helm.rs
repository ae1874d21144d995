//! The Helm chart in `deploy/helm/secretsync/`, with the real helm (built from its Go module by the test bed,
//! `HELM_BIN`) on the test bed's real kube-apiserver: it is kept in step with `deploy/` and `crds/`, its values
//! schema refuses wrong values, its README is the generator's output, and it installs, upgrades and uninstalls.
//! No node runs pods here, so installs only create objects (no `--wait`).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

mod support;
use support::env;
use support::unique::unique;
#[allow(dead_code)]
#[path = "support/cluster.rs"]
mod cluster;
use cluster::{kubectl, kubectl_json, root, run, wait_for};
#[path = "support/metrics_access.rs"]
mod metrics_access;

const CHART: &str = "deploy/helm/secretsync";
/// The labels Helm's templates add to deploy/'s.
const HELM_LABELS: [&str; 4] = [
    "app.kubernetes.io/instance",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/version",
    "helm.sh/chart",
];

fn helm(args: &[&str]) -> String {
    run(&env("HELM_BIN"), args, None).unwrap_or_else(|e| panic!("helm {}: {e}", args.join(" ")))
}

fn exists(args: &[&str]) -> bool {
    let mut all = vec!["get"];
    all.extend(args);
    all.push("--ignore-not-found");
    all.extend(["-o", "name"]);
    !kubectl(&all, None).trim().is_empty()
}

/// Every object of a multi-document YAML stream.
fn documents(text: &str) -> Vec<Value> {
    yaml_serde::Deserializer::from_str(text)
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// Objects by (kind, name), with Helm's labels removed and no namespace on cluster-scoped objects (kustomize
/// writes its `namespace:` into the admission policy and its binding; the API server drops it).
fn normalised(text: &str) -> std::collections::BTreeMap<(String, String), Value> {
    documents(text)
        .into_iter()
        .map(|mut o| {
            let kind = o["kind"].as_str().unwrap().to_owned();
            let name = o["metadata"]["name"].as_str().unwrap().to_owned();
            let md = o["metadata"].as_object_mut().unwrap();
            if let Some(labels) = md.get_mut("labels").and_then(Value::as_object_mut) {
                for l in HELM_LABELS {
                    labels.remove(l);
                }
            }
            if matches!(
                kind.as_str(),
                "Namespace"
                    | "ClusterRole"
                    | "ClusterRoleBinding"
                    | "ValidatingAdmissionPolicy"
                    | "ValidatingAdmissionPolicyBinding"
            ) {
                md.remove("namespace");
            }
            ((kind, name), o)
        })
        .collect()
}

#[test]
fn the_chart_renders_exactly_deploy() {
    let kustomize = normalised(&kubectl(&["kustomize", "deploy/"], None));
    let rendered = |extra: &[&str]| {
        let mut args = vec!["template", "secretsync", CHART, "-n", "secretsync-system"];
        args.extend(extra);
        helm(&args)
    };
    let with_namespace = normalised(&rendered(&["--set", "namespace.create=true"]));
    assert_eq!(
        kustomize.keys().collect::<Vec<_>>(),
        with_namespace.keys().collect::<Vec<_>>(),
        "the chart and deploy/ hold different objects"
    );
    for (key, object) in &kustomize {
        assert_eq!(
            &with_namespace[key], object,
            "{key:?} differs between the chart and deploy/"
        );
    }
    // The defaults: the same without the Namespace (helm install needs it before the release).
    let defaults = normalised(&rendered(&[]));
    let mut expected = kustomize.clone();
    expected.retain(|(kind, _), _| kind != "Namespace");
    assert_eq!(defaults, expected);
    // Helm's labels are the only ones added.
    let raw = documents(&rendered(&[]));
    let deployment = raw.iter().find(|o| o["kind"] == "Deployment").unwrap();
    assert_eq!(
        deployment["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "Helm"
    );
}

#[test]
fn the_charts_crds_are_the_repositorys() {
    let names = |dir: PathBuf| {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let ours = names(root().join("crds"));
    assert_eq!(ours, names(root().join(CHART).join("crds")));
    for name in ours {
        assert_eq!(
            std::fs::read(root().join("crds").join(&name)).unwrap(),
            std::fs::read(root().join(CHART).join("crds").join(&name)).unwrap(),
            "{CHART}/crds/{name} differs from crds/{name}: cp crds/*.yaml {CHART}/crds/"
        );
    }
}

#[test]
fn helm_lint_passes_with_and_without_the_options() {
    helm(&["lint", "--strict", CHART]);
    helm(&[
        "lint",
        "--strict",
        CHART,
        "--set",
        "serviceMonitor.enabled=true,prometheusRule.enabled=true,grafanaDashboard.enabled=true",
        "--set",
        "namespace.create=true,watchNamespaces={a,b},concurrency=4,logFormat=text",
        "--set",
        "networkPolicy.enabled=true,networkPolicy.apiServer.cidrs={10.0.0.1/32},networkPolicy.storeCidrs={10.2.0.0/16}",
        "--set",
        "metrics.tlsSecretName=metrics-tls,metrics.readers[0].kind=Group,metrics.readers[0].name=scrapers",
    ]);
}

#[test]
fn the_values_schema_refuses_wrong_values() {
    for bad in [
        "replicaCount=two",
        "logFormat=xml",
        "concurrency=0",
        "image.pullPolicy=Sometimes",
        "resources.requests.cpu=lots",
        "watchNamespaces={Not_A_Namespace}",
        "serviceMonitor.interval=soon",
        "typoedKey=1",
        "tokenGrants[0].namespace=a",
        "tokenGrants[0].namespace=Not_A_Namespace,tokenGrants[0].serviceAccount=sa",
        "networkPolicy.storeCidrs={10.0.0.0}",
        "networkPolicy.apiServer.port=0",
        "metrics.readers[0].name=prometheus",
        "metrics.tlsSecretName=Not_A_Secret",
    ] {
        let err = run(
            &env("HELM_BIN"),
            &["template", "secretsync", CHART, "--set", bad],
            None,
        )
        .expect_err(bad);
        assert!(err.contains("schema"), "{bad}: {err}");
    }
    helm(&[
        "template",
        "secretsync",
        CHART,
        "--set",
        "replicaCount=3,logFormat=text,concurrency=4,resources.requests.cpu=100m",
    ]);
}

#[test]
fn the_values_readme_is_generated_from_values_yaml() {
    let generated = run("python3", &["deploy/helm/gen-readme.py", "--stdout"], None).unwrap();
    let committed = std::fs::read_to_string(root().join(CHART).join("README.md")).unwrap();
    assert_eq!(
        generated, committed,
        "run python3 deploy/helm/gen-readme.py and commit {CHART}/README.md"
    );
    // The book's Helm page carries the same table.
    let page = std::fs::read_to_string(root().join("docs/src/install/helm.md")).unwrap();
    let table = &generated[generated.find("| key | type |").unwrap()..];
    assert!(
        page.contains(table),
        "run python3 deploy/helm/gen-readme.py and commit docs/src/install/helm.md"
    );
    run("python3", &["deploy/helm/gen-readme.py", "--check"], None)
        .unwrap_or_else(|e| panic!("gen-readme.py --check: {e}"));
    // Every key of values.yaml has its row.
    for key in [
        "replicaCount",
        "leaderElection.enabled",
        "grafanaDashboard.labels",
    ] {
        assert!(committed.contains(&format!("| `{key}` |")), "{key}");
    }
}

#[test]
fn the_prometheus_rule_and_dashboard_are_the_shipped_files() {
    let out = helm(&[
        "template",
        "secretsync",
        CHART,
        "-n",
        "secretsync-system",
        "--set",
        "prometheusRule.enabled=true,grafanaDashboard.enabled=true,serviceMonitor.enabled=true",
    ]);
    let objects = documents(&out);
    let rule = objects
        .iter()
        .find(|o| o["kind"] == "PrometheusRule")
        .unwrap();
    let file =
        std::fs::read_to_string(root().join(CHART).join("files/prometheus-rules.yaml")).unwrap();
    let plain: Value = yaml_serde::from_str(&file).unwrap();
    assert_eq!(rule["spec"], plain);
    let cm = objects
        .iter()
        .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == "secretsync-dashboard")
        .unwrap();
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
    let shipped: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join(CHART).join("files/grafana-dashboard.json")).unwrap(),
    )
    .unwrap();
    let in_map: Value =
        serde_json::from_str(cm["data"]["secretsync.json"].as_str().unwrap()).unwrap();
    assert_eq!(in_map, shipped);
    let sm = objects
        .iter()
        .find(|o| o["kind"] == "ServiceMonitor")
        .unwrap();
    // Over HTTPS with the Prometheus' own token: the Service's port, and the scheme /metrics is served in.
    let endpoint = &sm["spec"]["endpoints"][0];
    let service = objects.iter().find(|o| o["kind"] == "Service").unwrap();
    assert_eq!(endpoint["port"], service["spec"]["ports"][0]["name"]);
    assert_eq!(endpoint["scheme"], "https");
    assert_eq!(
        endpoint["bearerTokenFile"],
        "/var/run/secrets/kubernetes.io/serviceaccount/token"
    );
    assert_eq!(endpoint["tlsConfig"], json!({"insecureSkipVerify": true}));
}

/// The container port named `name` of the Deployment among `objects`.
fn container_port(objects: &[Value], name: &str) -> Value {
    let deployment = objects.iter().find(|o| o["kind"] == "Deployment").unwrap();
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .map(|p| p["containerPort"].clone())
        .unwrap_or(Value::Null)
}

#[test]
fn metrics_are_served_apart_from_the_probes() {
    let objects = documents(&kubectl(&["kustomize", "deploy/"], None));
    let deployment = objects.iter().find(|o| o["kind"] == "Deployment").unwrap();
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let env = |name: &str| {
        container["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .map(|e| e["value"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(env("SECRETSYNC_METRICS_ADDR"), "0.0.0.0:8443");
    assert_eq!(env("SECRETSYNC_HEALTH_ADDR"), "0.0.0.0:8080");
    assert_eq!(container_port(&objects, "metrics"), 8443);
    assert_eq!(container_port(&objects, "health"), 8080);
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(container[probe]["httpGet"]["port"], "health", "{probe}");
    }
    let service = objects.iter().find(|o| o["kind"] == "Service").unwrap();
    assert_eq!(
        service["spec"]["ports"],
        json!([{"name": "https", "port": 8443, "targetPort": "metrics"}]),
        "the Service exposes /metrics only"
    );
    // The reader role may get /metrics and nothing else; the controller may review its clients.
    assert_eq!(
        metrics_access::reader_role()["rules"],
        json!([{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}])
    );
    let controller = objects
        .iter()
        .find(|o| o["kind"] == "ClusterRole" && o["metadata"]["name"] == "secretsync")
        .unwrap();
    for (group, resource) in [
        ("authentication.k8s.io", "tokenreviews"),
        ("authorization.k8s.io", "subjectaccessreviews"),
    ] {
        assert!(
            controller["rules"].as_array().unwrap().iter().any(|r| {
                r["apiGroups"] == json!([group])
                    && r["resources"] == json!([resource])
                    && r["verbs"] == json!(["create"])
            }),
            "the controller may not create {resource}"
        );
    }
}

#[test]
fn the_network_policy_needs_the_api_servers_addresses() {
    let err = run(
        &env("HELM_BIN"),
        &[
            "template",
            "secretsync",
            CHART,
            "--set",
            "networkPolicy.enabled=true",
        ],
        None,
    )
    .expect_err("a NetworkPolicy without the API server would cut the controller off");
    assert!(
        err.contains("networkPolicy.apiServer.cidrs is required"),
        "{err}"
    );
}

/// deploy/ with the component deploy/components/network-policy, as its kustomization.yaml shows, into `ns`.
fn overlay_with_network_policy(dir: &std::path::Path, ns: &str) -> String {
    let relative = |target: &str| {
        let mut up = PathBuf::new();
        for _ in dir.components().skip(1) {
            up.push("..");
        }
        up.join(root().join(target).strip_prefix("/").unwrap())
            .display()
            .to_string()
    };
    let kustomization = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "namespace": ns,
        "resources": [relative("deploy")],
        "components": [relative("deploy/components/network-policy")],
        "patches": [{"target": {"kind": "NetworkPolicy", "name": "secretsync"}, "patch": json!([
            {"op": "replace", "path": "/spec/ingress/0/from/0/namespaceSelector/matchLabels",
             "value": {"kubernetes.io/metadata.name": ns}},
            {"op": "replace", "path": "/spec/egress/1/to", "value": [{"ipBlock": {"cidr": "10.0.0.10/32"}}]},
            {"op": "replace", "path": "/spec/egress/1/ports/0/port", "value": 6443},
            {"op": "replace", "path": "/spec/egress/2/to", "value": [{"ipBlock": {"cidr": "10.20.0.0/16"}}]},
        ]).to_string()}],
    });
    std::fs::write(dir.join("kustomization.yaml"), kustomization.to_string()).unwrap();
    kubectl(&["kustomize", dir.to_str().unwrap()], None)
}

#[test]
fn the_network_policy_component_applies_with_a_server_side_dry_run() {
    let ns = Namespace::new("netpol-test");
    let dir = tempfile::tempdir().unwrap();
    let rendered = overlay_with_network_policy(dir.path(), &ns.0);
    let objects = documents(&rendered);
    let policy = objects
        .iter()
        .find(|o| o["kind"] == "NetworkPolicy")
        .expect("the component adds a NetworkPolicy");
    // It selects the controller's pods, and lets in only the metrics port, which the Deployment names.
    let deployment = objects.iter().find(|o| o["kind"] == "Deployment").unwrap();
    assert_eq!(
        policy["spec"]["podSelector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(
        policy["spec"]["ingress"],
        json!([{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns.0}}}],
                "ports": [{"port": "metrics", "protocol": "TCP"}]}])
    );
    assert_eq!(container_port(&objects, "metrics"), 8443);
    let egress = policy["spec"]["egress"].as_array().unwrap();
    assert_eq!(
        egress.len(),
        3,
        "DNS, the API server, the stores: {egress:?}"
    );
    assert_eq!(
        egress[0]["ports"][0],
        json!({"port": 53, "protocol": "UDP"})
    );
    assert_eq!(egress[2]["to"][0]["ipBlock"]["cidr"], "10.20.0.0/16");
    // The API server takes deploy/ with the component as written (a dry run).
    let applied = kubectl(
        &["apply", "--server-side", "--dry-run=server", "-f", "-"],
        Some(&rendered),
    );
    assert!(
        applied.contains(
            "networkpolicy.networking.k8s.io/secretsync serverside-applied (server dry run)"
        ),
        "{applied}"
    );
    // And the chart's, rendered from the same settings, is the same policy.
    let values = json!({"networkPolicy": {"enabled": true,
        "metrics": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns.0}}},
        "apiServer": {"cidrs": ["10.0.0.10/32"], "port": 6443}, "storeCidrs": ["10.20.0.0/16"]}});
    let file = dir.path().join("values.json");
    std::fs::write(&file, values.to_string()).unwrap();
    let chart = documents(&helm(&[
        "template",
        "secretsync",
        CHART,
        "-n",
        &ns.0,
        "-f",
        file.to_str().unwrap(),
    ]));
    let from_chart = chart
        .iter()
        .find(|o| o["kind"] == "NetworkPolicy")
        .expect("the chart's NetworkPolicy");
    assert_eq!(from_chart["spec"], policy["spec"]);
}

/// A namespace for one test, labelled as deploy/ labels its own; deleted when dropped.
struct Namespace(String);

impl Namespace {
    fn new(prefix: &str) -> Namespace {
        let name = unique(prefix);
        kubectl(&["create", "namespace", &name], None);
        kubectl(
            &[
                "label",
                "namespace",
                &name,
                "pod-security.kubernetes.io/enforce=restricted",
            ],
            None,
        );
        Namespace(name)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = run(
            "kubectl",
            &[
                "delete",
                "namespace",
                &self.0,
                "--wait=false",
                "--ignore-not-found",
            ],
            None,
        );
    }
}

#[test]
fn helm_template_applies_with_a_server_side_dry_run() {
    let ns = Namespace::new("helm-test-dry");
    let values = json!({
        "replicaCount": 3, "logFormat": "text", "concurrency": 4, "backendRate": 10, "backendBurst": 20,
        "cleanupTimeoutSeconds": 120, "watchNamespaces": ["team-a", "team-b"], "selector": "shard=a",
        "leaderElection": {"leaseName": "secretsync-a", "leaseSeconds": 20},
        "extraArgs": ["--renew-deadline-seconds=12"], "extraEnv": [{"name": "RUST_LOG", "value": "info"}],
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "infra", "effect": "NoSchedule"}],
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100,
            "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "secretsync"}}}}]}},
        "podAnnotations": {"example.com/a": "b"}, "podLabels": {"team": "platform"},
        "imagePullSecrets": [{"name": "registry"}], "priorityClassName": "",
        "serviceAccount": {"annotations": {"azure.workload.identity/client-id": "x"}},
        "admissionPolicy": {"matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns.0}}}},
        "storeAuthorityPolicy": {"matchResources": {"objectSelector": {"matchLabels": {"helm-test": ns.0}}}},
        "tokenGrants": [{"namespace": ns.0, "serviceAccount": "vault-writer"}],
        "grafanaDashboard": {"enabled": true},
        "metrics": {"tlsSecretName": "metrics-tls",
            "readers": [{"kind": "ServiceAccount", "name": "prometheus", "namespace": ns.0}]},
        "networkPolicy": {"enabled": true, "metrics": {"podSelector": {"matchLabels": {"app": "prometheus"}}},
            "apiServer": {"cidrs": ["10.0.0.10/32", "fd00::10/128"]},
            "storeCidrs": ["10.20.0.0/16"], "storePorts": [443, 9000]},
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("values.json");
    std::fs::write(&file, values.to_string()).unwrap();
    let out = helm(&[
        "template",
        &ns.0,
        CHART,
        "-n",
        &ns.0,
        "-f",
        file.to_str().unwrap(),
    ]);
    let applied = kubectl(
        &["apply", "--server-side", "--dry-run=server", "-f", "-"],
        Some(&out),
    );
    for object in [
        "deployment.apps/",
        "clusterrole.rbac.authorization.k8s.io/",
        "validatingadmissionpolicybinding.admissionregistration.k8s.io/",
        "configmap/",
        "networkpolicy.networking.k8s.io/",
    ] {
        assert!(applied.contains(object), "{object} missing from: {applied}");
    }
    for object in [
        format!(
            "validatingadmissionpolicy.admissionregistration.k8s.io/{0}-secretsync-store-authority",
            ns.0
        ),
        format!(
            "role.rbac.authorization.k8s.io/{0}-secretsync-token-vault-writer",
            ns.0
        ),
        format!(
            "rolebinding.rbac.authorization.k8s.io/{0}-secretsync-token-vault-writer",
            ns.0
        ),
        format!(
            "clusterrolebinding.rbac.authorization.k8s.io/{0}-secretsync-metrics-reader",
            ns.0
        ),
    ] {
        assert!(
            applied.contains(&object),
            "{object} missing from: {applied}"
        );
    }
    // A token grant: that one ServiceAccount's tokens, for the release's ServiceAccount.
    let objects = documents(&out);
    let grant = |kind: &str| {
        objects
            .iter()
            .find(|o| {
                o["kind"] == kind
                    && o["metadata"]["name"]
                        == json!(format!("{}-secretsync-token-vault-writer", ns.0))
            })
            .unwrap_or_else(|| panic!("no {kind} for tokenGrants"))
    };
    assert_eq!(
        grant("Role")["rules"],
        json!([{"apiGroups": [""], "resources": ["serviceaccounts/token"], "resourceNames": ["vault-writer"],
                "verbs": ["create"]}])
    );
    assert_eq!(
        grant("RoleBinding")["subjects"],
        json!([{"kind": "ServiceAccount", "name": format!("{}-secretsync", ns.0), "namespace": ns.0}])
    );
    let deployment = documents(&out)
        .into_iter()
        .find(|o| o["kind"] == "Deployment")
        .unwrap();
    let env: Vec<Value> = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .clone();
    let value = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .map(|e| e["value"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(value("SECRETSYNC_NAMESPACES"), "team-a,team-b");
    assert_eq!(
        value("SECRETSYNC_METRICS_TLS_CERT"),
        "/etc/secretsync/metrics-tls/tls.crt"
    );
    assert_eq!(
        deployment["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"],
        "metrics-tls"
    );
    assert_eq!(value("SECRETSYNC_CONCURRENCY"), "4");
    assert_eq!(value("SECRETSYNC_LOG_FORMAT"), "text");
    assert_eq!(
        value("SECRETSYNC_DIGEST_KEY_SECRET"),
        json!(format!("{0}/{0}-secretsync-digest-key", ns.0))
    );
    // Nothing was created by the dry run.
    assert!(!exists(&[
        "-n",
        &ns.0,
        "deployment",
        &format!("{}-secretsync", ns.0)
    ]));
}

/// A release uninstalled when dropped (a failed test leaves nothing behind); declared after its namespace so that
/// it goes first.
struct Release(String);

impl Drop for Release {
    fn drop(&mut self) {
        let _ = run(
            &env("HELM_BIN"),
            &["uninstall", &self.0, "-n", &self.0, "--ignore-not-found"],
            None,
        );
    }
}

#[test]
fn helm_install_upgrade_and_uninstall() {
    let ns = Namespace::new("helm-test");
    let release = ns.0.clone();
    let _guard = Release(release.clone());
    let full = format!("{release}-secretsync");
    let policy = format!("{full}-stores-only");
    let authority = format!("{full}-store-authority");
    let tokens = format!("{full}-tokens");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("values.json");
    // The admission policies only for this namespace: the shared API server's other tests may use inline targets,
    // and write stores (as the admin, whom the store authority policy lets through; objects labelled for this
    // test only, since a namespaceSelector does not limit ClusterStores).
    std::fs::write(
        &file,
        json!({"admissionPolicy": {"matchResources": {"namespaceSelector":
            {"matchLabels": {"kubernetes.io/metadata.name": release}}}},
            "storeAuthorityPolicy": {"matchResources": {"objectSelector":
            {"matchLabels": {"helm-test": release}}}}})
        .to_string(),
    )
    .unwrap();
    let values = file.to_str().unwrap();

    // A wrong value fails the install before anything is created.
    let err = run(
        &env("HELM_BIN"),
        &[
            "install",
            &release,
            CHART,
            "-n",
            &release,
            "--set",
            "logFormat=xml",
        ],
        None,
    )
    .expect_err("a wrong value is refused");
    assert!(err.contains("schema"), "{err}");
    assert!(
        run(
            &env("HELM_BIN"),
            &["status", &release, "-n", &release],
            None
        )
        .is_err()
    );

    let crds_before = kubectl_json(&["get", "crd", "secretsyncs.secretsync.io"]);
    helm(&["install", &release, CHART, "-n", &release, "-f", values]);
    let deployment = kubectl_json(&["-n", &release, "get", "deployment", &full]);
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["serviceAccountName"],
        json!(full)
    );
    for object in [
        vec!["-n", &release, "serviceaccount", &full],
        vec!["-n", &release, "role", &full],
        vec!["-n", &release, "rolebinding", &full],
        vec!["-n", &release, "poddisruptionbudget", &full],
        vec!["-n", &release, "service", &format!("{full}-metrics")],
        vec!["clusterrole", &full],
        vec!["clusterrolebinding", &full],
        vec!["validatingadmissionpolicy", &policy],
        vec!["validatingadmissionpolicybinding", &policy],
        vec!["validatingadmissionpolicy", &authority],
        vec!["validatingadmissionpolicybinding", &authority],
        vec!["-n", &release, "role", &tokens],
        vec!["-n", &release, "rolebinding", &tokens],
    ] {
        assert!(exists(&object), "{object:?} was not created");
    }
    let binding = kubectl_json(&["get", "clusterrolebinding", &full]);
    assert_eq!(binding["subjects"][0]["namespace"], json!(release));
    // The installed policy refuses an inline target in this namespace (it takes effect within seconds).
    let inline = json!({"apiVersion": "secretsync.io/v1alpha1", "kind": "SecretSync",
        "metadata": {"name": "inline", "namespace": release},
        "spec": {"source": {"secretRef": {"name": "s", "key": "k"}},
                 "target": {"dialect": "ServiceFabricMesh", "endpoint": "http://127.0.0.1:1", "remoteName": "x"}}})
    .to_string();
    wait_for(
        "the chart's admission policy refuses an inline target",
        Duration::from_secs(30),
        || {
            run(
                "kubectl",
                &["apply", "--dry-run=server", "-f", "-"],
                Some(&inline),
            )
            .is_err_and(|e| e.contains("inline targets"))
        },
    );

    // Upgrade: new values reach the objects; a disabled part is removed.
    helm(&[
        "upgrade",
        &release,
        CHART,
        "-n",
        &release,
        "-f",
        values,
        "--set",
        "replicaCount=3,concurrency=4,logFormat=text,admissionPolicy.enabled=false,podDisruptionBudget.enabled=false,\
         storeAuthorityPolicy.enabled=false",
    ]);
    let deployment = kubectl_json(&["-n", &release, "get", "deployment", &full]);
    assert_eq!(deployment["spec"]["replicas"], 3);
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"].clone();
    assert!(
        env.as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "SECRETSYNC_CONCURRENCY" && e["value"] == "4"),
        "{env}"
    );
    assert!(!exists(&["validatingadmissionpolicy", &policy]));
    assert!(!exists(&["validatingadmissionpolicybinding", &policy]));
    assert!(!exists(&["validatingadmissionpolicy", &authority]));
    assert!(!exists(&["validatingadmissionpolicybinding", &authority]));
    assert!(!exists(&["-n", &release, "poddisruptionbudget", &full]));
    let history = helm(&["history", &release, "-n", &release, "-o", "json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&history)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Uninstall: every object goes, the CRDs stay as they were.
    helm(&["uninstall", &release, "-n", &release]);
    for object in [
        vec!["-n", &release, "deployment", &full],
        vec!["-n", &release, "serviceaccount", &full],
        vec!["-n", &release, "service", &format!("{full}-metrics")],
        vec!["clusterrole", &full],
        vec!["clusterrolebinding", &full],
    ] {
        wait_for(
            &format!("{object:?} removed"),
            Duration::from_secs(30),
            || !exists(&object),
        );
    }
    let crds_after = kubectl_json(&["get", "crd", "secretsyncs.secretsync.io"]);
    assert_eq!(
        crds_before["metadata"]["uid"],
        crds_after["metadata"]["uid"]
    );
}
