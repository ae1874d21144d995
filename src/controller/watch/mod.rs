//! What the controller watches and holds: the caches reconciles read, what is kept of each watched object, and
//! which changes of related objects wake which SecretSyncs.

pub mod caches;
pub mod slim;
pub mod store_checks;
pub mod triggers;
