//! What happens to the remote secret SecretSync wrote before, once the target points somewhere else.
//!
//! Renaming `spec.target.remoteName` would otherwise leave the old remote secret behind, readable by whoever could
//! read it before and no longer kept in step: the "orphaned key after a rename" PushSecret users run into. The
//! status remembers where the last write went (its placement); this module compares that with the current spec.

use crate::api::DialectKind;

/// Where a remote secret lives, as the spec named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub dialect: DialectKind,
    /// `spec.target.endpoint` as written (`None`: the dialect's default).
    pub endpoint: Option<String>,
    /// `spec.target.remoteName`, or the object's name.
    pub remote_name: String,
}

/// What to do with the previously written remote secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Moved {
    /// Nothing moved, or there is no record of an earlier placement.
    Stay,
    /// Same store, another name, and `deletionPolicy: Delete`: delete the old name (ownership still checked).
    DeleteOld { remote_name: String },
    /// The old remote secret stays; say so once, with the reason.
    LeaveOld { remote_name: String, why: LeaveWhy },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaveWhy {
    /// `deletionPolicy: Retain` keeps remote secrets, including renamed ones.
    Retain,
    /// The dialect or endpoint changed: the old store may need other credentials, so it is not touched.
    OtherStore,
}

/// Decides the fate of the previous placement. Only a confirmed sync of the current placement calls this, so the
/// old remote secret is never removed before the new one holds the value.
pub fn decide_moved(
    previous: Option<&Placement>,
    current: &Placement,
    delete_policy: bool,
) -> Moved {
    let Some(previous) = previous else {
        return Moved::Stay;
    };
    if previous == current {
        return Moved::Stay;
    }
    let remote_name = previous.remote_name.clone();
    if previous.dialect != current.dialect || previous.endpoint != current.endpoint {
        return Moved::LeaveOld {
            remote_name,
            why: LeaveWhy::OtherStore,
        };
    }
    if !delete_policy {
        return Moved::LeaveOld {
            remote_name,
            why: LeaveWhy::Retain,
        };
    }
    Moved::DeleteOld { remote_name }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(dialect: DialectKind, endpoint: Option<&str>, name: &str) -> Placement {
        Placement {
            dialect,
            endpoint: endpoint.map(str::to_owned),
            remote_name: name.to_owned(),
        }
    }

    const SF: DialectKind = DialectKind::ServiceFabricMesh;

    #[test]
    fn no_record_or_no_change_keeps_everything() {
        let now = at(SF, Some("http://a"), "db");
        assert_eq!(decide_moved(None, &now, true), Moved::Stay);
        assert_eq!(decide_moved(Some(&now.clone()), &now, true), Moved::Stay);
        assert_eq!(decide_moved(Some(&now.clone()), &now, false), Moved::Stay);
    }

    #[test]
    fn a_rename_in_the_same_store_deletes_the_old_name_under_delete() {
        let before = at(SF, Some("http://a"), "db");
        let now = at(SF, Some("http://a"), "db-v2");
        assert_eq!(
            decide_moved(Some(&before), &now, true),
            Moved::DeleteOld {
                remote_name: "db".into()
            }
        );
    }

    #[test]
    fn a_rename_under_retain_leaves_the_old_name() {
        let before = at(SF, None, "db");
        let now = at(SF, None, "db-v2");
        assert_eq!(
            decide_moved(Some(&before), &now, false),
            Moved::LeaveOld {
                remote_name: "db".into(),
                why: LeaveWhy::Retain
            }
        );
    }

    #[test]
    fn another_endpoint_or_dialect_is_never_touched_even_under_delete() {
        let before = at(SF, Some("http://a"), "db");
        for now in [
            at(SF, Some("http://b"), "db"),
            at(SF, None, "db"),
            at(DialectKind::AzureKeyVault, Some("http://a"), "db"),
            at(SF, Some("http://b"), "other"),
        ] {
            assert_eq!(
                decide_moved(Some(&before), &now, true),
                Moved::LeaveOld {
                    remote_name: "db".into(),
                    why: LeaveWhy::OtherStore
                },
                "{now:?}"
            );
        }
    }
}
