//! `Store` and `ClusterStore`: where values and credentials may go, owned by whoever administers the store.
//!
//! A team's SecretSync names a store (`spec.target.storeRef`); everything that decides where bytes and credentials
//! are sent (dialect, endpoint, credentials, CA, identity provider, region, rate) lives here, so nothing a team
//! writes can redirect them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::DialectKind;

/// Where one store is and how SecretSync authenticates to it. Shared by `Store` and `ClusterStore`.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "secretsync.io",
    version = "v1alpha1",
    kind = "Store",
    plural = "stores",
    shortname = "sstore",
    category = "secretsync",
    namespaced,
    status = "StoreStatus",
    printcolumn = r#"{"name":"Dialect","type":"string","jsonPath":".spec.dialect"}"#,
    printcolumn = r#"{"name":"Endpoint","type":"string","jsonPath":".spec.endpoint"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = Rule::new("!has(self.spec.credentialsRef) || !has(self.spec.credentialsRef.namespace)").message("a Store reads its credentials from its own namespace: remove spec.credentialsRef.namespace (a ClusterStore names one)"),
    validation = Rule::new("!has(self.spec.serviceAccountRef) || !has(self.spec.serviceAccountRef.namespace)").message("a Store uses a ServiceAccount of its own namespace: remove spec.serviceAccountRef.namespace (a ClusterStore names one)")
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!has(self.caBundle) || self.dialect in ['AzureKeyVault', 'ServiceFabricMesh', 'DockerSwarm', 'TencentSSM', 'AWSSecretsManager', 'Vault']", "message": "caBundle is used by AzureKeyVault, ServiceFabricMesh, DockerSwarm, TencentSSM, AWSSecretsManager and Vault; Barbican trusts the system's roots"},
    {"rule": "!has(self.serviceAccountRef) || self.dialect in ['AzureKeyVault', 'AWSSecretsManager', 'Vault']", "message": "serviceAccountRef (workload identity) is supported with dialects AzureKeyVault, AWSSecretsManager and Vault only"},
    {"rule": "self.dialect != 'Vault' || has(self.serviceAccountRef) == (has(self.vault) && has(self.vault.kubernetes))", "message": "Vault signs in with serviceAccountRef through vault.kubernetes: set both or neither"},
    {"rule": "!has(self.caBundle) || self.dialect != 'AWSSecretsManager' || !has(self.endpoint) || self.endpoint.startsWith('https://')", "message": "AWSSecretsManager uses caBundle over https:// only"},
    {"rule": "self.dialect != 'AWSSecretsManager' || !has(self.serviceAccountRef) || (has(self.awsSecretsManager) && has(self.awsSecretsManager.roleArn))", "message": "AWSSecretsManager with serviceAccountRef needs awsSecretsManager.roleArn (the role to assume)"}
]))]
#[schemars(transform = super::dialect_rules::for_store)]
pub struct StoreSpec {
    /// The store's API: `ServiceFabricMesh`, `AzureKeyVault`, `Barbican`, `DockerSwarm`, `TencentSSM`,
    /// `AWSSecretsManager` or `Vault`.
    pub dialect: DialectKind,

    /// Base URL of the store. AzureKeyVault: the vault URL. ServiceFabricMesh: the HTTP gateway. Barbican: the
    /// key-manager URL (taken from the Keystone catalog when omitted). DockerSwarm: `unix:///path/docker.sock` or
    /// `tcp://host:port` (default: the local Docker socket). TencentSSM: the API endpoint (default:
    /// `https://ssm.tencentcloudapi.com`). AWSSecretsManager: the API endpoint (default:
    /// `https://secretsmanager.<region>.amazonaws.com`). Vault: the server's address. A scheme, a host, a port and a path prefix only: no user
    /// information, query or fragment. A namespaced Store may reach only its dialect's public cloud hosts and the hosts the
    /// operator lists in `--namespaced-store-hosts`, and never a unix socket (`EndpointNotAllowed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^(https?|unix|tcp)://[^@?#\s\x00-\x1f\x7f]+$"),
        length(max = 2048)
    )]
    pub endpoint: Option<String>,

    /// The Secret holding the store's credentials; its keys depend on the dialect (see the README). A `Store`
    /// reads it from its own namespace; a `ClusterStore` names the namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_ref: Option<StoreSecretRef>,

    /// Which remote secrets a SecretSync with `adoptExisting: true` may take over through this store: `Never`
    /// (the default: a remote secret SecretSync did not write is a `Conflict`), `Unmarked` (secrets without
    /// SecretSync's ownership marker, such as ones written by hand or by Terraform) or `UnmarkedOrOrphaned` (also
    /// secrets whose SecretSync no longer exists, such as one deleted with `deletionPolicy: Retain`). A SecretSync
    /// asking for more reads `AdoptionNotAllowed`. In a ClusterStore shared by several teams, keep `Never`.
    #[serde(default, skip_serializing_if = "is_never")]
    pub adoption: Adoption,

    /// The name each SecretSync's remote secret gets in this store, from the placeholders `{namespace}` and `{name}`
    /// (the SecretSync's) and `{remoteName}` (its `spec.target.remoteName`, or its name). Default: in a
    /// ClusterStore `{namespace}-{remoteName}`, so that two teams writing `db` get `team-a-db` and `team-b-db`
    /// instead of fighting over one secret; in a Store `{remoteName}`. A ClusterStore that must keep the names as
    /// written sets `{remoteName}` (and admits one team only, or lets ownership markers settle who was first: the
    /// second gets `Conflict`). The result must follow the dialect's naming rules (`InvalidSpec` otherwise) and is
    /// shown in `status.remote.name`. Changing the template moves every SecretSync of the store to its new name, as
    /// a change of `remoteName` does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(
            pattern = r"^([^{}]|\{(namespace|name|remoteName)\})*\{(name|remoteName)\}([^{}]|\{(namespace|name|remoteName)\})*$"
        ),
        length(min = 1, max = 253)
    )]
    pub remote_name_template: Option<String>,

    /// PEM certificates of the CA that signed the store's TLS certificate (and, for an AzureKeyVault ClusterStore,
    /// the identity provider's: a namespaced Store's CA never vouches for where a client secret or a token goes),
    /// for AzureKeyVault, ServiceFabricMesh, DockerSwarm and TencentSSM. Without it the system's roots are used. AzureKeyVault and TencentSSM trust it next to the system's roots (TencentSSM over
    /// `https://` only); ServiceFabricMesh and DockerSwarm trust only it. It takes the place of a `ca.crt` key in
    /// the credentials Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 65536))]
    pub ca_bundle: Option<String>,

    /// Workload identity (AzureKeyVault; AWSSecretsManager with `awsSecretsManager.roleArn`, where the token is
    /// exchanged with STS `AssumeRoleWithWebIdentity`: set `audience: sts.amazonaws.com`; Vault with
    /// `vault.kubernetes`, signing in to Vault's Kubernetes auth method with the audience its role expects): SecretSync requests a
    /// token for this ServiceAccount (TokenRequest) and exchanges it at the identity provider, which therefore sees `system:serviceaccount:<namespace>:<name>`
    /// and never the controller's own identity. A `Store` names a ServiceAccount of its own namespace. Only a
    /// `ClusterStore` may use the controller's own identity (`workloadIdentity: "true"` in its credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_ref: Option<ServiceAccountRef>,

    /// Connection settings for dialect AzureKeyVault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_key_vault: Option<AzureKeyVaultStoreSettings>,

    /// Connection settings for dialect ServiceFabricMesh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_fabric_mesh: Option<ServiceFabricMeshStoreSettings>,

    /// Connection settings for dialect Barbican.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barbican: Option<BarbicanStoreSettings>,

    /// Connection settings for dialect TencentSSM.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "tencentSSM"
    )]
    pub tencent_ssm: Option<TencentSsmStoreSettings>,

    /// Connection settings for dialect AWSSecretsManager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_secrets_manager: Option<AwsSecretsManagerStoreSettings>,

    /// Connection settings for dialect Vault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<super::VaultStoreSettings>,

    /// How fast SecretSync may call this store, across every SecretSync that uses it. Without it the
    /// controller's defaults apply (`--backend-rate`, `--backend-burst`; TencentSSM: its published limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,

    /// Only Secrets whose labels match this selector may be pushed through this store. A SecretSync whose
    /// source Secret does not match sends nothing and reports `SourceNotAllowed`. Without it any Secret of an
    /// admitted namespace may be pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = super::bounds::label_selector)]
    pub source_selector: Option<LabelSelector>,
}

/// A store for the whole cluster, set up by a platform admin: SecretSyncs in the namespaces its `conditions`
/// admit may use it.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "secretsync.io",
    version = "v1alpha1",
    kind = "ClusterStore",
    plural = "clusterstores",
    shortname = "csstore",
    category = "secretsync",
    status = "StoreStatus",
    printcolumn = r#"{"name":"Dialect","type":"string","jsonPath":".spec.dialect"}"#,
    printcolumn = r#"{"name":"Endpoint","type":"string","jsonPath":".spec.endpoint"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = Rule::new("!has(self.spec.credentialsRef) || has(self.spec.credentialsRef.namespace)").message("a ClusterStore names the namespace of its credentials Secret: set spec.credentialsRef.namespace"),
    validation = Rule::new("!has(self.spec.serviceAccountRef) || has(self.spec.serviceAccountRef.namespace)").message("a ClusterStore names the namespace of its ServiceAccount: set spec.serviceAccountRef.namespace")
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStoreSpec {
    #[serde(flatten)]
    pub store: StoreSpec,

    /// Which namespaces may use this store: any term admitting a namespace admits it. Without conditions every
    /// namespace may.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub conditions: Vec<StoreCondition>,
}

/// One way a namespace is admitted to a `ClusterStore`: it is listed in `namespaces`, or its labels match
/// `namespaceSelector`.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoreCondition {
    /// Namespaces admitted by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(min = 1, max = 63)))]
    pub namespaces: Vec<String>,
    /// Namespaces admitted by their labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = super::bounds::label_selector)]
    pub namespace_selector: Option<LabelSelector>,
}

/// A Secret holding a store's credentials.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoreSecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the Secret: required on a `ClusterStore`, not allowed on a `Store`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
}

/// A ServiceAccount whose tokens a store exchanges for the store's own.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountRef {
    /// Name of the ServiceAccount.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the ServiceAccount: required on a `ClusterStore`, not allowed on a `Store`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
    /// Audience of the requested token (default `api://AzureADTokenExchange`, what Microsoft Entra ID expects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub audience: Option<String>,
}

/// Which remote secrets a store lets `adoptExisting` take over.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Adoption {
    #[default]
    Never,
    Unmarked,
    UnmarkedOrOrphaned,
}

fn is_never(a: &Adoption) -> bool {
    *a == Adoption::Never
}

/// Azure Key Vault connection settings.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureKeyVaultStoreSettings {
    /// Microsoft Entra ID authority host (default `https://login.microsoftonline.com`); set it for sovereign
    /// clouds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https://.+$"), length(max = 2048))]
    pub authority_host: Option<String>,
    /// Key Vault REST `api-version` (default: the current stable one, `2026-04-01`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // Letters, digits, dots and dashes only: it goes into the query string of every request.
    #[schemars(regex(pattern = r"^[0-9A-Za-z.-]+$"), length(min = 1, max = 32))]
    pub api_version: Option<String>,
    /// Let SecretSyncs using this store purge (delete for good) their own soft-deleted secrets with
    /// `azureKeyVault.purge: true`. Off by default: a purge cannot be undone. Whatever it says, SecretSync
    /// recovers or purges only soft-deleted secrets it wrote itself for that SecretSync.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_purge: bool,
}

/// Service Fabric connection settings.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceFabricMeshStoreSettings {
    /// `api-version` query parameter (default `6.4-preview`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // Letters, digits, dots and dashes only: it goes into the query string of every request.
    #[schemars(regex(pattern = r"^[0-9A-Za-z.-]+$"), length(min = 1, max = 32))]
    pub api_version: Option<String>,
}

/// OpenStack Barbican connection settings.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BarbicanStoreSettings {
    /// Project ID sent as `X-Project-Id` in no-auth mode (deployments without Keystone). Used only without
    /// credentialsRef; `endpoint` is then required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub project_id: Option<String>,
    /// Keystone catalog interface of the key-manager endpoint: `public` (default), `internal` or `admin`.
    /// Ignored when `endpoint` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(public|internal|admin)$"), length(max = 8))]
    pub interface: Option<String>,
    /// Keystone catalog region of the key-manager endpoint (default: the first one listed). Ignored when
    /// `endpoint` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub region: Option<String>,
}

/// Tencent Cloud Secrets Manager connection settings.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TencentSsmStoreSettings {
    /// Region, sent as `X-TC-Region` (for example `ap-guangzhou`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub region: Option<String>,
}

/// AWS Secrets Manager connection settings.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsSecretsManagerStoreSettings {
    /// The AWS region (for example `eu-west-1`): it names the default endpoint and is part of every signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z0-9-]+$"), length(min = 1, max = 32))]
    pub region: Option<String>,
    /// With `serviceAccountRef`: the IAM role assumed with the ServiceAccount's token (STS
    /// `AssumeRoleWithWebIdentity`, as EKS's IAM roles for service accounts do). The role's trust policy decides
    /// which ServiceAccounts may assume it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^arn:[a-z-]+:iam::[0-9]{12}:role/.+$"),
        length(min = 20, max = 2048)
    )]
    pub role_arn: Option<String>,
    /// The STS endpoint for web identity (default `https://sts.<region>.amazonaws.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^https?://[^@?#\s\x00-\x1f\x7f]+$"),
        length(max = 2048)
    )]
    pub sts_endpoint: Option<String>,
}

/// A token bucket shared by every SecretSync using the store.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    /// Sustained requests per second.
    #[schemars(range(min = 1, max = 10000))]
    pub requests_per_second: u32,
    /// Requests allowed at once above the sustained rate (default: one second's worth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub burst: Option<u32>,
}

/// Observed state of a store, written by the controller.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoreStatus {
    /// `Ready`: True when the last periodic check could read the credentials and reach the store with them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    #[schemars(transform = super::bounds::conditions)]
    pub conditions: Vec<Condition>,
}

/// Which store a SecretSync uses.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoreRef {
    /// `Store` (in the SecretSync's namespace) or `ClusterStore`.
    pub kind: StoreKind,
    /// Name of the store.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// The two kinds of store.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum StoreKind {
    /// A namespaced store, usable from its own namespace only.
    Store,
    /// A cluster-wide store, usable from the namespaces its conditions admit.
    ClusterStore,
}

impl StoreKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Store => "Store",
            StoreKind::ClusterStore => "ClusterStore",
        }
    }
}
