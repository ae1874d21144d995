//! `secretsync convert` as a user runs it (the built binary, also as a kubectl plugin): ESO manifests written from
//! ESO's published CRD schema (`tests/fixtures/eso/<case>/eso/`) convert to exactly `<case>/expected.yaml` with the
//! stderr of `<case>/expected.stderr` and the exit status below, and every object written deserializes into our
//! Rust types and validates against the committed CRDs' schemas. No test bed.
//!
//! After a deliberate change of the output: `SECRETSYNC_BLESS=1 cargo test --test convert`, then review the diff.

use std::process::Command;

use serde_json::Value;

use secretsync::api::{ClusterStore, SecretSync, Store};

#[path = "support/convert.rs"]
mod eso;

use eso::{contained, convert, fixture, objects, root, run, text};

/// Each case and its exit status: 0 only where everything carried over.
const CASES: &[(&str, i32)] = &[
    ("azurekv", 0),
    ("azurekv-workload-identity", 2),
    ("aws", 2),
    ("aws-irsa", 2),
    ("vault", 2),
    ("unsupported", 2),
    ("lists", 2),
    ("edges", 2),
    ("several", 2),
];

#[test]
fn every_case_converts_to_its_expected_output_stderr_and_status() {
    let mut dirs: Vec<String> = std::fs::read_dir(root().join("tests/fixtures/eso"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut listed: Vec<&str> = CASES.iter().map(|(c, _)| *c).collect();
    listed.sort();
    assert_eq!(dirs, listed, "every fixture directory is a case of CASES");
    let bless = std::env::var_os("SECRETSYNC_BLESS").is_some();
    for (case, status) in CASES {
        let out = convert(&[&fixture(case)], None);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        let dir = root().join("tests/fixtures/eso").join(case);
        if bless {
            std::fs::write(dir.join("expected.yaml"), &stdout).expect("written");
            std::fs::write(dir.join("expected.stderr"), &stderr).expect("written");
        }
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        assert_eq!(stdout, read("expected.yaml"), "{case}: stdout");
        assert_eq!(stderr, read("expected.stderr"), "{case}: stderr");
        assert_eq!(
            out.status.code(),
            Some(*status),
            "{case}: exit status; stderr:\n{stderr}"
        );
    }
}

/// Every document with an object is a SecretSync, Store or ClusterStore our types read back unchanged and the
/// CRDs' schemas accept: nothing the API server would refuse or silently prune.
#[test]
fn every_object_written_is_one_our_types_and_crds_accept() {
    let schemas = crd_schemas();
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for (case, _) in CASES {
        let out = convert(&[&fixture(case)], None);
        for object in objects(&text(&out.stdout)) {
            let kind = object["kind"].as_str().expect("a kind").to_owned();
            let back = match kind.as_str() {
                "SecretSync" => serde_json::to_value(
                    serde_json::from_value::<SecretSync>(object.clone()).expect("a SecretSync"),
                ),
                "Store" => serde_json::to_value(
                    serde_json::from_value::<Store>(object.clone()).expect("a Store"),
                ),
                "ClusterStore" => serde_json::to_value(
                    serde_json::from_value::<ClusterStore>(object.clone()).expect("a ClusterStore"),
                ),
                other => panic!("{case}: unexpected kind {other}"),
            }
            .expect("serializes");
            // Our types add their defaults; they must keep every field written (serde ignores unknown ones).
            assert!(
                contained(&object["spec"], &back["spec"]),
                "{case}: {kind} {} loses fields when read: {} became {}",
                object["metadata"]["name"],
                object["spec"],
                back["spec"]
            );
            let mut errors = Vec::new();
            validate(&schemas[&kind], &object, "", &mut errors);
            assert!(
                errors.is_empty(),
                "{case}: {kind} {} does not match the CRD: {errors:#?}",
                object["metadata"]["name"]
            );
            *seen.entry(kind).or_default() += 1;
        }
    }
    // The cases reach every kind, and every dialect the converter writes.
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        ["ClusterStore", "SecretSync", "Store"]
    );
}

/// The validator itself refuses what the API server refuses, or the test above could not fail.
#[test]
fn the_schema_check_refuses_unknown_fields_bad_enums_and_patterns() {
    let schemas = crd_schemas();
    let good = serde_json::json!({
        "apiVersion": "secretsync.io/v1alpha1", "kind": "Store", "metadata": {"name": "s"},
        "spec": {"dialect": "AzureKeyVault", "endpoint": "https://v.vault.azure.net"},
    });
    let mut errors = Vec::new();
    validate(&schemas["Store"], &good, "", &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    for (field, bad) in [
        ("vaultUrl", serde_json::json!("https://v")),
        ("dialect", serde_json::json!("GoogleSecretManager")),
        ("endpoint", serde_json::json!("https://user@v")),
        ("remoteNameTemplate", serde_json::json!("{namespace}")),
        ("adoption", serde_json::json!(true)),
    ] {
        let mut object = good.clone();
        object["spec"][field] = bad;
        let mut errors = Vec::new();
        validate(&schemas["Store"], &object, "", &mut errors);
        assert!(!errors.is_empty(), "spec.{field} accepted");
    }
}

#[test]
fn sync_mode_changes_only_the_mode_of_the_secretsyncs() {
    let observe = objects(&text(&convert(&[&fixture("vault")], None).stdout));
    let sync = objects(&text(
        &convert(&["--mode", "Sync", &fixture("vault")], None).stdout,
    ));
    assert_eq!(observe.len(), sync.len());
    let mut syncs = 0;
    for (o, s) in observe.iter().zip(&sync) {
        if o["kind"] == "SecretSync" {
            syncs += 1;
            assert_eq!(
                (&o["spec"]["mode"], &s["spec"]["mode"]),
                (&"Observe".into(), &"Sync".into())
            );
            let mut o = o.clone();
            o["spec"]["mode"] = "Sync".into();
            assert_eq!(&o, s);
        } else {
            assert_eq!(o, s);
        }
    }
    assert_eq!(syncs, 3);
}

/// stdin (`-` or no path) reads multi-document YAML and JSON lists as files do; `-o` writes the same text.
#[test]
fn stdin_and_output_file_read_and_write_the_same() {
    let files = convert(&[&fixture("lists")], None);
    let mut input = String::new();
    for f in ["pushsecrets.yaml", "stores.json"] {
        input.push_str("---\n");
        input.push_str(&std::fs::read_to_string(root().join(fixture("lists")).join(f)).unwrap());
        input.push('\n');
    }
    for args in [&["-"][..], &[][..]] {
        let piped = convert(args, Some(&input));
        assert_eq!(piped.status.code(), Some(2));
        assert_eq!(objects(&text(&piped.stdout)), objects(&text(&files.stdout)));
        assert!(text(&piped.stdout).contains("# From SecretStore shop/kv (<stdin>)."));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.yaml");
    let written = convert(&["-o", file.to_str().unwrap(), &fixture("lists")], None);
    assert_eq!((written.status.code(), written.stdout.len()), (Some(2), 0));
    assert_eq!(std::fs::read(&file).unwrap(), files.stdout);
    assert_eq!(written.stderr, files.stderr);
}

/// The order of the input does not change the output.
#[test]
fn the_output_does_not_depend_on_the_order_of_the_input() {
    let dir = root().join(fixture("vault"));
    let forward = convert(
        &[
            &format!("{}/stores.yaml", fixture("vault")),
            &format!("{}/pushsecrets.yaml", fixture("vault")),
        ],
        None,
    );
    let backward = convert(
        &[
            &format!("{}/pushsecrets.yaml", fixture("vault")),
            &format!("{}/stores.yaml", fixture("vault")),
        ],
        None,
    );
    assert!(dir.is_dir());
    assert_eq!(text(&forward.stdout), text(&backward.stdout));
}

#[test]
fn a_file_that_is_not_yaml_is_an_error_naming_it_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "kind: PushSecret\n---\nspec: [unclosed\n").unwrap();
    let out = convert(&[bad.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("bad.yaml: document 2 is not valid YAML"),
        "{}",
        text(&out.stderr)
    );
}

/// `kubectl secretsync convert` runs the same binary installed as `kubectl-secretsync` on the PATH, with the same
/// output and exit status.
#[test]
fn kubectl_runs_it_as_a_plugin() {
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        panic!("kubectl is not on the PATH: the plugin cannot be tested");
    }
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_secretsync"),
        bin.path().join("kubectl-secretsync"),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let listed = run(
        Command::new("kubectl")
            .args(["plugin", "list"])
            .env("PATH", &path),
        None,
    );
    assert!(
        text(&listed.stdout).contains("kubectl-secretsync"),
        "{}",
        text(&listed.stdout)
    );
    for (case, status) in [("azurekv", 0), ("aws", 2)] {
        let direct = convert(&[&fixture(case)], None);
        let plugin = run(
            Command::new("kubectl")
                .args(["secretsync", "convert", &fixture(case)])
                .env("PATH", &path),
            None,
        );
        assert_eq!(
            plugin.status.code(),
            Some(status),
            "{}",
            text(&plugin.stderr)
        );
        assert_eq!(plugin.stdout, direct.stdout);
        assert_eq!(plugin.stderr, direct.stderr);
    }
}

// ----- the CRDs' openAPIV3Schema, checked as the API server does for what the converter writes -----

fn crd_schemas() -> std::collections::BTreeMap<String, Value> {
    let mut out = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(root().join("crds")).unwrap() {
        let crd: Value =
            yaml_serde::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_owned();
        out.insert(
            kind,
            crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone(),
        );
    }
    out
}

/// Structural-schema validation of the parts the converter writes: types, required fields, enums, patterns,
/// lengths, bounds, and no field the schema does not know (the API server would prune it silently).
fn validate(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let at = if path.is_empty() { "/" } else { path };
    match (schema["type"].as_str(), value) {
        (Some("object"), Value::Object(map)) => {
            if schema["maxProperties"]
                .as_u64()
                .is_some_and(|max| map.len() as u64 > max)
            {
                errors.push(format!(
                    "{at}: more than {} properties",
                    schema["maxProperties"]
                ));
            }
            for required in schema["required"].as_array().into_iter().flatten() {
                if !map.contains_key(required.as_str().unwrap()) {
                    errors.push(format!("{at}: {required} is required"));
                }
            }
            let properties = schema["properties"].as_object();
            let additional = &schema["additionalProperties"];
            let open = schema["x-kubernetes-preserve-unknown-fields"] == true
                || *additional == true
                || (properties.is_none() && additional.is_null());
            for (k, v) in map {
                let p = format!("{path}/{k}");
                match properties.and_then(|ps| ps.get(k)) {
                    // The API server knows these of every object; generated schemas leave them out.
                    None if path.is_empty()
                        && ["apiVersion", "kind", "metadata"].contains(&k.as_str()) => {}
                    Some(s) => validate(s, v, &p, errors),
                    None if additional.is_object() => validate(additional, v, &p, errors),
                    None if open => {}
                    None => errors.push(format!("{p}: not in the schema")),
                }
            }
        }
        (Some("array"), Value::Array(items)) => {
            if schema["maxItems"]
                .as_u64()
                .is_some_and(|max| items.len() as u64 > max)
            {
                errors.push(format!("{at}: more than {} items", schema["maxItems"]));
            }
            for (i, item) in items.iter().enumerate() {
                validate(&schema["items"], item, &format!("{path}/{i}"), errors);
            }
        }
        (Some("string"), Value::String(s)) => {
            let chars = s.chars().count() as u64;
            if schema["maxLength"].as_u64().is_some_and(|m| chars > m)
                || schema["minLength"].as_u64().is_some_and(|m| chars < m)
            {
                errors.push(format!("{at}: {s:?} has a length out of bounds"));
            }
            if let Some(pattern) = schema["pattern"].as_str()
                && !regex::Regex::new(pattern).unwrap().is_match(s)
            {
                errors.push(format!("{at}: {s:?} does not match {pattern}"));
            }
        }
        (Some("integer"), Value::Number(n)) if n.is_i64() || n.is_u64() => {
            let n = n.as_f64().unwrap();
            if schema["minimum"].as_f64().is_some_and(|m| n < m)
                || schema["maximum"].as_f64().is_some_and(|m| n > m)
            {
                errors.push(format!("{at}: {n} out of bounds"));
            }
        }
        (Some("boolean"), Value::Bool(_)) | (None, _) => {}
        (Some(t), v) => errors.push(format!("{at}: {v} is not of type {t}")),
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
}
