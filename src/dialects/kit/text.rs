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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_on_characters_not_bytes() {
        assert_eq!(excerpt(" short \n", 10), "short");
        assert_eq!(excerpt("ééééé", 3), "ééé…");
        let long = "x".repeat(1000);
        assert_eq!(store_message(&long).chars().count(), MAX_STORE_MESSAGE + 1);
    }
}
