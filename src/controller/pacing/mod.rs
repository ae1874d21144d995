//! When reconciles run: fair shares of the workers, backoff after errors, and the spread of first store reads
//! after a start.

pub mod backoff;
pub mod fair_share;
pub mod startup_spread;
