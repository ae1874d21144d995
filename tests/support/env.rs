//! The test bed's variables (`.testbed/env`).

/// A test-bed variable; panics with what to do when it is missing.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run `make testbed` first, then `set -a; source .testbed/env; set +a`"
        )
    })
}
