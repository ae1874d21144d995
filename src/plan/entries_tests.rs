use super::*;

fn data(pairs: &[(&str, &[u8])]) -> BTreeMap<String, SecretValue> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), SecretValue::new(v.to_vec())))
        .collect()
}

fn rule(keys: Keys, remote: Option<&str>, property: Option<&str>) -> Rule {
    Rule {
        keys,
        remote_name: remote.map(str::to_owned),
        property: property.map(str::to_owned),
    }
}

fn one(key: &str) -> Keys {
    Keys::One(key.to_owned())
}

fn text(entry: &Entry) -> &str {
    entry.value.expose_str().expect("text")
}

fn names(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.remote_name.as_str()).collect()
}

#[test]
fn one_key_goes_to_the_default_name_as_the_whole_value() {
    let d = data(&[("password", b"s3cr3t"), ("user", b"admin")]);
    let src = [Source {
        name: "db",
        data: &d,
    }];
    let out = expand(
        &src,
        &[rule(one("password"), None, None)],
        "orders-db",
        Limits::default(),
    )
    .unwrap();
    assert_eq!(names(&out), ["orders-db"]);
    assert_eq!(out[0].value.expose(), b"s3cr3t");
    assert_eq!(out[0].keys, ["db/password"]);
}

#[test]
fn two_keys_become_two_properties_of_one_json_object() {
    let d = data(&[("username", b"admin"), ("password", b"p\"w")]);
    let src = [Source {
        name: "db",
        data: &d,
    }];
    let rules = [
        rule(one("username"), Some("db-creds"), Some("user")),
        rule(one("password"), Some("db-creds"), Some("pass")),
    ];
    let out = expand(&src, &rules, "x", Limits::default()).unwrap();
    assert_eq!(names(&out), ["db-creds"]);
    assert_eq!(text(&out[0]), r#"{"pass":"p\"w","user":"admin"}"#);
}

#[test]
fn a_pattern_takes_every_key_it_matches_whole_and_names_them() {
    let d = data(&[
        ("api_key", b"1"),
        ("api_secret", b"2"),
        ("other", b"3"),
        ("xapi_key", b"4"),
    ]);
    let src = [Source {
        name: "app",
        data: &d,
    }];
    let keys = Keys::matching("api_.*").unwrap();
    let out = expand(
        &src,
        &[rule(keys, Some("app-{key}"), None)],
        "x",
        Limits::default(),
    )
    .unwrap();
    assert_eq!(
        names(&out),
        ["app-api_key", "app-api_secret"],
        "anchored: xapi_key is not taken"
    );
    assert!(
        Keys::matching("(").is_none(),
        "an invalid pattern is refused"
    );
}

#[test]
fn a_pattern_can_fill_the_properties_of_one_object() {
    let d = data(&[("a", b"1"), ("b", b"2")]);
    let src = [Source {
        name: "s",
        data: &d,
    }];
    let out = expand(
        &src,
        &[rule(
            Keys::matching("[ab]").unwrap(),
            Some("all"),
            Some("{key}"),
        )],
        "x",
        Limits::default(),
    )
    .unwrap();
    assert_eq!(text(&out[0]), r#"{"a":"1","b":"2"}"#);
}

#[test]
fn secrets_of_a_selector_each_get_their_own_remote_secret() {
    let (a, b, c) = (
        data(&[("k", b"1")]),
        data(&[("k", b"2")]),
        data(&[("k", b"3")]),
    );
    let src = [
        Source {
            name: "s-a",
            data: &a,
        },
        Source {
            name: "s-b",
            data: &b,
        },
        Source {
            name: "s-c",
            data: &c,
        },
    ];
    let out = expand(
        &src,
        &[rule(one("k"), Some("{secret}"), None)],
        "x",
        Limits::default(),
    )
    .unwrap();
    assert_eq!(names(&out), ["s-a", "s-b", "s-c"]);
    assert_eq!(out[1].value.expose(), b"2");
    // One Secret fewer (unlabelled): one remote secret fewer.
    let out = expand(
        &src[..2],
        &[rule(one("k"), Some("{secret}"), None)],
        "x",
        Limits::default(),
    )
    .unwrap();
    assert_eq!(names(&out), ["s-a", "s-b"]);
}

#[test]
fn rules_that_disagree_about_a_remote_secret_are_refused_naming_keys_only() {
    let d = data(&[("a", b"value-a"), ("b", b"value-b")]);
    let src = [Source {
        name: "s",
        data: &d,
    }];
    let two = expand(
        &src,
        &[
            rule(one("a"), Some("r"), None),
            rule(one("b"), Some("r"), None),
        ],
        "x",
        Limits::default(),
    );
    assert_eq!(
        two,
        Err(EntriesError::TwoValues {
            remote: "r".into(),
            first: "s/a".into(),
            second: "s/b".into()
        })
    );
    let mixed = expand(
        &src,
        &[
            rule(one("a"), Some("r"), None),
            rule(one("b"), Some("r"), Some("p")),
        ],
        "x",
        Limits::default(),
    );
    assert!(
        matches!(mixed, Err(EntriesError::ValueAndProperties { .. })),
        "{mixed:?}"
    );
    let same = expand(
        &src,
        &[
            rule(one("a"), Some("r"), Some("p")),
            rule(one("b"), Some("r"), Some("p")),
        ],
        "x",
        Limits::default(),
    );
    assert!(
        matches!(same, Err(EntriesError::SameProperty { .. })),
        "{same:?}"
    );
    for err in [two, mixed, same] {
        let text = err.unwrap_err().to_string();
        assert!(
            !text.contains("value-a") && !text.contains("value-b"),
            "{text}"
        );
    }
}

#[test]
fn the_limits_are_counted_before_anything_is_built() {
    let d: BTreeMap<String, SecretValue> = (0..10)
        .map(|i| (format!("k{i}"), SecretValue::from("v")))
        .collect();
    let src = [Source {
        name: "s",
        data: &d,
    }];
    let every = |remote: &str| [rule(Keys::matching(".*").unwrap(), Some(remote), None)];
    let small = Limits {
        remotes: 64,
        keys: 9,
        ..Limits::default()
    };
    assert_eq!(
        expand(&src, &every("{key}"), "x", small),
        Err(EntriesError::TooManyKeys(10, 9))
    );
    let few_remotes = Limits {
        remotes: 3,
        keys: 256,
        ..Limits::default()
    };
    assert_eq!(
        expand(&src, &every("{key}"), "x", few_remotes),
        Err(EntriesError::TooManyRemotes(10, 3))
    );
    assert_eq!(
        expand(&src, &every("{key}"), "x", Limits::default()).map(|e| e.len()),
        Ok(10)
    );
}

#[test]
fn a_name_that_comes_out_empty_is_refused_and_binary_values_are_base64_properties() {
    let d = data(&[("", b"v")]);
    let src = [Source {
        name: "s",
        data: &d,
    }];
    assert_eq!(
        expand(
            &src,
            &[rule(Keys::matching(".*").unwrap(), Some("{key}"), None)],
            "x",
            Limits::default()
        ),
        Err(EntriesError::EmptyName)
    );
    let d = data(&[("cert", &[0xff, 0x00])]);
    let src = [Source {
        name: "s",
        data: &d,
    }];
    let out = expand(
        &src,
        &[rule(one("cert"), Some("r"), Some("cert"))],
        "x",
        Limits::default(),
    )
    .unwrap();
    assert_eq!(text(&out[0]), r#"{"cert.base64":"/wA="}"#);
}

#[test]
fn no_rule_takes_no_key_and_makes_nothing() {
    let d = data(&[("a", b"1")]);
    let src = [Source {
        name: "s",
        data: &d,
    }];
    assert_eq!(
        expand(
            &src,
            &[rule(one("missing"), None, None)],
            "x",
            Limits::default()
        ),
        Ok(vec![])
    );
}
