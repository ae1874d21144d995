//! Stores and ClusterStores: which one a SecretSync may use (resolve), where it may connect (limits), its
//! credentials and ServiceAccount tokens, its periodic check, and its protection while cleanups need it.

pub mod check;
pub mod credentials_cache;
pub mod limits;
pub mod protection;
pub mod resolve;
pub mod token_request;
