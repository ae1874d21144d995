use super::*;

fn secret(name: &str, pairs: &[(&str, &str)]) -> SourceData {
    SourceData::text(name, pairs)
}

fn shape<'a>(rules: &'a [Rule], default_remote: &'a str) -> Shape<'a> {
    Shape {
        rules,
        key: None,
        template: None,
        default_remote,
        limits: Limits::default(),
    }
}

fn text(e: &Entry) -> &str {
    e.value.expose_str().expect("text")
}

#[test]
fn two_keys_become_two_properties_of_one_remote_secret() {
    let rules = [
        rule(Some("username"), None, None, Some("user")).unwrap(),
        rule(Some("password"), None, None, Some("pass")).unwrap(),
    ];
    let db = secret(
        "db",
        &[("username", "app"), ("password", "s3cr3t"), ("host", "h")],
    );
    let out = wanted(&[db], &shape(&rules, "app-db")).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].remote_name, "app-db");
    assert_eq!(text(&out[0]), r#"{"pass":"s3cr3t","user":"app"}"#);
    assert_eq!(out[0].secret, "db");
}

#[test]
fn a_selector_source_gets_one_remote_secret_per_secret() {
    let sources = [
        secret("a", &[("k", "1")]),
        secret("b", &[("k", "2")]),
        secret("c", &[("k", "3")]),
    ];
    let out = wanted(&sources, &shape(&[], "team/{secret}")).unwrap();
    let names: Vec<&str> = out.iter().map(|e| e.remote_name.as_str()).collect();
    assert_eq!(names, ["team/a", "team/b", "team/c"]);
    assert_eq!(text(&out[1]), r#"{"k":"2"}"#);
    assert_eq!(out[2].secret, "c");
}

#[test]
fn a_template_composes_a_url_before_rules_select_keys() {
    let templates: BTreeMap<String, String> = [(
        "url".to_owned(),
        "postgres://{{ data.user }}:{{ data.password | uri_component }}@db:5432/app".to_owned(),
    )]
    .into();
    let rules = [rule(Some("url"), None, None, None).unwrap()];
    let sources = [secret("db", &[("user", "app"), ("password", "p@ss/w")])];
    let replace = Shape {
        template: Some((&templates, Merge::Replace)),
        ..shape(&rules, "db-url")
    };
    let out = wanted(&sources, &replace).unwrap();
    assert_eq!(text(&out[0]), "postgres://app:p%40ss%2Fw@db:5432/app");
    let whole = Shape {
        template: Some((&templates, Merge::Merge)),
        ..shape(&[], "db")
    };
    let out = wanted(&sources, &whole).unwrap();
    let object: serde_json::Value = serde_json::from_slice(out[0].value.expose()).unwrap();
    assert_eq!(object["user"], "app", "Merge keeps the source's keys");
    assert!(object["url"].as_str().unwrap().starts_with("postgres://"));
}

#[test]
fn a_missing_key_names_the_secret_and_the_key_and_no_value() {
    let rules = [rule(Some("password"), None, None, None).unwrap()];
    let err = wanted(&[secret("db", &[("user", "hunter2")])], &shape(&rules, "r")).unwrap_err();
    assert_eq!(
        err,
        ShapeError::KeyNotFound {
            secret: "db".into(),
            key: "password".into()
        }
    );
    assert!(!err.to_string().contains("hunter2"));
    let one_key = Shape {
        key: Some("password"),
        ..shape(&[], "r")
    };
    assert!(matches!(
        wanted(&[secret("db", &[("user", "x")])], &one_key),
        Err(ShapeError::KeyNotFound { .. })
    ));
}

#[test]
fn a_regex_that_selects_nothing_of_a_secret_is_refused() {
    let rules = [rule(None, Some("db_.*"), Some("{key}"), None).unwrap()];
    let err = wanted(&[secret("s", &[("api", "x")])], &shape(&rules, "r")).unwrap_err();
    assert_eq!(err, ShapeError::NothingSelected("s".into()));
    let out = wanted(
        &[secret(
            "s",
            &[("db_user", "u"), ("db_pass", "p"), ("api", "x")],
        )],
        &shape(&rules, "r"),
    )
    .unwrap();
    assert_eq!(out.len(), 2);
}

#[test]
fn no_selected_secret_wants_no_remote_secret() {
    assert!(wanted(&[], &shape(&[], "x/{secret}")).unwrap().is_empty());
}

#[test]
fn limits_hold_for_whole_secrets_too() {
    let sources: Vec<SourceData> = (0..3)
        .map(|i| secret(&format!("s{i}"), &[("a", "1"), ("b", "2")]))
        .collect();
    let tight = Shape {
        limits: Limits {
            remotes: 2,
            keys: 256,
            ..Limits::default()
        },
        ..shape(&[], "{secret}")
    };
    assert_eq!(
        wanted(&sources, &tight).unwrap_err(),
        ShapeError::Entries(EntriesError::TooManyRemotes(3, 2))
    );
    let few_keys = Shape {
        limits: Limits {
            remotes: 64,
            keys: 5,
            ..Limits::default()
        },
        ..shape(&[], "{secret}")
    };
    assert_eq!(
        wanted(&sources, &few_keys).unwrap_err(),
        ShapeError::Entries(EntriesError::TooManyKeys(6, 5))
    );
}

#[test]
fn an_invalid_pattern_is_refused_by_name() {
    let err = rule(None, Some("(unclosed"), None, None).unwrap_err();
    assert!(err.contains("(unclosed"));
}

#[test]
fn a_template_error_names_its_key_not_a_value() {
    let templates: BTreeMap<String, String> =
        [("url".to_owned(), "{{ data.nope }}".to_owned())].into();
    let s = Shape {
        template: Some((&templates, Merge::Replace)),
        ..shape(&[], "r")
    };
    let err = wanted(&[secret("db", &[("password", "hunter2")])], &s).unwrap_err();
    assert!(err.to_string().contains("url"), "{err}");
    assert!(!err.to_string().contains("hunter2"));
}

#[test]
fn the_bytes_of_sources_and_templates_are_bounded_together() {
    let big = "x".repeat(600);
    let sources: Vec<SourceData> = (0..3)
        .map(|i| secret(&format!("s{i}"), &[("k", big.as_str())]))
        .collect();
    let small = Shape {
        limits: Limits {
            bytes: 1000,
            ..Limits::default()
        },
        ..shape(&[], "{secret}")
    };
    assert_eq!(
        wanted(&sources, &small).unwrap_err(),
        ShapeError::TooLarge(1000)
    );
    let templates: BTreeMap<String, String> =
        [("twice".to_owned(), "{{ data.k }}{{ data.k }}".to_owned())].into();
    let templated = Shape {
        template: Some((&templates, Merge::Merge)),
        limits: Limits {
            bytes: 1500,
            ..Limits::default()
        },
        ..shape(&[], "{secret}")
    };
    assert_eq!(
        wanted(&sources[..1], &templated).unwrap_err(),
        ShapeError::TooLarge(1500),
        "600 source bytes pass the bound of 1500; merged with the 1200 templated ones they do not"
    );
}
