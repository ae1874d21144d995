//! What a dialect's `observe` read that only its own `apply` (or `delete`) needs again.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// A dialect's own record of what it observed (versions it wrote, same-named secrets it listed), handed back
/// to it with the plan so that it never reads the store twice in one reconcile. The planner and the controller
/// cannot look inside: each dialect stores and reads a private type of its own, so one dialect never reads
/// another's.
///
/// Comparisons ignore it: two observations that the planner cannot tell apart are equal.
#[derive(Clone, Default)]
pub struct Detail(Option<Arc<dyn Any + Send + Sync>>);

impl Detail {
    pub fn new<T: Any + Send + Sync>(value: T) -> Self {
        Detail(Some(Arc::new(value)))
    }

    /// The record, when one of type `T` was stored.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.as_deref()?.downcast_ref()
    }
}

impl PartialEq for Detail {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Detail {}

impl fmt::Debug for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Records may hold store identifiers and metadata, never values; still, they are the dialect's business.
        f.write_str(if self.0.is_some() {
            "Detail(..)"
        } else {
            "Detail(none)"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Versions(Vec<String>);
    struct Other;

    #[test]
    fn a_record_is_read_back_only_as_its_own_type() {
        let detail = Detail::new(Versions(vec!["v1".into()]));
        assert_eq!(detail.get::<Versions>(), Some(&Versions(vec!["v1".into()])));
        assert!(detail.get::<Other>().is_none());
        assert!(Detail::default().get::<Versions>().is_none());
        assert_eq!(detail, Detail::default());
        assert_eq!(format!("{detail:?}"), "Detail(..)");
    }
}
