//! The operator's limits on what a store may reach: where a namespaced Store may connect and which audiences a
//! ServiceAccount token may be requested for. A namespaced Store is written by a namespace admin, who must not be
//! able to make the controller a client of hosts the operator did not allow (internal services, the controller's
//! own Docker socket) or to mint tokens that other services would accept. ClusterStores, written by platform
//! admins, are not limited by host; every store's URLs are checked for shape.

use crate::dialects::kit::endpoint::{self, Destination};

use crate::controller::stores::resolve::Refusal;
use crate::controller::stores::token_request::DEFAULT_AUDIENCE;

/// Set by `--namespaced-store-hosts` and `--token-audiences`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreLimits {
    /// Host patterns a namespaced Store may reach besides its dialect's public hosts (see
    /// [`endpoint::host_matches`]).
    pub namespaced_store_hosts: Vec<String>,
    /// The audiences a store's `serviceAccountRef` may ask a token for.
    pub token_audiences: Vec<String>,
}

impl Default for StoreLimits {
    /// Public cloud hosts only, and Entra ID's audience only.
    fn default() -> Self {
        StoreLimits {
            namespaced_store_hosts: Vec::new(),
            token_audiences: vec![DEFAULT_AUDIENCE.to_owned()],
        }
    }
}

/// Who wrote the store, as far as the limits go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Author {
    /// A namespace admin (a `Store`).
    NamespaceAdmin,
    /// A platform admin (a `ClusterStore`), or the operator (an inline target, allowed only with
    /// `--allow-inline-targets`, for single-tenant clusters).
    Platform,
}

impl StoreLimits {
    /// Whether a store written by `author` may send requests to every one of `destinations` (URLs, as the dialect
    /// lists them). `public_hosts`: the dialect's vendor hosts, always allowed. A malformed URL is `InvalidSpec`
    /// whoever wrote it; a host outside the limits is `EndpointNotAllowed`.
    /// `from_answers`: the dialect also follows a URL a store's answer names (a catalog), which a namespaced Store
    /// may not: its author must name the endpoint, so that the check sees it.
    pub fn admit(
        &self,
        author: Author,
        destinations: &[String],
        public_hosts: &[&str],
        from_answers: bool,
    ) -> Result<(), Refusal> {
        if author == Author::NamespaceAdmin && from_answers {
            return Err(Refusal::EndpointNotAllowed(
                "a namespaced Store must name its endpoint: one taken from the store's own answers (the Keystone \
                 catalog) could be any host, outside the operator's --namespaced-store-hosts; set spec.endpoint"
                    .to_owned(),
            ));
        }
        for text in destinations {
            let destination = endpoint::destination(text, "the store's endpoint or sign-in URL")
                .map_err(Refusal::InvalidSpec)?;
            if author == Author::Platform {
                continue;
            }
            match destination {
                Destination::UnixSocket => {
                    return Err(Refusal::EndpointNotAllowed(
                        "a namespaced Store may not use a unix socket (such as the default Docker socket): only a \
                         ClusterStore may; ask the platform team for one, or name a tcp:// or https:// endpoint"
                            .to_owned(),
                    ));
                }
                Destination::Network { host, .. } => {
                    let allowed = public_hosts
                        .iter()
                        .copied()
                        .chain(self.namespaced_store_hosts.iter().map(String::as_str))
                        .any(|pattern| endpoint::host_matches(pattern, &host));
                    if !allowed {
                        return Err(Refusal::EndpointNotAllowed(format!(
                            "a namespaced Store may not connect to {host}: it is neither a public host of the \
                             dialect nor in the operator's --namespaced-store-hosts; ask the operator to add it, \
                             or use a ClusterStore"
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// Refuses an audience the operator did not list, before any TokenRequest.
    pub fn admit_audience(&self, audience: &str) -> Result<(), Refusal> {
        if self.token_audiences.iter().any(|a| a == audience) {
            return Ok(());
        }
        Err(Refusal::StoreNotAllowed(format!(
            "serviceAccountRef.audience {audience:?} is not one of the audiences this controller requests tokens \
             for ({}); the operator sets them with --token-audiences",
            self.token_audiences.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AKV: &[&str] = &["*.vault.azure.net", "login.microsoftonline.com"];

    fn urls(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn reason(result: Result<(), Refusal>) -> &'static str {
        match result {
            Ok(()) => "Ok",
            Err(Refusal::EndpointNotAllowed(_)) => "EndpointNotAllowed",
            Err(Refusal::InvalidSpec(_)) => "InvalidSpec",
            Err(_) => "other",
        }
    }

    #[test]
    fn a_namespaced_store_reaches_public_hosts_and_the_operators_list_only() {
        let limits = StoreLimits {
            namespaced_store_hosts: urls(&["barbican.internal", "*.stores.example"]),
            ..StoreLimits::default()
        };
        let ns = Author::NamespaceAdmin;
        let cases: &[(&[&str], &str)] = &[
            (
                &[
                    "https://kv.vault.azure.net",
                    "https://login.microsoftonline.com",
                ],
                "Ok",
            ),
            (
                &[
                    "https://kv.vault.azure.net",
                    "https://catcher.team-b.svc:8443",
                ],
                "EndpointNotAllowed",
            ),
            (&["http://barbican.internal:9311/v1"], "Ok"),
            (&["https://a.stores.example"], "Ok"),
            (&["http://10.0.3.7:8080"], "EndpointNotAllowed"),
            (&["http://127.0.0.1:8080"], "EndpointNotAllowed"),
            (&["unix:///var/run/docker.sock"], "EndpointNotAllowed"),
            (&["http://barbican.internal:9311/v1#"], "InvalidSpec"),
            (&["unix://\u{0}socket"], "InvalidSpec"),
        ];
        for (destinations, want) in cases {
            assert_eq!(
                reason(limits.admit(ns, &urls(destinations), AKV, false)),
                *want,
                "{destinations:?}"
            );
        }
    }

    #[test]
    fn a_namespaced_store_names_its_endpoint_rather_than_follow_a_catalog() {
        let limits = StoreLimits {
            namespaced_store_hosts: urls(&["keystone.internal"]),
            ..StoreLimits::default()
        };
        let keystone = urls(&["https://keystone.internal:5000/v3"]);
        assert_eq!(
            reason(limits.admit(Author::NamespaceAdmin, &keystone, &[], true)),
            "EndpointNotAllowed"
        );
        assert_eq!(
            reason(limits.admit(Author::NamespaceAdmin, &keystone, &[], false)),
            "Ok"
        );
        assert_eq!(
            reason(limits.admit(Author::Platform, &keystone, &[], true)),
            "Ok"
        );
    }

    #[test]
    fn a_cluster_store_is_checked_for_shape_only() {
        let limits = StoreLimits::default();
        let platform = Author::Platform;
        assert_eq!(
            reason(limits.admit(platform, &urls(&["unix:///var/run/docker.sock"]), &[], true)),
            "Ok"
        );
        assert_eq!(
            reason(limits.admit(platform, &urls(&["http://10.0.3.7:8080"]), &[], false)),
            "Ok"
        );
        assert_eq!(
            reason(limits.admit(platform, &urls(&["http://user@10.0.3.7:8080"]), &[], false)),
            "InvalidSpec"
        );
    }

    #[test]
    fn audiences_come_from_the_operator() {
        let limits = StoreLimits::default();
        assert!(limits.admit_audience(DEFAULT_AUDIENCE).is_ok());
        for other in ["vault", "istio-ca", "sts.amazonaws.com", ""] {
            assert!(
                matches!(
                    limits.admit_audience(other),
                    Err(Refusal::StoreNotAllowed(_))
                ),
                "{other:?}"
            );
        }
        let listed = StoreLimits {
            token_audiences: urls(&["vault"]),
            ..StoreLimits::default()
        };
        assert!(listed.admit_audience("vault").is_ok());
        assert!(listed.admit_audience(DEFAULT_AUDIENCE).is_err());
    }
}
