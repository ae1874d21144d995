//! `secretsync convert`: External Secrets Operator manifests (`PushSecret`, `SecretStore`, `ClusterSecretStore`) to
//! SecretSync, Store and ClusterStore manifests.
//!
//! Offline and one-way: nothing is asked of a cluster, so a store that a PushSecret names must be in the input for
//! its provider's settings to carry over, and credentials are referenced by Secret name, never read. Whatever
//! SecretSync cannot express (or can only express after a manual step) becomes a comment on the document it
//! concerns and a line on stderr, and makes the exit status 2: the output is a proposal to review, applied in
//! `Observe` mode unless asked otherwise.
//!
//! One function per ESO field group (`rules::source`, `rules::data_rule`, `rules::template`, `push::metadata`, ...).

mod aws;
mod azurekv;
mod input;
mod push;
mod rules;
mod stores;
mod vault;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

pub use input::{InputError, Source, parse, read_paths};

/// What the converted SecretSyncs do once applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Read the store and report what `Sync` would do; never write.
    #[default]
    Observe,
    /// Write, as the PushSecrets did.
    Sync,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Observe => "Observe",
            Mode::Sync => "Sync",
        }
    }
}

/// Whether a note only explains (`Info`) or says that something was not carried over or needs a manual step
/// (`Dropped`: a stderr line and exit status 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Dropped,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub severity: Severity,
    pub text: String,
}

/// The notes about one ESO object or one emitted object.
#[derive(Default)]
pub(crate) struct Notes(Vec<Note>);

impl Notes {
    pub(crate) fn info(&mut self, text: impl Into<String>) {
        self.0.push(Note {
            severity: Severity::Info,
            text: text.into(),
        });
    }
    pub(crate) fn dropped(&mut self, text: impl Into<String>) {
        self.0.push(Note {
            severity: Severity::Dropped,
            text: text.into(),
        });
    }
}

/// One document of the output: an object with the comments about it, or comments alone where nothing could be
/// emitted (an unsupported provider, a PushSecret whose source is a generator).
pub struct Document {
    /// `ClusterStore`, `Store` or `SecretSync`; for a comment-only document, the ESO kind it is about.
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    /// The ESO object this came from, as `<Kind> <namespace>/<name> (<file>)`.
    pub from: String,
    pub notes: Vec<Note>,
    pub object: Option<Value>,
}

impl Document {
    fn rank(&self) -> u8 {
        match (self.object.is_some(), self.kind.as_str()) {
            (true, "ClusterStore") => 0,
            (true, "Store") => 1,
            (true, _) => 2,
            (false, _) => 3,
        }
    }
}

/// The result of a conversion.
pub struct Conversion {
    pub documents: Vec<Document>,
    /// Objects of the input that were not converted (other kinds), one stderr line each.
    pub skipped: Vec<Skipped>,
}

/// An input object that is not converted.
pub struct Skipped {
    pub line: String,
    /// Whether it mattered for pushing (a `ClusterPushSecret`, an ESO store or PushSecret of a version not read).
    pub dropped: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("cannot write the YAML output: {0}")]
    Yaml(#[from] yaml_serde::Error),
}

/// Converts every object of `sources`.
pub fn convert(sources: &[Source], mode: Mode) -> Conversion {
    let mut documents = Vec::new();
    let mut skipped = Vec::new();
    let mut facts = BTreeMap::new();
    // Stores first: a PushSecret's SecretSyncs take per-secret settings from its store (AWS deletion settings) and
    // its provider decides how remote keys and metadata read.
    for source in sources {
        if let Some(kind) = store_kind(&source.value) {
            let (doc, store_facts) = stores::convert(source, kind);
            if let Some(f) = store_facts {
                facts.insert(f.key.clone(), f);
            }
            documents.push(doc);
        }
    }
    for source in sources {
        let v = &source.value;
        let (group, version) = group_version(v);
        let kind = v["kind"].as_str().unwrap_or("");
        if store_kind(v).is_some() {
            continue;
        }
        match (group, kind) {
            ("external-secrets.io", "PushSecret") if version == "v1alpha1" => {
                documents.extend(push::convert(source, &facts, mode))
            }
            ("external-secrets.io", "PushSecret" | "SecretStore" | "ClusterSecretStore") => {
                skipped.push(Skipped {
                    line: format!(
                        "{}: {kind} of version {version} is not read (PushSecret external-secrets.io/v1alpha1, \
                         stores v1 and v1beta1 are): not converted",
                        describe(source)
                    ),
                    dropped: true,
                })
            }
            ("external-secrets.io", "ClusterPushSecret") => {
                let mut notes = Notes::default();
                notes.dropped(
                    "ClusterPushSecret has no SecretSync equivalent: write the SecretSyncs in each namespace \
                     (convert the PushSecrets it made: `kubectl get pushsecrets -A -o yaml`)",
                );
                documents.push(comment_only(source, notes));
            }
            _ => skipped.push(Skipped {
                line: format!(
                    "{}: skipped (only PushSecret, SecretStore and ClusterSecretStore are converted)",
                    describe(source)
                ),
                dropped: false,
            }),
        }
    }
    documents.sort_by(|a, b| {
        (a.rank(), &a.namespace, &a.name, &a.from).cmp(&(b.rank(), &b.namespace, &b.name, &b.from))
    });
    let mut seen = BTreeSet::new();
    for doc in documents.iter_mut().filter(|d| d.object.is_some()) {
        if !seen.insert((doc.kind.clone(), doc.namespace.clone(), doc.name.clone())) {
            doc.notes.push(Note {
                severity: Severity::Dropped,
                text: format!(
                    "another document of the output is a {} of the same name: rename one of them",
                    doc.kind
                ),
            });
        }
    }
    Conversion { documents, skipped }
}

impl Conversion {
    /// Whether anything was not carried over: the exit status is then 2.
    pub fn dropped(&self) -> bool {
        self.skipped.iter().any(|s| s.dropped)
            || self
                .documents
                .iter()
                .flat_map(|d| &d.notes)
                .any(|n| n.severity == Severity::Dropped)
    }

    /// The output: one YAML document per object, each after its comments.
    pub fn yaml(&self) -> Result<String, ConvertError> {
        let mut out = String::new();
        for doc in &self.documents {
            out.push_str("---\n");
            out.push_str(&format!("# From {}.\n", doc.from));
            for note in &doc.notes {
                let label = match note.severity {
                    Severity::Info => "Note",
                    Severity::Dropped => "NOT CARRIED OVER",
                };
                out.push_str(&format!("# {label}: {}\n", one_line(&note.text)));
            }
            if let Some(object) = &doc.object {
                out.push_str(&yaml_serde::to_string(object)?);
            }
        }
        Ok(out)
    }

    /// The lines for stderr: skipped objects, everything not carried over, and a summary.
    pub fn stderr_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.skipped.iter().map(|s| s.line.clone()).collect();
        // A PushSecret's notes are on each of its documents: each is said once here.
        let mut said = BTreeSet::new();
        let mut dropped = 0;
        for doc in &self.documents {
            for note in doc.notes.iter().filter(|n| n.severity == Severity::Dropped) {
                let line = format!("{}: {}", doc.from, one_line(&note.text));
                if said.insert(line.clone()) {
                    dropped += 1;
                    lines.push(line);
                }
            }
        }
        let objects = self.documents.iter().filter(|d| d.object.is_some()).count();
        lines.push(format!(
            "{objects} manifests written; not carried over: {dropped} (see the NOT CARRIED OVER comments)"
        ));
        lines
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `PushSecret`, `SecretStore` or `ClusterSecretStore` of a version read, for stores.
fn store_kind(v: &Value) -> Option<stores::EsoStoreKind> {
    let (group, version) = group_version(v);
    if group != "external-secrets.io" || !matches!(version, "v1" | "v1beta1") {
        return None;
    }
    match v["kind"].as_str() {
        Some("SecretStore") => Some(stores::EsoStoreKind::SecretStore),
        Some("ClusterSecretStore") => Some(stores::EsoStoreKind::ClusterSecretStore),
        _ => None,
    }
}

fn group_version(v: &Value) -> (&str, &str) {
    match v["apiVersion"].as_str().unwrap_or("").split_once('/') {
        Some((g, ver)) => (g, ver),
        None => ("", v["apiVersion"].as_str().unwrap_or("")),
    }
}

/// `<Kind> <namespace>/<name> (<origin>)`.
pub(crate) fn describe(source: &Source) -> String {
    let v = &source.value;
    let kind = v["kind"].as_str().unwrap_or("object");
    let name = v["metadata"]["name"].as_str().unwrap_or("<unnamed>");
    match v["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{kind} {ns}/{name} ({})", source.origin),
        None => format!("{kind} {name} ({})", source.origin),
    }
}

pub(crate) fn name_of(v: &Value) -> String {
    v["metadata"]["name"]
        .as_str()
        .unwrap_or("unnamed")
        .to_owned()
}

pub(crate) fn namespace_of(v: &Value) -> Option<String> {
    v["metadata"]["namespace"].as_str().map(str::to_owned)
}

pub(crate) fn comment_only(source: &Source, notes: Notes) -> Document {
    Document {
        kind: source.value["kind"].as_str().unwrap_or("").to_owned(),
        namespace: namespace_of(&source.value),
        name: name_of(&source.value),
        from: describe(source),
        notes: notes.0,
        object: None,
    }
}

/// `apiVersion`, `kind` and `metadata` of an object SecretSync reads, with the ESO object it came from recorded
/// as an annotation.
pub(crate) fn object(kind: &str, name: &str, namespace: Option<&str>, source: &Source) -> Value {
    let from = format!(
        "{}/{}",
        source.value["kind"].as_str().unwrap_or(""),
        name_of(&source.value)
    );
    let mut metadata = json!({
        "name": name,
        "annotations": {"secretsync.io/converted-from": from},
    });
    if let Some(ns) = namespace {
        metadata["namespace"] = json!(ns);
    }
    json!({"apiVersion": "secretsync.io/v1alpha1", "kind": kind, "metadata": metadata})
}

/// Keys of `map` that are not in `known`, in order: the fields a conversion does not read.
pub(crate) fn unknown_keys<'a>(map: &'a Value, known: &[&str]) -> Vec<&'a str> {
    map.as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| !known.contains(&k.as_str()) && !v.is_null())
        .map(|(k, _)| k.as_str())
        .collect()
}
