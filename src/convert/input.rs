//! Reading the input: files, directories (recursively, `*.yaml`, `*.yml`, `*.json`) and stdin; multi-document YAML
//! (JSON is YAML too) and the `List`s `kubectl get -o yaml` prints.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// One object of the input and where it came from.
#[derive(Clone, Debug)]
pub struct Source {
    /// The file (as given, or found under a directory given), or `<stdin>`.
    pub origin: String,
    pub value: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{origin}: document {index} is not valid YAML or JSON: {message}")]
    Parse {
        origin: String,
        index: usize,
        message: String,
    },
}

/// Every object of `paths` in order (a directory's files in name order); no path or `-` reads stdin.
pub fn read_paths(paths: &[PathBuf]) -> Result<Vec<Source>, InputError> {
    let mut sources = Vec::new();
    if paths.is_empty() {
        return read_stdin();
    }
    for path in paths {
        if path.as_os_str() == "-" {
            sources.extend(read_stdin()?);
        } else if path.is_dir() {
            let mut files = Vec::new();
            walk(path, &mut files)?;
            files.sort();
            for file in files {
                sources.extend(read_file(&file)?);
            }
        } else {
            sources.extend(read_file(path)?);
        }
    }
    Ok(sources)
}

fn read_stdin() -> Result<Vec<Source>, InputError> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|source| InputError::Read {
            path: "<stdin>".into(),
            source,
        })?;
    parse("<stdin>", &text)
}

fn read_file(path: &Path) -> Result<Vec<Source>, InputError> {
    let text = std::fs::read_to_string(path).map_err(|source| InputError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&path.display().to_string(), &text)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), InputError> {
    let error = |source| InputError::Read {
        path: dir.display().to_string(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(error)? {
        let path = entry.map_err(error)?.path();
        if path.is_dir() {
            walk(&path, files)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            files.push(path);
        }
    }
    Ok(())
}

/// The objects of one text: each document, with `List`s opened; empty documents are left out.
pub fn parse(origin: &str, text: &str) -> Result<Vec<Source>, InputError> {
    let mut sources = Vec::new();
    for (index, document) in yaml_serde::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(document).map_err(|e| InputError::Parse {
            origin: origin.to_owned(),
            index: index + 1,
            message: e.to_string(),
        })?;
        push_objects(origin, value, &mut sources);
    }
    Ok(sources)
}

fn push_objects(origin: &str, value: Value, sources: &mut Vec<Source>) {
    match value {
        Value::Null => {}
        Value::Object(mut map)
            if map
                .get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| k.ends_with("List"))
                && map.get("items").is_some_and(Value::is_array) =>
        {
            if let Some(Value::Array(items)) = map.remove("items") {
                for item in items {
                    push_objects(origin, item, sources);
                }
            }
        }
        value => sources.push(Source {
            origin: origin.to_owned(),
            value,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_open_and_empty_documents_go() {
        let text = "---\n---\napiVersion: v1\nkind: List\nitems:\n- kind: A\n- kind: B\n---\n{\"kind\": \"C\"}\n";
        let kinds: Vec<_> = parse("t", text)
            .unwrap()
            .into_iter()
            .map(|s| s.value["kind"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(kinds, ["A", "B", "C"]);
    }

    #[test]
    fn a_broken_document_names_its_file_and_position() {
        let err = parse("f.yaml", "kind: A\n---\nkind: [\n").unwrap_err();
        assert!(err.to_string().starts_with("f.yaml: document 2 "), "{err}");
    }
}
