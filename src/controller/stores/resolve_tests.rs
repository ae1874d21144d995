use super::*;
use crate::api::{ClusterStoreSpec, StoreSpec};
use serde_json::json;

fn target(v: serde_json::Value) -> Target {
    serde_json::from_value(v).expect("target parses")
}

fn store(v: serde_json::Value) -> StoreSpec {
    serde_json::from_value(v).expect("store parses")
}

fn cluster(v: serde_json::Value) -> ClusterStoreSpec {
    serde_json::from_value(v).expect("cluster store parses")
}

fn ns<'a>(name: &'a str, labels: Option<&'a BTreeMap<String, String>>) -> Namespace<'a> {
    Namespace { name, labels }
}

/// Resolves `t` in namespace `namespace` through a namespaced Store with `spec`, inline targets off.
fn through_store_in(namespace: &str, t: &Target, spec: &StoreSpec) -> Result<Connection, Refusal> {
    resolve(
        t,
        &ns(namespace, None),
        Some(StoreObject::Namespaced(spec)),
        false,
    )
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn vault_store() -> StoreSpec {
    store(json!({
        "dialect": "AzureKeyVault",
        "endpoint": "https://vault.example",
        "credentialsRef": {"name": "kv-creds"},
        "caBundle": "PEM",
        "azureKeyVault": {"authorityHost": "https://login.example", "apiVersion": "7.5"},
        "rateLimit": {"requestsPerSecond": 5, "burst": 2}
    }))
}

#[test]
fn inline_targets_are_refused_unless_the_operator_allows_them() {
    let t = target(
        json!({"dialect": "Barbican", "endpoint": "https://b.example", "credentialsRef": {"name": "c"}}),
    );
    assert_eq!(
        resolve(&t, &ns("a", None), None, false),
        Err(Refusal::InlineTargetNotAllowed)
    );
    let c = resolve(&t, &ns("a", None), None, true).expect("allowed");
    assert_eq!(c.store, None);
    assert_eq!(c.dialect, DialectKind::Barbican);
    assert_eq!(c.credentials, Some(("a".into(), "c".into())));
    assert!(c.may_use_controller_identity);
}

#[test]
fn a_namespaced_store_resolves_in_its_own_namespace_only() {
    let t = target(
        json!({"storeRef": {"kind": "Store", "name": "vault"}, "azureKeyVault": {"purge": true}}),
    );
    let spec = vault_store();
    let c = through_store_in("team-a", &t, &spec).expect("resolves");
    assert_eq!(c.dialect, DialectKind::AzureKeyVault);
    assert_eq!(c.credentials, Some(("team-a".into(), "kv-creds".into())));
    assert!(!c.may_use_controller_identity);
    assert_eq!(c.ca_bundle.as_deref(), Some("PEM"));
    assert_eq!(c.rate_limit.map(|r| r.requests_per_second), Some(5));
    assert_eq!(c.target.endpoint.as_deref(), Some("https://vault.example"));
    assert_eq!(c.target.store_ref, None);
    let akv = c.target.azure_key_vault.expect("settings");
    assert_eq!(akv.authority_host.as_deref(), Some("https://login.example"));
    assert_eq!(akv.api_version.as_deref(), Some("7.5"));
    assert!(akv.purge, "the SecretSync's per-secret policy is kept");
    assert!(!akv.allow_purge, "the store did not allow purges");

    // A SecretSync cannot allow itself to purge: the store decides.
    let t = target(json!({"storeRef": {"kind": "Store", "name": "vault"},
                          "azureKeyVault": {"purge": true, "allowPurge": true}}));
    let c = through_store_in("team-a", &t, &spec).expect("resolves");
    assert!(!c.target.azure_key_vault.expect("settings").allow_purge);
    let mut spec = vault_store();
    spec.azure_key_vault.get_or_insert_default().allow_purge = true;
    let c = through_store_in("team-a", &t, &spec).expect("resolves");
    assert!(c.target.azure_key_vault.expect("settings").allow_purge);
}

#[test]
fn a_store_namespace_in_a_reference_is_ignored_for_a_namespaced_store() {
    // The CRD refuses it; an object written past validation still cannot reach another namespace.
    let t = target(json!({"storeRef": {"kind": "Store", "name": "s"}}));
    let spec = store(json!({
        "dialect": "AzureKeyVault", "endpoint": "https://v",
        "credentialsRef": {"name": "c", "namespace": "kube-system"},
        "serviceAccountRef": {"name": "sa", "namespace": "kube-system"}
    }));
    let c = through_store_in("team-a", &t, &spec).unwrap();
    assert_eq!(c.credentials, Some(("team-a".into(), "c".into())));
    assert_eq!(
        c.service_account,
        Some(("team-a".into(), "sa".into(), None))
    );
}

#[test]
fn nothing_a_secretsync_sets_decides_where_requests_or_credentials_go() {
    // Fields the CRD refuses next to storeRef, written into etcd past validation: the store's values win.
    let t = target(json!({
        "storeRef": {"kind": "Store", "name": "vault"},
        "endpoint": "https://attacker.example",
        "credentialsRef": {"name": "someone-elses"},
        "azureKeyVault": {"authorityHost": "https://attacker.example", "apiVersion": "x"}
    }));
    let spec = vault_store();
    let c = through_store_in("team-a", &t, &spec).unwrap();
    assert_eq!(c.target.endpoint.as_deref(), Some("https://vault.example"));
    assert_eq!(c.target.credentials_ref, None);
    assert_eq!(c.credentials, Some(("team-a".into(), "kv-creds".into())));
    let akv = c.target.azure_key_vault.unwrap();
    assert_eq!(akv.authority_host.as_deref(), Some("https://login.example"));
    assert_eq!(akv.api_version.as_deref(), Some("7.5"));

    // A store that sets no authority leaves the default, not the SecretSync's.
    let plain = store(
        json!({"dialect": "AzureKeyVault", "endpoint": "https://v", "credentialsRef": {"name": "c"}}),
    );
    let c = through_store_in("team-a", &t, &plain).unwrap();
    assert_eq!(c.target.azure_key_vault.unwrap().authority_host, None);

    let barbican = store(json!({"dialect": "Barbican", "credentialsRef": {"name": "ks"}}));
    let t = target(json!({
        "storeRef": {"kind": "Store", "name": "b"},
        "barbican": {"projectId": "p", "interface": "admin", "region": "evil", "keepSuperseded": 3}
    }));
    let c = through_store_in("team-a", &t, &barbican).unwrap();
    let b = c.target.barbican.unwrap();
    assert_eq!((b.project_id, b.interface, b.region), (None, None, None));
    assert_eq!(b.keep_superseded, Some(3));
    assert_eq!(c.target.endpoint, None);

    let tencent = store(
        json!({"dialect": "TencentSSM", "credentialsRef": {"name": "k"}, "tencentSSM": {"region": "ap-1"}}),
    );
    let t = target(json!({
        "storeRef": {"kind": "Store", "name": "t"},
        "tencentSSM": {"region": "evil", "requestsPerSecond": 10000, "versionPolicy": "History"}
    }));
    let c = through_store_in("team-a", &t, &tencent).unwrap();
    let s = c.target.tencent_ssm.unwrap();
    assert_eq!(s.region.as_deref(), Some("ap-1"));
    assert_eq!(
        s.requests_per_second, None,
        "the store's rate, not the SecretSync's"
    );
    assert_eq!(
        s.version_policy,
        Some(crate::api::TencentVersionPolicy::History)
    );

    let sf = store(json!({"dialect": "ServiceFabricMesh", "endpoint": "https://sf"}));
    let t = target(json!({
        "storeRef": {"kind": "Store", "name": "s"},
        "serviceFabricMesh": {"apiVersion": "evil", "retainVersions": 1}
    }));
    let c = through_store_in("team-a", &t, &sf).unwrap();
    let s = c.target.service_fabric_mesh.unwrap();
    assert_eq!(s.api_version, None);
    assert_eq!(s.retain_versions, Some(1));
}

#[test]
fn a_missing_store_or_one_of_the_other_kind_is_not_found() {
    let t = target(json!({"storeRef": {"kind": "Store", "name": "vault"}}));
    let err = resolve(&t, &ns("a", None), None, true).unwrap_err();
    assert_eq!(err.reason(), "StoreNotFound");
    assert!(err.to_string().contains("\"vault\"") && err.to_string().contains("\"a\""));
    let c = cluster(json!({"dialect": "DockerSwarm"}));
    assert_eq!(
        resolve(&t, &ns("a", None), Some(StoreObject::Cluster(&c)), true)
            .unwrap_err()
            .reason(),
        "StoreNotFound"
    );
}

#[test]
fn a_cluster_store_admits_by_name_by_selector_or_without_conditions() {
    let t = target(json!({"storeRef": {"kind": "ClusterStore", "name": "shared"}}));
    let open = cluster(json!({"dialect": "DockerSwarm"}));
    assert!(
        resolve(
            &t,
            &ns("any", None),
            Some(StoreObject::Cluster(&open)),
            false
        )
        .is_ok()
    );

    let only_a =
        cluster(json!({"dialect": "DockerSwarm", "conditions": [{"namespaces": ["team-a"]}]}));
    assert!(
        resolve(
            &t,
            &ns("team-a", None),
            Some(StoreObject::Cluster(&only_a)),
            false
        )
        .is_ok()
    );
    let err = resolve(
        &t,
        &ns("team-b", None),
        Some(StoreObject::Cluster(&only_a)),
        false,
    )
    .unwrap_err();
    assert_eq!(err.reason(), "StoreNotAllowed");
    assert!(err.to_string().contains("team-b"));
    assert!(!needs_namespace_labels(&only_a));

    let by_label = cluster(json!({"dialect": "DockerSwarm", "conditions": [
        {"namespaces": ["ops"]},
        {"namespaceSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["prod"]}]}}
    ]}));
    assert!(needs_namespace_labels(&by_label));
    let prod = labels(&[("tier", "prod")]);
    let dev = labels(&[("tier", "dev")]);
    let store = || Some(StoreObject::Cluster(&by_label));
    assert!(resolve(&t, &ns("x", Some(&prod)), store(), false).is_ok());
    assert!(resolve(&t, &ns("ops", Some(&dev)), store(), false).is_ok());
    assert_eq!(
        resolve(&t, &ns("x", Some(&dev)), store(), false)
            .unwrap_err()
            .reason(),
        "StoreNotAllowed"
    );
    assert_eq!(
        resolve(&t, &ns("x", None), store(), false)
            .unwrap_err()
            .reason(),
        "StoreNotAllowed",
        "unknown labels admit nothing through a selector"
    );
}

#[test]
fn a_cluster_store_uses_its_own_namespaces_and_may_use_the_controller_identity() {
    let t = target(json!({"storeRef": {"kind": "ClusterStore", "name": "shared"}}));
    let c = cluster(json!({
        "dialect": "AzureKeyVault", "endpoint": "https://v",
        "credentialsRef": {"name": "c", "namespace": "platform"},
        "serviceAccountRef": {"name": "sa", "namespace": "platform", "audience": "aud"}
    }));
    let conn = resolve(
        &t,
        &ns("team-a", None),
        Some(StoreObject::Cluster(&c)),
        false,
    )
    .unwrap();
    assert_eq!(conn.credentials, Some(("platform".into(), "c".into())));
    assert_eq!(
        conn.service_account,
        Some(("platform".into(), "sa".into(), Some("aud".into())))
    );
    assert!(conn.may_use_controller_identity);
    // Written past validation without a namespace: refused rather than guessed.
    let bad = cluster(
        json!({"dialect": "AzureKeyVault", "endpoint": "https://v", "credentialsRef": {"name": "c"}}),
    );
    assert_eq!(
        resolve(
            &t,
            &ns("team-a", None),
            Some(StoreObject::Cluster(&bad)),
            false
        )
        .unwrap_err()
        .reason(),
        "InvalidSpec"
    );
}

#[test]
fn a_source_selector_admits_only_matching_secrets() {
    let t = target(json!({"storeRef": {"kind": "Store", "name": "s"}}));
    let mut spec = vault_store();
    let c = through_store_in("a", &t, &spec).unwrap();
    assert_eq!(source_allowed(&c, "any", &BTreeMap::new()), Ok(()));

    spec.source_selector =
        Some(serde_json::from_value(json!({"matchLabels": {"export": "true"}})).unwrap());
    let c = through_store_in("a", &t, &spec).unwrap();
    let err = source_allowed(&c, "tls", &BTreeMap::new()).unwrap_err();
    assert_eq!(err.reason(), "SourceNotAllowed");
    assert!(err.to_string().contains("\"tls\"") && err.to_string().contains("Store \"s\""));
    assert_eq!(
        source_allowed(&c, "tls", &labels(&[("export", "false")])).map_err(|e| e.reason()),
        Err("SourceNotAllowed")
    );
    assert_eq!(
        source_allowed(&c, "tls", &labels(&[("export", "true")])),
        Ok(())
    );
}

/// The store names remote secrets, not the tenant: in a ClusterStore two namespaces writing `db` get two secrets.
#[test]
fn remote_names_come_from_the_stores_template() {
    let via_cluster = |template: Option<&str>, remote: Option<&str>, namespace: &str| {
        let mut spec = json!({"dialect": "ServiceFabricMesh", "endpoint": "https://sf"});
        if let Some(t) = template {
            spec["remoteNameTemplate"] = json!(t);
        }
        let mut t = json!({"storeRef": {"kind": "ClusterStore", "name": "shared"}});
        if let Some(r) = remote {
            t["remoteName"] = json!(r);
        }
        let c = cluster(spec);
        resolve(
            &target(t),
            &ns(namespace, None),
            Some(StoreObject::Cluster(&c)),
            false,
        )
        .unwrap()
        .remote_name(namespace, "app")
    };
    assert_eq!(
        via_cluster(None, Some("db"), "team-a").unwrap(),
        "team-a-db"
    );
    assert_eq!(
        via_cluster(None, Some("db"), "team-b").unwrap(),
        "team-b-db"
    );
    assert_eq!(via_cluster(None, None, "team-a").unwrap(), "team-a-app");
    assert_eq!(
        via_cluster(Some("{remoteName}"), Some("db"), "team-a").unwrap(),
        "db"
    );
    assert_eq!(
        via_cluster(
            Some("apps/{namespace}/{name}--{remoteName}"),
            Some("db"),
            "a"
        )
        .unwrap(),
        "apps/a/app--db"
    );
    // A namespaced Store keeps the name as written; an inline target names its own.
    let t = target(json!({"storeRef": {"kind": "Store", "name": "s"}, "remoteName": "db"}));
    let s = store(json!({"dialect": "ServiceFabricMesh", "endpoint": "https://sf"}));
    let conn = through_store_in("team-a", &t, &s).unwrap();
    assert_eq!(conn.remote_name("team-a", "app").unwrap(), "db");
    assert_eq!(conn.name_template(), None);
    let templated = store(
        json!({"dialect": "ServiceFabricMesh", "endpoint": "https://sf", "remoteNameTemplate": "x-{remoteName}"}),
    );
    let conn = through_store_in("team-a", &t, &templated).unwrap();
    assert_eq!(conn.remote_name("team-a", "app").unwrap(), "x-db");
    assert_eq!(conn.name_template(), Some("x-{remoteName}"));
    let inline = target(
        json!({"dialect": "Barbican", "endpoint": "https://b", "credentialsRef": {"name": "c"}, "remoteName": "db"}),
    );
    let conn = resolve(&inline, &ns("a", None), None, true).unwrap();
    assert_eq!(conn.remote_name("a", "app").unwrap(), "db");
}

/// Past the CRD's pattern (an older CRD, a direct etcd write): refused, never rendered half-way.
#[test]
fn a_template_with_unknown_placeholders_or_no_name_is_refused() {
    for bad in [
        "{namespace}",
        "fixed",
        "{namespace}-{remotename}",
        "{remoteName}-{uid}",
        "{remoteName",
        "}{remoteName}",
        "{{remoteName}}",
    ] {
        let err = render_name(bad, "a", "app", "db").unwrap_err();
        assert_eq!(err.reason(), "InvalidSpec", "{bad}");
        assert!(err.to_string().contains(bad), "{bad}: {err}");
    }
    assert_eq!(render_name("{name}", "a", "app", "db").unwrap(), "app");
}
