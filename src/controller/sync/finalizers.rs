//! Adding and removing one finalizer of an object, keeping every other.

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

/// Sets whether `obj` carries `finalizer`. The patch carries the object's resourceVersion, which makes it a
/// compare-and-swap: if the object changed since it was read (another party's finalizer, say), the API server
/// refuses it (409) and the caller retries with the newer copy, so nobody else's finalizer is lost.
pub async fn set<K>(
    api: &Api<K>,
    obj: &K,
    finalizer: &str,
    present: bool,
) -> Result<(), kube::Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut finalizers: Vec<String> = obj
        .finalizers()
        .iter()
        .filter(|f| *f != finalizer)
        .cloned()
        .collect();
    if present {
        finalizers.push(finalizer.to_owned());
    }
    let patch = json!({
        "metadata": {
            "resourceVersion": obj.resource_version(),
            "finalizers": finalizers,
        }
    });
    api.patch(
        &obj.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}
