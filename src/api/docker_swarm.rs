use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Settings for Docker Swarm.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerSwarmSettings {
    /// Remove superseded secret objects once no service uses them (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune_superseded: Option<bool>,
}
