//! Test bed: every manifest `secretsync convert` writes for the ESO fixtures (`tests/fixtures/eso/`) is accepted by
//! the test bed's API server with our CRDs installed (`kubectl apply --dry-run=server`: the schemas, defaults and CEL
//! rules of crds/, and the admission policies in place), in both modes; so are the manifests the README, the book's
//! page on several keys and `deploy/examples/several-keys/` show next to ESO's shapes, and those examples, run by
//! `secretsync run` against the test bed's Vault, push what the book says. Namespaced objects go to namespaces of
//! this run so that parallel runs do not meet.

use serde_json::Value;

mod support;

// Only kubectl of it is used here.
#[allow(dead_code)]
#[path = "support/cluster.rs"]
mod cluster;

#[path = "support/convert.rs"]
mod eso;

#[path = "support/replica.rs"]
mod replica;

#[path = "support/vault_cli.rs"]
mod vault_cli;

use cluster::{install_crds_and_namespace, kubectl, kubectl_try};
use eso::{contained, convert, fixture, objects, text};

fn cases() -> Vec<String> {
    let dir = eso::root().join("tests/fixtures/eso");
    let mut cases: Vec<String> = std::fs::read_dir(dir)
        .expect("tests/fixtures/eso")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    cases
}

fn converted(case: &str, mode: &str) -> Vec<Value> {
    let out = convert(&["--mode", mode, &fixture(case)], None);
    assert!(
        matches!(out.status.code(), Some(0 | 2)),
        "{case}: {}",
        text(&out.stderr)
    );
    objects(&text(&out.stdout))
}

#[test]
fn every_converted_manifest_is_accepted_by_the_api_server() {
    install_crds_and_namespace();
    let run = format!("{:06x}", rand_suffix());
    let mut namespaces = std::collections::BTreeSet::new();
    let mut applied = std::collections::BTreeSet::new();
    let mut shapes = std::collections::BTreeSet::new();
    for case in cases() {
        for mode in ["Observe", "Sync"] {
            for mut object in converted(&case, mode) {
                if let Some(ns) = object["metadata"]["namespace"].as_str() {
                    let ours = format!("{ns}-cv{run}");
                    if namespaces.insert(ours.clone()) {
                        kubectl(&["create", "namespace", &ours], None);
                    }
                    object["metadata"]["namespace"] = Value::String(ours);
                }
                let echoed = match dry_run(&object) {
                    Ok(echoed) => echoed,
                    Err(e) => panic!(
                        "{case} ({mode}): {} {} refused: {e}",
                        object["kind"], object["metadata"]["name"]
                    ),
                };
                // The server kept every field written: none was pruned as unknown.
                assert!(
                    contained(&object["spec"], &echoed["spec"]),
                    "{case} ({mode}): the server changed {}: {} became {}",
                    object["metadata"]["name"],
                    object["spec"],
                    echoed["spec"]
                );
                shapes.extend(shape(&object["spec"]));
                applied.insert((
                    object["kind"].as_str().unwrap_or("").to_owned(),
                    object["spec"]["dialect"].as_str().unwrap_or("").to_owned(),
                    mode,
                ));
            }
        }
    }
    for ns in &namespaces {
        let _ = kubectl_try(&["delete", "namespace", ns, "--wait=false"], None);
    }
    // Every kind, each dialect's stores, in both modes.
    let expected: Vec<_> = [
        ("ClusterStore", "AWSSecretsManager"),
        ("ClusterStore", "AzureKeyVault"),
        ("ClusterStore", "Vault"),
        ("SecretSync", ""),
        ("Store", "AWSSecretsManager"),
        ("Store", "AzureKeyVault"),
        ("Store", "Vault"),
    ]
    .iter()
    .flat_map(|(k, d)| ["Observe", "Sync"].map(|m| (k.to_string(), d.to_string(), m)))
    .collect();
    assert_eq!(applied.into_iter().collect::<Vec<_>>(), {
        let mut e = expected;
        e.sort();
        e
    });
    // Properties, patterns (dataTo), a label selector and a template each reached the server in some case.
    assert_eq!(
        shapes.into_iter().collect::<Vec<_>>(),
        ["property", "secretKeyRegex", "selector", "template"]
    );
}

/// `kubectl apply --dry-run=server --server-side` of one object: what the server would store, or why it refuses.
fn dry_run(object: &Value) -> Result<Value, String> {
    let text = serde_json::to_string(object).expect("JSON");
    kubectl_try(
        &[
            "apply",
            "--dry-run=server",
            "--server-side",
            "-f",
            "-",
            "-o",
            "json",
        ],
        Some(&text),
    )
    .map(|json| serde_json::from_str(&json).expect("the server's answer"))
}

/// The YAML blocks of a Markdown text, from the first line starting with `from` to the next `## ` heading (the whole
/// text when `from` is empty).
fn yaml_blocks(markdown: &str, from: &str) -> Vec<String> {
    let start = markdown.find(from).expect("the section");
    let section = &markdown[start..];
    let end = match from {
        "" => section.len(),
        _ => section[from.len()..]
            .find("\n## ")
            .map_or(section.len(), |i| i + from.len()),
    };
    section[..end]
        .split("```yaml\n")
        .skip(1)
        .filter_map(|block| block.split_once("```").map(|(yaml, _)| yaml.to_owned()))
        .collect()
}

/// Our CRDs installed and a namespace of this run, `<prefix>-<random>`.
fn namespace_of_run(prefix: &str) -> String {
    install_crds_and_namespace();
    let ns = format!("{prefix}-{:06x}", rand_suffix());
    kubectl(&["create", "namespace", &ns], None);
    ns
}

/// A file of the repository.
fn read(path: &str) -> String {
    std::fs::read_to_string(eso::root().join(path)).expect(path)
}

/// The SecretSync manifests shown next to ESO's PushSecret shapes (issue #30) pass the server's schema and CEL rules
/// as written, and the server refuses what the book says it refuses.
#[test]
fn the_documented_several_keys_manifests_are_accepted_by_the_api_server() {
    let ns = namespace_of_run("docs-several");
    let mut sources: Vec<(String, String)> = Vec::new();
    for block in yaml_blocks(&read("README.md"), "## Several keys") {
        sources.push(("README.md".into(), block));
    }
    for block in yaml_blocks(&read("docs/src/guides/several-keys.md"), "") {
        sources.push(("docs/src/guides/several-keys.md".into(), block));
    }
    sources.push((
        "deploy/examples/several-keys/vault.yaml".into(),
        read("deploy/examples/several-keys/vault.yaml"),
    ));
    let mut accepted = std::collections::BTreeMap::<&str, Vec<String>>::new();
    let mut syncs = Vec::new();
    for (origin, text) in &sources {
        for mut object in objects(text) {
            // ESO's manifests (its CRDs are not installed here) and status excerpts are shown, not applied.
            if object["apiVersion"]
                .as_str()
                .is_none_or(|v| v.starts_with("external-secrets.io"))
            {
                continue;
            }
            object["metadata"]["namespace"] = Value::String(ns.clone());
            let name = object["metadata"]["name"].as_str().unwrap_or("").to_owned();
            let echoed = dry_run(&object)
                .unwrap_or_else(|e| panic!("{origin}: {} {name} refused: {e}", object["kind"]));
            assert!(
                contained(&object["spec"], &echoed["spec"]),
                "{origin}: the server changed {name}: {} became {}",
                object["spec"],
                echoed["spec"]
            );
            if object["kind"] == "SecretSync" {
                accepted.entry(origin.as_str()).or_default().push(name);
                syncs.push(object);
            }
        }
    }
    let names = |origin: &str| accepted.get(origin).cloned().unwrap_or_default();
    assert_eq!(names("README.md"), ["db-login"]);
    let shapes = ["db-login", "db-settings", "tenants", "db-url"];
    assert_eq!(names("docs/src/guides/several-keys.md"), shapes);
    assert_eq!(names("deploy/examples/several-keys/vault.yaml"), shapes);

    // What the book says is refused: an empty selector, and a selector whose remote names do not name the Secret.
    let tenants = syncs
        .iter()
        .find(|s| s["spec"]["source"]["selector"].is_object())
        .expect("a SecretSync with a selector")
        .clone();
    let mut empty = tenants.clone();
    empty["spec"]["source"]["selector"] = serde_json::json!({"matchLabels": {}});
    let mut one_name = tenants;
    one_name["spec"]["data"][0]["remoteName"] = Value::String("tenants/api-key".into());
    for (what, object, says) in [
        ("an empty selector", empty, "an empty spec.source.selector"),
        (
            "a remote name without {secret}",
            one_name,
            "must contain {secret}",
        ),
    ] {
        match dry_run(&object) {
            Ok(_) => panic!("{what} was accepted"),
            Err(e) => assert!(e.contains(says), "{what}: {e}"),
        }
    }
    let _ = kubectl_try(&["delete", "namespace", &ns, "--wait=false"], None);
}

/// `deploy/examples/several-keys/` run by `secretsync run` (watching a namespace of this run) against the test bed's
/// Vault: the remote secrets and fields the book and the example's comments show, a changed key written only to the
/// remote secrets that hold it, and an unlabelled Secret's remote secret deleted.
#[test]
fn the_several_keys_examples_push_what_the_book_shows() {
    let ns = namespace_of_run("ex-several");
    // The Store of deploy/examples/vault.yaml and its credentials, every remote name under this run's own path.
    let mut manifests: Vec<Value> =
        objects(&support::substitute(&read("deploy/examples/vault.yaml")))
            .into_iter()
            .filter(|d| d["kind"] == "Secret" || d["kind"] == "Store")
            .collect();
    manifests.extend(objects(&read("deploy/examples/several-keys/vault.yaml")));
    for doc in &mut manifests {
        doc["metadata"]["namespace"] = Value::String(ns.clone());
        if doc["kind"] == "Store" {
            doc["spec"]["remoteNameTemplate"] = Value::String(format!("{ns}/{{remoteName}}"));
        }
        let text = serde_json::to_string(doc).expect("JSON");
        kubectl(&["apply", "-f", "-"], Some(&text));
    }
    let dir = tempfile::tempdir().expect("a directory for the log");
    let kubeconfig = std::env::var("KUBECONFIG").expect("KUBECONFIG of the test bed");
    let mut controller = replica::Replica::start(
        "several-keys",
        std::path::Path::new(&kubeconfig),
        dir.path(),
        &["--namespace", &ns, "--leader-election=false"],
    );
    let remotes_in_sync = || -> Vec<(String, String)> {
        let list: Value =
            serde_json::from_str(&kubectl(&["-n", &ns, "get", "ssync", "-o", "json"], None))
                .expect("a list");
        let mut out: Vec<(String, String)> = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["status"]["phase"] == "Ready")
            .map(|s| {
                let name = s["metadata"]["name"].as_str().unwrap_or("").to_owned();
                (
                    name,
                    s["status"]["remotesInSync"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned(),
                )
            })
            .collect();
        out.sort();
        out
    };
    let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    wait_until("every example Ready", || {
        remotes_in_sync()
            == pairs(&[
                ("db-login", "1/1"),
                ("db-settings", "1/1"),
                ("db-url", "1/1"),
                ("tenants", "2/2"),
            ])
    });
    let path = |p: &str| format!("{ns}/{p}");
    let data = |p: &str| vault_cli::kv_get(&path(p)).map(|v| v["data"].clone());
    let version = |p: &str| vault_cli::kv_metadata(&path(p)).map(|m| m["current_version"].clone());
    assert_eq!(
        data("orders/db"),
        Some(serde_json::json!({"username": "orders", "password": "correct horse battery staple"}))
    );
    assert_eq!(
        data("orders/db-settings"),
        Some(serde_json::json!({"db_host": "db.orders.svc", "db_port": "5432"}))
    );
    assert_eq!(
        data("orders/db-url"),
        Some(
            serde_json::json!({"value": "postgres://orders:correct%20horse%20battery%20staple@db.orders.svc:5432/orders"})
        )
    );
    for tenant in ["acme", "globex"] {
        assert_eq!(
            data(&format!("tenants/tenant-{tenant}")),
            Some(serde_json::json!({"value": format!("{tenant}-key")}))
        );
    }

    // One key changes: the two remote secrets built from it get a new version, the third of that Secret none.
    kubectl(
        &[
            "-n",
            &ns,
            "patch",
            "secret",
            "db-credentials",
            "-p",
            r#"{"stringData":{"db_port":"6432"}}"#,
        ],
        None,
    );
    wait_until("the new port in Vault", || {
        data("orders/db-settings").is_some_and(|d| d["db_port"] == "6432")
            && data("orders/db-url")
                .is_some_and(|d| d["value"].as_str().is_some_and(|u| u.contains(":6432/")))
    });
    assert_eq!(
        version("orders/db"),
        Some(serde_json::json!(1)),
        "orders/db was written again"
    );
    assert_eq!(version("orders/db-settings"), Some(serde_json::json!(2)));

    // A Secret loses the label: under deletionPolicy Delete its remote secret goes, with an Event.
    kubectl(
        &[
            "-n",
            &ns,
            "label",
            "secret",
            "tenant-globex",
            "orders.example.com/tenant-",
        ],
        None,
    );
    wait_until("tenant-globex's remote secret deleted", || {
        vault_cli::kv_metadata(&path("tenants/tenant-globex")).is_none()
            && remotes_in_sync().contains(&("tenants".to_owned(), "1/1".to_owned()))
    });
    let events = kubectl(
        &[
            "-n",
            &ns,
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=tenants",
            "-o",
            "json",
        ],
        None,
    );
    assert!(events.contains("PreviousRemoteDeleted"), "{events}");

    // Deleting the SecretSync of deletionPolicy Delete removes the last tenant's remote secret; the others stay
    // (Retain) and are removed here.
    kubectl(
        &["-n", &ns, "delete", "ssync", "tenants", "--timeout=60s"],
        None,
    );
    assert!(vault_cli::kv_metadata(&path("tenants/tenant-acme")).is_none());
    controller.kill();
    for p in ["orders/db", "orders/db-settings", "orders/db-url"] {
        vault_cli::kv_metadata_delete(&path(p));
    }
    let _ = kubectl_try(&["delete", "namespace", &ns, "--wait=false"], None);
}

/// Polls `done` every 250 ms for up to 90 s (a loaded 2-core machine), failing with `what`.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while !done() {
        assert!(std::time::Instant::now() < end, "not within 90 s: {what}");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// What of issue #30's API a converted SecretSync uses: `spec.data` with a property or a pattern, a label selector,
/// a template.
fn shape(spec: &Value) -> Vec<&'static str> {
    let rules = spec["data"].as_array().map_or(&[][..], Vec::as_slice);
    let mut out = Vec::new();
    if rules.iter().any(|r| r["property"].is_string()) {
        out.push("property");
    }
    if rules.iter().any(|r| r["secretKeyRegex"].is_string()) {
        out.push("secretKeyRegex");
    }
    if spec["source"]["selector"].is_object() {
        out.push("selector");
    }
    if spec["template"].is_object() {
        out.push("template");
    }
    out
}

fn rand_suffix() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nanos ^ std::process::id()
}
