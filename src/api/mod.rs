//! The `SecretSync` custom resource (`secretsync.io/v1alpha1`).
//!
//! Doc comments on these types are user documentation: they become the CRD's
//! descriptions and so what `kubectl explain secretsync.spec` prints.

mod aws_secrets_manager;
mod azure_key_vault;
mod barbican;
mod bounds;
mod connection;
mod data;
mod dialect_rules;
mod docker_swarm;
pub mod duration;
mod service_fabric_mesh;
pub mod store;
mod tencent_ssm;
mod vault;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use aws_secrets_manager::AwsSecretsManagerSettings;
pub use azure_key_vault::AzureKeyVaultSettings;
pub use barbican::BarbicanSettings;
pub use connection::ForeignSettings;
pub use data::{DataRule, MergePolicy, RemoteEntryStatus, SecretTemplate};
pub use docker_swarm::DockerSwarmSettings;
pub use service_fabric_mesh::ServiceFabricMeshSettings;
pub use store::{
    Adoption, AwsSecretsManagerStoreSettings, ClusterStore, ClusterStoreSpec, RateLimit, Store,
    StoreKind, StoreRef, StoreSpec, StoreStatus,
};
pub use tencent_ssm::{TencentSsmSettings, TencentVersionPolicy};
pub use vault::{
    VaultAppRole, VaultKubernetes, VaultSettings, VaultStoreSettings,
    valid_path as valid_vault_path,
};

/// API group of every SecretSync type.
pub const GROUP: &str = "secretsync.io";

/// Desired state of a SecretSync: the value of `source` must exist in `target`, in the target's dialect.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "secretsync.io",
    version = "v1alpha1",
    kind = "SecretSync",
    plural = "secretsyncs",
    shortname = "ssync",
    category = "secretsync",
    namespaced,
    status = "SecretSyncStatus",
    printcolumn = r#"{"name":"Store","type":"string","jsonPath":".status.store.name"}"#,
    printcolumn = r#"{"name":"Dialect","type":"string","jsonPath":".status.store.dialect"}"#,
    printcolumn = r#"{"name":"Remote","type":"string","jsonPath":".status.remote.name"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"In Sync","type":"string","jsonPath":".status.conditions[?(@.type==\"InSync\")].status"}"#,
    printcolumn = r#"{"name":"Remotes","type":"string","jsonPath":".status.remotesInSync"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = Rule::new("!has(self.spec.target.dialect) || self.spec.target.dialect != 'AzureKeyVault' || (has(self.spec.target.remoteName) && self.spec.target.remoteName.contains('{')) || (has(self.spec.target.remoteName) ? self.spec.target.remoteName : self.metadata.name).matches('^[0-9a-zA-Z-]{1,127}$')").message("AzureKeyVault secret names are 1-127 characters of letters, digits and '-' (set spec.target.remoteName)"),
    validation = Rule::new("!has(self.spec.target.dialect) || self.spec.target.dialect != 'DockerSwarm' || (has(self.spec.target.remoteName) && self.spec.target.remoteName.contains('{')) || (has(self.spec.target.remoteName) ? self.spec.target.remoteName : self.metadata.name).matches('^[a-zA-Z0-9]([a-zA-Z0-9_.-]{0,53}[a-zA-Z0-9])?$')").message("DockerSwarm secret names are at most 55 characters (SecretSync appends '-' and an 8-character digest), start and end with a letter or digit, and contain only letters, digits, '-', '_' and '.' (set spec.target.remoteName)"),
    validation = Rule::new("!has(self.spec.target.dialect) || self.spec.target.dialect != 'TencentSSM' || (has(self.spec.target.remoteName) && self.spec.target.remoteName.contains('{')) || (has(self.spec.target.remoteName) ? self.spec.target.remoteName : self.metadata.name).matches('^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$')").message("TencentSSM secret names are 1-128 characters of letters, digits, '-' and '_', starting with a letter or digit (set spec.target.remoteName)"),
    validation = Rule::new("!has(self.spec.target.dialect) || self.spec.target.dialect != 'ServiceFabricMesh' || (has(self.spec.target.remoteName) && self.spec.target.remoteName.contains('{')) || (has(self.spec.target.remoteName) ? self.spec.target.remoteName : self.metadata.name).matches('^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$')").message("ServiceFabricMesh secret resource names must be URI-safe: letters, digits, '.', '_' and '-', starting with a letter or digit (set spec.target.remoteName)"),
    validation = Rule::new("!has(self.spec.target.dialect) || self.spec.target.dialect != 'AWSSecretsManager' || (has(self.spec.target.remoteName) && self.spec.target.remoteName.contains('{')) || (has(self.spec.target.remoteName) ? self.spec.target.remoteName : self.metadata.name).matches('^[A-Za-z0-9/_+=.@-]{1,512}$')").message("AWSSecretsManager secret names are 1-512 characters of letters, digits and /_+=.@- (set spec.target.remoteName)"),
    validation = Rule::new("!has(self.spec.data) || size(self.spec.data) == 0 || !has(self.spec.source.secretRef) || !has(self.spec.source.secretRef.key)").message("spec.data and spec.source.secretRef.key are exclusive: select keys with spec.data, or push the one key"),
    validation = Rule::new("!has(self.spec.source.selector) || ((has(self.spec.data) && size(self.spec.data) > 0) ? self.spec.data.all(d, (has(d.remoteName) ? d.remoteName : (has(self.spec.target.remoteName) ? self.spec.target.remoteName : '')).contains('{secret}')) : (has(self.spec.target.remoteName) && self.spec.target.remoteName.contains('{secret}')))").message("with spec.source.selector every remote name (spec.target.remoteName, or each spec.data[].remoteName) must contain {secret}, so that two Secrets never land on one remote secret"),
    validation = Rule::new("!has(self.spec.target.dialect) || self.spec.target.dialect != 'Barbican' || size(has(self.spec.target.remoteName) ? self.spec.target.remoteName : self.metadata.name) <= 255").message("Barbican secret names are at most 255 characters")
)]
#[serde(rename_all = "camelCase")]
pub struct SecretSyncSpec {
    /// Where the value comes from: a Secret in this SecretSync's own namespace.
    pub source: Source,

    /// Where the value goes: the external store, its dialect and the remote secret's name and metadata.
    pub target: Target,

    /// How often the remote secret is re-read to detect drift, as a Go-style duration ("30s", "10m", "1h"),
    /// between 10s and 720h (30 days). `0s` turns the periodic re-read off: the remote secret is then read only
    /// when this SecretSync or one of its Secrets changes (drift made in the store is not repaired until then).
    /// A jitter of up to 10% is added so that many SecretSyncs do not refresh at the same instant.
    /// Changes to the source Secret are pushed within seconds regardless of this interval.
    #[serde(default = "default_refresh_interval")]
    #[schemars(
        regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"),
        length(min = 1, max = 32)
    )]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": duration::REFRESH_RULE, "message": duration::REFRESH_RULE_MESSAGE}]))]
    pub refresh_interval: String,

    /// `Replace` (default) keeps the remote value equal to the source. `IfNotExists` only creates the remote
    /// secret and never changes it afterwards.
    #[serde(default)]
    pub update_policy: UpdatePolicy,

    /// `Retain` (default) leaves the remote secret in place when this SecretSync is deleted. `Delete` removes it;
    /// SecretSync then holds a finalizer on this object until the remote secret is gone. Switching back to
    /// `Retain` releases the finalizer at once, even while the object is being deleted.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Stops all reads and writes to the remote store while true. Status keeps its last values.
    #[serde(default)]
    pub suspend: bool,

    /// Take over a remote secret of the same name that SecretSync did not create (or whose owning SecretSync no
    /// longer exists). Without it, such a secret is left untouched and the SecretSync reports a `Conflict`.
    #[serde(default)]
    pub adopt_existing: bool,

    /// `Sync` (default) keeps the remote secret equal to the source. `Observe` reads the store exactly as `Sync`
    /// does but never writes, deletes, adopts or takes a finalizer: the `InSync` condition says whether the store
    /// matches the source (and if not, why), and `status.plan` what `Sync` would do. Switching to `Sync` carries out
    /// that plan. Use it to watch SecretSync next to another tool before letting it write.
    #[serde(default)]
    pub mode: Mode,

    /// Which keys go where, instead of `spec.source.secretRef.key`: each rule takes one key or every key matching
    /// a pattern, to a remote secret of its own or to a property of a JSON object shared with other keys. At most
    /// 64 remote secrets and 256 keys per SecretSync.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub data: Vec<DataRule>,

    /// Values composed from several keys (a connection URL from a user and a password), rendered before `data`
    /// selects keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<SecretTemplate>,
}

impl SecretSyncSpec {
    /// Whether this SecretSync uses what one key to one remote secret does not need (`data`, a selector, a
    /// template): its remote secrets are then listed in `status.remotes`.
    pub fn writes_many(&self) -> bool {
        !self.data.is_empty() || self.source.selector.is_some() || self.template.is_some()
    }
}

/// Whether a SecretSync writes to its store or only reports what it would write.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Mode {
    /// Keep the remote secret equal to the source.
    #[default]
    Sync,
    /// Read the store and report drift (`InSync`, `status.plan`); never write.
    Observe,
}

fn default_refresh_interval() -> String {
    "1h".to_owned()
}

/// The Secret whose value is pushed.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.secretRef) != has(self.selector)", "message": "set spec.source.secretRef (one Secret) or spec.source.selector (every Secret with these labels), not both"},
    {"rule": "!has(self.selector) || (has(self.selector.matchLabels) && size(self.selector.matchLabels) > 0) || (has(self.selector.matchExpressions) && size(self.selector.matchExpressions) > 0)", "message": "an empty spec.source.selector would select every Secret of the namespace: give it matchLabels or matchExpressions"}
]))]
pub struct Source {
    /// A Secret in the same namespace as this SecretSync. There is deliberately no namespace field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyRef>,

    /// Every Secret of this SecretSync's namespace whose labels match, each pushed to its own remote secret
    /// (every remote name must contain `{secret}`). A Secret that starts matching is pushed within seconds; one
    /// that stops matching is let go as `deletionPolicy` says. The store's `sourceSelector` applies to each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = bounds::label_selector)]
    pub selector: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
}

/// A key of a Secret in the SecretSync's namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret. Without it the whole Secret is pushed as one JSON object mapping each key to its
    /// value (values that are not valid UTF-8 are base64-encoded and their key is suffixed with `.base64`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub key: Option<String>,
}

/// A Secret in the SecretSync's namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalSecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// The external store and the remote secret in it.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.storeRef) != has(self.dialect)", "message": "set spec.target.storeRef (a Store or ClusterStore) or, where the controller allows inline targets, spec.target.dialect; not both"},
    {"rule": "!has(self.storeRef) || (!has(self.endpoint) && !has(self.credentialsRef))", "message": "with spec.target.storeRef the store decides the endpoint and credentials: remove spec.target.endpoint and spec.target.credentialsRef"},
    {"rule": "!has(self.storeRef) || !has(self.azureKeyVault) || (!has(self.azureKeyVault.authorityHost) && !has(self.azureKeyVault.apiVersion))", "message": "with spec.target.storeRef the store decides azureKeyVault.authorityHost and apiVersion"},
    {"rule": "!has(self.storeRef) || !has(self.serviceFabricMesh) || !has(self.serviceFabricMesh.apiVersion)", "message": "with spec.target.storeRef the store decides serviceFabricMesh.apiVersion"},
    {"rule": "!has(self.storeRef) || !has(self.barbican) || (!has(self.barbican.projectId) && !has(self.barbican.interface) && !has(self.barbican.region))", "message": "with spec.target.storeRef the store decides barbican.projectId, interface and region"},
    {"rule": "!has(self.storeRef) || !has(self.tencentSSM) || (!has(self.tencentSSM.region) && !has(self.tencentSSM.requestsPerSecond))", "message": "with spec.target.storeRef the store decides tencentSSM.region and its rate (rateLimit)"},
    {"rule": "!has(self.storeRef) || !has(self.awsSecretsManager) || (!has(self.awsSecretsManager.region) && !has(self.awsSecretsManager.roleArn) && !has(self.awsSecretsManager.stsEndpoint))", "message": "with spec.target.storeRef the store decides awsSecretsManager.region, roleArn and stsEndpoint"},
    {"rule": "!has(self.storeRef) || !has(self.vault) || (!has(self.vault.mount) && !has(self.vault.namespace) && !has(self.vault.pathPrefix) && !has(self.vault.appRole) && !has(self.vault.kubernetes))", "message": "with spec.target.storeRef the store decides vault.mount, namespace, pathPrefix, appRole and kubernetes"}
]))]
#[schemars(transform = dialect_rules::for_inline_target)]
pub struct Target {
    /// The store to push to: a `Store` in this namespace or a `ClusterStore` that admits this namespace. The store
    /// decides the dialect, endpoint, credentials and connection settings; this SecretSync decides the remote
    /// secret's name, metadata and per-secret policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_ref: Option<StoreRef>,

    /// Inline target (single-tenant clusters only, where the controller runs with `--allow-inline-targets`):
    /// the store's API, `ServiceFabricMesh`, `AzureKeyVault`, `Barbican`, `DockerSwarm`, `TencentSSM`,
    /// `AWSSecretsManager` or `Vault`. With
    /// `storeRef` the store decides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialect: Option<DialectKind>,

    /// Inline target only (see `dialect`). Base URL of the store. AzureKeyVault: the vault URL. ServiceFabricMesh: the HTTP gateway. Barbican:
    /// the key-manager URL (taken from the Keystone catalog when omitted). DockerSwarm: `unix:///path/docker.sock`
    /// or `tcp://host:port` (default: the local Docker socket). TencentSSM: the API endpoint (default:
    /// `https://ssm.tencentcloudapi.com`). AWSSecretsManager: the API endpoint (default:
    /// `https://secretsmanager.<region>.amazonaws.com`). Vault: the server's address (`https://vault.example:8200`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^(https?|unix|tcp)://[^@?#\s\x00-\x1f\x7f]+$"),
        length(max = 2048)
    )]
    pub endpoint: Option<String>,

    /// Name of the remote secret. Defaults to the SecretSync's `metadata.name`. Each dialect's naming rules are
    /// enforced when the manifest is applied for an inline target, and by the controller before any call when the
    /// dialect comes from a store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub remote_name: Option<String>,

    /// Inline target only (see `dialect`). A Secret in this namespace with the store's credentials. Its keys
    /// depend on the dialect (see the README).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_ref: Option<LocalSecretRef>,

    /// Content type recorded with the remote secret, where the store keeps one (AzureKeyVault,
    /// ServiceFabricMesh, Barbican's payload content type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub content_type: Option<String>,

    /// Description recorded with the remote secret, where the store keeps one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub description: Option<String>,

    /// Labels, tags or metadata written on the remote secret next to the ones SecretSync uses for ownership
    /// (keys starting with `secretsync` are reserved). At most 64 of them, keys of at most 253 characters, values
    /// of at most 1024 (a store may accept less).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend(
        "maxProperties" = 64,
        "additionalProperties" = {"type": "string", "maxLength": 1024},
        "x-kubernetes-validations" = [
            {"rule": "self.all(k, size(k) <= 253)", "message": "label keys are at most 253 characters"},
            {"rule": "self.all(k, !k.lowerAscii().startsWith('secretsync'))", "message": "label keys starting with 'secretsync' are reserved"}
        ]
    ))]
    pub labels: BTreeMap<String, String>,

    // The five settings are boxed: every cached SecretSync holds all five fields, almost always empty, and
    // inline they made up a fifth of its size (`make bench HEAP_PROFILE=1`).
    /// Settings for dialect AzureKeyVault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_key_vault: Option<Box<AzureKeyVaultSettings>>,

    /// Settings for dialect ServiceFabricMesh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_fabric_mesh: Option<Box<ServiceFabricMeshSettings>>,

    /// Settings for dialect Barbican.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barbican: Option<Box<BarbicanSettings>>,

    /// Settings for dialect DockerSwarm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_swarm: Option<Box<DockerSwarmSettings>>,

    /// Settings for dialect TencentSSM.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "tencentSSM"
    )]
    pub tencent_ssm: Option<Box<TencentSsmSettings>>,

    /// Settings for dialect AWSSecretsManager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_secrets_manager: Option<Box<AwsSecretsManagerSettings>>,

    /// Settings for dialect Vault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<Box<VaultSettings>>,
}

impl Target {
    /// The remote secret's name: `remoteName`, or the SecretSync's own name.
    pub fn remote_name<'a>(&'a self, object_name: &'a str) -> &'a str {
        self.remote_name.as_deref().unwrap_or(object_name)
    }
}

/// The store APIs SecretSync speaks.
#[derive(
    Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
pub enum DialectKind {
    /// Service Fabric secret resources (`PUT /Resources/Secrets/{name}`).
    ServiceFabricMesh,
    /// Azure Key Vault secrets (`PUT {vault}/secrets/{name}`).
    AzureKeyVault,
    /// OpenStack Key Manager (`POST /v1/secrets`, then `PUT` of the payload).
    Barbican,
    /// Docker Swarm secrets (`POST /secrets/create`).
    DockerSwarm,
    /// Tencent Cloud Secrets Manager (`CreateSecret`, `UpdateSecret`, `PutSecretValue`).
    #[serde(rename = "TencentSSM")]
    TencentSsm,
    /// AWS Secrets Manager (`CreateSecret`, `PutSecretValue`, tags).
    #[serde(rename = "AWSSecretsManager")]
    AwsSecretsManager,
    /// HashiCorp Vault or OpenBao KV version 2 (`POST /v1/{mount}/data/{path}` with check-and-set, metadata).
    Vault,
}

impl DialectKind {
    /// Every dialect, in the order the README lists them.
    pub const ALL: [DialectKind; 7] = [
        DialectKind::ServiceFabricMesh,
        DialectKind::AzureKeyVault,
        DialectKind::Barbican,
        DialectKind::DockerSwarm,
        DialectKind::TencentSsm,
        DialectKind::AwsSecretsManager,
        DialectKind::Vault,
    ];

    /// The name used in manifests, metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DialectKind::ServiceFabricMesh => "ServiceFabricMesh",
            DialectKind::AzureKeyVault => "AzureKeyVault",
            DialectKind::Barbican => "Barbican",
            DialectKind::DockerSwarm => "DockerSwarm",
            DialectKind::TencentSsm => "TencentSSM",
            DialectKind::AwsSecretsManager => "AWSSecretsManager",
            DialectKind::Vault => "Vault",
        }
    }
}

impl std::fmt::Display for DialectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens when the source value changes after the remote secret exists.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum UpdatePolicy {
    /// Keep the remote value equal to the source value.
    #[default]
    Replace,
    /// Create the remote secret if it is missing; never change it afterwards.
    IfNotExists,
}

/// What happens to the remote secret when the SecretSync is deleted.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// Leave the remote secret in place.
    #[default]
    Retain,
    /// Delete the remote secret (only if SecretSync owns it), then let the SecretSync go.
    Delete,
}

/// Observed state, written by the controller.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretSyncStatus {
    /// `Pending` before the first push, `Creating` while the store itself reports the secret as still being
    /// created, `Ready` when the remote value matches the source, `Failed` otherwise (see the `Ready` condition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,

    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready` (True when the remote secret matches the source), with a reason and a message saying what to do
    /// when it is False. For kstatus-based tools (Flux, `kubectl wait` on kstatus), `Reconciling` is present and
    /// True while the object is Pending or Creating, and `Stalled` while it is Failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    #[schemars(transform = bounds::conditions)]
    pub conditions: Vec<Condition>,

    /// The remote secret last written or adopted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteStatus>,

    /// When the remote secret was last confirmed to match the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,

    /// Keyed HMAC-SHA256 of the last synced value (`hmac-sha256:<hex>`). Never the value, never a plain hash:
    /// the key is held by the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub synced_digest: Option<String>,

    /// The store the last reconcile used, and its dialect (absent for an inline target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<UsedStore>,

    /// Where the last confirmed sync wrote. When `spec.target` later names another remote secret in the same
    /// store (a new `remoteName`) and `deletionPolicy` is `Delete`, SecretSync deletes the one recorded here once
    /// the new one is in sync; otherwise it leaves it and says so in an Event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_target: Option<SyncedTarget>,

    /// In `Observe` mode: what `Sync` would do for each remote secret. Absent in `Sync` mode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    #[schemars(length(max = 64))]
    pub plan: Vec<PlannedChange>,

    /// With `spec.data`, a selector or a template: every remote secret this SecretSync writes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    #[schemars(length(max = 64))]
    pub remotes: Vec<RemoteEntryStatus>,

    /// With `status.remotes`: how many of them hold the source's value, of how many (`3/3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub remotes_in_sync: Option<String>,
}

/// One remote secret and what `Sync` would do to it.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedChange {
    /// Name of the remote secret in the store.
    #[schemars(length(max = 512))]
    pub name: String,
    /// What `Sync` would do.
    pub action: PlannedAction,
}

/// What `Sync` would do to a remote secret.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum PlannedAction {
    /// Nothing: the store matches (or `updatePolicy: IfNotExists` keeps what is there).
    None,
    /// Create the missing remote secret.
    Create,
    /// Write a new value (and its metadata).
    Update,
    /// Update metadata only; the value stays.
    UpdateMetadata,
    /// Take over a secret SecretSync did not write (the store's `adoption` and `spec.adoptExisting` allow it),
    /// writing a new value only if it differs.
    Adopt,
    /// Leave it and report a conflict: it belongs to someone else, or an immutable field would have to change.
    Conflict,
}

/// The store a SecretSync used.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsedStore {
    /// `Store` or `ClusterStore`; absent for an inline target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<StoreKind>,
    /// Name of the store; absent for an inline target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub name: Option<String>,
    /// The store's dialect.
    pub dialect: DialectKind,
}

/// The store and name a SecretSync last wrote to.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncedTarget {
    /// The store's dialect at the time.
    pub dialect: DialectKind,
    /// The store's endpoint at the time; absent when the dialect's default was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub endpoint: Option<String>,
    /// `spec.target.remoteName` (or the object's name) at the time.
    #[schemars(length(max = 512))]
    pub remote_name: String,
}

/// Lifecycle phase of a SecretSync.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Phase {
    /// Not pushed yet.
    Pending,
    /// The store reports the remote secret as still being created.
    Creating,
    /// The remote secret matches the source.
    Ready,
    /// The last attempt failed; the `Ready` condition says why.
    Failed,
    /// `spec.mode: Observe`: the store was read; the `InSync` condition says whether it matches.
    Observing,
}

/// Identity of the remote secret in the store.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemoteStatus {
    /// Name of the remote secret as the store knows it (for DockerSwarm this includes the digest suffix).
    #[schemars(length(max = 512))]
    pub name: String,
    /// The store's identifier: Barbican secret ref, Docker secret ID, Key Vault secret ID, and so on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub id: Option<String>,
    /// Version last written, where the store versions values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    pub version: Option<String>,
}

/// The CustomResourceDefinitions as they are installed, with the file each is committed as in `crds/`: the
/// generated ones, with integer formats the API server knows. (schemars names unsigned integers `uint32`, which the
/// API server does not recognise and warns about on every `kubectl apply`; each such field also carries a
/// `minimum` of 0, so `int64` loses nothing.)
pub fn crds() -> Vec<(
    &'static str,
    k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
)> {
    use kube::CustomResourceExt;
    vec![
        (
            "secretsync.io_clusterstores.yaml",
            installable(ClusterStore::crd()),
        ),
        (
            "secretsync.io_secretsyncs.yaml",
            installable(SecretSync::crd()),
        ),
        ("secretsync.io_stores.yaml", installable(Store::crd())),
    ]
}

/// The files of `crds/` with their text: each one YAML document opening with `---`, in file-name order, so that
/// `secretsync crd` prints exactly `cat crds/*.yaml`.
pub fn crd_files() -> Result<Vec<(&'static str, String)>, yaml_serde::Error> {
    crds()
        .into_iter()
        .map(|(file, crd)| Ok((file, format!("---\n{}", yaml_serde::to_string(&crd)?))))
        .collect()
}

fn installable(
    crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    fn fix(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(f)) = map.get_mut("format")
                    && f.starts_with("uint")
                {
                    *f = "int64".to_owned();
                }
                map.values_mut().for_each(fix);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(fix),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(crd).expect("CRD serializes");
    fix(&mut value);
    serde_json::from_value(value).expect("CRD deserializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed CRDs are what `kubectl apply` installs: they must be exactly what the Rust types generate,
    /// and `crds/` holds no other file.
    #[test]
    fn committed_crds_match_the_rust_types() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
        let generated = crd_files().expect("CRDs serialize");
        for (file, text) in &generated {
            let committed = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
            assert!(
                *text == committed,
                "crds/{file} is stale: run `make crds` and commit the result"
            );
        }
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .expect("crds/ exists")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let mut expected: Vec<String> = generated.iter().map(|(f, _)| f.to_string()).collect();
        expected.sort();
        assert_eq!(files, expected, "crds/ holds a file no Rust type generates");
    }

    /// Every object is cached by the controller and costs the API server's CEL rules in proportion to its
    /// bounds: every string has a `maxLength` (or is one of an enum), every list a `maxItems`, every map a
    /// `maxProperties`.
    #[test]
    fn every_string_list_and_map_of_the_crds_is_bounded() {
        fn walk(schema: &serde_json::Value, path: &str, unbounded: &mut Vec<String>) {
            let Some(s) = schema.as_object() else { return };
            let has = |k: &str| s.contains_key(k);
            match s.get("type").and_then(|t| t.as_str()) {
                Some("string") if !has("maxLength") && !has("enum") && !has("format") => {
                    unbounded.push(format!("{path}: string"))
                }
                Some("array") if !has("maxItems") => unbounded.push(format!("{path}: list")),
                Some("object") if has("additionalProperties") && !has("maxProperties") => {
                    unbounded.push(format!("{path}: map"))
                }
                _ => {}
            }
            if let Some(items) = s.get("items") {
                walk(items, &format!("{path}[]"), unbounded);
            }
            if let Some(values) = s.get("additionalProperties") {
                walk(values, &format!("{path}{{}}"), unbounded);
            }
            for (name, property) in s
                .get("properties")
                .and_then(|p| p.as_object())
                .into_iter()
                .flatten()
            {
                walk(property, &format!("{path}.{name}"), unbounded);
            }
            for alternatives in ["anyOf", "oneOf", "allOf"] {
                for alternative in s
                    .get(alternatives)
                    .and_then(|a| a.as_array())
                    .into_iter()
                    .flatten()
                {
                    walk(alternative, path, unbounded);
                }
            }
        }
        let mut unbounded = Vec::new();
        for (file, crd) in crds() {
            for version in &crd.spec.versions {
                let schema = serde_json::to_value(&version.schema).expect("a schema");
                walk(&schema["openAPIV3Schema"], file, &mut unbounded);
            }
        }
        assert!(unbounded.is_empty(), "unbounded: {unbounded:#?}");
    }

    #[test]
    fn remote_name_defaults_to_object_name() {
        let mut t: Target =
            serde_json::from_value(serde_json::json!({"storeRef": {"kind": "Store", "name": "s"}}))
                .unwrap();
        assert_eq!(t.remote_name("obj"), "obj");
        t.remote_name = Some("other".into());
        assert_eq!(t.remote_name("obj"), "other");
    }

    #[test]
    fn dialect_names_round_trip() {
        for d in DialectKind::ALL {
            let v = serde_json::to_value(d).unwrap();
            assert_eq!(v, serde_json::Value::String(d.as_str().into()));
        }
    }
}
