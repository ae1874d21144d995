//! What the controller tells: Events, the condition reasons it documents, the census of SecretSyncs for metrics,
//! and the clock of source changes for push latency.

pub mod census;
pub mod census_task;
pub mod change_clock;
pub mod events;
pub mod reasons;
