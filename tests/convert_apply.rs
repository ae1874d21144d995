//! Test bed: every manifest `secretsync convert` writes for the ESO fixtures (`tests/fixtures/eso/`) is accepted by
//! the test bed's API server with our CRDs installed (`kubectl apply --dry-run=server`: the schemas, defaults and CEL
//! rules of crds/, and the admission policies in place), in both modes. Namespaced objects go to namespaces of this
//! run so that parallel runs do not meet; nothing is persisted.

use serde_json::Value;

mod support;

// Only kubectl of it is used here.
#[allow(dead_code)]
#[path = "support/cluster.rs"]
mod cluster;

#[path = "support/convert.rs"]
mod eso;

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
                let text = serde_json::to_string(&object).expect("JSON");
                let result = kubectl_try(
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
                );
                let echoed: Value = match result {
                    Ok(json) => serde_json::from_str(&json).expect("the server's answer"),
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
