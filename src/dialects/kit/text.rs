//! Store text shown to users (conditions, Events) is bounded: a store decides how long its messages are.

/// `text` trimmed and cut to `max` characters, with `…` when cut.
pub fn excerpt(text: &str, max: usize) -> String {
    let text = text.trim();
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

/// The most of a store's own error message a dialect puts into an error.
pub const MAX_STORE_MESSAGE: usize = 300;

/// A store's error message as shown to users: [`excerpt`] of [`MAX_STORE_MESSAGE`] characters.
pub fn store_message(text: &str) -> String {
    excerpt(text, MAX_STORE_MESSAGE)
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
    fn cuts_on_characters_not_bytes() {
        assert_eq!(excerpt(" short \n", 10), "short");
        assert_eq!(excerpt("ééééé", 3), "ééé…");
        let long = "x".repeat(1000);
        assert_eq!(store_message(&long).chars().count(), MAX_STORE_MESSAGE + 1);
    }
}
