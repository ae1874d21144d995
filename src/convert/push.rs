//! `PushSecret` → one SecretSync per store it names. A PushSecret of one `data[]` entry (one key, or the whole
//! Secret, to one remote secret) becomes a SecretSync with `source.secretRef`; several entries, a `property`,
//! `dataTo`, a label selector or a template become `spec.data` rules, `spec.source.selector` and `spec.template`
//! (`rules`). One function per ESO field group.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::rules::{self, From, Rule};
use super::stores::{EsoStoreKind, Provider, StoreFacts, StoreKey};
use super::{
    Document, Mode, Notes, Source, aws, azurekv, describe, name_of, namespace_of, unknown_keys,
    vault,
};
use crate::api::duration::{DurationError, Refresh, parse_refresh};
use crate::plan::entries::Keys;

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
    let from = rules::source(spec, &mut notes);
    let template = rules::template(&spec["template"], &mut notes);
    let policies = policies(spec, mode, &mut notes);
    for field in unknown_keys(spec, KNOWN) {
        notes.dropped(format!("spec.{field} has no SecretSync equivalent"));
    }
    let list = |field: &str| spec[field].as_array().map_or(&[][..], Vec::as_slice);
    let (stores, data, data_to) = (list("secretStoreRefs"), list("data"), list("dataTo"));
    rules::unplaced_data_to(data_to, stores, &mut notes);
    let (Some(from), Ok(template)) = (from, template) else {
        return vec![super::comment_only(source, notes)];
    };
    if stores.is_empty() || (data.is_empty() && data_to.is_empty()) {
        notes.dropped("no secretStoreRefs or no data[] or dataTo entries: no SecretSync to write");
        return vec![super::comment_only(source, notes)];
    }
    let mut documents = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        let name = sync_name(&base, i, stores.len());
        let mut notes = Notes(notes.0.clone());
        let object = sync(
            SyncInput {
                name: &name,
                namespace: namespace.as_deref(),
                from: &from,
                template: template.as_ref(),
                store,
                data,
                data_to,
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
                    text: format!("no SecretSync `{name}` (secretStoreRefs[{i}]):"),
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
    documents
}

/// `rules::data_rule` or `rules::data_to_rule`.
type RuleOf = fn(&Value, &str, Option<Provider>, &mut Notes) -> Option<Rule>;

struct SyncInput<'a> {
    name: &'a str,
    namespace: Option<&'a str>,
    from: &'a From,
    template: Option<&'a Value>,
    store: &'a Value,
    data: &'a [Value],
    data_to: &'a [Value],
    policies: &'a Map<String, Value>,
}

/// The SecretSync of one store, or `None` (with the notes saying why) where nothing for it can be expressed.
fn sync(
    input: SyncInput<'_>,
    source: &Source,
    facts: &BTreeMap<StoreKey, StoreFacts>,
    notes: &mut Notes,
) -> Option<Value> {
    let (store_ref, facts) = store_ref(input.store, input.namespace, facts, notes)?;
    let provider = match facts {
        Some(f) => Some(f.provider?),
        None => None,
    };
    let mut found = Vec::new();
    let mut metadatas = Vec::new();
    let mut take = |entry: &Value, at: String, rule: RuleOf, notes: &mut Notes| {
        if !conversion(entry, &at, notes) {
            return;
        }
        let mut target = Map::new();
        metadata(&entry["metadata"], &at, provider, &mut target, notes);
        if let Some(rule) = rule(entry, &at, provider, notes) {
            found.push(rule);
            metadatas.push((at, target));
        }
    };
    for (j, entry) in input.data.iter().enumerate() {
        let at = format!("data[{j}]");
        for field in unknown_keys(entry, &["match", "metadata", "conversionStrategy"]) {
            notes.dropped(format!("{at}.{field} has no SecretSync equivalent"));
        }
        take(entry, at, rules::data_rule, notes);
    }
    for (k, d) in input.data_to.iter().enumerate() {
        if rules::same_store(&d["storeRef"], input.store) {
            take(d, format!("dataTo[{k}]"), rules::data_to_rule, notes);
        }
    }
    // The `data[]` rules come first; `dataTo`'s are the ones with a pattern.
    let explicit = found.iter().filter(|r| r.pattern.is_none()).count();
    if found.is_empty() {
        return None;
    }
    let mut target = Map::new();
    one_metadata(metadatas, &mut target, notes);
    target.insert("storeRef".into(), store_ref);
    // After the metadata: the store's settings join the entry's `awsSecretsManager` rather than being replaced.
    if let Some(f) = facts {
        per_secret(f, &mut target);
    }
    let mut spec = input.policies.clone();
    match (input.from, input.template, found.as_slice()) {
        // One key, or the whole Secret, to one remote secret: what a SecretSync without rules does.
        (From::Secret(secret), None, [only])
            if explicit == 1 && (only.whole || only.property().is_none()) =>
        {
            spec.insert("source".into(), single_source(secret, only));
            if provider == Some(Provider::Vault) {
                vault::value_layout(notes);
            }
            target.insert("remoteName".into(), json!(only.remote_name()));
        }
        _ => {
            let source_spec = match input.from {
                From::Secret(secret) => json!({"secretRef": {"name": secret}}),
                From::Selector(selector) => {
                    per_secret_names(&mut found, notes);
                    json!({"selector": selector})
                }
            };
            spec.insert("source".into(), source_spec);
            check_rules(&found, explicit, provider, notes);
            let data: Vec<Value> = found.into_iter().map(|r| Value::Object(r.value)).collect();
            spec.insert("data".into(), Value::Array(data));
            if let Some(t) = input.template {
                spec.insert("template".into(), t.clone());
            }
        }
    }
    spec.insert("target".into(), Value::Object(target));
    let mut object = super::object("SecretSync", input.name, input.namespace, source);
    object["spec"] = Value::Object(spec);
    Some(object)
}

/// `source.secretRef` of a SecretSync without rules: the entry's key, or none for the whole Secret.
fn single_source(secret: &str, rule: &Rule) -> Value {
    match rule.secret_key().filter(|_| !rule.whole) {
        Some(key) => json!({"secretRef": {"name": secret, "key": key}}),
        None => json!({"secretRef": {"name": secret}}),
    }
}

/// With a selector ESO pushed every selected Secret to the same remote key, the last one winning (ESO #6964);
/// SecretSync refuses that, so each remote name gets `-{secret}`.
fn per_secret_names(found: &mut [Rule], notes: &mut Notes) {
    let mut names = std::collections::BTreeSet::new();
    for rule in found.iter_mut() {
        let name = format!("{}-{{secret}}", rule.remote_name());
        names.insert(format!("`{name}`"));
        rule.value.insert("remoteName".into(), json!(name));
    }
    let names: Vec<String> = names.into_iter().collect();
    notes.dropped(format!(
        "spec.selector.secret.selector: ESO pushed every selected Secret to the same remote key (the last write \
         won); SecretSync pushes each Secret to its own remote secret, so the remote names are now {}: the secrets \
         ESO wrote are not these, choose the names before switching to Sync",
        names.join(", ")
    ));
}

/// What SecretSync would refuse (two values for one remote secret or property) or do beyond ESO (a key of an
/// explicit entry that a `dataTo` pattern takes too, which ESO pushed only as the entry says).
fn check_rules(found: &[Rule], explicit: usize, provider: Option<Provider>, notes: &mut Notes) {
    // A name or property with `{key}` differs per key: whether two such rules meet depends on the Secret's keys,
    // which the conversion does not see.
    let per_key = |text: Option<&str>| text.is_some_and(|t| t.contains("{key}"));
    let mut seen: BTreeMap<&str, Vec<(Option<&str>, &str)>> = BTreeMap::new();
    for rule in found.iter().filter(|r| !per_key(Some(r.remote_name()))) {
        let earlier = seen.entry(rule.remote_name()).or_default();
        let clash = earlier.iter().find(|(p, _)| {
            p.is_none() || rule.property().is_none() || (*p == rule.property() && !per_key(*p))
        });
        if let Some((_, first)) = clash {
            notes.dropped(format!(
                "{first} and {} both write remote secret `{}` as a whole or the same property: ESO kept the last \
                 write, SecretSync refuses such a SecretSync (InvalidSpec); give each its own remoteKey or property",
                rule.at,
                rule.remote_name(),
            ));
        }
        earlier.push((rule.property(), &rule.at));
    }
    for rule in &found[explicit..] {
        let Some(Keys::Matching(re)) = rule.pattern.as_deref().and_then(Keys::matching) else {
            continue;
        };
        for entry in &found[..explicit] {
            if let Some(key) = entry.secret_key().filter(|k| re.is_match(k)) {
                notes.dropped(format!(
                    "key `{key}` of {} also matches {}: ESO pushed it only as {} says, SecretSync pushes it both ways",
                    entry.at, rule.at, entry.at
                ));
            }
        }
    }
    if found[..explicit]
        .iter()
        .any(|r| !r.whole && r.property().is_some())
    {
        notes.info(
            "remoteRef.property: ESO merged the property into the remote JSON object as it found it; SecretSync \
             writes the object its rules make, so fields no rule names are removed at the first write (Observe \
             shows ValueDiffers first)",
        );
    }
    if provider == Some(Provider::Vault) && found.iter().any(|r| r.property().is_none()) {
        vault::value_layout(notes);
    }
}

/// Each entry's `metadata` is per remote secret in ESO; a SecretSync writes one set on every remote secret it
/// writes: the first entry's, and a note for each entry that asked for other metadata.
fn one_metadata(
    metadatas: Vec<(String, Map<String, Value>)>,
    target: &mut Map<String, Value>,
    notes: &mut Notes,
) {
    let mut metadatas = metadatas.into_iter();
    let Some((first_at, first)) = metadatas.next() else {
        return;
    };
    for (at, other) in metadatas {
        if other != first {
            notes.dropped(format!(
                "{at}.metadata differs from {first_at}'s: one SecretSync writes the same labels and settings on \
                 every remote secret, {first_at}'s are used"
            ));
        }
    }
    target.extend(first);
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
/// `secretStoreRefs` order), shortened to 253 characters.
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
