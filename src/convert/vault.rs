//! `provider.vault` (KV version 2) → dialect `Vault`: the mount, the namespace, and sign-in with a token, AppRole or
//! a ServiceAccount (Kubernetes auth).

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::Notes;
use super::stores::{
    Provider, ProviderOut, StoreCtx, Wanted, credentials_ref, placeholder, service_account_ref,
};
use super::unknown_keys;

const KNOWN: &[&str] = &[
    "auth",
    "server",
    "path",
    "version",
    "namespace",
    "caBundle",
    "caProvider",
    "checkAndSet",
];

pub fn store(p: &Value, ctx: &mut StoreCtx<'_>) -> Option<ProviderOut> {
    if p["version"].as_str().unwrap_or("v2") != "v2" {
        ctx.notes.dropped(
            "provider.vault.version v1 (KV version 1) has no SecretSync dialect: SecretSync writes KV version 2; \
             the PushSecrets that use this store are not converted either",
        );
        return None;
    }
    let mut spec = Map::new();
    spec.insert("dialect".into(), json!("Vault"));
    match p["server"].as_str() {
        Some(server) => {
            spec.insert("endpoint".into(), json!(server.trim_end_matches('/')));
        }
        None => ctx
            .notes
            .dropped("provider.vault.server is missing: set spec.endpoint"),
    }
    let mut settings = Map::new();
    if let Some(path) = p["path"].as_str() {
        // ESO accepts the mount with or without KV v2's `/data` suffix.
        let mount = path.trim_matches('/');
        let mount = mount.strip_suffix("/data").unwrap_or(mount);
        if mount != "secret" {
            settings.insert("mount".into(), json!(mount));
        }
    }
    let namespace = p["namespace"].as_str();
    if let Some(ns) = namespace {
        settings.insert("namespace".into(), json!(ns));
    }
    match p["caBundle"]
        .as_str()
        .map(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()))
    {
        Some(Ok(pem)) => match String::from_utf8(pem) {
            Ok(pem) => {
                spec.insert("caBundle".into(), json!(pem));
            }
            Err(_) => ctx
                .notes
                .dropped("provider.vault.caBundle is not PEM text: set spec.caBundle"),
        },
        Some(Err(_)) => ctx.notes.dropped(
            "provider.vault.caBundle is not base64: set spec.caBundle to the PEM certificates",
        ),
        None => {}
    }
    if p["caProvider"].is_object() {
        ctx.notes.dropped(format!(
            "provider.vault.caProvider ({} `{}`) is read by ESO at run time: copy its CA certificates into \
             spec.caBundle",
            p["caProvider"]["type"].as_str().unwrap_or(""),
            p["caProvider"]["name"].as_str().unwrap_or("")
        ));
    }
    if p["checkAndSet"].is_object() {
        ctx.notes
            .info("provider.vault.checkAndSet: SecretSync always writes with check-and-set");
    }
    auth(&p["auth"], namespace, &mut spec, &mut settings, ctx);
    for field in unknown_keys(p, KNOWN) {
        ctx.notes.dropped(format!(
            "provider.vault.{field} has no SecretSync equivalent"
        ));
    }
    if !settings.is_empty() {
        spec.insert("vault".into(), Value::Object(settings));
    }
    Some(ProviderOut {
        provider: Provider::Vault,
        spec,
        name_prefix: None,
        per_secret: Map::new(),
    })
}

fn auth(
    a: &Value,
    namespace: Option<&str>,
    spec: &mut Map<String, Value>,
    settings: &mut Map<String, Value>,
    ctx: &mut StoreCtx<'_>,
) {
    if let Some(ns) = a["namespace"].as_str().filter(|ns| Some(*ns) != namespace) {
        ctx.notes.dropped(format!(
            "provider.vault.auth.namespace `{ns}` differs from the store's namespace: SecretSync signs in and \
             writes in one namespace (vault.namespace)"
        ));
    }
    let methods = unknown_keys(a, &["namespace"]);
    if methods.len() > 1 {
        ctx.notes.dropped(format!(
            "provider.vault.auth has several sign-in methods ({}): SecretSync uses one, `{}`",
            methods.join(", "),
            methods[0]
        ));
    }
    match methods.first().copied() {
        Some("tokenSecretRef") => {
            let r = credentials_ref(&[Wanted::Selector("token", &a["tokenSecretRef"])], ctx);
            spec.insert("credentialsRef".into(), r);
        }
        Some("appRole") => {
            let ar = &a["appRole"];
            let mut wanted = vec![Wanted::Selector("secretId", &ar["secretRef"])];
            if ar["roleRef"].is_object() {
                wanted.push(Wanted::Selector("roleId", &ar["roleRef"]));
            } else if let Some(id) = ar["roleId"].as_str() {
                wanted.push(Wanted::Literal("roleId", id));
            }
            spec.insert("credentialsRef".into(), credentials_ref(&wanted, ctx));
            let mut app_role = json!({});
            if let Some(mount) = ar["path"].as_str().filter(|m| *m != "approle") {
                app_role["mount"] = json!(mount);
            }
            settings.insert("appRole".into(), app_role);
        }
        Some("kubernetes") => kubernetes(&a["kubernetes"], spec, settings, ctx),
        other => {
            spec.insert("credentialsRef".into(), placeholder(ctx));
            ctx.notes.dropped(format!(
            "provider.vault.auth method `{}` has no SecretSync equivalent: use a token (credentials key `token`), \
             AppRole (`roleId`, `secretId`) or Kubernetes auth (serviceAccountRef)",
                other.unwrap_or("none")
            ));
        }
    }
}

/// Kubernetes auth with a ServiceAccount's token → `vault.kubernetes` and `serviceAccountRef`, which the store sets
/// together or not at all; without a ServiceAccount SecretSync can name, a credentials Secret to fill in instead.
fn kubernetes(
    k: &Value,
    spec: &mut Map<String, Value>,
    settings: &mut Map<String, Value>,
    ctx: &mut StoreCtx<'_>,
) {
    let role = k["role"].as_str().unwrap_or("");
    let sa = if k["serviceAccountRef"].is_object() {
        service_account_ref(&k["serviceAccountRef"], None, ctx)
    } else {
        let why = if k["secretRef"].is_object() {
            "provider.vault.auth.kubernetes.secretRef (a long-lived ServiceAccount token in a Secret)"
        } else {
            "Kubernetes auth with the controller's own ServiceAccount"
        };
        ctx.notes.dropped(format!(
            "{why} has no SecretSync equivalent: replace spec.credentialsRef with spec.serviceAccountRef (the \
             ServiceAccount) and spec.vault.kubernetes (role `{role}`)"
        ));
        None
    };
    let Some(sa) = sa else {
        spec.insert("credentialsRef".into(), placeholder(ctx));
        return;
    };
    if sa.get("audience").is_none() {
        ctx.notes.dropped(
            "ESO requested the ServiceAccount's token for the API server's default audience: set \
             spec.serviceAccountRef.audience to one the Vault role accepts (bound_audiences) and that the operator \
             allows (--token-audiences)",
        );
    }
    spec.insert("serviceAccountRef".into(), sa);
    let mut out = json!({ "role": role });
    if let Some(mount) = k["mountPath"].as_str().filter(|m| *m != "kubernetes") {
        out["mount"] = json!(mount);
    }
    settings.insert("kubernetes".into(), out);
}

/// The PushSecretMetadata of a Vault push: nothing of it is carried over.
pub fn metadata(spec: &Value, notes: &mut Notes) {
    for field in unknown_keys(spec, &[]) {
        notes.dropped(format!(
            "data[].metadata.spec.{field} has no SecretSync equivalent for Vault"
        ));
    }
}

/// How SecretSync lays one key's value out in a KV map, which may differ from what ESO wrote there.
pub fn value_layout(notes: &mut Notes) {
    notes.info(
        "SecretSync writes one key's value as the KV field `value` (a value that is a JSON object of strings as \
         its fields): compare with the layout ESO wrote before switching to Sync",
    );
}
