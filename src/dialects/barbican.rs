//! OpenStack Barbican (Key Manager v1).
//!
//! Not written yet: every call reports `NotImplemented`.

use async_trait::async_trait;

use super::{Dialect, DialectError, Outcome, Request, Shared};
use crate::api::{DialectKind, Target};
use crate::plan::{Capabilities, Observed, Plan, Support};
use crate::value::SecretValue;

pub struct Barbican {
    #[allow(dead_code)]
    shared: Shared,
}

impl Barbican {
    pub fn new(shared: Shared) -> Self {
        Barbican { shared }
    }
}

fn not_implemented() -> DialectError {
    DialectError::permanent(
        "NotImplemented",
        "the Barbican dialect is not implemented yet",
    )
}

#[async_trait]
impl Dialect for Barbican {
    fn kind(&self) -> DialectKind {
        DialectKind::Barbican
    }

    fn capabilities(&self, _target: &Target) -> Capabilities {
        Capabilities {
            content_type: Support::Unsupported,
            description: Support::Unsupported,
            labels: Support::Unsupported,
        }
    }

    fn check(&self, _req: &Request<'_>, _value: &SecretValue) -> Result<(), DialectError> {
        Err(not_implemented())
    }

    async fn observe(&self, _req: &Request<'_>) -> Result<Observed, DialectError> {
        Err(not_implemented())
    }

    async fn apply(
        &self,
        _req: &Request<'_>,
        _plan: &Plan,
        _observed: &Observed,
        _value: &SecretValue,
    ) -> Result<Outcome, DialectError> {
        Err(not_implemented())
    }

    async fn delete(&self, _req: &Request<'_>, _observed: &Observed) -> Result<(), DialectError> {
        Err(not_implemented())
    }
}
