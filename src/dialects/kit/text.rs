//! What of a store's answer may be shown to users (conditions, Events, logs, metrics): its HTTP status, an error
//! code the dialect knows from a closed list, and SecretSync's own words. Never a body, a header value or a parser
//! message that quotes content: a store's author may point it at an internal service to read its answers back.

/// `code` when it is one of `known` (the dialect's documented codes), as the dialect's own `&'static str`: what is
/// shown is then never the store's bytes, only a word SecretSync already had.
pub fn known_code(code: &str, known: &[&'static str]) -> Option<&'static str> {
    known.iter().copied().find(|k| *k == code)
}

/// The first string at one of `pointers` (JSON pointers into an error body) that is one of `known` (see
/// [`known_code`]); nothing else of the body is read.
pub fn known_at(body: &[u8], pointers: &[&str], known: &[&'static str]) -> Option<&'static str> {
    let doc: serde_json::Value = serde_json::from_slice(body).ok()?;
    let texts = pointers.iter().filter_map(|p| doc.pointer(p)?.as_str());
    texts.into_iter().find_map(|t| known_code(t, known))
}

/// `err` with what SecretSync was doing in front of its message (`"Tencent SSM GetSecretValue: …"`).
pub fn during(doing: &str, err: crate::dialects::DialectError) -> crate::dialects::DialectError {
    crate::dialects::DialectError {
        message: format!("{doing}: {}", err.message),
        ..err
    }
}

/// HTTP's own name for a status (`Not Found`), or `""` for one without a standard name.
pub fn status_words(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

/// Where a JSON answer could not be read, and nothing else: serde's own message can quote the answer (`invalid
/// type: string "..."`), and the answer may be an internal service's that a store's author wanted to read.
pub fn json_position(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Io => "cut short",
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Data => "an unexpected shape",
        serde_json::error::Category::Eof => "cut short",
    };
    format!("{what} at line {}, column {}", e.line(), e.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn during_names_what_was_done_and_keeps_the_rest() {
        let e = crate::dialects::DialectError::conflict("NameTaken", "HTTP 409")
            .with_retry_after(Some(std::time::Duration::from_secs(2)));
        let e = during("creating a secret", e);
        assert_eq!(e.message, "creating a secret: HTTP 409");
        assert_eq!(
            (e.reason, e.retry_after.map(|d| d.as_secs())),
            ("NameTaken", Some(2))
        );
    }

    #[test]
    fn a_json_error_never_quotes_the_answer() {
        let canary = r#"{"properties": "PRIVATE-CONFIG db_password=hunter2"}"#;
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Props {
            properties: std::collections::BTreeMap<String, String>,
        }
        let e = serde_json::from_str::<Props>(canary).expect_err("wrong shape");
        assert!(e.to_string().contains("hunter2"), "serde quotes it: {e}");
        let shown = json_position(&e);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.starts_with("an unexpected shape at line 1"),
            "{shown}"
        );
    }

    #[test]
    fn a_known_code_is_read_at_the_first_pointer_that_has_one() {
        const KNOWN: &[&str] = &["Forbidden", "Conflict"];
        let body = br#"{"title": "CANARY", "error": {"title": "Conflict"}}"#;
        assert_eq!(
            known_at(body, &["/title", "/error/title"], KNOWN),
            Some("Conflict")
        );
        assert_eq!(known_at(body, &["/title"], KNOWN), None);
        assert_eq!(known_at(b"<html>", &["/title"], KNOWN), None);
    }

    #[test]
    fn only_known_codes_are_shown_and_as_our_own_words() {
        const KNOWN: &[&str] = &["Forbidden", "Conflict"];
        assert_eq!(known_code("Conflict", KNOWN), Some("Conflict"));
        assert_eq!(known_code("conflict", KNOWN), None);
        assert_eq!(known_code("Conflict: CANARY", KNOWN), None);
        assert_eq!(status_words(404), "Not Found");
        assert_eq!(status_words(599), "");
    }
}
