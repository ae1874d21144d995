//! What a PushSecret pushes, as `spec.data`, `spec.source.selector` and `spec.template` of a SecretSync:
//! `data[].match` (a key, and a property of a JSON object), `dataTo` (keys by pattern, to one object or one remote
//! secret each), `selector.secret.selector` (Secrets by label) and `template` (Go templates, translated only where
//! the translation renders the same text).

use serde_json::{Map, Value, json};

use super::Notes;
use super::stores::Provider;
use super::{azurekv, unknown_keys};
use crate::plan::entries::Keys;

/// Where the keys come from: one Secret, or every Secret with these labels.
pub enum From {
    Secret(String),
    Selector(Value),
}

/// One `spec.data[]` rule and the ESO entry it came from.
pub struct Rule {
    /// `data[j]` or `dataTo[k]`, for notes.
    pub at: String,
    /// `secretKeyRegex` of a `dataTo` rule: explicit `data[]` keys it also matches are pushed twice.
    pub pattern: Option<String>,
    /// An entry without `secretKey`: the whole Secret as one JSON object.
    pub whole: bool,
    pub value: Map<String, Value>,
}

impl Rule {
    pub fn secret_key(&self) -> Option<&str> {
        self.value.get("secretKey").and_then(Value::as_str)
    }
    pub fn remote_name(&self) -> &str {
        self.value
            .get("remoteName")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
    pub fn property(&self) -> Option<&str> {
        self.value.get("property").and_then(Value::as_str)
    }
}

/// `spec.selector`: the Secret's name or a label selector. A generator or an empty selector cannot be expressed.
pub fn source(spec: &Value, notes: &mut Notes) -> Option<From> {
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
    let labels = &selector["secret"]["selector"];
    if labels.is_object() {
        let mut out = Map::new();
        for field in ["matchLabels", "matchExpressions"] {
            let v = &labels[field];
            let empty =
                v.as_object().is_some_and(Map::is_empty) || v.as_array().is_some_and(Vec::is_empty);
            if !v.is_null() && !empty {
                out.insert(field.into(), v.clone());
            }
        }
        if out.is_empty() {
            notes.dropped(
                "spec.selector.secret.selector is empty: in ESO it selects every Secret of the namespace; SecretSync \
                 refuses an empty selector: give it the labels of the Secrets to push",
            );
            return None;
        }
        return Some(From::Selector(Value::Object(out)));
    }
    match selector["secret"]["name"].as_str() {
        Some(name) => Some(From::Secret(name.to_owned())),
        None => {
            notes.dropped("spec.selector.secret.name is missing: no Secret to push");
            None
        }
    }
}

/// A `data[]` entry as a rule: `match.secretKey` → `secretKey` (none: every key, as properties of one object, which
/// is the whole Secret as JSON), `remoteRef.remoteKey` → `remoteName`, `remoteRef.property` → `property`.
pub fn data_rule(
    entry: &Value,
    at: &str,
    provider: Option<Provider>,
    notes: &mut Notes,
) -> Option<Rule> {
    let r = &entry["match"]["remoteRef"];
    let Some(key) = r["remoteKey"].as_str().filter(|k| !k.is_empty()) else {
        notes.dropped(format!("{at}.match.remoteRef.remoteKey is missing"));
        return None;
    };
    let remote = match provider {
        Some(Provider::AzureKeyVault) => azurekv::remote_name(key, notes)?,
        _ => key.to_owned(),
    };
    let property = r["property"].as_str().filter(|p| !p.is_empty());
    let mut value = Map::new();
    match (
        entry["match"]["secretKey"]
            .as_str()
            .filter(|k| !k.is_empty()),
        property,
    ) {
        (Some(secret_key), _) => {
            value.insert("secretKey".into(), json!(secret_key));
        }
        (None, Some(property)) => {
            notes.dropped(format!(
                "{at} has remoteRef.property `{property}` but no match.secretKey: the whole Secret as one property \
                 has no SecretSync equivalent; this entry is not converted"
            ));
            return None;
        }
        (None, None) => {
            notes.info(
                "no match.secretKey: the whole Secret is pushed as one JSON object of its keys (values that are not \
                 UTF-8 base64-encoded under a `.base64` key): compare with what ESO wrote",
            );
            value.insert("secretKeyRegex".into(), json!(".*"));
            value.insert("property".into(), json!("{key}"));
        }
    }
    value.insert("remoteName".into(), json!(remote));
    if let Some(property) = property {
        value.insert("property".into(), json!(property));
    }
    let whole = !value.contains_key("secretKey");
    Some(Rule {
        at: at.to_owned(),
        pattern: None,
        whole,
        value,
    })
}

/// Whether a `dataTo[].storeRef` names this `secretStoreRefs[]` entry.
pub fn same_store(data_to_ref: &Value, store: &Value) -> bool {
    let kind = |r: &Value| r["kind"].as_str().unwrap_or("SecretStore").to_owned();
    data_to_ref["name"].is_string()
        && data_to_ref["name"] == store["name"]
        && kind(data_to_ref) == kind(store)
}

/// `dataTo` entries whose store cannot be found among `secretStoreRefs`: ESO refuses them, SecretSync gets none.
pub fn unplaced_data_to(data_to: &[Value], stores: &[Value], notes: &mut Notes) {
    for (k, d) in data_to.iter().enumerate() {
        let r = &d["storeRef"];
        if r["labelSelector"].is_object() {
            notes.dropped(format!(
                "dataTo[{k}].storeRef.labelSelector cannot be resolved offline: name the store; this entry is not \
                 converted"
            ));
        } else if !stores.iter().any(|s| same_store(r, s)) {
            notes.dropped(format!(
                "dataTo[{k}].storeRef names no store of secretStoreRefs: this entry is not converted"
            ));
        }
    }
}

/// A `dataTo` entry as a rule: `match.regexp` → `secretKeyRegex`; with `remoteKey` (ESO's bundle mode) every
/// matching key is a property of that one remote secret, without it each key is a remote secret of its own name.
pub fn data_to_rule(
    d: &Value,
    at: &str,
    provider: Option<Provider>,
    notes: &mut Notes,
) -> Option<Rule> {
    for field in unknown_keys(
        d,
        &[
            "storeRef",
            "remoteKey",
            "match",
            "rewrite",
            "metadata",
            "conversionStrategy",
        ],
    ) {
        notes.dropped(format!("{at}.{field} has no SecretSync equivalent"));
    }
    let go = d["match"]["regexp"].as_str().unwrap_or("");
    let pattern = anchored(go);
    if Keys::matching(&pattern).is_none() {
        notes.dropped(format!(
            "{at}.match.regexp `{go}` is not a pattern SecretSync reads (RE2): this entry is not converted"
        ));
        return None;
    }
    let rewrites = d["rewrite"].as_array().is_some_and(|r| !r.is_empty());
    let mut value = Map::new();
    value.insert("secretKeyRegex".into(), json!(pattern));
    match d["remoteKey"].as_str().filter(|k| !k.is_empty()) {
        Some(key) => {
            if rewrites {
                notes.info(format!(
                    "{at}.rewrite: ESO ignores it when remoteKey bundles the keys; so does the conversion"
                ));
            }
            let remote = match provider {
                Some(Provider::AzureKeyVault) => azurekv::remote_name(key, notes)?,
                _ => key.to_owned(),
            };
            value.insert("remoteName".into(), json!(remote));
            value.insert("property".into(), json!("{key}"));
        }
        None if rewrites => {
            notes.dropped(format!(
                "{at}.rewrite (key names rewritten into remote names) has no SecretSync equivalent: a remoteName \
                 can only put text around {{key}}; this entry is not converted (write one data entry per key)"
            ));
            return None;
        }
        None => {
            value.insert("remoteName".into(), json!("{key}"));
        }
    }
    Some(Rule {
        at: at.to_owned(),
        pattern: Some(pattern),
        whole: false,
        value,
    })
}

/// ESO's `match.regexp` (Go, unanchored: it matches anywhere in the key; empty matches every key) as SecretSync's
/// `secretKeyRegex` (RE2, anchored at both ends). An anchor the pattern already has is kept as the anchoring;
/// elsewhere `.*` stands for "anything around it". With a `|` the anchors are not the whole pattern's, so the
/// pattern stays whole inside `.*(?:...).*`.
pub fn anchored(go: &str) -> String {
    if go.is_empty() || go == "^" {
        return ".*".into();
    }
    if go.contains('|') {
        return format!(".*(?:{go}).*");
    }
    let (starts, core) = match go.strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, go),
    };
    let escaped_end = core.ends_with('$') && {
        let backslashes = core[..core.len() - 1]
            .chars()
            .rev()
            .take_while(|c| *c == '\\')
            .count();
        backslashes % 2 == 1
    };
    let (ends, core) = match core.strip_suffix('$') {
        Some(rest) if !escaped_end => (true, rest),
        _ => (false, core),
    };
    let head = if starts || core.starts_with(".*") {
        ""
    } else {
        ".*"
    };
    let tail = if ends || (core.ends_with(".*") && !core.ends_with("\\.*")) {
        ""
    } else {
        ".*"
    };
    format!("{head}{core}{tail}")
}

/// `spec.template` → SecretSync's `spec.template` where every value is plain text and `{{ .key }}` substitutions:
/// those render the same in minijinja as `{{ data.key }}`. Anything else (functions, pipes, `templateFrom`, engine
/// v1) is refused as a whole: pushing untemplated or differently templated values would push other values.
/// `Err` when the PushSecret is not converted because of it.
pub fn template(t: &Value, notes: &mut Notes) -> Result<Option<Value>, ()> {
    if t.is_null() {
        return Ok(None);
    }
    let mut refused: Vec<String> = Vec::new();
    let mut refuse = |_: &mut Notes, text: String| refused.push(text);
    if let Some(v) = t["engineVersion"].as_str().filter(|v| *v != "v2") {
        refuse(
            notes,
            format!("spec.template.engineVersion {v}: not converted, only v2 templates are read"),
        );
    }
    if t["templateFrom"].as_array().is_some_and(|a| !a.is_empty()) {
        refuse(
            notes,
            "spec.template.templateFrom (templates in ConfigMaps or Secrets) is not converted"
                .into(),
        );
    }
    let merge = match t["mergePolicy"].as_str().unwrap_or("Replace") {
        p @ ("Replace" | "Merge") => p,
        other => {
            refuse(
                notes,
                format!("spec.template.mergePolicy `{other}` is unknown"),
            );
            "Replace"
        }
    };
    let mut data = Map::new();
    for (key, text) in t["data"].as_object().into_iter().flatten() {
        match text.as_str().and_then(translate) {
            Some(jinja) => {
                data.insert(key.clone(), json!(jinja));
            }
            None => refuse(
                notes,
                format!(
                    "spec.template.data.{key}: not converted: Go template syntax differs (only plain text and \
                     `{{{{ .key }}}}` substitutions are translated)"
                ),
            ),
        }
    }
    if t["data"].as_object().is_none_or(Map::is_empty) {
        refuse(notes, "spec.template has no data: not converted".into());
    }
    for field in ["metadata", "type"] {
        if !t[field].is_null() {
            notes.info(format!(
                "spec.template.{field} shapes the Secret ESO renders in memory; it changes nothing SecretSync pushes"
            ));
        }
    }
    for field in unknown_keys(
        t,
        &[
            "data",
            "templateFrom",
            "engineVersion",
            "mergePolicy",
            "metadata",
            "type",
        ],
    ) {
        refuse(
            notes,
            format!("spec.template.{field} has no SecretSync equivalent"),
        );
    }
    if refused.is_empty() {
        return Ok(Some(json!({"data": data, "mergePolicy": merge})));
    }
    for text in refused {
        notes.dropped(format!(
            "{text}; nothing of this PushSecret is converted (render the values into a Secret and push that, or \
             write spec.template by hand in Jinja syntax: `{{{{ data.key }}}}`)"
        ));
    }
    Err(())
}

/// A Go template that is plain text and `{{ .name }}` substitutions, in minijinja's syntax; `None` for anything
/// else, including text minijinja would read as its own syntax (`{%`, `{#`).
pub fn translate(go: &str) -> Option<String> {
    let mut out = String::with_capacity(go.len() + 16);
    let mut rest = go;
    while let Some(open) = rest.find("{{") {
        let text = &rest[..open];
        if text.contains("{%") || text.contains("{#") {
            return None;
        }
        out.push_str(text);
        let after = &rest[open + 2..];
        let close = after.find("}}")?;
        let inner = after[..close].trim_matches([' ', '\t']);
        let name = inner.strip_prefix('.')?;
        let mut chars = name.chars();
        let first = chars.next()?;
        if !(first.is_ascii_alphabetic() || first == '_')
            || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return None;
        }
        out.push_str(&format!("{{{{ data.{name} }}}}"));
        rest = &after[close + 2..];
    }
    if rest.contains("{%") || rest.contains("{#") {
        return None;
    }
    out.push_str(rest);
    // minijinja drops one trailing newline of a template (Jinja's default), Go keeps it: one more keeps it too.
    if out.ends_with('\n') {
        out.push('\n');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::plan::template::{Merge, render};
    use crate::value::SecretValue;

    #[test]
    fn go_patterns_match_the_same_keys_anchored() {
        let cases = [
            ("", ".*"),
            ("^db-", "db-.*"),
            ("^db-.*", "db-.*"),
            ("password$", ".*password"),
            ("^exact$", "exact"),
            ("key", ".*key.*"),
            ("^a|b$", ".*(?:^a|b$).*"),
            (r"cost\$", r".*cost\$.*"),
        ];
        for (go, ours) in cases {
            assert_eq!(anchored(go), ours, "{go}");
        }
        // What Go's unanchored search takes, the anchored pattern takes whole, and nothing more.
        let keys = [
            "db-user",
            "my-db-user",
            "password",
            "old-password",
            "passwords",
            "a1",
            "xb",
            "ba",
            "exact",
            "exactly",
            "cost$",
            "cost",
        ];
        for (go, _) in cases.iter().skip(1) {
            let search = regex::Regex::new(go).unwrap();
            let Some(Keys::Matching(whole)) = Keys::matching(&anchored(go)) else {
                panic!("{go}: no pattern");
            };
            for key in keys {
                assert_eq!(search.is_match(key), whole.is_match(key), "{go} on {key}");
            }
        }
    }

    #[test]
    fn only_plain_substitutions_translate_and_they_render_the_same() {
        let data: BTreeMap<String, SecretValue> = [("user", "app"), ("password", "p@ss")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), SecretValue::new(v.as_bytes().to_vec())))
            .collect();
        for (go, expected) in [
            (
                "postgres://{{ .user }}:{{.password}}@db/app",
                "postgres://app:p@ss@db/app",
            ),
            ("user={{ .user }}\n", "user=app\n"),
            ("plain", "plain"),
        ] {
            let jinja = translate(go).unwrap_or_else(|| panic!("{go} not translated"));
            let templates = BTreeMap::from([("k".to_owned(), jinja)]);
            let out = render(&templates, &data, Merge::Replace).unwrap();
            assert_eq!(out["k"].expose_str(), Some(expected), "{go}");
        }
        for go in [
            "{{ .user | upper }}",
            "{{ index . \"tls.crt\" }}",
            "{{- .user -}}",
            "{{ .user",
            "{% raw %}{{ .user }}",
            "{{ .user }}{# comment #}",
            "{{ printf \"%s\" .user }}",
            "{{ .my-key }}",
        ] {
            assert_eq!(translate(go), None, "{go}");
        }
    }
}
