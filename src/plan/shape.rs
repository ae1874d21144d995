//! The remote secrets one SecretSync wants, from its source Secrets and what its spec asks of them: a template
//! first, then `data` rules (or the one key, or the whole Secret as a JSON object). Pure: the controller reads the
//! Secrets, this decides what each remote secret holds.

use std::collections::BTreeMap;

use super::entries::{self, EntriesError, Entry, Keys, Limits, Rule, Source};
use super::template::{self, Merge, TemplateError};
use crate::value::{SecretValue, json_object};

/// A source Secret as read: its name and its keys.
#[derive(Clone)]
pub struct SourceData {
    pub name: String,
    pub data: BTreeMap<String, SecretValue>,
}

impl SourceData {
    /// A Secret of text values.
    pub fn text(name: &str, pairs: &[(&str, &str)]) -> SourceData {
        SourceData {
            name: name.to_owned(),
            data: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), SecretValue::from(*v)))
                .collect(),
        }
    }
}

/// What the spec asks of the source Secrets.
pub struct Shape<'a> {
    /// `spec.data`; empty for one key or the whole Secret.
    pub rules: &'a [Rule],
    /// `spec.source.secretRef.key`.
    pub key: Option<&'a str>,
    /// `spec.template`.
    pub template: Option<(&'a BTreeMap<String, String>, Merge)>,
    /// The remote name a rule without its own uses (`{secret}` filled per Secret).
    pub default_remote: &'a str,
    pub limits: Limits,
}

/// Why the spec cannot be carried out with these Secrets. Messages name keys, Secrets and remote names, never a
/// value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShapeError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Entries(#[from] EntriesError),
    #[error("source Secret {secret:?} has no key {key:?}")]
    KeyNotFound { secret: String, key: String },
    #[error("source Secret {0:?} has no data")]
    Empty(String),
    #[error(
        "the source Secrets and templates hold more than {0} bytes together; a SecretSync pushes at most that"
    )]
    TooLarge(usize),
    #[error("spec.data selects no key of Secret {0:?}: nothing would be pushed")]
    NothingSelected(String),
}

/// `secretKeyRegex` as a rule, or why it is no pattern.
pub fn rule(
    key: Option<&str>,
    pattern: Option<&str>,
    remote_name: Option<&str>,
    property: Option<&str>,
) -> Result<Rule, String> {
    let keys = match (key, pattern) {
        (Some(key), _) => Keys::One(key.to_owned()),
        (None, Some(pattern)) => Keys::matching(pattern)
            .ok_or_else(|| format!("secretKeyRegex {pattern:?} is not an RE2 pattern"))?,
        (None, None) => return Err("a spec.data rule needs secretKey or secretKeyRegex".into()),
    };
    Ok(Rule {
        keys,
        remote_name: remote_name.map(str::to_owned),
        property: property.map(str::to_owned),
    })
}

/// Every remote secret the spec wants, in name order.
pub fn wanted(sources: &[SourceData], shape: &Shape<'_>) -> Result<Vec<Entry>, ShapeError> {
    // Each template's output is bounded, and so is their sum over every selected Secret: 64 Secrets of 64
    // templates must not make one reconcile hold gigabytes.
    let bytes = |sources: &[SourceData]| -> usize {
        sources
            .iter()
            .flat_map(|s| s.data.values())
            .map(|v| v.expose().len())
            .sum()
    };
    if bytes(sources) > shape.limits.bytes {
        return Err(ShapeError::TooLarge(shape.limits.bytes));
    }
    let mut budget = shape.limits.bytes;
    let rendered: Vec<SourceData> = sources
        .iter()
        .map(|s| {
            let data = match shape.template {
                Some((templates, merge)) => template::render(templates, &s.data, merge)?,
                None => s.data.clone(),
            };
            let size: usize = data.values().map(|v| v.expose().len()).sum();
            budget = budget
                .checked_sub(size)
                .ok_or(ShapeError::TooLarge(shape.limits.bytes))?;
            Ok(SourceData {
                name: s.name.clone(),
                data,
            })
        })
        .collect::<Result<_, ShapeError>>()?;
    if !shape.rules.is_empty() {
        let borrowed: Vec<Source<'_>> = rendered
            .iter()
            .map(|s| Source {
                name: &s.name,
                data: &s.data,
            })
            .collect();
        for rule in shape.rules {
            if let Keys::One(key) = &rule.keys
                && let Some(s) = rendered.iter().find(|s| !s.data.contains_key(key))
            {
                return Err(ShapeError::KeyNotFound {
                    secret: s.name.clone(),
                    key: key.clone(),
                });
            }
        }
        let entries = entries::expand(&borrowed, shape.rules, shape.default_remote, shape.limits)?;
        if let Some(s) = rendered
            .iter()
            .find(|s| !entries.iter().any(|e| e.secret == s.name))
        {
            return Err(ShapeError::NothingSelected(s.name.clone()));
        }
        return Ok(entries);
    }
    if rendered.len() > shape.limits.remotes {
        return Err(EntriesError::TooManyRemotes(rendered.len(), shape.limits.remotes).into());
    }
    let mut out: Vec<Entry> = rendered
        .into_iter()
        .map(|s| whole_or_key(s, shape))
        .collect::<Result<_, _>>()?;
    let keys: usize = out.iter().map(|e| e.keys.len()).sum();
    if keys > shape.limits.keys {
        return Err(EntriesError::TooManyKeys(keys, shape.limits.keys).into());
    }
    out.sort_by(|a, b| a.remote_name.cmp(&b.remote_name));
    Ok(out)
}

/// Without rules: the one key, or the whole Secret as one JSON object.
fn whole_or_key(source: SourceData, shape: &Shape<'_>) -> Result<Entry, ShapeError> {
    let remote_name = shape.default_remote.replace("{secret}", &source.name);
    if remote_name.is_empty() {
        return Err(EntriesError::EmptyName.into());
    }
    let (value, keys) = match shape.key {
        Some(key) => {
            let value = source
                .data
                .get(key)
                .cloned()
                .ok_or_else(|| ShapeError::KeyNotFound {
                    secret: source.name.clone(),
                    key: key.to_owned(),
                })?;
            (value, vec![format!("{}/{key}", source.name)])
        }
        None if source.data.is_empty() => return Err(ShapeError::Empty(source.name)),
        None => {
            if source.data.len() > shape.limits.keys {
                return Err(EntriesError::TooManyKeys(source.data.len(), shape.limits.keys).into());
            }
            let keys = source
                .data
                .keys()
                .map(|k| format!("{}/{k}", source.name))
                .collect();
            (json_object(&source.data), keys)
        }
    };
    Ok(Entry {
        remote_name,
        value,
        keys,
        secret: source.name,
    })
}

#[cfg(test)]
#[path = "shape_tests.rs"]
mod tests;
