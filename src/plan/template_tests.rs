use super::*;

fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, SecretValue> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), SecretValue::from(*v)))
        .collect()
}

fn templates(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn a_url_is_composed_from_two_keys_with_the_password_escaped() {
    let d = data(&[("user", "app"), ("password", "p@ss/w:rd")]);
    let t = templates(&[(
        "url",
        "postgres://{{ data.user }}:{{ data.password | uri_component }}@db:5432/app",
    )]);
    let out = render(&t, &d, Merge::Replace).unwrap();
    assert_eq!(out.keys().collect::<Vec<_>>(), ["url"]);
    assert_eq!(
        out["url"].expose_str(),
        Some("postgres://app:p%40ss%2Fw%3Ard@db:5432/app")
    );
}

#[test]
fn merge_keeps_the_sources_keys_and_replace_does_not() {
    let d = data(&[("user", "app"), ("host", "db")]);
    let t = templates(&[
        ("dsn", "{{ data.user }}@{{ data.host }}"),
        ("host", "db.internal"),
    ]);
    let merged = render(&t, &d, Merge::Merge).unwrap();
    assert_eq!(merged.keys().collect::<Vec<_>>(), ["dsn", "host", "user"]);
    assert_eq!(
        merged["host"].expose_str(),
        Some("db.internal"),
        "a templated key wins"
    );
    let replaced = render(&t, &d, Merge::Replace).unwrap();
    assert_eq!(replaced.keys().collect::<Vec<_>>(), ["dsn", "host"]);
}

#[test]
fn errors_name_the_template_key_and_line_never_a_value() {
    let d = data(&[("password", "hunter2-secret")]);
    let cases = [
        ("missing", "{{ data.nope }}", "not there"),
        ("syntax", "line one\n{{ data.password ", "does not parse"),
        ("filter", "{{ data.password | shout }}", "unknown filter"),
        // No loader, and not even the syntax: a template reads no file.
        ("file", "{% include 'etc/passwd' %}", "does not parse"),
        ("number", "{{ data.password | int + 1 }}", ""),
    ];
    for (key, source, words) in cases {
        let err = render(&templates(&[(key, source)]), &d, Merge::Replace).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("spec.template.data[{key:?}]")),
            "{text}"
        );
        assert!(text.contains(words), "{key}: {text}");
        assert!(!text.contains("hunter2"), "a value leaked: {text}");
    }
    let err = render(&templates(&[("syntax", "a\nb\n{{ x ")]), &d, Merge::Replace).unwrap_err();
    assert!(err.to_string().contains("line 3"), "{err}");
}

#[test]
fn work_and_output_are_bounded() {
    let d = data(&[("x", "y")]);
    let spin = templates(&[(
        "spin",
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    )]);
    let err = render(&spin, &d, Merge::Replace).unwrap_err();
    assert!(err.to_string().contains("too much work"), "{err}");
    let big = templates(&[("big", "{{ 'x' * 2000000 }}")]);
    let err = render(&big, &d, Merge::Replace).unwrap_err();
    assert!(err.to_string().contains("more than"), "{err}");
}

#[test]
fn a_key_that_is_not_text_is_left_out_of_the_template() {
    let mut d = data(&[("user", "app")]);
    d.insert("cert".into(), SecretValue::new(vec![0xff, 0xfe]));
    let ok = render(&templates(&[("u", "{{ data.user }}")]), &d, Merge::Replace).unwrap();
    assert_eq!(ok["u"].expose_str(), Some("app"));
    let err = render(&templates(&[("c", "{{ data.cert }}")]), &d, Merge::Replace).unwrap_err();
    assert!(err.to_string().contains("not there"), "{err}");
}
