//! deploy/'s RBAC against the test bed's audit log: what the controller's ServiceAccount is granted, what it used
//! and what it was denied. Shared by tests/e2e.rs (host processes with the ServiceAccount's token) and
//! tests/node_e2e.rs (pods with their own mounted tokens). Needs the crate's `cluster` module.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;

use serde_json::Value;

use crate::cluster::{SYSTEM_NS, root};

/// The controller's ServiceAccount as the audit log names it.
pub const SA_USER: &str = "system:serviceaccount:secretsync-system:secretsync";

/// (apiGroup, resource[/subresource], verb, namespace-or-empty), as the audit log names requests.
pub type Access = (String, String, String, String);

/// The ServiceAccount's requests in the audit log.
pub struct Audited {
    /// Every kind of request that was not refused by RBAC.
    pub used: BTreeSet<Access>,
    /// How many requests of each kind were not refused.
    pub counts: BTreeMap<Access, usize>,
    /// Every request RBAC refused.
    pub denied: Vec<String>,
    /// For each request, the pod whose bound token made it (`None`: a token not bound to a pod).
    pub pods: Vec<Option<String>>,
}

/// The audit log's length in lines now, to read only what comes after.
pub fn audit_lines(path: &str) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// The ServiceAccount's audited requests after the first `since_line` lines of the log.
pub fn audited(path: &str, since_line: usize) -> Audited {
    let file = std::fs::File::open(path).expect("audit log");
    let mut out = Audited {
        used: BTreeSet::new(),
        counts: BTreeMap::new(),
        denied: Vec::new(),
        pods: Vec::new(),
    };
    for line in std::io::BufReader::new(file).lines().skip(since_line) {
        let Ok(ev) = serde_json::from_str::<Value>(&line.expect("audit log line")) else {
            continue;
        };
        if ev["user"]["username"] != SA_USER {
            continue;
        }
        out.pods.push(
            ev["user"]["extra"]["authentication.kubernetes.io/pod-name"][0]
                .as_str()
                .map(str::to_owned),
        );
        let o = &ev["objectRef"];
        let mut resource = o["resource"].as_str().unwrap_or("").to_owned();
        if let Some(sub) = o["subresource"].as_str() {
            resource = format!("{resource}/{sub}");
        }
        let access = (
            o["apiGroup"].as_str().unwrap_or("").to_owned(),
            resource,
            ev["verb"].as_str().unwrap_or("").to_owned(),
            o["namespace"].as_str().unwrap_or("").to_owned(),
        );
        // A namespace being deleted refuses new objects with 403 too; that is not an RBAC denial.
        let terminating = ev["responseStatus"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("being terminated"));
        if ev["responseStatus"]["code"] == 403 && !terminating {
            out.denied.push(format!("{access:?}"));
        } else {
            *out.counts.entry(access.clone()).or_default() += 1;
            out.used.insert(access);
        }
    }
    out
}

/// Every (group, resource, verb, namespace) deploy/'s roles bound to the controller's ServiceAccount grant ("" for
/// a ClusterRole's); a wildcard fails. Roles for others (the metrics reader's) are not the controller's rights.
pub fn granted() -> Vec<Access> {
    let text = std::fs::read_to_string(root().join("deploy/base/rbac.yaml"))
        .expect("deploy/base/rbac.yaml");
    let docs: Vec<Value> = yaml_serde::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("rbac.yaml parses"))
        .collect();
    let (sa_ns, sa_name) = SA_USER
        .strip_prefix("system:serviceaccount:")
        .and_then(|s| s.split_once(':'))
        .expect("a ServiceAccount user");
    let bound: BTreeSet<(String, String)> = docs
        .iter()
        .filter(|d| {
            d["subjects"].as_array().is_some_and(|subjects| {
                subjects.iter().any(|s| {
                    s["kind"] == "ServiceAccount" && s["name"] == sa_name && s["namespace"] == sa_ns
                })
            })
        })
        .map(|d| {
            let r = &d["roleRef"];
            (
                r["kind"].as_str().unwrap_or("").to_owned(),
                r["name"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let mut out = Vec::new();
    for doc in docs {
        let ns = match doc["kind"].as_str() {
            Some("ClusterRole") => "",
            Some("Role") => SYSTEM_NS,
            _ => continue,
        };
        let kind_name = (
            doc["kind"].as_str().unwrap_or("").to_owned(),
            doc["metadata"]["name"].as_str().unwrap_or("").to_owned(),
        );
        if !bound.contains(&kind_name) {
            continue;
        }
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .expect("a list in a rule")
                .iter()
                .map(|s| s.as_str().expect("a string in a rule").to_owned())
                .collect()
        };
        for rule in doc["rules"].as_array().expect("rules") {
            for g in strings(&rule["apiGroups"]) {
                for r in strings(&rule["resources"]) {
                    for v in strings(&rule["verbs"]) {
                        assert!(g != "*" && r != "*" && v != "*", "wildcard in deploy/ RBAC");
                        out.push((g.clone(), r.clone(), v, ns.to_owned()));
                    }
                }
            }
        }
    }
    out
}

/// Whether `grant` allows `used`: the same group, resource and verb, in any namespace for a ClusterRole's grant.
pub fn covers(grant: &Access, used: &Access) -> bool {
    let (g, r, v, ns) = grant;
    let (ug, ur, uv, uns) = used;
    ug == g && ur == r && uv == v && (ns.is_empty() || uns == ns)
}
