//! The connection the calls of one reconcile share: the dialect's transport, the client (with the store's TLS
//! settings), the store's root, its rate limit and its credentials.

use std::num::NonZeroU32;

use reqwest::Method;

use super::{Auth, Endpoint, Exchange, Pace, Reply, Transport};
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
        self.sent(self.transport.send(&endpoint, &exchange).await)
    }

    /// [`Session::send`] for a store that publishes a limit per kind of request: paced at `per_second` (with
    /// `burst`) per action (the exchange's operation) and root, within the store's own limit.
    pub async fn send_per_action(
        &self,
        exchange: Exchange<'_>,
        per_second: NonZeroU32,
        burst: NonZeroU32,
    ) -> Result<Reply, DialectError> {
        let key = format!("{}#{}", self.base, exchange.operation);
        let endpoint = Endpoint {
            client: &self.client,
            pace: Pace::PerAction {
                key: &key,
                per_second,
                burst,
                store_key: &self.base,
                rate: self.rate,
            },
            auth: self.auth.as_ref(),
        };
        self.sent(self.transport.send(&endpoint, &exchange).await)
    }

    /// Lets the credentials see a failure (a stale token is forgotten).
    fn sent(&self, result: Result<Reply, DialectError>) -> Result<Reply, DialectError> {
        if let Err(e) = &result {
            self.auth.failed(e);
        }
        result
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

/// How a listing read by [`Session::pages`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Paged {
    /// The last page was read.
    Complete,
    /// The store has nothing there (404).
    Absent,
    /// More pages were announced than may be read.
    Cut,
}

impl Session<'_> {
    /// Reads a listing from `url` page by page, at most `max_pages`: `page` takes each answer and gives the URL of
    /// the next page, if any. Only URLs under the store's root are followed: the credentials never travel
    /// elsewhere, whatever a page links to.
    pub async fn pages(
        &self,
        operation: &'static str,
        mut url: String,
        max_pages: usize,
        mut page: impl FnMut(&Reply) -> Result<Option<String>, DialectError>,
    ) -> Result<Paged, DialectError> {
        for _ in 0..max_pages {
            let Some(reply) = self.get(operation, &url).await? else {
                return Ok(Paged::Absent);
            };
            match page(&reply)? {
                Some(next) if next.starts_with(&format!("{}/", self.base)) => url = next,
                _ => return Ok(Paged::Complete),
            }
        }
        Ok(Paged::Cut)
    }
}
