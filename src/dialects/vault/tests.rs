use super::*;
use crate::api::VaultStoreSettings;

fn with(prefix: Option<&str>, mount: Option<&str>) -> VaultSettings {
    VaultSettings {
        connection: VaultStoreSettings {
            mount: mount.map(str::to_owned),
            path_prefix: prefix.map(str::to_owned),
            ..Default::default()
        },
        max_versions: None,
    }
}

#[test]
fn paths_are_the_mount_and_the_prefix_before_the_remote_name() {
    assert_eq!(
        location(&with(None, None), "team-a/db").unwrap(),
        ("secret".to_owned(), "team-a/db".to_owned())
    );
    assert_eq!(
        location(&with(Some("apps/x"), Some("kv")), "db").unwrap(),
        ("kv".to_owned(), "apps/x/db".to_owned())
    );
    for bad in ["../db", "a//b", "/db", "db?x=1", "a b"] {
        let e = location(&with(None, None), bad).unwrap_err();
        assert_eq!(e.reason, "InvalidName", "{bad}");
    }
    let e = location(&with(Some("../up"), None), "db").unwrap_err();
    assert_eq!(e.reason, "InvalidSetting");
}
