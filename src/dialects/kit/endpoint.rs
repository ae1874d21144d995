//! Reading a store's endpoint URL, with one wording for what is missing or malformed.

use crate::api::Target;
use crate::dialects::DialectError;

/// The store's endpoint as a URL. `missing` says what the dialect needs there (shown when no endpoint is set).
pub fn required(target: &Target, missing: &str) -> Result<url::Url, DialectError> {
    let endpoint = target
        .endpoint
        .as_deref()
        .ok_or_else(|| DialectError::permanent("InvalidSpec", missing))?;
    parse(endpoint, "InvalidSpec")
}

/// `endpoint` as a URL; a malformed one is a permanent error with `reason`.
pub fn parse(endpoint: &str, reason: &'static str) -> Result<url::Url, DialectError> {
    url::Url::parse(endpoint).map_err(|e| {
        DialectError::permanent(reason, format!("the store's endpoint is not a URL: {e}"))
    })
}

/// An API root from a URL given with or without its version `suffix` (`/v1`, `/v3`), without the suffix and a
/// trailing slash; the error says what is wrong with the URL.
pub fn versioned_root(raw: &str, suffix: &str) -> Result<String, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.query().is_some() {
        return Err("must be an http:// or https:// URL without a query".to_owned());
    }
    let base = url.as_str().trim_end_matches('/');
    Ok(base.strip_suffix(suffix).unwrap_or(base).to_owned())
}

/// An endpoint URL a secret or a credential is sent to, checked: https (plain http on loopback only), a host,
/// and nothing after it. `what` names the setting in messages, `example` shows a good value.
pub fn secure_root(text: &str, what: &str, example: &str) -> Result<url::Url, DialectError> {
    let url = parse(text, "InvalidEndpoint")?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    if !(url.scheme() == "https" || (url.scheme() == "http" && loopback)) {
        return Err(DialectError::permanent(
            "InsecureEndpoint",
            format!("{what} must be https:// (plain http:// only on a loopback address)"),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) || url.path() != "/" || url.query().is_some() {
        return Err(DialectError::permanent(
            "InvalidEndpoint",
            format!("{what} must be a scheme and host, such as {example}"),
        ));
    }
    Ok(url)
}

/// Where a connection sends requests, as far as who may send them there is concerned: a host (and port) reached
/// over the network, or a unix socket on the controller's machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// `host` in lower case as the URL parser prints it (IPv6 in brackets).
    Network {
        scheme: String,
        host: String,
        port: Option<u16>,
        path: String,
    },
    UnixSocket,
}

/// Reads an endpoint (or sign-in URL) that a store names: scheme, host, port and path prefix, and nothing that
/// would let its author pick more than that. Userinfo, a query and a fragment (even empty: `http://h/p#` makes
/// every path the dialect appends a fragment), NUL and control characters are refused; `what` names the field.
pub fn destination(text: &str, what: &str) -> Result<Destination, String> {
    if text.chars().any(|c| c.is_control()) {
        return Err(format!(
            "{what} contains a control character (such as NUL); write the URL without it"
        ));
    }
    if text.contains('@') {
        return Err(format!(
            "{what} contains '@': user information in a URL is not allowed (credentials belong in the credentials Secret)"
        ));
    }
    let url = url::Url::parse(text).map_err(|e| format!("{what} is not a URL: {e}"))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{what} contains '?' or '#': an endpoint is a scheme, a host, a port and a path prefix, nothing more"
        ));
    }
    if url.scheme() == "unix" {
        return Ok(Destination::UnixSocket);
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("{what} names no host"))?;
    Ok(Destination::Network {
        scheme: url.scheme().to_owned(),
        host: host.trim_end_matches('.').to_ascii_lowercase(),
        port: url.port(),
        path: url.path().to_owned(),
    })
}

/// Whether `host` matches `pattern`: the host itself, `*.suffix` (any host below `suffix`, not `suffix` itself),
/// or `*` (every host).
pub fn host_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim().trim_end_matches('.').to_ascii_lowercase();
    if pattern == "*" {
        return true;
    }
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .strip_suffix(suffix)
            .is_some_and(|label| label.len() > 1 && label.ends_with('.')),
        None => pattern == host,
    }
}

/// Whether an operator's host pattern can ever match: a host name or IP address (IPv6 in brackets), `*.suffix` or
/// `*`; no scheme, port, path or user information (a pattern with them would silently match nothing).
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    let host = pattern.strip_prefix("*.").unwrap_or(pattern);
    let bracketed = host.starts_with('[') && host.ends_with(']');
    let bad = host.is_empty()
        || (host.contains('*') && pattern != "*")
        || host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "/@?#".contains(c))
        || (host.contains(':') && !bracketed);
    if bad {
        return Err(format!(
            "host pattern {pattern:?} would match no host: write a host (barbican.internal, 10.0.3.7, [fd00::7]), \
             *.domain or *, without a scheme, port or path"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_patterns_that_could_never_match_are_refused() {
        for good in [
            "barbican.internal",
            "10.0.3.7",
            "*.vault.example",
            "*",
            "[fd00::7]",
        ] {
            assert_eq!(check_pattern(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "barbican.internal:9311",
            "https://barbican.internal",
            "10.0.0.0/8",
            "fd00::7",
            "a.*.example",
            "*.",
            "user@host",
        ] {
            assert!(check_pattern(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_endpoint_is_a_scheme_a_host_a_port_and_a_path_prefix() {
        assert_eq!(
            destination("https://Vault.Example:8200/v1/", "endpoint"),
            Ok(Destination::Network {
                scheme: "https".into(),
                host: "vault.example".into(),
                port: Some(8200),
                path: "/v1/".into()
            })
        );
        assert_eq!(
            destination("unix:///var/run/docker.sock", "endpoint"),
            Ok(Destination::UnixSocket)
        );
        assert!(matches!(
            destination("tcp://10.0.0.7:2376", "endpoint"),
            Ok(Destination::Network {
                port: Some(2376),
                ..
            })
        ));
    }

    #[test]
    fn what_would_let_a_store_author_pick_more_is_refused() {
        for hostile in [
            "http://h:8080/admin/config#",
            "http://h:8080/p#x",
            "http://h:8080/p?",
            "http://h:8080/p?x=1",
            "http://user@h:8080",
            "http://user:pw@h:8080",
            "http://@h:8080",
            "unix://\u{0}canary",
            "unix:///run/x\u{0}",
            "http://h:8080/\u{7f}",
            "http://h\r\nHost: evil:8080",
            "not a url",
            "http://",
        ] {
            assert!(
                destination(hostile, "endpoint").is_err(),
                "accepted {hostile:?}"
            );
        }
    }

    #[test]
    fn host_patterns() {
        assert!(host_matches("*.vault.azure.net", "kv1.vault.azure.net"));
        assert!(host_matches("*.vault.azure.net", "a.b.vault.azure.net"));
        assert!(!host_matches("*.vault.azure.net", "vault.azure.net"));
        assert!(!host_matches("*.vault.azure.net", "evilvault.azure.net"));
        assert!(!host_matches(
            "*.vault.azure.net",
            "vault.azure.net.evil.io"
        ));
        assert!(host_matches(
            "Login.MicrosoftOnline.com.",
            "login.microsoftonline.com"
        ));
        assert!(!host_matches(
            "login.microsoftonline.com",
            "login.microsoftonline.com.evil"
        ));
        assert!(host_matches("127.0.0.1", "127.0.0.1"));
        assert!(!host_matches("127.0.0.1", "127.0.0.10"));
        assert!(host_matches("*", "anything.example"));
    }
}
