//! The admission policy `secretsync-store-authority` (deploy/base/store-authority-policy.yaml) on the test bed's
//! real kube-apiserver, with users of limited RBAC (admin's impersonation, `kubectl --as`): whoever writes a Store or
//! ClusterStore must be allowed to `get` the credentials Secret and to `create` tokens for the ServiceAccount it
//! names, or the API server refuses it. And the token grants a namespace admin ships (deploy/token-grant/ and the
//! Helm chart's `tokenGrants`) let the controller's ServiceAccount request tokens for that one account only.
//!
//! And a tenant's Stores, with a controller process checking them and syncing through them, reach no listener they
//! point at when the operator's limits or the endpoint parser refuse them (the token case, a host outside
//! `--namespaced-store-hosts`, shaped URLs in a Keystone `authUrl` and behind the schema, a NUL before a socket).
//!
//! Each test binds its own copy of the shipped policy to the objects it labels (an `objectSelector`: a
//! `namespaceSelector` does not limit cluster-scoped ClusterStores), so the other tests of the shared API server
//! never meet it, and each test's user has a name of its own (RBAC for users is cluster-wide).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

mod support;
use support::env;
#[allow(dead_code)]
#[path = "support/cluster.rs"]
mod cluster;
use cluster::{
    install_crds_and_namespace, kubectl, kubectl_try, ready_reason, root, run, wait_for,
};
#[path = "support/replica.rs"]
mod replica;

/// The label the test's copy of the policy selects on, with the test's namespace as its value.
const LABEL: &str = "secretsync.io/store-authority-test";
/// How the policy's messages begin.
const REFUSAL: &str = "secretsync-store-authority: you may not";
/// RBAC and the policy reach the API server's authorizer and admission through informers: a few seconds.
const PROPAGATION: Duration = Duration::from_secs(30);

/// A namespace holding a Secret `creds` and a ServiceAccount `ci-deployer`, a user `tenant-<namespace>` who may
/// create and update Stores there (and nothing else), and the shipped policy bound to the objects labelled for this
/// test. Everything is deleted when dropped.
struct Bed {
    ns: String,
    tenant: String,
}

impl Bed {
    fn new(prefix: &str, bind_policy: bool) -> Bed {
        install_crds_and_namespace();
        let ns = format!("{prefix}-{:06x}", rand::random::<u32>() & 0xff_ffff);
        let bed = Bed {
            tenant: format!("tenant-{ns}"),
            ns,
        };
        let ns = &bed.ns;
        kubectl(&["create", "namespace", ns], None);
        bed.admin(json!([
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": ns},
             "stringData": {"username": "u", "password": "p"}},
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "ci-deployer", "namespace": ns}},
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "other", "namespace": ns}},
        ]));
        bed.grant(
            "store-writer",
            json!({"apiGroups": ["secretsync.io"], "resources": ["stores"],
                   "verbs": ["get", "list", "create", "update", "patch"]}),
        );
        if bind_policy {
            bed.bind_policy();
        }
        bed
    }

    /// Objects applied with the admin identity.
    fn admin(&self, items: Value) {
        let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
        kubectl(&["apply", "-f", "-"], Some(&list.to_string()));
    }

    /// A Role in the test's namespace with `rule`, bound to the tenant.
    fn grant(&self, name: &str, rule: Value) {
        self.admin(json!([
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
             "metadata": {"name": name, "namespace": self.ns}, "rules": [rule]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": name, "namespace": self.ns},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
             "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": self.tenant}]},
        ]));
    }

    /// `get` on the Secret `secret` of the test's namespace for the tenant.
    fn may_get(&self, secret: &str) {
        self.grant(
            &format!("read-{secret}"),
            json!({"apiGroups": [""], "resources": ["secrets"], "resourceNames": [secret], "verbs": ["get"]}),
        );
    }

    /// `create` on the token of the ServiceAccount `sa` of the test's namespace for the tenant.
    fn may_request_tokens(&self, sa: &str) {
        self.grant(
            &format!("token-{sa}"),
            json!({"apiGroups": [""], "resources": ["serviceaccounts/token"], "resourceNames": [sa],
                   "verbs": ["create"]}),
        );
    }

    /// The shipped policy and binding, renamed for this test, the binding limited to the objects labelled for it.
    fn bind_policy(&self) {
        let text = std::fs::read_to_string(root().join("deploy/base/store-authority-policy.yaml"))
            .expect("deploy/base/store-authority-policy.yaml");
        let name = self.policy();
        let mut items = Vec::new();
        for doc in yaml_serde::Deserializer::from_str(&text) {
            let mut doc: Value = serde::Deserialize::deserialize(doc).unwrap();
            doc["metadata"]["name"] = json!(name);
            match doc["kind"].as_str().unwrap() {
                "ValidatingAdmissionPolicy" => {}
                "ValidatingAdmissionPolicyBinding" => {
                    assert_eq!(doc["spec"]["validationActions"], json!(["Deny"]));
                    assert_eq!(
                        doc["spec"]["matchResources"],
                        Value::Null,
                        "bound cluster-wide"
                    );
                    doc["spec"]["policyName"] = json!(name);
                    doc["spec"]["matchResources"] =
                        json!({"objectSelector": {"matchLabels": {LABEL: self.ns}}});
                }
                other => panic!("unexpected {other} in the store authority policy file"),
            }
            items.push(doc);
        }
        assert_eq!(items.len(), 2);
        self.admin(json!(items));
    }

    fn policy(&self) -> String {
        format!("{}-store-authority", self.ns)
    }

    /// A Store of this test named `name` with `spec`, labelled for the test's policy.
    fn store(&self, name: &str, spec: Value) -> String {
        json!({"apiVersion": "secretsync.io/v1alpha1", "kind": "Store",
               "metadata": {"name": name, "namespace": self.ns, "labels": {LABEL: self.ns}},
               "spec": spec})
        .to_string()
    }

    /// A ClusterStore of this test (named `<namespace>-<name>`) with `spec`, labelled for the test's policy.
    fn cluster_store(&self, name: &str, spec: Value) -> String {
        json!({"apiVersion": "secretsync.io/v1alpha1", "kind": "ClusterStore",
               "metadata": {"name": format!("{}-{name}", self.ns), "labels": {LABEL: self.ns}},
               "spec": spec})
        .to_string()
    }

    /// `kubectl apply` of `object` as the tenant.
    fn as_tenant(&self, object: &str) -> Result<String, String> {
        kubectl_try(
            &["--as", &self.tenant, "apply", "--server-side", "-f", "-"],
            Some(object),
        )
    }

    /// `object` as the tenant is refused by the policy, and the refusal says why with `says`. (By this test's copy,
    /// or by deploy/'s own binding when a test that applied deploy/ left it: the same policy.)
    fn refused(&self, what: &str, object: &str, says: &str) {
        match self.as_tenant(object) {
            Ok(out) => {
                panic!("{what}: accepted ({out}); expected the store authority policy to refuse it")
            }
            Err(e) => {
                assert!(
                    e.contains(REFUSAL) && e.contains(says),
                    "{what}: refused, but not by the policy or not naming {says:?}: {e}"
                );
            }
        }
    }

    /// `object` as the tenant is accepted once RBAC changes have reached the API server.
    fn accepted(&self, what: &str, object: &str) {
        let start = std::time::Instant::now();
        while let Err(e) = self.as_tenant(object) {
            assert!(
                start.elapsed() < PROPAGATION,
                "{what}: still refused after {PROPAGATION:?}: {e}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits until the test's policy is in force: `object`, which it refuses, is refused by it.
    fn wait_for_policy(&self, object: &str) {
        let mut last = String::new();
        let took = std::time::Instant::now();
        while took.elapsed() < PROPAGATION {
            match self.as_tenant(object) {
                Err(e) if e.contains(REFUSAL) => return,
                Err(e) => last = e,
                Ok(out) => last = format!("accepted: {out}"),
            }
            // An accepted probe must not stay: the next attempt is a CREATE again.
            let _ = kubectl_try(&["delete", "-f", "-", "--ignore-not-found"], Some(object));
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("the store authority policy is not in force within {PROPAGATION:?}: {last}");
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let selector = format!("{LABEL}={}", self.ns);
        for args in [
            vec![
                "delete",
                "clusterstore",
                "-l",
                &selector,
                "--ignore-not-found",
            ],
            vec![
                "delete",
                "clusterrolebinding,clusterrole",
                "-l",
                &selector,
                "--ignore-not-found",
            ],
            vec![
                "delete",
                "validatingadmissionpolicybinding,validatingadmissionpolicy",
                &self.policy(),
                "--ignore-not-found",
            ],
            vec![
                "delete",
                "namespace",
                &self.ns,
                "--wait=false",
                "--ignore-not-found",
            ],
        ] {
            let _ = kubectl_try(&args, None);
        }
    }
}

/// A Barbican store's spec with the test's credentials Secret: valid for the CRD, and the controller never
/// runs here.
fn barbican(credentials: Value) -> Value {
    json!({"dialect": "Barbican", "credentialsRef": credentials})
}

/// A Barbican store's spec without references: what the tenant may write without further rights.
fn no_references() -> Value {
    json!({"dialect": "Barbican", "endpoint": "http://127.0.0.1:1", "barbican": {"projectId": "p"}})
}

/// An Azure Key Vault store's spec using workload identity through `service_account`.
fn key_vault(credentials: Value, service_account: Value) -> Value {
    json!({"dialect": "AzureKeyVault", "endpoint": "https://tenant.vault.azure.net",
           "credentialsRef": credentials, "serviceAccountRef": service_account})
}

#[test]
fn a_store_naming_a_secret_its_author_may_not_read_is_refused() {
    let bed = Bed::new("authority-secret", true);
    let reading_creds = bed.store("reads-creds", barbican(json!({"name": "creds"})));
    bed.wait_for_policy(&reading_creds);

    // The tenant may create Stores: one without a credentials Secret passes.
    bed.accepted(
        "a Store without credentialsRef",
        &bed.store("no-credentials", no_references()),
    );
    // Naming a Secret they may not get: refused, with the Secret named.
    bed.refused(
        "a Store naming creds",
        &reading_creds,
        &format!("Secret {}/creds", bed.ns),
    );
    // A right on another Secret does not help; `get` on that one does.
    bed.may_get("other");
    std::thread::sleep(Duration::from_secs(2));
    bed.refused(
        "a Store naming creds, with get on another Secret",
        &reading_creds,
        &format!("Secret {}/creds", bed.ns),
    );
    bed.may_get("creds");
    bed.accepted("a Store naming creds, with get on it", &reading_creds);

    // UPDATE: a store the admin set up with a Secret the tenant may not read. Changes that leave the references
    // and the endpoint alone pass; pointing it elsewhere, or at another Secret, does not.
    bed.admin(json!([
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "admins", "namespace": bed.ns},
         "stringData": {"username": "u", "password": "p"}},
    ]));
    let admins = |extra: Value| {
        let mut spec = barbican(json!({"name": "admins"}));
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        bed.store("admins", spec)
    };
    kubectl(
        &["apply", "--server-side", "-f", "-"],
        Some(&admins(json!({}))),
    );
    bed.accepted(
        "an update that leaves references and endpoint alone",
        &admins(json!({"rateLimit": {"requestsPerSecond": 5}})),
    );
    bed.refused(
        "an update of the endpoint of a store using a Secret the tenant may not read",
        &admins(json!({"rateLimit": {"requestsPerSecond": 5}, "endpoint": "http://127.0.0.1:2"})),
        &format!("Secret {}/admins", bed.ns),
    );
    // Whatever else decides where the credentials go: the catalog entry they are used against.
    bed.refused(
        "an update of the Keystone catalog interface of a store using a Secret the tenant may not read",
        &admins(json!({"rateLimit": {"requestsPerSecond": 5}, "barbican": {"interface": "admin"}})),
        &format!("Secret {}/admins", bed.ns),
    );
    bed.refused(
        "an update that swaps the Secret for one the tenant may not read",
        &bed.store("reads-creds", barbican(json!({"name": "admins"}))),
        &format!("Secret {}/admins", bed.ns),
    );
}

#[test]
fn a_store_naming_a_service_account_its_author_may_not_get_tokens_for_is_refused() {
    let bed = Bed::new("authority-sa", true);
    bed.may_get("creds");
    let with_account = |sa: &str| {
        bed.store(
            &format!("uses-{sa}"),
            key_vault(json!({"name": "creds"}), json!({"name": sa})),
        )
    };
    bed.wait_for_policy(&with_account("ci-deployer"));
    bed.accepted(
        "a Key Vault Store with its credentials only",
        &bed.store(
            "no-account",
            json!({"dialect": "AzureKeyVault", "endpoint": "https://tenant.vault.azure.net",
                   "credentialsRef": {"name": "creds"}}),
        ),
    );
    let says = format!("ServiceAccount {}/ci-deployer", bed.ns);
    bed.refused(
        "a Store naming ci-deployer",
        &with_account("ci-deployer"),
        &says,
    );
    // Reading the ServiceAccount is not enough: it takes create on its token subresource.
    bed.grant(
        "read-accounts",
        json!({"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get", "list"]}),
    );
    std::thread::sleep(Duration::from_secs(2));
    bed.refused(
        "a Store naming ci-deployer, with get on ServiceAccounts",
        &with_account("ci-deployer"),
        &says,
    );
    bed.may_request_tokens("ci-deployer");
    bed.accepted(
        "a Store naming ci-deployer, with create on its token",
        &with_account("ci-deployer"),
    );
    // The grant is for that account only.
    bed.refused(
        "a Store naming another account",
        &with_account("other"),
        &format!("ServiceAccount {}/other", bed.ns),
    );
}

#[test]
fn a_cluster_store_needs_the_rights_in_the_namespaces_it_names() {
    let bed = Bed::new("authority-cluster", true);
    let selector_label = json!({LABEL: bed.ns});
    let role = format!("{}-clusterstores", bed.ns);
    bed.admin(json!([
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": role, "labels": selector_label},
         "rules": [{"apiGroups": ["secretsync.io"], "resources": ["clusterstores"],
                    "verbs": ["get", "list", "create", "update", "patch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": role, "labels": selector_label},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": bed.tenant}]},
    ]));
    let credentials = bed.cluster_store(
        "creds",
        barbican(json!({"name": "creds", "namespace": bed.ns})),
    );
    bed.wait_for_policy(&credentials);
    bed.accepted(
        "a ClusterStore without references",
        &bed.cluster_store("plain", no_references()),
    );
    bed.refused(
        "a ClusterStore naming creds",
        &credentials,
        &format!("Secret {}/creds", bed.ns),
    );
    // The right in the namespace the ClusterStore names.
    bed.may_get("creds");
    bed.accepted("a ClusterStore naming creds, with get on it", &credentials);
    // The same name in another namespace is another Secret.
    bed.refused(
        "a ClusterStore naming creds in another namespace",
        &bed.cluster_store(
            "elsewhere",
            barbican(json!({"name": "creds", "namespace": "secretsync-system"})),
        ),
        "Secret secretsync-system/creds",
    );
    // Workload identity through a ServiceAccount of the namespace: create on its token, there.
    let identity = bed.cluster_store(
        "identity",
        key_vault(
            json!({"name": "creds", "namespace": bed.ns}),
            json!({"name": "ci-deployer", "namespace": bed.ns}),
        ),
    );
    bed.refused(
        "a ClusterStore naming ci-deployer",
        &identity,
        &format!("ServiceAccount {}/ci-deployer", bed.ns),
    );
    bed.may_request_tokens("ci-deployer");
    bed.accepted(
        "a ClusterStore naming ci-deployer, with create on its token",
        &identity,
    );
}

/// Whether `user` may create a token for the ServiceAccount `sa` of `ns`, as the API server's authorizer answers.
fn may_request_token(user: &str, ns: &str, sa: &str) -> bool {
    run(
        "kubectl",
        &[
            "auth",
            "can-i",
            "create",
            &format!("serviceaccounts/{sa}"),
            "--subresource=token",
            "-n",
            ns,
            "--as",
            user,
        ],
        None,
    )
    .is_ok()
}

#[test]
fn the_shipped_token_grants_let_the_controller_request_one_accounts_tokens() {
    let bed = Bed::new("authority-grant", false);
    let ns = bed.ns.clone();
    // The plain file, filled in as its comment says, with the controller's ServiceAccount moved into the test's
    // namespace (deploy/'s own may hold other grants on this shared API server).
    let example =
        std::fs::read_to_string(root().join("deploy/token-grant/token-grant.yaml")).unwrap();
    assert!(example.contains("    name: secretsync\n    namespace: secretsync-system\n"));
    let example = example
        .replace("${NAMESPACE}", &ns)
        .replace("${SERVICE_ACCOUNT}", "ci-deployer")
        .replace(
            "    name: secretsync\n    namespace: secretsync-system\n",
            &format!("    name: controller\n    namespace: {ns}\n"),
        );
    assert!(!example.contains("${"), "a placeholder left: {example}");
    let controller = format!("system:serviceaccount:{ns}:controller");
    assert!(!may_request_token(&controller, &ns, "ci-deployer"));
    kubectl(&["apply", "-f", "-"], Some(&example));
    wait_for(
        "the example's grant reaches the authorizer",
        PROPAGATION,
        || may_request_token(&controller, &ns, "ci-deployer"),
    );
    assert!(
        !may_request_token(&controller, &ns, "other"),
        "the example grants more than its one account"
    );

    // The Helm chart's tokenGrants: the same Role and RoleBinding, for a release whose ServiceAccount is
    // `<release>-secretsync` in the release's namespace (here the test's).
    let release = format!("{ns}-r");
    let rendered = run(
        &env("HELM_BIN"),
        &[
            "template",
            &release,
            "deploy/helm/secretsync",
            "-n",
            &ns,
            "--set",
            &format!("tokenGrants[0].namespace={ns},tokenGrants[0].serviceAccount=other"),
        ],
        None,
    )
    .unwrap();
    let grants: Vec<Value> = yaml_serde::Deserializer::from_str(&rendered)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|o: &Value| {
            o["metadata"]["name"] == json!(format!("{release}-secretsync-token-other"))
        })
        .collect();
    assert_eq!(
        grants.iter().map(|o| o["kind"].clone()).collect::<Vec<_>>(),
        [json!("Role"), json!("RoleBinding")]
    );
    assert_eq!(grants[0]["rules"][0]["resourceNames"], json!(["other"]));
    bed.admin(json!(grants));
    let chart_controller = format!("system:serviceaccount:{ns}:{release}-secretsync");
    wait_for(
        "the chart's grant reaches the authorizer",
        PROPAGATION,
        || may_request_token(&chart_controller, &ns, "other"),
    );
    assert!(!may_request_token(&chart_controller, &ns, "ci-deployer"));
}

/// Counts the connections made to a TCP listener on `ip` (before any handshake: a connection is already too much)
/// and closes them; returns its address.
fn tripwire(ip: &str) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(conn);
        }
    });
    (addr, hits)
}

/// Counts the connections made to a unix socket listener at `addr` (a path, or an abstract name).
fn unix_tripwire(addr: &std::os::unix::net::SocketAddr) -> Arc<AtomicUsize> {
    let listener = std::os::unix::net::UnixListener::bind_addr(addr).unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(conn);
        }
    });
    hits
}

/// An HTTPS listener on 127.0.0.1 with a certificate made here, as a tenant would run one to receive tokens: its
/// CA (the certificate itself) and its URL; every connection is counted as it is accepted, and served TLS.
fn tenants_https_listener(rt: &tokio::runtime::Runtime) -> (String, String, Arc<AtomicUsize>) {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![made.cert.der().clone()], key)
    .unwrap();
    let tls = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    rt.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        while let Ok((conn, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let tls = tls.clone();
            tokio::spawn(async move {
                let _ = tls.accept(conn).await;
            });
        }
    });
    (made.cert.pem(), url, hits)
}

/// Replaces the spec's `endpoint` of a stored Store (`namespace` set) or ClusterStore straight in etcd, behind the
/// schema's back, as an object stored before the schema refused such endpoints would hold it.
fn rewrite_endpoint_in_etcd(rt: &tokio::runtime::Runtime, key: &str, endpoint: &str) {
    rt.block_on(support::etcd::rewrite_in_etcd(key, |obj| {
        obj["spec"]["endpoint"] = json!(endpoint);
    }));
}

/// Waits until the `Ready` condition of `kind/name` (namespaced when `ns` is given) reads `want`, e.g.
/// `False/InvalidSpec`; its status once it does.
fn wait_ready(
    kind: &str,
    ns: Option<&str>,
    name: &str,
    want: &str,
    log: &dyn Fn() -> String,
) -> Value {
    let mut args = vec!["get", kind, name, "-o", "json"];
    if let Some(ns) = ns {
        args.extend(["-n", ns]);
    }
    let start = std::time::Instant::now();
    loop {
        let obj: Value = kubectl_try(&args, None)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        if ready_reason(&obj) == want {
            return obj["status"].clone();
        }
        assert!(
            start.elapsed() < CONTROLLER_LIMIT,
            "{kind}/{name}: Ready is {:?}, not {want} within {CONTROLLER_LIMIT:?}: {}\ncontroller log:\n{}",
            ready_reason(&obj),
            obj["status"],
            log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// How long a controller process may take to start and reach a verdict on a store.
const CONTROLLER_LIMIT: Duration = Duration::from_secs(90);

/// A tenant's Stores, with the controller (`secretsync run`, watching the test's namespace, with the admin's
/// kubeconfig so that the API server would grant any TokenRequest, and the test bed's `--namespaced-store-hosts`
/// of 127.0.0.1 only) checking them and syncing through them, reach no listener they point at:
/// - the token case: `serviceAccountRef` with audience `vault`, its authority host (and vault) the tenant's own
///   HTTPS listener, trusted through the Store's `caBundle`;
/// - a host outside the operator's list (127.0.0.2);
/// - a Keystone `authUrl` in the credentials Secret (no schema sees it) with user information, a query or a
///   fragment;
/// - endpoints the schema refuses (a fragment, a query, user information, a unix socket behind a leading NUL),
///   written behind the schema in etcd, in Stores and, for the NUL, in a ClusterStore too.
///
/// And a ClusterStore at a unix socket is let through: the socket's listener sees the controller.
#[test]
fn a_tenants_store_reaches_no_listener_it_points_at() {
    let bed = Bed::new("authority-reach", false);
    let ns = bed.ns.clone();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (tenant_ca, tenant_url, tenant_hits) = tenants_https_listener(&rt);
    let (outside, outside_hits) = tripwire("127.0.0.2");
    let (inside, inside_hits) = tripwire("127.0.0.1");
    use std::os::linux::net::SocketAddrExt;
    let abstract_name = format!("secretsync-canary-{ns}");
    let nul_hits = unix_tripwire(
        &std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes()).unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let socket_hits =
        unix_tripwire(&std::os::unix::net::SocketAddr::from_pathname(&socket).unwrap());

    let keystone = |auth_url: String| {
        json!({"authUrl": auth_url, "username": "u", "password": "p", "projectName": "p",
               "userDomainName": "Default", "projectDomainName": "Default"})
    };
    let keystone_cases = [
        ("keystone-userinfo", format!("http://u@{inside}/v3")),
        ("keystone-query", format!("http://{inside}/v3?x=1")),
        ("keystone-fragment", format!("http://{inside}/v3#")),
    ];
    let mut items = vec![
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "src", "namespace": ns},
               "stringData": {"k": "not-a-real-value"}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kv", "namespace": ns},
               "stringData": {"tenantId": "00000000-0000-0000-0000-000000000001", "clientId": "c"}}),
    ];
    // (store, its spec, the Store's Ready once refused, the SecretSync's)
    let mut stores = vec![
        (
            "token".to_owned(),
            json!({"dialect": "AzureKeyVault", "endpoint": tenant_url, "caBundle": tenant_ca,
                   "credentialsRef": {"name": "kv"},
                   "serviceAccountRef": {"name": "ci-deployer", "audience": "vault"},
                   "azureKeyVault": {"authorityHost": tenant_url}}),
            "False/StoreNotAllowed",
            "False/StoreNotAllowed",
        ),
        (
            "outside".to_owned(),
            json!({"dialect": "ServiceFabricMesh", "endpoint": format!("http://{outside}")}),
            "False/EndpointNotAllowed",
            "False/StoreNotAllowed",
        ),
    ];
    for (name, auth_url) in &keystone_cases {
        items.push(json!({"apiVersion": "v1", "kind": "Secret",
                          "metadata": {"name": name, "namespace": ns}, "stringData": keystone(auth_url.clone())}));
        stores.push((
            (*name).to_owned(),
            json!({"dialect": "Barbican", "endpoint": format!("http://{inside}/v1"),
                   "credentialsRef": {"name": name}}),
            "False/InvalidSpec",
            "False/InvalidSpec",
        ));
    }
    // Applied valid, at a port nothing listens on, and rewritten in etcd below.
    let shaped = [
        (
            "shaped-fragment",
            "ServiceFabricMesh",
            format!("http://{inside}/x#"),
        ),
        (
            "shaped-query",
            "Barbican",
            format!("http://{inside}/v1?x=1"),
        ),
        ("shaped-userinfo", "Barbican", format!("http://u@{inside}")),
        (
            "shaped-nul",
            "DockerSwarm",
            format!("unix://\u{0}{abstract_name}"),
        ),
    ];
    for (name, dialect, _) in &shaped {
        let mut spec = json!({"dialect": dialect, "endpoint": "http://127.0.0.1:1"});
        if *dialect == "Barbican" {
            spec["barbican"] = json!({"projectId": "p"});
        }
        if *dialect == "DockerSwarm" {
            spec["endpoint"] = json!("tcp://127.0.0.1:1");
        }
        stores.push((
            (*name).to_owned(),
            spec,
            "False/InvalidSpec",
            "False/InvalidSpec",
        ));
    }
    for (name, spec, _, _) in &stores {
        items.push(
            json!({"apiVersion": "secretsync.io/v1alpha1", "kind": "Store",
                          "metadata": {"name": name, "namespace": ns}, "spec": spec}),
        );
        items.push(
            json!({"apiVersion": "secretsync.io/v1alpha1", "kind": "SecretSync",
                          "metadata": {"name": name, "namespace": ns},
                          "spec": {"source": {"secretRef": {"name": "src", "key": "k"}},
                                   "target": {"storeRef": {"kind": "Store", "name": name},
                                              "remoteName": format!("{ns}-{name}")}}}),
        );
    }
    // A platform admin's: a unix socket is theirs to name; behind a leading NUL it is not a URL anyone may name.
    let cluster_label = json!({LABEL: ns});
    let cluster_socket = format!("{ns}-socket");
    let cluster_nul = format!("{ns}-nul");
    items.push(json!({"apiVersion": "secretsync.io/v1alpha1", "kind": "ClusterStore",
                      "metadata": {"name": cluster_socket, "labels": cluster_label},
                      "spec": {"dialect": "DockerSwarm", "endpoint": format!("unix://{}", socket.display()),
                               "conditions": [{"namespaces": [ns]}]}}));
    items.push(
        json!({"apiVersion": "secretsync.io/v1alpha1", "kind": "ClusterStore",
                      "metadata": {"name": cluster_nul, "labels": cluster_label},
                      "spec": {"dialect": "DockerSwarm", "endpoint": "tcp://127.0.0.1:1",
                               "conditions": [{"namespaces": [ns]}]}}),
    );
    bed.admin(json!(items));
    for (name, _, endpoint) in &shaped {
        rewrite_endpoint_in_etcd(
            &rt,
            &format!("/registry/secretsync.io/stores/{ns}/{name}"),
            endpoint,
        );
    }
    rewrite_endpoint_in_etcd(
        &rt,
        &format!("/registry/secretsync.io/clusterstores/{cluster_nul}"),
        &format!("unix://\u{0}{abstract_name}"),
    );

    let logs = tempfile::tempdir().unwrap();
    let controller = replica::Replica::start(
        &format!("{ns}-controller"),
        std::path::Path::new(&env("KUBECONFIG")),
        logs.path(),
        &[
            "--leader-election",
            "false",
            "--namespace",
            &ns,
            "--namespaced-store-hosts",
            "127.0.0.1",
        ],
    );
    let log = || controller.log();
    for (name, _, store_ready, sync_ready) in &stores {
        wait_ready("stores.secretsync.io", Some(&ns), name, store_ready, &log);
        wait_ready(
            "secretsyncs.secretsync.io",
            Some(&ns),
            name,
            sync_ready,
            &log,
        );
    }
    wait_ready(
        "clusterstores.secretsync.io",
        None,
        &cluster_nul,
        "False/InvalidSpec",
        &log,
    );
    // The control: the ClusterStore's socket is dialled, so the listeners above would have counted a connection.
    let start = std::time::Instant::now();
    while socket_hits.load(Ordering::SeqCst) == 0 {
        assert!(
            start.elapsed() < CONTROLLER_LIMIT,
            "the ClusterStore's unix socket was never dialled:\n{}",
            controller.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // Refusals are reached before anything is sent; a connection after them would be a retry, given time here.
    std::thread::sleep(Duration::from_secs(2));
    let reached = [
        (
            "the tenant's HTTPS listener",
            tenant_hits.load(Ordering::SeqCst),
        ),
        (
            "the host outside the list",
            outside_hits.load(Ordering::SeqCst),
        ),
        (
            "the listener behind shaped URLs",
            inside_hits.load(Ordering::SeqCst),
        ),
        (
            "the abstract socket behind a NUL",
            nul_hits.load(Ordering::SeqCst),
        ),
    ];
    assert!(
        reached.iter().all(|(_, hits)| *hits == 0),
        "connections: {reached:?}\ncontroller log:\n{}",
        controller.log()
    );
    // The ClusterStores carry the test's label: the bed deletes them.
}
