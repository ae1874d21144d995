//! The controller-wide HMAC key for value digests, kept in a Secret so every replica and every restart uses the
//! same key (otherwise digests written on remote secrets could not be compared).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use rand::Rng;

use crate::plan::digest::DigestKey;

const DATA_KEY: &str = "key";

#[derive(Debug, thiserror::Error)]
pub enum DigestKeyError {
    #[error("digest key Secret must be given as namespace/name, got {0:?}")]
    BadName(String),
    #[error("cannot read or create the digest key Secret {name}: {source}")]
    Kube {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("digest key Secret {0} has no usable key (need at least 16 bytes under data.key)")]
    Unusable(String),
}

/// Loads the key from `namespace/name`, creating it with 32 random bytes when it does not exist yet.
pub async fn load_or_create(client: Client, reference: &str) -> Result<DigestKey, DigestKeyError> {
    let (ns, name) = reference
        .split_once('/')
        .filter(|(a, b)| !a.is_empty() && !b.is_empty())
        .ok_or_else(|| DigestKeyError::BadName(reference.to_owned()))?;
    let api: Api<Secret> = Api::namespaced(client, ns);
    let err = |source| DigestKeyError::Kube {
        name: reference.to_owned(),
        source,
    };
    for _ in 0..3 {
        if let Some(secret) = api.get_opt(name).await.map_err(err)? {
            let bytes = secret
                .data
                .and_then(|mut d| d.remove(DATA_KEY))
                .map(|b| b.0)
                .unwrap_or_default();
            return DigestKey::new(bytes)
                .ok_or_else(|| DigestKeyError::Unusable(reference.to_owned()));
        }
        let mut bytes = vec![0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/name".to_owned(),
                    "secretsync".to_owned(),
                )])),
                ..Default::default()
            },
            immutable: Some(true),
            data: Some(BTreeMap::from([(DATA_KEY.to_owned(), ByteString(bytes))])),
            ..Default::default()
        };
        match api.create(&PostParams::default(), &secret).await {
            Ok(_) => continue, // read it back like every other replica does
            Err(kube::Error::Api(e)) if e.code == 409 => continue, // another replica was first
            Err(e) => return Err(err(e)),
        }
    }
    Err(DigestKeyError::Unusable(reference.to_owned()))
}
