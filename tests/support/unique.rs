//! Names no other test run uses, so that runs sharing a test bed or a store never meet.
#![allow(dead_code)]

/// `prefix`, a dash and eight random hex digits.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

/// `prefix` and eight random hex digits, for names whose prefix brings its own separator.
pub fn unique_joined(prefix: &str) -> String {
    format!("{prefix}{:08x}", rand::random::<u32>())
}
