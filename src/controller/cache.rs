//! What the controller keeps in memory of the objects it watches.

use kube::Resource;

/// The client-side `kubectl apply` copy of the last applied manifest: a second copy of the object.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops what only other clients use before an object is cached: its managed fields (one entry per field
/// manager, each listing every field it set) and `kubectl apply`'s copy of the last manifest. For a typical
/// SecretSync these weigh more than the rest of the object, and every watched object is held for the
/// controller's lifetime.
pub fn slim<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

    #[test]
    fn cached_objects_keep_what_the_controller_reads_and_nothing_for_other_clients() {
        let mut store: crate::api::Store = serde_json::from_value(serde_json::json!({
            "apiVersion": "secretsync.io/v1alpha1", "kind": "Store",
            "metadata": {"name": "s", "namespace": "n", "generation": 3,
                "labels": {"team": "a"},
                "annotations": {LAST_APPLIED: "{\"big\":\"copy\"}", "note": "kept"}},
            "spec": {"dialect": "Barbican", "endpoint": "http://b:9311"}
        }))
        .expect("a store");
        store.metadata.managed_fields = Some(vec![ManagedFieldsEntry {
            manager: Some("kubectl".into()),
            ..Default::default()
        }]);
        let before = store.clone();
        slim(&mut store);
        assert!(store.metadata.managed_fields.is_none());
        let annotations = store.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(annotations.len(), 1);
        assert_eq!(annotations.get("note").map(String::as_str), Some("kept"));
        assert_eq!(store.metadata.labels, before.metadata.labels);
        assert_eq!(store.metadata.generation, Some(3));
        assert_eq!(store.spec, before.spec);

        let mut only_applied = before;
        only_applied.metadata.annotations =
            Some([(LAST_APPLIED.to_string(), "{}".to_string())].into());
        slim(&mut only_applied);
        assert!(only_applied.metadata.annotations.is_none());
    }
}
