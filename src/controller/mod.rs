//! Watches, reconcile, status, events, finalizer, leader election.
