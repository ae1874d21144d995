//! Every reason a `Ready` condition can carry, with what it means and what to do: the one list that the book's
//! reference (`secretsync docs`) prints and that a test holds against the reasons the code emits.

/// One row: reasons that share a meaning, their class, the meaning and what to do. Text is Markdown; links are
/// relative to the book's `reference/` directory.
#[derive(Clone, Copy, Debug)]
pub struct ReasonDoc {
    pub reasons: &'static [&'static str],
    /// For the controller's reasons the phase they go with; for the dialects' the error class, which decides the
    /// retry.
    pub class: &'static str,
    pub meaning: &'static str,
    pub action: &'static str,
}

pub(super) const fn row(
    reasons: &'static [&'static str],
    class: &'static str,
    meaning: &'static str,
    action: &'static str,
) -> ReasonDoc {
    ReasonDoc {
        reasons,
        class,
        meaning,
        action,
    }
}

mod controller;
mod dialect;

pub use controller::{CONTROLLER, EVENTS};
pub use dialect::DIALECT;

/// Every documented reason.
pub fn documented() -> impl Iterator<Item = &'static str> {
    CONTROLLER
        .iter()
        .chain(DIALECT)
        .chain(EVENTS)
        .flat_map(|row| row.reasons.iter().copied())
}

#[cfg(test)]
mod tests;
