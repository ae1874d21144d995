//! What every dialect shares, owned once: the HTTP transport (pacing, retries with explicit idempotency,
//! deadlines, the answer cap, no redirects, metrics), the authentication seam, TLS clients, reading credentials,
//! and what of a store's answer may be shown. A dialect keeps only its wire types, its error decoder and its auth
//! flavour.

pub mod bounded;
pub mod code;
pub mod credentials;
pub mod endpoint;
pub mod http;
pub mod metadata;
pub mod names;
pub mod oauth;
pub mod ownership;
pub mod poll;
pub mod retry;
pub mod session;
pub mod signin;
pub mod store_id;
pub mod text;
pub mod tls;
pub mod token_cache;
pub mod unix;

pub use http::{
    Auth, Decoder, Endpoint, Exchange, Ignored, NoAuth, Pace, Reply, StaticBearer, Transport,
    Verdict, decode_by_status, decode_with, http_client, read_body,
};
pub use retry::{Applied, Failure, Idempotency, RetryPolicy};
