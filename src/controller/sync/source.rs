//! Reading the source and credentials Secrets. A source Secret's data is fetched with one GET when a SecretSync
//! needs it and is never cached, so the controller does not hold every Secret of the cluster in memory; a store's
//! credentials are kept between reconciles (see [`crate::controller::stores::credentials_cache`]).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use crate::value::{Credentials, SecretValue};

/// Why a Secret could not be used. Messages name Secrets and keys, never values.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("source Secret {0:?} not found in this namespace")]
    SourceNotFound(String),
    #[error("source Secret {secret:?} has no key {key:?}")]
    KeyNotFound { secret: String, key: String },
    #[error("source Secret {0:?} has no data")]
    SourceEmpty(String),
    #[error("credentials Secret {0:?} not found")]
    CredentialsNotFound(String),
    #[error("spec.source.selector is not a valid label selector: {0}")]
    InvalidSelector(String),
    #[error("spec.source.selector matches more than {0} Secrets; a SecretSync pushes at most {0}")]
    TooManySources(u32),
    #[error(
        "the Secrets spec.source.selector matches hold more than {0} bytes; a SecretSync pushes at most that"
    )]
    TooLarge(usize),
    #[error("cannot read Secret {name:?}: {source}")]
    Kube {
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl SourceError {
    pub fn reason(&self) -> &'static str {
        match self {
            SourceError::SourceNotFound(_) => "SourceNotFound",
            SourceError::KeyNotFound { .. } => "KeyNotFound",
            SourceError::SourceEmpty(_) => "SourceEmpty",
            SourceError::CredentialsNotFound(_) => "CredentialsNotFound",
            SourceError::InvalidSelector(_)
            | SourceError::TooManySources(_)
            | SourceError::TooLarge(_) => "InvalidSpec",
            SourceError::Kube { .. } => "KubernetesError",
        }
    }
}

async fn get(api: &Api<Secret>, name: &str) -> Result<Option<Secret>, SourceError> {
    api.get_opt(name).await.map_err(|source| SourceError::Kube {
        name: name.to_owned(),
        source,
    })
}

fn into_map(secret: Secret) -> BTreeMap<String, SecretValue> {
    let mut map: BTreeMap<String, SecretValue> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, SecretValue::new(v.0)))
        .collect();
    // stringData is write-only in the API, but be exact if a server returns it.
    for (k, v) in secret.string_data.unwrap_or_default() {
        map.insert(k, SecretValue::new(v.into_bytes()));
    }
    map
}

/// A source Secret as read: the value to push and the Secret's labels (a store may admit only some).
pub struct SourceSecret {
    pub value: SecretValue,
    pub labels: BTreeMap<String, String>,
}

/// The value to push: one key, or the whole Secret as a JSON object.
pub async fn read_source(
    api: &Api<Secret>,
    name: &str,
    key: Option<&str>,
) -> Result<SourceSecret, SourceError> {
    let mut secret = get(api, name)
        .await?
        .ok_or_else(|| SourceError::SourceNotFound(name.to_owned()))?;
    let labels = secret.metadata.labels.take().unwrap_or_default();
    let value = value_of(name, into_map(secret), key)?;
    Ok(SourceSecret { value, labels })
}

fn value_of(
    name: &str,
    map: BTreeMap<String, SecretValue>,
    key: Option<&str>,
) -> Result<SecretValue, SourceError> {
    match key {
        Some(key) => map
            .get(key)
            .cloned()
            .ok_or_else(|| SourceError::KeyNotFound {
                secret: name.to_owned(),
                key: key.to_owned(),
            }),
        None if map.is_empty() => Err(SourceError::SourceEmpty(name.to_owned())),
        None => Ok(whole_secret_json(&map)),
    }
}

/// The whole-Secret form (see [`crate::value::json_object`]).
pub fn whole_secret_json(map: &BTreeMap<String, SecretValue>) -> SecretValue {
    crate::value::json_object(map)
}

/// A source Secret's keys and labels.
pub struct SourceKeys {
    pub data: crate::plan::shape::SourceData,
    pub labels: BTreeMap<String, String>,
}

/// The one Secret of `secretRef`, whole (a template or `data` rules pick its keys).
pub async fn read_keys(api: &Api<Secret>, name: &str) -> Result<SourceKeys, SourceError> {
    let secret = get(api, name)
        .await?
        .ok_or_else(|| SourceError::SourceNotFound(name.to_owned()))?;
    Ok(keys_of(secret))
}

/// Every Secret the selector matches, in name order. Read a few at a time: more than `at_most` Secrets, or more
/// than `max_bytes` of values, is refused as soon as a page passes it, so a tenant's selector cannot make one
/// reconcile hold more than a page beyond the bound.
pub async fn read_selected(
    api: &Api<Secret>,
    selector: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    at_most: u32,
    max_bytes: usize,
) -> Result<Vec<SourceKeys>, SourceError> {
    let selector = kube::core::Selector::try_from(selector.clone())
        .map_err(|e| SourceError::InvalidSelector(e.to_string()))?;
    let mut params = kube::api::ListParams::default()
        .labels_from(&selector)
        .limit(SELECTED_PAGE);
    let (mut out, mut bytes) = (Vec::new(), 0usize);
    loop {
        let page = api
            .list(&params)
            .await
            .map_err(|source| SourceError::Kube {
                name: format!("(selector {selector})"),
                source,
            })?;
        for secret in page.items {
            let keys = keys_of(secret);
            bytes += keys
                .data
                .data
                .values()
                .map(|v| v.expose().len())
                .sum::<usize>();
            out.push(keys);
            if out.len() > at_most as usize {
                return Err(SourceError::TooManySources(at_most));
            }
            if bytes > max_bytes {
                return Err(SourceError::TooLarge(max_bytes));
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    out.sort_by(|a, b| a.data.name.cmp(&b.data.name));
    Ok(out)
}

/// Secrets a selector's list reads at a time (a Secret holds at most about 1 MiB).
const SELECTED_PAGE: u32 = 8;

fn keys_of(mut secret: Secret) -> SourceKeys {
    let labels = secret.metadata.labels.take().unwrap_or_default();
    let name = secret.metadata.name.clone().unwrap_or_default();
    SourceKeys {
        data: crate::plan::shape::SourceData {
            name,
            data: into_map(secret),
        },
        labels,
    }
}

/// Every key of the credentials Secret.
pub async fn read_credentials(api: &Api<Secret>, name: &str) -> Result<Credentials, SourceError> {
    let secret = get(api, name).await?.ok_or_else(|| {
        SourceError::CredentialsNotFound(format!("{}/{name}", api.namespace().unwrap_or_default()))
    })?;
    Ok(Credentials::new(into_map(secret)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_secret_is_sorted_json_with_binary_values_in_base64() {
        let map: BTreeMap<String, SecretValue> = [
            ("user".to_string(), SecretValue::from("admin")),
            ("cert".to_string(), SecretValue::new(vec![0xff, 0x00, 0x10])),
            ("pass".to_string(), SecretValue::from("a\"b\n")),
        ]
        .into();
        let v = whole_secret_json(&map);
        assert_eq!(
            v.expose_str().unwrap(),
            r#"{"cert.base64":"/wAQ","pass":"a\"b\n","user":"admin"}"#
        );
        let parsed: serde_json::Value = serde_json::from_slice(v.expose()).unwrap();
        assert_eq!(parsed["user"], "admin");
    }

    #[test]
    fn error_messages_name_secrets_not_values() {
        let e = SourceError::KeyNotFound {
            secret: "db".into(),
            key: "password".into(),
        };
        assert_eq!(e.to_string(), r#"source Secret "db" has no key "password""#);
        assert_eq!(e.reason(), "KeyNotFound");
    }
}
