//! Which changes of related objects (stores, namespaces) requeue SecretSyncs: a store's status is written every
//! few minutes by its check, and a Namespace changes for many reasons, but only some changes matter.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use futures::{Stream, StreamExt};
use kube::Resource;
use kube::runtime::watcher;

/// Objects whose fingerprint changed since last seen, and every deleted object.
pub fn changes<K, S>(
    events: S,
    fingerprint: fn(&K) -> u64,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send
where
    K: Resource + Send + 'static,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
{
    let mut seen: HashMap<(Option<String>, String), u64> = HashMap::new();
    events
        .map(move |event| {
            let event = match event {
                Ok(event) => event,
                Err(e) => return vec![Err(e)],
            };
            match event {
                watcher::Event::Apply(obj) | watcher::Event::InitApply(obj) => {
                    let key = identity(&obj);
                    let print = fingerprint(&obj);
                    if seen.insert(key, print) == Some(print) {
                        vec![]
                    } else {
                        vec![Ok(obj)]
                    }
                }
                watcher::Event::Delete(obj) => {
                    seen.remove(&identity(&obj));
                    vec![Ok(obj)]
                }
                watcher::Event::Init | watcher::Event::InitDone => vec![],
            }
        })
        .flat_map(futures::stream::iter)
}

fn identity<K: Resource>(obj: &K) -> (Option<String>, String) {
    let meta = obj.meta();
    (
        meta.namespace.clone(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// What a store's admin changed: its spec (generation) or its deletion.
pub fn spec_generation<K: Resource>(obj: &K) -> u64 {
    let meta = obj.meta();
    hash((meta.generation, meta.deletion_timestamp.is_some()))
}

/// A namespace's labels.
pub fn labels<K: Resource>(obj: &K) -> u64 {
    hash(&obj.meta().labels)
}

fn hash(value: impl Hash) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Namespace;

    fn ns(name: &str, label: &str) -> Namespace {
        let mut n = Namespace::default();
        n.metadata.name = Some(name.into());
        n.metadata.labels = Some([("tier".to_string(), label.to_string())].into());
        n
    }

    #[tokio::test]
    async fn only_changed_fingerprints_and_deletions_pass() {
        let events = futures::stream::iter(vec![
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitApply(ns("a", "dev"))),
            Ok(watcher::Event::InitDone),
            Ok(watcher::Event::Apply(ns("a", "dev"))),
            Ok(watcher::Event::Apply(ns("b", "dev"))),
            Ok(watcher::Event::Apply(ns("a", "prod"))),
            Ok(watcher::Event::Delete(ns("a", "prod"))),
            Ok(watcher::Event::Apply(ns("a", "prod"))),
        ]);
        let passed: Vec<String> = changes(events, labels::<Namespace>)
            .map(|r| {
                let n = r.expect("no error");
                format!(
                    "{}={}",
                    n.metadata.name.unwrap(),
                    n.metadata.labels.unwrap()["tier"]
                )
            })
            .collect()
            .await;
        assert_eq!(
            passed,
            ["a=dev", "b=dev", "a=prod", "a=prod", "a=prod"],
            "the unchanged re-apply of a is dropped; the delete and the re-creation pass"
        );
    }
}
