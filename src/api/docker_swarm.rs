use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Settings for Docker Swarm. Swarm secrets cannot change value, so each value is its own secret named
/// `<remoteName>-<8 digest characters>`; `status.remote.name` shows the current one for services to use.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerSwarmSettings {
    /// Delete the secrets holding this SecretSync's earlier values once the current one exists (default true).
    /// A secret a service still uses is kept and tried again at every refresh, so it goes once the services
    /// have moved to the current name. Set false to keep every earlier value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune_superseded: Option<bool>,
}
