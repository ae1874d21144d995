//! From the source Secrets and a SecretSync's `data[]` rules to the remote secrets it must write (issue #30's
//! building block; the pipeline plans and applies each entry). Pure: no Kubernetes, no store.
//!
//! A rule selects keys of each source Secret (one key, or every key matching an anchored RE2 pattern) and says
//! where each goes: a remote name (which may name the key and the Secret) and, optionally, a property of a JSON
//! object in that remote secret. Entries with the same remote name and different properties build one object.

use std::collections::BTreeMap;

use crate::value::{SecretValue, json_object};

/// Which keys of a Secret a rule takes.
#[derive(Clone, Debug)]
pub enum Keys {
    One(String),
    /// Every key the pattern matches whole (anchored).
    Matching(regex::Regex),
}

impl Keys {
    /// A pattern in RE2 syntax, anchored at both ends; `None` when it is not a valid pattern (or too large).
    pub fn matching(pattern: &str) -> Option<Keys> {
        regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
            .size_limit(1 << 20)
            .build()
            .ok()
            .map(Keys::Matching)
    }

    fn takes(&self, key: &str) -> bool {
        match self {
            Keys::One(k) => k == key,
            Keys::Matching(re) => re.is_match(key),
        }
    }
}

/// One `data[]` entry.
#[derive(Clone, Debug)]
pub struct Rule {
    pub keys: Keys,
    /// The remote secret's name; `{key}` and `{secret}` are replaced. `None`: the SecretSync's default name.
    pub remote_name: Option<String>,
    /// A property of the remote secret's JSON object; `{key}` is replaced. `None`: the key's value is the remote
    /// secret's whole value.
    pub property: Option<String>,
}

/// A source Secret (after templates) as the rules read it.
pub struct Source<'a> {
    pub name: &'a str,
    pub data: &'a BTreeMap<String, SecretValue>,
}

/// At most this many remote secrets and keys per SecretSync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub remotes: usize,
    pub keys: usize,
    /// Bytes of source and templated values one SecretSync may hold at once.
    pub bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            remotes: 64,
            keys: 256,
            bytes: 8 << 20,
        }
    }
}

/// One remote secret to write, and the keys that make its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub remote_name: String,
    pub value: SecretValue,
    /// `secret/key` of every key in it, for messages (never a value).
    pub keys: Vec<String>,
    /// The Secret the value comes from (the first one, should rules merge several).
    pub secret: String,
}

/// Why a SecretSync's rules cannot be carried out. Names keys, properties and remote names, never a value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EntriesError {
    #[error("the rules select {0} keys; a SecretSync pushes at most {1}")]
    TooManyKeys(usize, usize),
    #[error("the rules make {0} remote secrets; a SecretSync writes at most {1}")]
    TooManyRemotes(usize, usize),
    #[error(
        "remote secret {remote:?} gets {first} and {second} as its whole value: give each its own remoteName or a property"
    )]
    TwoValues {
        remote: String,
        first: String,
        second: String,
    },
    #[error(
        "remote secret {remote:?} gets {whole} as its whole value and other keys as properties: use properties for all"
    )]
    ValueAndProperties { remote: String, whole: String },
    #[error("property {property:?} of remote secret {remote:?} gets both {first} and {second}")]
    SameProperty {
        remote: String,
        property: String,
        first: String,
        second: String,
    },
    #[error(
        "a remote name made from the rules is empty (after {{key}} and {{secret}} were replaced)"
    )]
    EmptyName,
}

/// What one selected key contributes.
struct Part {
    remote: String,
    secret: String,
    property: Option<String>,
    origin: String,
    value: SecretValue,
}

/// The remote secrets `rules` make from `sources`, sorted by name; `default_remote` is the name of a rule without
/// one.
pub fn expand(
    sources: &[Source<'_>],
    rules: &[Rule],
    default_remote: &str,
    limits: Limits,
) -> Result<Vec<Entry>, EntriesError> {
    let mut parts = Vec::new();
    for source in sources {
        for rule in rules {
            for (key, value) in source.data.iter().filter(|(k, _)| rule.keys.takes(k)) {
                let fill = |t: &str| t.replace("{key}", key).replace("{secret}", source.name);
                let remote = fill(rule.remote_name.as_deref().unwrap_or(default_remote));
                if remote.is_empty() {
                    return Err(EntriesError::EmptyName);
                }
                parts.push(Part {
                    remote,
                    secret: source.name.to_owned(),
                    property: rule.property.as_deref().map(fill),
                    origin: format!("{}/{key}", source.name),
                    value: value.clone(),
                });
                if parts.len() > limits.keys {
                    return Err(EntriesError::TooManyKeys(parts.len(), limits.keys));
                }
            }
        }
    }
    let mut by_remote: BTreeMap<String, Vec<Part>> = BTreeMap::new();
    for part in parts {
        by_remote.entry(part.remote.clone()).or_default().push(part);
    }
    if by_remote.len() > limits.remotes {
        return Err(EntriesError::TooManyRemotes(
            by_remote.len(),
            limits.remotes,
        ));
    }
    by_remote
        .into_iter()
        .map(|(remote, parts)| entry(remote, parts))
        .collect()
}

fn entry(remote: String, mut parts: Vec<Part>) -> Result<Entry, EntriesError> {
    let keys = parts.iter().map(|p| p.origin.clone()).collect();
    let secret = parts.first().map(|p| p.secret.clone()).unwrap_or_default();
    let whole: Vec<&Part> = parts.iter().filter(|p| p.property.is_none()).collect();
    match (whole.as_slice(), parts.len()) {
        ([one], 1) => {
            let value = one.value.clone();
            return Ok(Entry {
                remote_name: remote,
                value,
                keys,
                secret,
            });
        }
        ([first, second, ..], _) => {
            return Err(EntriesError::TwoValues {
                remote,
                first: first.origin.clone(),
                second: second.origin.clone(),
            });
        }
        ([one], _) => {
            return Err(EntriesError::ValueAndProperties {
                remote,
                whole: one.origin.clone(),
            });
        }
        _ => {}
    }
    parts.sort_by(|a, b| a.property.cmp(&b.property));
    let mut object = BTreeMap::new();
    let mut origins: BTreeMap<String, String> = BTreeMap::new();
    for part in parts {
        let property = part.property.unwrap_or_default();
        if let Some(first) = origins.get(&property) {
            return Err(EntriesError::SameProperty {
                remote,
                property,
                first: first.clone(),
                second: part.origin,
            });
        }
        origins.insert(property.clone(), part.origin);
        object.insert(property, part.value);
    }
    Ok(Entry {
        remote_name: remote,
        value: json_object(&object),
        keys,
        secret,
    })
}

#[cfg(test)]
#[path = "entries_tests.rs"]
mod tests;
