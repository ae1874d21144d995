//! Bounds for the Kubernetes types the CRDs embed (label selectors, conditions), whose own schemas have none.
//! Every string, list and map of a SecretSync or a store is bounded, so that no object can make the controller
//! (which caches them all) or the API server's CEL rules pay more than its bounds.

use schemars::Schema;
use serde_json::{Value, json};

/// A label key: an optional DNS-subdomain prefix (253 characters), `/` and a name (63).
const LABEL_KEY: usize = 317;
/// A label value.
const LABEL_VALUE: usize = 63;

/// A `LabelSelector`: as many terms as any real selector needs, each as long as a label can be.
pub fn label_selector(schema: &mut Schema) {
    let item = "/properties/matchExpressions/items/properties";
    for (pointer, bounds) in [
        (
            "/properties/matchLabels",
            json!({"maxProperties": 64, "x-kubernetes-validations": [
                {"rule": format!("self.all(k, size(k) <= {LABEL_KEY})"), "message": format!("label keys are at most {LABEL_KEY} characters")}
            ]}),
        ),
        (
            "/properties/matchLabels/additionalProperties",
            json!({"maxLength": LABEL_VALUE}),
        ),
        ("/properties/matchExpressions", json!({"maxItems": 32})),
        (&format!("{item}/key"), json!({"maxLength": LABEL_KEY})),
        (&format!("{item}/operator"), json!({"maxLength": 16})),
        (&format!("{item}/values"), json!({"maxItems": 64})),
        (
            &format!("{item}/values/items"),
            json!({"maxLength": LABEL_VALUE}),
        ),
    ] {
        bound(schema, pointer, bounds);
    }
}

/// A list of `Condition`s, with the bounds Kubernetes gives `metav1.Condition`'s fields.
pub fn conditions(schema: &mut Schema) {
    let item = "/items/properties";
    for (pointer, bounds) in [
        ("", json!({"maxItems": 32})),
        (&format!("{item}/type"), json!({"maxLength": 316})),
        (&format!("{item}/status"), json!({"maxLength": 16})),
        (&format!("{item}/reason"), json!({"maxLength": 1024})),
        (&format!("{item}/message"), json!({"maxLength": 32768})),
    ] {
        bound(schema, pointer, bounds);
    }
}

/// Adds `bounds` to the subschema at `pointer`. The CRDs inline every subschema; a test checks that each bound
/// arrives (see `every_string_list_and_map_of_the_crds_is_bounded`).
fn bound(schema: &mut Schema, pointer: &str, bounds: Value) {
    if let (Some(Value::Object(at)), Value::Object(bounds)) = (schema.pointer_mut(pointer), bounds)
    {
        at.extend(bounds);
    }
}
