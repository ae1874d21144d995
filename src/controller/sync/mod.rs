//! One SecretSync's way from its Secret to its store: the reconcile and the steps it is made of.

pub mod cleanup_deadline;
pub mod finalizers;
pub mod observation;
pub mod reconcile;
pub mod source;
pub mod status;
