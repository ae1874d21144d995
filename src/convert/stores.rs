//! `SecretStore` → `Store`, `ClusterSecretStore` → `ClusterStore`: what is common to every provider (names,
//! conditions, remote names, adoption) and the two references a provider's auth maps to (the credentials Secret,
//! the ServiceAccount).

use serde_json::{Map, Value, json};

use super::{
    Document, Notes, Source, aws, azurekv, describe, name_of, namespace_of, unknown_keys, vault,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum EsoStoreKind {
    SecretStore,
    ClusterSecretStore,
}

/// The dialect a store was converted to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    AzureKeyVault,
    AwsSecretsManager,
    Vault,
}

/// What a PushSecret's conversion needs to know about a store it names.
#[derive(Clone, Debug)]
pub struct StoreFacts {
    /// (`SecretStore` or `ClusterSecretStore`, namespace of a SecretStore, name).
    pub key: StoreKey,
    /// `None` for a store of the input that could not be converted.
    pub provider: Option<Provider>,
    /// Settings the store held in ESO and SecretSync keeps per SecretSync (`target.<dialect>`).
    pub per_secret: Map<String, Value>,
}

pub type StoreKey = (EsoStoreKind, Option<String>, String);

/// What a provider's conversion gives the store.
pub struct ProviderOut {
    pub provider: Provider,
    /// Fields of the store's spec: `dialect`, `endpoint`, `credentialsRef`, `serviceAccountRef`, the settings.
    pub spec: Map<String, Value>,
    /// Put in front of `{remoteName}` in the store's `remoteNameTemplate` (AWS `prefix`).
    pub name_prefix: Option<String>,
    pub per_secret: Map<String, Value>,
}

/// The store being converted, for the providers.
pub struct StoreCtx<'a> {
    pub name: String,
    pub cluster: bool,
    pub namespace: Option<&'a str>,
    pub notes: Notes,
}

pub fn convert(source: &Source, kind: EsoStoreKind) -> (Document, Option<StoreFacts>) {
    let v = &source.value;
    let namespace = namespace_of(v);
    let cluster = kind == EsoStoreKind::ClusterSecretStore;
    let mut ctx = StoreCtx {
        name: name_of(v),
        cluster,
        namespace: namespace.as_deref().filter(|_| !cluster),
        notes: Notes::default(),
    };
    let spec = &v["spec"];
    let provider = &spec["provider"];
    let names: Vec<&str> = provider
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, _)| k.as_str())
        .collect();
    let out = match names.as_slice() {
        ["azurekv"] => azurekv::store(&provider["azurekv"], &mut ctx),
        ["aws"] => aws::store(&provider["aws"], &mut ctx),
        ["vault"] => vault::store(&provider["vault"], &mut ctx),
        [other] => {
            ctx.notes.dropped(format!(
                "provider `{other}` has no SecretSync dialect (SecretSync converts azurekv, aws with service \
                 SecretsManager, and vault); the PushSecrets that use this store are not converted either"
            ));
            None
        }
        _ => {
            ctx.notes
                .dropped("spec.provider names no provider, or several: not converted");
            None
        }
    };
    for (field, why) in [
        ("controller", "SecretSync has no controller classes"),
        ("retrySettings", "SecretSync retries with its own backoff"),
        (
            "refreshInterval",
            "SecretSync checks every store periodically on its own",
        ),
    ] {
        if !spec[field].is_null() {
            ctx.notes
                .info(format!("spec.{field} is not carried over: {why}"));
        }
    }
    for field in unknown_keys(
        spec,
        &[
            "provider",
            "controller",
            "retrySettings",
            "refreshInterval",
            "conditions",
        ],
    ) {
        ctx.notes
            .dropped(format!("spec.{field} has no SecretSync equivalent"));
    }
    let name = name_of(v);
    let our_kind = if cluster { "ClusterStore" } else { "Store" };
    let key = (kind, ctx.namespace.map(str::to_owned), name.clone());
    let Some(out) = out else {
        let facts = StoreFacts {
            key,
            provider: None,
            per_secret: Map::new(),
        };
        let doc = Document {
            kind: v["kind"].as_str().unwrap_or("").to_owned(),
            namespace: namespace.clone(),
            name,
            from: describe(source),
            notes: ctx.notes.0,
            object: None,
        };
        return (doc, Some(facts));
    };
    let mut spec_out = out.spec;
    match (cluster, &out.name_prefix) {
        (true, prefix) => {
            spec_out.insert(
                "remoteNameTemplate".into(),
                json!(format!("{}{{remoteName}}", prefix.as_deref().unwrap_or(""))),
            );
            ctx.notes.info(
                "remoteNameTemplate keeps the names ESO wrote (a ClusterStore's default is \
                 `{namespace}-{remoteName}`)",
            );
        }
        (false, Some(prefix)) => {
            spec_out.insert(
                "remoteNameTemplate".into(),
                json!(format!("{prefix}{{remoteName}}")),
            );
        }
        (false, None) => {}
    }
    if cluster && let Some(conditions) = conditions(&spec["conditions"], &mut ctx.notes) {
        spec_out.insert("conditions".into(), conditions);
    }
    ctx.notes.info(
        "adoption stays `Never`: to let the SecretSyncs take over the secrets ESO wrote (tagged `managed-by: \
         external-secrets`, unmarked for SecretSync), set `adoption: Unmarked` for the move, then back to `Never`",
    );
    let mut object = super::object(our_kind, &name, ctx.namespace, source);
    object["spec"] = Value::Object(spec_out);
    let facts = StoreFacts {
        key,
        provider: Some(out.provider),
        per_secret: out.per_secret,
    };
    let doc = Document {
        kind: our_kind.to_owned(),
        namespace: ctx.namespace.map(str::to_owned),
        name,
        from: describe(source),
        notes: ctx.notes.0,
        object: Some(object),
    };
    (doc, Some(facts))
}

/// ESO's `conditions` (each: `namespaces`, `namespaceSelector`, `namespaceRegexes`) → the ClusterStore's.
fn conditions(eso: &Value, notes: &mut Notes) -> Option<Value> {
    let terms = eso.as_array()?;
    let mut out = Vec::new();
    for (i, term) in terms.iter().enumerate() {
        let mut ours = Map::new();
        if let Some(ns) = term["namespaces"].as_array().filter(|a| !a.is_empty()) {
            ours.insert("namespaces".into(), Value::Array(ns.clone()));
        }
        if term["namespaceSelector"].is_object() {
            ours.insert(
                "namespaceSelector".into(),
                term["namespaceSelector"].clone(),
            );
        }
        if !term["namespaceRegexes"].is_null() {
            notes.dropped(format!(
                "spec.conditions[{i}].namespaceRegexes has no equivalent: list the namespaces, or label them and \
                 use namespaceSelector"
            ));
        }
        if !ours.is_empty() {
            out.push(Value::Object(ours));
        }
    }
    if out.is_empty() && !terms.is_empty() {
        // Conditions that all became empty would admit every namespace: admit none rather than all.
        notes.dropped("no condition could be carried over: the ClusterStore admits no namespace until you add one");
        out.push(json!({"namespaces": ["no-namespace-admitted-until-edited"]}));
    }
    (!out.is_empty()).then_some(Value::Array(out))
}

/// One key of the credentials Secret SecretSync reads, and where ESO had its value.
pub enum Wanted<'a> {
    /// In a Secret (ESO's SecretKeySelector: `name`, `key`, `namespace`).
    Selector(&'static str, &'a Value),
    /// In the store's spec (a tenant ID, an AppRole role ID): it goes into the Secret by hand.
    Literal(&'static str, &'a str),
}

/// The store's `credentialsRef`: the Secret of the first selector. Every key SecretSync reads under another name
/// or from another Secret, and every value ESO held in the spec, is a note saying what to add to that Secret.
pub fn credentials_ref(wanted: &[Wanted<'_>], ctx: &mut StoreCtx<'_>) -> Value {
    let first = wanted.iter().find_map(|w| match w {
        Wanted::Selector(_, sel) => Some(*sel),
        Wanted::Literal(..) => None,
    });
    let chosen = first.and_then(|sel| secret_of(sel, ctx));
    let Some((name, namespace)) = chosen else {
        let keys: Vec<String> = wanted.iter().map(describe_wanted).collect();
        let reference = placeholder(ctx);
        ctx.notes
            .dropped(format!("the credentials Secret needs {}", keys.join(", ")));
        return reference;
    };
    let mut missing = Vec::new();
    for w in wanted {
        match w {
            Wanted::Selector(key, sel) => {
                let same_secret = sel["name"].as_str() == Some(name.as_str())
                    && (!ctx.cluster || sel["namespace"].as_str() == namespace.as_deref());
                let eso_key = sel["key"].as_str().unwrap_or("");
                if !same_secret {
                    missing.push(describe_wanted(w));
                } else if eso_key != *key {
                    missing.push(format!("`{key}` (ESO read it from key `{eso_key}`)"));
                }
            }
            Wanted::Literal(..) => missing.push(describe_wanted(w)),
        }
    }
    if !missing.is_empty() {
        ctx.notes.dropped(format!(
            "the credentials Secret `{name}` needs {}; SecretSync reads no other key names and never copies \
             credentials itself",
            missing.join(", ")
        ));
    }
    let mut reference = json!({ "name": name });
    if let Some(ns) = namespace {
        reference["namespace"] = json!(ns);
    }
    reference
}

/// A `credentialsRef` to a Secret ESO's store had no equivalent of, named after the store (in the controller's
/// namespace for a ClusterStore), so that the store is valid as written; a note says it is to be created.
pub fn placeholder(ctx: &mut StoreCtx<'_>) -> Value {
    let name: String = format!("{}-credentials", ctx.name)
        .chars()
        .take(253)
        .collect();
    let mut reference = json!({ "name": name });
    if ctx.cluster {
        reference["namespace"] = json!("secretsync-system");
    }
    ctx.notes.dropped(format!(
        "spec.credentialsRef names `{name}`{}, a Secret the conversion made up: create it with the keys the notes \
         name, or point to another",
        if ctx.cluster { " in secretsync-system" } else { "" }
    ));
    reference
}

fn describe_wanted(w: &Wanted<'_>) -> String {
    match w {
        Wanted::Selector(key, sel) => format!(
            "`{key}` (ESO read it from key `{}` of Secret `{}`)",
            sel["key"].as_str().unwrap_or(""),
            sel["name"].as_str().unwrap_or("")
        ),
        Wanted::Literal(key, value) => format!("`{key}: {value}` (ESO had it in the store's spec)"),
    }
}

/// The Secret a selector names: its name and, for a ClusterStore, its namespace. `None` (with a note) where
/// SecretSync cannot name it the same way.
fn secret_of(sel: &Value, ctx: &mut StoreCtx<'_>) -> Option<(String, Option<String>)> {
    let name = sel["name"].as_str()?.to_owned();
    let namespace = reference_namespace(sel, "Secret", &name, ctx)?;
    Some((name, namespace))
}

/// The namespace a ClusterStore names for a Secret or ServiceAccount; none for a Store (its own). `Err` (as
/// `None`) where ESO resolved it per PushSecret or in another namespace.
fn reference_namespace(
    sel: &Value,
    what: &str,
    name: &str,
    ctx: &mut StoreCtx<'_>,
) -> Option<Option<String>> {
    let ns = sel["namespace"].as_str();
    match (ctx.cluster, ns) {
        (true, Some(ns)) => Some(Some(ns.to_owned())),
        (true, None) => {
            ctx.notes.dropped(format!(
                "{what} `{name}` has no namespace: ESO looked it up in each PushSecret's own namespace (referent \
                 authentication), which SecretSync does not do; give a ClusterStore one {what} with its namespace, \
                 or use a Store per namespace"
            ));
            None
        }
        (false, Some(ns)) if Some(ns) != ctx.namespace => {
            ctx.notes.dropped(format!(
                "{what} `{name}` is in namespace `{ns}`: a Store uses its own namespace's only"
            ));
            None
        }
        (false, _) => Some(None),
    }
}

/// The store's `serviceAccountRef` from ESO's ServiceAccountSelector (`name`, `namespace`, `audiences`), asking
/// for `audience` when ESO named none.
pub fn service_account_ref(
    sel: &Value,
    audience: Option<&str>,
    ctx: &mut StoreCtx<'_>,
) -> Option<Value> {
    let name = sel["name"].as_str()?;
    let namespace = reference_namespace(sel, "ServiceAccount", name, ctx)?;
    let mut out = json!({ "name": name });
    if let Some(ns) = namespace {
        out["namespace"] = json!(ns);
    }
    let audiences: Vec<&str> = sel["audiences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if audiences.len() > 1 {
        ctx.notes.dropped(format!(
            "serviceAccountRef.audiences lists {} audiences: SecretSync requests one, `{}`",
            audiences.len(),
            audiences[0]
        ));
    }
    if let Some(a) = audiences.first().copied().or(audience) {
        out["audience"] = json!(a);
        ctx.notes.info(format!(
            "the controller requests tokens for audience `{a}` only if the operator allows it (secretsync run \
             --token-audiences)"
        ));
    }
    Some(out)
}
