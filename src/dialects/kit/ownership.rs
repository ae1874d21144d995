//! The one ownership codec: what SecretSync records on a remote secret it writes (which SecretSync owns it, and
//! the keyed digest of the value it holds, never the value), in the encodings stores offer: key/value pairs
//! (tags, labels, metadata) or a line in a free-text description. Whether a marker makes a secret "ours" is the
//! planner's one decision ([`Owner::owns`]).

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::plan::{Desired, Owner};

/// SecretSync's record on a remote secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    pub owner: Owner,
    /// The keyed digest of the value written (`hmac-sha256:…`); `None` on a marker written without a value.
    pub digest: Option<String>,
}

impl Marker {
    /// The marker for the desired state: its owner and its value's digest.
    pub fn of(desired: &Desired) -> Marker {
        Marker {
            owner: desired.owner.clone(),
            digest: Some(desired.digest.clone()),
        }
    }
}

/// How a store's key/value pairs spell the marker. Keys beginning with `secretsync` are SecretSync's in every
/// spelling ([`is_reserved`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keys {
    /// `secretsync.io/owner` (`namespace/name`), `secretsync.io/owner-uid`, `secretsync.io/owner-scope`
    /// (`cluster/namespace-uid`), `secretsync.io/digest`: Docker labels, where '/' and '.' are allowed.
    Domain,
    /// `secretsync-owner` (`namespace/name`), `secretsync-owner-uid`, `secretsync-owner-scope`,
    /// `secretsync-digest`: Key Vault tags.
    Dashed,
    /// `secretsync-owner-namespace`, `secretsync-owner-name`, `secretsync-owner-uid`, `secretsync-owner-scope`,
    /// `secretsync-digest`: Barbican metadata, whose keys are lower-case letters, digits, '-' and '_'.
    DashedSplit,
}

const RESERVED_PREFIX: &str = "secretsync";

/// Whether a pair key is SecretSync's (never a user label, never written from `spec.target.labels`).
pub fn is_reserved(key: &str) -> bool {
    key.to_ascii_lowercase().starts_with(RESERVED_PREFIX)
}

/// The user's labels among a store's pairs: every pair whose key is not SecretSync's.
pub fn user_labels<'a>(
    pairs: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> BTreeMap<String, String> {
    let users = pairs.into_iter().filter(|(k, _)| !is_reserved(k));
    users.map(|(k, v)| (k.clone(), v.clone())).collect()
}

impl Keys {
    /// The pairs a secret carries: the user's `labels` (never SecretSync's keys) and the marker.
    pub fn with_labels(
        self,
        marker: &Marker,
        labels: &BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        let mut pairs = user_labels(labels);
        pairs.extend(self.pairs(marker));
        pairs
    }

    fn uid(self) -> &'static str {
        match self {
            Keys::Domain => "secretsync.io/owner-uid",
            Keys::Dashed | Keys::DashedSplit => "secretsync-owner-uid",
        }
    }

    fn scope(self) -> &'static str {
        match self {
            Keys::Domain => "secretsync.io/owner-scope",
            Keys::Dashed | Keys::DashedSplit => "secretsync-owner-scope",
        }
    }

    fn digest(self) -> &'static str {
        match self {
            Keys::Domain => "secretsync.io/digest",
            Keys::Dashed | Keys::DashedSplit => "secretsync-digest",
        }
    }

    /// The marker as pairs, to be stored next to the user's labels. Empty values are left out (some stores
    /// refuse them, and an empty uid proves nothing).
    pub fn pairs(self, marker: &Marker) -> Vec<(String, String)> {
        let owner = &marker.owner;
        let mut out = match self {
            Keys::Domain => vec![("secretsync.io/owner".to_owned(), owner.key())],
            Keys::Dashed => vec![("secretsync-owner".to_owned(), owner.key())],
            Keys::DashedSplit => vec![
                (
                    "secretsync-owner-namespace".to_owned(),
                    owner.namespace.clone(),
                ),
                ("secretsync-owner-name".to_owned(), owner.name.clone()),
            ],
        };
        out.push((self.uid().to_owned(), owner.uid.clone()));
        out.push((self.scope().to_owned(), owner.scope.key()));
        if let Some(d) = &marker.digest {
            out.push((self.digest().to_owned(), d.clone()));
        }
        out.retain(|(_, v)| !v.is_empty());
        out
    }

    /// Reads a marker from a store's pairs (`get` looks a key up); `None` when no owner is recorded. An empty
    /// value counts as missing.
    pub fn read<'a>(self, get: impl Fn(&str) -> Option<&'a str>) -> Option<Marker> {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        let uid = get(self.uid()).unwrap_or_default();
        let scope = get(self.scope()).unwrap_or_default();
        let owner = match self {
            Keys::Domain => Owner::parse_key(get("secretsync.io/owner")?, uid, scope)?,
            Keys::Dashed => Owner::parse_key(get("secretsync-owner")?, uid, scope)?,
            Keys::DashedSplit => {
                let namespace = get("secretsync-owner-namespace")?;
                let name = get("secretsync-owner-name")?;
                Owner::parse_key(&format!("{namespace}/{name}"), uid, scope)?
            }
        };
        Some(Marker {
            owner,
            digest: get(self.digest()).map(str::to_owned),
        })
    }
}

/// The marker as the last line of a free-text description (`#secretsync.io {json}`), for stores without
/// tags (Service Fabric, Tencent SSM). `E` holds the dialect's own fields of that line (a version list, a
/// version name), written after the owner and digest.
pub mod description {
    use super::*;

    const PREFIX: &str = "#secretsync.io ";

    #[derive(Serialize, Deserialize)]
    struct Line<E> {
        #[serde(rename = "secretsync.io/owner")]
        owner: String,
        #[serde(rename = "secretsync.io/owner-uid", default)]
        owner_uid: String,
        #[serde(
            rename = "secretsync.io/owner-scope",
            default,
            skip_serializing_if = "String::is_empty"
        )]
        owner_scope: String,
        #[serde(
            rename = "secretsync.io/digest",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        digest: Option<String>,
        #[serde(flatten)]
        extra: E,
    }

    /// The user's description with the marker line appended.
    pub fn join<E: Serialize>(user: Option<&str>, marker: &Marker, extra: E) -> String {
        let line = Line {
            owner: marker.owner.key(),
            owner_uid: marker.owner.uid.clone(),
            owner_scope: marker.owner.scope.key(),
            digest: marker.digest.clone(),
            extra,
        };
        // A struct of strings and the dialect's plain fields always serializes.
        let json = serde_json::to_string(&line).unwrap_or_default();
        match user {
            Some(u) => format!("{u}\n{PREFIX}{json}"),
            None => format!("{PREFIX}{json}"),
        }
    }

    /// Splits a description into the user's part and the marker (with the dialect's fields). Text that only
    /// looks like a marker is the user's.
    pub fn split<E: DeserializeOwned>(text: Option<&str>) -> (Option<String>, Option<(Marker, E)>) {
        let Some(text) = text else {
            return (None, None);
        };
        // The marker is the last line: a user's text that itself starts with the prefix must not hide it.
        let (user, line) = if let Some((user, rest)) = text.rsplit_once(&format!("\n{PREFIX}")) {
            (Some(user), rest)
        } else if let Some(rest) = text.strip_prefix(PREFIX) {
            (None, rest)
        } else {
            return (Some(text.to_owned()), None);
        };
        let parsed = serde_json::from_str::<Line<E>>(line).ok().and_then(|l| {
            let owner = Owner::parse_key(&l.owner, &l.owner_uid, &l.owner_scope)?;
            Some((
                Marker {
                    owner,
                    digest: l.digest,
                },
                l.extra,
            ))
        });
        match parsed {
            Some(m) => (user.map(str::to_owned), Some(m)),
            None => (Some(text.to_owned()), None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker() -> Marker {
        Marker {
            owner: Owner {
                namespace: "team-a".into(),
                name: "db".into(),
                uid: "uid-1".into(),
                scope: crate::plan::Scope {
                    cluster: "c1".into(),
                    namespace_uid: "ns-uid".into(),
                },
            },
            digest: Some("hmac-sha256:00ff".into()),
        }
    }

    #[test]
    fn pairs_round_trip_in_every_spelling() {
        for keys in [Keys::Domain, Keys::Dashed, Keys::DashedSplit] {
            let map: BTreeMap<String, String> = keys.pairs(&marker()).into_iter().collect();
            assert!(map.keys().all(|k| is_reserved(k)), "{keys:?}: {map:?}");
            assert_eq!(
                keys.read(|k| map.get(k).map(String::as_str)),
                Some(marker()),
                "{keys:?}"
            );
        }
    }

    #[test]
    fn labels_never_shadow_the_marker() {
        let labels: BTreeMap<String, String> = [("team", "a"), ("secretsync-owner", "x/y")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
        let pairs = Keys::Dashed.with_labels(&marker(), &labels);
        assert_eq!(pairs.get("team").map(String::as_str), Some("a"));
        assert_eq!(
            pairs.get("secretsync-owner").map(String::as_str),
            Some("team-a/db")
        );
        assert_eq!(
            user_labels(&pairs),
            [("team".to_owned(), "a".to_owned())].into()
        );
    }

    #[test]
    fn the_wire_spellings_stay_as_stores_hold_them() {
        let dashed: BTreeMap<_, _> = Keys::Dashed.pairs(&marker()).into_iter().collect();
        assert_eq!(dashed["secretsync-owner"], "team-a/db");
        let split: BTreeMap<_, _> = Keys::DashedSplit.pairs(&marker()).into_iter().collect();
        assert_eq!(split["secretsync-owner-name"], "db");
        assert_eq!(split["secretsync-owner-scope"], "c1/ns-uid");
        let line = description::join(Some("user text"), &marker(), serde_json::json!({}));
        assert_eq!(
            line,
            "user text\n#secretsync.io {\"secretsync.io/owner\":\"team-a/db\",\
             \"secretsync.io/owner-uid\":\"uid-1\",\"secretsync.io/owner-scope\":\"c1/ns-uid\",\
             \"secretsync.io/digest\":\"hmac-sha256:00ff\"}"
        );
    }

    #[test]
    fn no_owner_is_no_marker() {
        for keys in [Keys::Domain, Keys::Dashed, Keys::DashedSplit] {
            assert_eq!(keys.read(|k| k.ends_with("digest").then_some("x")), None);
        }
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
    struct Extra {
        #[serde(rename = "secretsync.io/versions", default)]
        versions: Vec<String>,
    }

    #[test]
    fn description_lines_round_trip_with_the_dialects_fields() {
        let extra = Extra {
            versions: vec!["v2".into(), "v1".into()],
        };
        for user in [
            None,
            Some("made by hand"),
            Some("two\nlines"),
            Some(""),
            Some("#secretsync.io looks like a marker"),
        ] {
            let text = description::join(user, &marker(), &extra);
            let (u, m) = description::split::<Extra>(Some(&text));
            assert_eq!(u.as_deref(), user);
            assert_eq!(
                m,
                Some((
                    marker(),
                    Extra {
                        versions: vec!["v2".into(), "v1".into()]
                    }
                ))
            );
        }
    }

    #[test]
    fn a_description_that_only_looks_like_a_marker_is_the_users() {
        for text in [
            "#secretsync.io not json",
            "x\n#secretsync.io {\"a\":1}",
            "plain",
        ] {
            let (u, m) = description::split::<Extra>(Some(text));
            assert_eq!((u.as_deref(), m), (Some(text), None));
        }
        assert_eq!(description::split::<Extra>(None), (None, None));
    }
}
