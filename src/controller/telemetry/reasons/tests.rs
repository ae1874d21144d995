use std::collections::BTreeSet;
use std::path::Path;

use super::*;

/// The code of `src/` without its test modules, file by file.
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<(String, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            // The table itself names every reason.
            if path.is_dir() && name == "reasons" {
                continue;
            }
            if path.is_dir() {
                walk(&path, out);
            } else if name.ends_with(".rs")
                && !name.ends_with("tests.rs")
                && name != "fixtures.rs"
                && name != "reasons.rs"
                // The reference generator fills every metric's labels with placeholders.
                && name != "docs.rs"
            {
                let text = std::fs::read_to_string(&path).expect("source file");
                let code = match text.find("#[cfg(test)]\nmod tests") {
                    Some(at) => text[..at].to_owned(),
                    None => text,
                };
                out.push((path.display().to_string(), code));
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    out
}

/// The string literal that opens `rest` after blanks, if it is one word (a reason).
fn reason_at(rest: &str) -> Option<&str> {
    let rest = rest.trim_start().strip_prefix('"')?;
    let word = &rest[..rest.find('"')?];
    (!word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric())).then_some(word)
}

/// Reasons the code emits: the literal after a call that takes a reason, after `reason:` in a report or
/// Event, and the arms of `fn reason`.
fn emitted() -> BTreeSet<(String, String)> {
    const CALLS: &[&str] = &[
        "Report::failed(",
        "DialectError::retry(",
        "DialectError::conflict(",
        "DialectError::credentials(",
        "DialectError::permanent(",
        // DialectError's own constructors, inside its impl.
        "Self::retry(",
        "Self::conflict(",
        "Self::credentials(",
        "Self::permanent(",
        "ErrorClass::Retry,",
        "ErrorClass::Conflict,",
        "ErrorClass::Credentials,",
        "ErrorClass::Permanent,",
        "reason: ",
        "Note::new(EventType::Normal,",
        "Note::new(EventType::Warning,",
        "synced(&remote, ",
        "EventType::Normal,",
        "EventType::Warning,",
    ];
    let mut found = BTreeSet::new();
    for (file, code) in sources() {
        for call in CALLS {
            for (at, _) in code.match_indices(call) {
                if let Some(reason) = reason_at(&code[at + call.len()..]) {
                    found.insert((reason.to_owned(), file.clone()));
                }
            }
        }
        for (at, _) in code
            .match_indices("fn reason(")
            .chain(code.match_indices("fn store_reason("))
        {
            let body = &code[at..];
            let body = &body[..body.find("\n    }\n").unwrap_or(body.len())];
            for (arm, _) in body.match_indices("=> ") {
                if let Some(reason) = reason_at(&body[arm + 3..]) {
                    found.insert((reason.to_owned(), file.clone()));
                }
            }
        }
    }
    found
}

#[test]
fn every_reason_the_code_emits_is_documented() {
    let documented: BTreeSet<_> = documented().collect();
    let emitted = emitted();
    // The scan finds what it should: a reason of each way of emitting one.
    for known in [
        "SourceNotFound",
        "StoreNotFound",
        "BackendUnreachable",
        "KmsKeyUnusable",
    ] {
        assert!(
            emitted.iter().any(|(r, _)| r == known),
            "the scan no longer finds {known}"
        );
    }
    let missing: Vec<_> = emitted
        .iter()
        .filter(|(reason, _)| !documented.contains(reason.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "reasons emitted but not in controller::reasons (add a row): {missing:?}"
    );
}

#[test]
fn every_documented_reason_is_in_the_code() {
    let code: String = sources().into_iter().map(|(_, code)| code).collect();
    let stale: Vec<_> = documented()
        .filter(|reason| !code.contains(&format!("\"{reason}\"")))
        .collect();
    assert!(
        stale.is_empty(),
        "documented reasons no code emits: {stale:?}"
    );
}

#[test]
fn a_reason_is_documented_once_per_table() {
    for table in [CONTROLLER, DIALECT, EVENTS] {
        let mut seen = BTreeSet::new();
        for reason in table.iter().flat_map(|row| row.reasons) {
            assert!(seen.insert(reason), "{reason} twice");
        }
    }
}
