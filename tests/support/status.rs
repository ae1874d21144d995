//! Reading a SecretSync's status (as JSON) the way tests compare it: phase, a condition, `status/reason`.
#![allow(dead_code)]

use serde_json::Value;

pub fn phase(s: &Value) -> &str {
    s["phase"].as_str().unwrap_or("")
}

pub fn condition<'a>(s: &'a Value, type_: &str) -> Option<&'a Value> {
    s["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// `status/reason` of the condition `type_`; empty without it.
pub fn status_reason(s: &Value, type_: &str) -> String {
    condition(s, type_)
        .map(|c| {
            format!(
                "{}/{}",
                c["status"].as_str().unwrap_or(""),
                c["reason"].as_str().unwrap_or("")
            )
        })
        .unwrap_or_default()
}

/// `status/reason` of the Ready condition.
pub fn ready(s: &Value) -> String {
    status_reason(s, "Ready")
}

/// `status/reason` of the InSync condition (shown while observing).
pub fn in_sync(s: &Value) -> String {
    status_reason(s, "InSync")
}

pub fn ready_message(s: &Value) -> String {
    condition(s, "Ready")
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default()
        .to_owned()
}
