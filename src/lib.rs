//! SecretSync: keeps the value of a Kubernetes Secret in step with an external secret store.
#![forbid(unsafe_code)]

pub mod api;
pub mod controller;
pub mod convert;
pub mod dialects;
pub mod http;
pub mod metrics;
pub mod plan;
pub mod telemetry;
pub mod value;
