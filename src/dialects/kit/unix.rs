//! HTTP clients that reach a store over a unix socket on the controller's machine (Docker's
//! `/var/run/docker.sock`), kept by socket path. They are the kit's client in every other respect (deadline, no
//! redirects), so the kit's transport sends to them, caps their answers and retries as for any store; a URL's host
//! then names only the request's `Host` header.

use std::time::Duration;

use super::bounded::Lru;
use super::http::http_client;
use crate::dialects::{DialectError, Shared};

/// Sockets whose clients are kept at most; past it the least recently used goes.
const MAX_CACHED_CLIENTS: usize = 64;

pub struct SocketClients {
    deadline: Duration,
    clients: Lru<String, reqwest::Client>,
}

impl SocketClients {
    pub fn new(shared: &Shared) -> Self {
        SocketClients {
            deadline: shared.deadline,
            clients: Lru::new(MAX_CACHED_CLIENTS),
        }
    }

    /// The client whose every connection goes to the socket at `path`.
    pub fn client(&self, path: &str) -> Result<reqwest::Client, DialectError> {
        if let Some(c) = self.clients.get(path) {
            return Ok(c);
        }
        let client = http_client(self.deadline)
            .unix_socket(path)
            .build()
            .map_err(|e| {
                DialectError::permanent("InvalidEndpoint", "cannot build a client for the socket")
                    .with_source(e)
            })?;
        self.clients.put(path.to_owned(), client.clone());
        Ok(client)
    }
}
