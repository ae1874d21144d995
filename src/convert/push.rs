//! `PushSecret` → one SecretSync per store it names × `data[]` entry (a SecretSync pushes one key, or one whole
//! Secret, to one store). One function per ESO field group: when SecretSync gains several keys, selectors and
//! templates (`spec.data[]`, `spec.source.selector`, `spec.template`), `source`, `remote`, `template` and `data_to`
//! map them instead of dropping them.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::stores::{EsoStoreKind, Provider, StoreFacts, StoreKey};
use super::{
    Document, Mode, Notes, Source, aws, azurekv, describe, name_of, namespace_of, unknown_keys,
    vault,
};
use crate::api::duration::{DurationError, Refresh, parse_refresh};

const KNOWN: &[&str] = &[
    "refreshInterval",
    "secretStoreRefs",
    "updatePolicy",
    "deletionPolicy",
    "selector",
    "data",
    "dataTo",
    "template",
];

pub fn convert(
    source: &Source,
    facts: &BTreeMap<StoreKey, StoreFacts>,
    mode: Mode,
) -> Vec<Document> {
    let v = &source.value;
    let spec = &v["spec"];
    let base = name_of(v);
    let namespace = namespace_of(v);
    let mut notes = Notes::default();
    let secret = source_secret(spec, &mut notes);
    let templated = template(spec, &mut notes);
    data_to(spec, &mut notes);
    let policies = policies(spec, mode, &mut notes);
    for field in unknown_keys(spec, KNOWN) {
        notes.dropped(format!("spec.{field} has no SecretSync equivalent"));
    }
    let stores: &[Value] = spec["secretStoreRefs"]
        .as_array()
        .map_or(&[], Vec::as_slice);
    let data: &[Value] = spec["data"].as_array().map_or(&[], Vec::as_slice);
    let (Some(secret), false) = (secret, templated) else {
        return vec![super::comment_only(source, notes)];
    };
    if stores.is_empty() || data.is_empty() {
        notes.dropped("no secretStoreRefs or no data[] entries: no SecretSync to write");
        return vec![super::comment_only(source, notes)];
    }
    let total = stores.len() * data.len();
    let mut documents = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        for (j, entry) in data.iter().enumerate() {
            let name = sync_name(&base, i * data.len() + j, total);
            let mut notes = Notes(notes.0.clone());
            let object = sync(
                SyncInput {
                    name: &name,
                    namespace: namespace.as_deref(),
                    secret: &secret,
                    store,
                    entry,
                    index: j,
                    policies: &policies,
                },
                source,
                facts,
                &mut notes,
            );
            if object.is_none() {
                notes.0.insert(
                    0,
                    super::Note {
                        severity: super::Severity::Info,
                        text: format!("no SecretSync `{name}` (secretStoreRefs[{i}], data[{j}]):"),
                    },
                );
            }
            documents.push(Document {
                kind: "SecretSync".into(),
                namespace: namespace.clone(),
                name,
                from: describe(source),
                notes: notes.0,
                object,
            });
        }
    }
    documents
}

struct SyncInput<'a> {
    name: &'a str,
    namespace: Option<&'a str>,
    secret: &'a str,
    store: &'a Value,
    entry: &'a Value,
    index: usize,
    policies: &'a Map<String, Value>,
}

/// One SecretSync, or `None` (with the notes saying why) where this store and entry cannot be expressed.
fn sync(
    input: SyncInput<'_>,
    source: &Source,
    facts: &BTreeMap<StoreKey, StoreFacts>,
    notes: &mut Notes,
) -> Option<Value> {
    let entry = input.entry;
    let at = format!("data[{}]", input.index);
    let (store_ref, facts) = store_ref(input.store, input.namespace, facts, notes)?;
    let provider = match facts {
        Some(f) => Some(f.provider?),
        None => None,
    };
    for field in unknown_keys(entry, &["match", "metadata", "conversionStrategy"]) {
        notes.dropped(format!("{at}.{field} has no SecretSync equivalent"));
    }
    let conversion = conversion(entry, &at, notes);
    let remote_name = remote(entry, &at, provider, notes);
    let source_ref = source_key(input.secret, entry, notes);
    if provider == Some(Provider::Vault) && source_ref["secretRef"]["key"].is_string() {
        vault::value_layout(notes);
    }
    let mut target = Map::new();
    target.insert("storeRef".into(), store_ref);
    if let Some(f) = facts {
        per_secret(f, &mut target);
    }
    metadata(&entry["metadata"], &at, provider, &mut target, notes);
    let (true, Some(remote_name)) = (conversion, remote_name) else {
        return None;
    };
    target.insert("remoteName".into(), json!(remote_name));
    let mut spec = input.policies.clone();
    spec.insert("source".into(), source_ref);
    spec.insert("target".into(), Value::Object(target));
    let mut object = super::object("SecretSync", input.name, input.namespace, source);
    object["spec"] = Value::Object(spec);
    Some(object)
}

/// `spec.selector`: the Secret's name. A label selector or a generator cannot be expressed today.
fn source_secret(spec: &Value, notes: &mut Notes) -> Option<String> {
    let selector = &spec["selector"];
    if selector["generatorRef"].is_object() {
        let g = &selector["generatorRef"];
        notes.dropped(format!(
            "spec.selector.generatorRef ({} `{}`): SecretSync pushes existing Secrets only; let the generator write \
             a Secret (an ExternalSecret with it in dataFrom) and push that Secret",
            g["kind"].as_str().unwrap_or(""),
            g["name"].as_str().unwrap_or("")
        ));
        return None;
    }
    if selector["secret"]["selector"].is_object() {
        notes.dropped(
            "spec.selector.secret.selector (Secrets by label) has no SecretSync equivalent today: write one \
             SecretSync per Secret",
        );
        return None;
    }
    match selector["secret"]["name"].as_str() {
        Some(name) => Some(name.to_owned()),
        None => {
            notes.dropped("spec.selector.secret.name is missing: no Secret to push");
            None
        }
    }
}

/// `spec.template`: today it cannot be expressed, and pushing the untemplated values would push other values.
/// True when there is one.
fn template(spec: &Value, notes: &mut Notes) -> bool {
    if spec["template"].is_null() {
        return false;
    }
    notes.dropped(
        "spec.template has no SecretSync equivalent today: render the values into a Secret (for example with an \
         ExternalSecret's template) and push that Secret; nothing of this PushSecret is converted",
    );
    true
}

/// `spec.dataTo` (keys by pattern): not expressible today; the `data[]` entries are still converted.
fn data_to(spec: &Value, notes: &mut Notes) {
    if let Some(entries) = spec["dataTo"].as_array().filter(|a| !a.is_empty()) {
        notes.dropped(format!(
            "spec.dataTo (keys by pattern; entries: {}) has no SecretSync equivalent today: write one data[] \
             entry per key",
            entries.len()
        ));
    }
}

/// `refreshInterval`, `updatePolicy`, `deletionPolicy`, and what every converted SecretSync asks for:
/// `adoptExisting` (ESO's secrets are unmarked) and the mode.
fn policies(spec: &Value, mode: Mode, notes: &mut Notes) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert(
        "refreshInterval".into(),
        json!(refresh(&spec["refreshInterval"], notes)),
    );
    let update = spec["updatePolicy"].as_str().unwrap_or("Replace");
    match update {
        "Replace" => {}
        "IfNotExists" => notes.info(
            "updatePolicy IfNotExists: SecretSync then writes nothing to a secret that exists, not even its \
             ownership marker, so it stays unmarked; use Replace for the move and IfNotExists afterwards",
        ),
        other => notes.dropped(format!("updatePolicy `{other}` is unknown: Replace is used")),
    }
    let update = if update == "IfNotExists" {
        "IfNotExists"
    } else {
        "Replace"
    };
    out.insert("updatePolicy".into(), json!(update));
    let deletion = match spec["deletionPolicy"].as_str().unwrap_or("None") {
        "Delete" => "Delete",
        "None" => "Retain",
        other => {
            notes.dropped(format!(
                "deletionPolicy `{other}` is unknown: Retain is used"
            ));
            "Retain"
        }
    };
    out.insert("deletionPolicy".into(), json!(deletion));
    out.insert("adoptExisting".into(), json!(true));
    out.insert("mode".into(), json!(mode.as_str()));
    out
}

/// ESO's Go duration → SecretSync's `refreshInterval` (10s to 720h, or `0s`).
fn refresh(eso: &Value, notes: &mut Notes) -> String {
    let Some(text) = eso.as_str() else {
        return "1h".into();
    };
    // Go prints whole durations as `1h0m0s`, which reads the same here; `0` alone is Go's zero.
    let text = if text == "0" { "0s" } else { text };
    match parse_refresh(text) {
        Ok(Refresh::Every(_)) => text.to_owned(),
        Ok(Refresh::OnChangeOnly) => {
            notes.info(
                "refreshInterval 0 pushed once in ESO; in SecretSync `0s` means the store is re-read only when the \
                 SecretSync or its Secret changes (changes are still pushed)",
            );
            "0s".into()
        }
        Err(DurationError::TooShort) => {
            notes.info(format!(
                "refreshInterval {text} is below SecretSync's minimum: 10s (changes to the Secret are pushed \
                 within seconds whatever the interval)"
            ));
            "10s".into()
        }
        Err(DurationError::TooLong) => {
            notes.info(format!(
                "refreshInterval {text} is above SecretSync's maximum: 720h"
            ));
            "720h".into()
        }
        Err(_) => {
            notes.dropped(format!(
                "refreshInterval `{text}` is not a duration SecretSync reads (h, m, s, ms): 1h is used"
            ));
            "1h".into()
        }
    }
}

/// A `secretStoreRefs[]` entry → `target.storeRef`, and what the input says about that store.
fn store_ref<'f>(
    r: &Value,
    namespace: Option<&str>,
    facts: &'f BTreeMap<StoreKey, StoreFacts>,
    notes: &mut Notes,
) -> Option<(Value, Option<&'f StoreFacts>)> {
    let Some(name) = r["name"].as_str() else {
        if r["labelSelector"].is_object() {
            notes.dropped(
                "secretStoreRefs[].labelSelector cannot be resolved offline: name each store (one SecretSync per \
                 store)",
            );
        } else {
            notes.dropped("a secretStoreRefs[] entry names no store");
        }
        return None;
    };
    let (kind, ours, key_ns) = match r["kind"].as_str().unwrap_or("SecretStore") {
        "ClusterSecretStore" => (EsoStoreKind::ClusterSecretStore, "ClusterStore", None),
        _ => (
            EsoStoreKind::SecretStore,
            "Store",
            namespace.map(str::to_owned),
        ),
    };
    let found = facts.get(&(kind, key_ns, name.to_owned()));
    match found {
        Some(f) if f.provider.is_none() => {
            notes.dropped(format!(
                "store `{name}` was not converted (see its document): neither is this entry"
            ));
            return None;
        }
        Some(_) => {}
        None => notes.info(format!(
            "{ours} `{name}` is not in the input: its provider's settings were not checked (convert the stores \
             together: kubectl get secretstores,clustersecretstores -A -o yaml)"
        )),
    }
    Some((json!({"kind": ours, "name": name}), found))
}

/// `conversionStrategy`: only `None` keeps the value as it is.
fn conversion(entry: &Value, at: &str, notes: &mut Notes) -> bool {
    match entry["conversionStrategy"].as_str().unwrap_or("None") {
        "None" => true,
        other => {
            notes.dropped(format!(
                "{at}.conversionStrategy `{other}` has no SecretSync equivalent: this entry is not converted"
            ));
            false
        }
    }
}

/// `match.remoteRef` → `target.remoteName`. A `property` (one field of a JSON object) cannot be expressed today:
/// writing the key's value as the whole remote secret would replace the object.
fn remote(
    entry: &Value,
    at: &str,
    provider: Option<Provider>,
    notes: &mut Notes,
) -> Option<String> {
    let r = &entry["match"]["remoteRef"];
    let Some(key) = r["remoteKey"].as_str().filter(|k| !k.is_empty()) else {
        notes.dropped(format!("{at}.match.remoteRef.remoteKey is missing"));
        return None;
    };
    if let Some(property) = r["property"].as_str().filter(|p| !p.is_empty()) {
        notes.dropped(format!(
            "{at}.match.remoteRef.property `{property}` (one field of the JSON object `{key}`) has no SecretSync \
             equivalent today: this entry is not converted (pushing the whole Secret without a key writes an \
             object of all its keys)"
        ));
        return None;
    }
    match provider {
        Some(Provider::AzureKeyVault) => azurekv::remote_name(key, notes),
        _ => Some(key.to_owned()),
    }
}

/// `selector.secret.name` and `match.secretKey` → `source.secretRef`.
fn source_key(secret: &str, entry: &Value, notes: &mut Notes) -> Value {
    match entry["match"]["secretKey"]
        .as_str()
        .filter(|k| !k.is_empty())
    {
        Some(key) => json!({"secretRef": {"name": secret, "key": key}}),
        None => {
            notes.info(
                "no match.secretKey: the whole Secret is pushed as one JSON object of its keys (values that are not \
                 UTF-8 base64-encoded under a `.base64` key): compare with what ESO wrote",
            );
            json!({"secretRef": {"name": secret}})
        }
    }
}

/// `data[].metadata` (a `PushSecretMetadata` whose `spec` the provider defines) → labels, description and
/// settings of the target.
fn metadata(
    m: &Value,
    at: &str,
    provider: Option<Provider>,
    target: &mut Map<String, Value>,
    notes: &mut Notes,
) {
    let spec = &m["spec"];
    if !m.is_null() && m["kind"].as_str() != Some("PushSecretMetadata") {
        notes.dropped(format!(
            "{at}.metadata is not a PushSecretMetadata: not carried over"
        ));
        return;
    }
    match provider {
        Some(Provider::AwsSecretsManager) => aws::metadata(spec, target, notes),
        Some(Provider::AzureKeyVault) => azurekv::metadata(spec, target, notes),
        Some(Provider::Vault) => vault::metadata(spec, notes),
        None => {
            // The store is not in the input: tags are labels for every provider SecretSync speaks; the rest
            // depends on the provider.
            tags_to_labels(&spec["tags"], target, notes);
            for field in unknown_keys(spec, &["tags"]) {
                notes.dropped(format!(
                    "{at}.metadata.spec.{field} depends on the store's provider, which is not in the input"
                ));
            }
        }
    }
}

/// What a store held in ESO and SecretSync keeps per secret (AWS deletion settings).
fn per_secret(facts: &StoreFacts, target: &mut Map<String, Value>) {
    if facts.per_secret.is_empty() {
        return;
    }
    let key = match facts.provider {
        Some(Provider::AwsSecretsManager) => "awsSecretsManager",
        _ => return,
    };
    let settings = target.entry(key).or_insert_with(|| json!({}));
    for (k, v) in &facts.per_secret {
        settings[k] = v.clone();
    }
}

/// Tags → `target.labels`; keys starting with `secretsync` are SecretSync's own.
pub fn tags_to_labels(tags: &Value, target: &mut Map<String, Value>, notes: &mut Notes) {
    let Some(tags) = tags.as_object() else { return };
    for (k, v) in tags {
        let Some(v) = v.as_str() else { continue };
        if k.to_ascii_lowercase().starts_with("secretsync") {
            notes.dropped(format!(
                "tag `{k}`: keys starting with `secretsync` are SecretSync's own"
            ));
            continue;
        }
        let labels = target.entry("labels").or_insert_with(|| json!({}));
        labels[k] = json!(v);
    }
}

/// The SecretSync's name: the PushSecret's when it makes one, else `<pushsecret>-<n>` (n from 1, in
/// `secretStoreRefs` × `data` order), shortened to 253 characters.
pub fn sync_name(base: &str, index: usize, total: usize) -> String {
    if total == 1 {
        return base.to_owned();
    }
    let suffix = format!("-{}", index + 1);
    let head: String = base.chars().take(253 - suffix.len()).collect();
    format!("{}{suffix}", head.trim_end_matches(['-', '.']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_pushsecret_s_or_numbered_and_stay_dns_names() {
        assert_eq!(sync_name("db", 0, 1), "db");
        assert_eq!(sync_name("db", 2, 4), "db-3");
        let long = format!("{}.b", "a".repeat(250));
        let name = sync_name(&long, 9, 12);
        assert_eq!((name.len(), name.ends_with("a-10")), (253, true), "{name}");
        // A cut that ends on a dot would not be a DNS name.
        let dotted = format!("{}.bb", "a".repeat(249));
        assert_eq!(sync_name(&dotted, 9, 12), format!("{}-10", "a".repeat(249)));
    }
}
