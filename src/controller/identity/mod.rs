//! Who this controller is in the markers it writes: the cluster's id and the key of value digests.

pub mod cluster_id;
pub mod digest_key;
