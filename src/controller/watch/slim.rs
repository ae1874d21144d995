//! What the controller keeps in memory of the objects it watches.

use kube::Resource;

/// Drops what only other clients use before an object is cached: its managed fields (one entry per field
/// manager, each listing every field it set) and every annotation (`kubectl apply`'s copy of the last manifest
/// among them). The controller reads no annotation of a SecretSync, store or namespace, and every watched object
/// is held for the controller's lifetime: whoever may write a SecretSync could otherwise fill the controller's
/// memory with annotations (up to 256 KiB per object).
pub fn slim<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    meta.annotations = None;
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

    #[test]
    fn cached_objects_keep_what_the_controller_reads_and_nothing_for_other_clients() {
        let big = "x".repeat(250 * 1024);
        let mut sync: crate::api::SecretSync = serde_json::from_value(serde_json::json!({
            "apiVersion": "secretsync.io/v1alpha1", "kind": "SecretSync",
            "metadata": {"name": "s", "namespace": "n", "generation": 3,
                "labels": {"team": "a"}, "finalizers": ["secretsync.io/remote-cleanup"],
                "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration": "{\"big\":\"copy\"}",
                    "note": big}},
            "spec": {"source": {"secretRef": {"name": "s", "key": "k"}},
                     "target": {"storeRef": {"kind": "Store", "name": "vault"}}}
        }))
        .expect("a SecretSync");
        sync.metadata.managed_fields = Some(vec![ManagedFieldsEntry {
            manager: Some("kubectl".into()),
            ..Default::default()
        }]);
        let before = sync.clone();
        slim(&mut sync);
        assert!(sync.metadata.managed_fields.is_none());
        assert!(sync.metadata.annotations.is_none());
        assert!(serde_json::to_string(&sync).unwrap().len() < 1024);
        assert_eq!(sync.metadata.labels, before.metadata.labels);
        assert_eq!(sync.metadata.finalizers, before.metadata.finalizers);
        assert_eq!(sync.metadata.generation, Some(3));
        assert_eq!(sync.spec, before.spec);
    }
}
