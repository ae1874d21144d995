//! The connection the calls of one reconcile share: the dialect's transport, the client (with the store's TLS
//! settings), the store's root, its rate limit and its credentials.

use reqwest::Method;

use super::{Auth, Endpoint, Exchange, Reply, Transport};
use crate::api::RateLimit;
use crate::dialects::DialectError;

pub struct Session<'a> {
    pub transport: &'a Transport,
    pub client: reqwest::Client,
    /// The store's root without a trailing slash: where every URL starts, and the key of its rate limit.
    pub base: String,
    /// What every URL ends with (a query such as `?api-version=…`), or nothing.
    pub suffix: String,
    pub rate: Option<RateLimit>,
    pub auth: Box<dyn Auth + 'a>,
}

impl Session<'_> {
    /// `{base}{path}{suffix}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}{}", self.base, self.suffix)
    }

    /// Sends one exchange through the kit's transport: paced per store, authorised per attempt, retried where it
    /// may be repeated. Success and absence come back as a reply; the rest as the error the decoder made of it.
    pub async fn send(&self, exchange: Exchange<'_>) -> Result<Reply, DialectError> {
        let endpoint = Endpoint::store(&self.client, &self.base, self.rate, self.auth.as_ref());
        self.transport.send(&endpoint, &exchange).await
    }

    /// A `GET` of `url`; `None` when the store has nothing there.
    pub async fn get(
        &self,
        operation: &'static str,
        url: &str,
    ) -> Result<Option<Reply>, DialectError> {
        let reply = (self.send(Exchange::new(operation, &Method::GET, url))).await?;
        Ok((!reply.absent).then_some(reply))
    }
}
