//! `provider.azurekv` → dialect `AzureKeyVault`, and how its PushSecrets' remote keys and metadata read.

use serde_json::{Map, Value, json};

use super::Notes;
use super::stores::{
    Provider, ProviderOut, StoreCtx, Wanted, credentials_ref, placeholder, service_account_ref,
};
use super::unknown_keys;

const KNOWN: &[&str] = &[
    "authType",
    "vaultUrl",
    "tenantId",
    "environmentType",
    "authSecretRef",
    "serviceAccountRef",
    "identityId",
    "useAzureSDK",
    "customCloudConfig",
];

pub fn store(p: &Value, ctx: &mut StoreCtx<'_>) -> Option<ProviderOut> {
    let mut spec = Map::new();
    spec.insert("dialect".into(), json!("AzureKeyVault"));
    match p["vaultUrl"].as_str() {
        Some(url) => {
            spec.insert("endpoint".into(), json!(url.trim_end_matches('/')));
        }
        None => ctx
            .notes
            .dropped("provider.azurekv.vaultUrl is missing: set spec.endpoint to the vault's URL"),
    }
    if let Some(host) = authority_host(p, &mut ctx.notes) {
        spec.insert("azureKeyVault".into(), json!({ "authorityHost": host }));
    }
    let auth = &p["authSecretRef"];
    let tenant = match (&auth["tenantId"], p["tenantId"].as_str()) {
        (sel, _) if sel.is_object() => Some(Wanted::Selector("tenantId", sel)),
        (_, Some(t)) => Some(Wanted::Literal("tenantId", t)),
        _ => None,
    };
    match p["authType"].as_str().unwrap_or("ServicePrincipal") {
        "ServicePrincipal" => {
            let mut wanted = Vec::new();
            // The secret part first: its Secret becomes the credentials Secret.
            if auth["clientSecret"].is_object() {
                wanted.push(Wanted::Selector("clientSecret", &auth["clientSecret"]));
            }
            if auth["clientCertificate"].is_object() {
                wanted.push(Wanted::Selector(
                    "clientCertificate",
                    &auth["clientCertificate"],
                ));
            }
            if auth["clientId"].is_object() {
                wanted.push(Wanted::Selector("clientId", &auth["clientId"]));
            }
            wanted.extend(tenant);
            spec.insert("credentialsRef".into(), credentials_ref(&wanted, ctx));
        }
        "WorkloadIdentity" => {
            if p["serviceAccountRef"].is_object() {
                if let Some(sa) = service_account_ref(&p["serviceAccountRef"], None, ctx) {
                    spec.insert("serviceAccountRef".into(), sa);
                }
            } else {
                ctx.notes.dropped(
                    "workload identity without serviceAccountRef used the controller's own identity: a ClusterStore \
                     does that with `workloadIdentity: \"true\"` in its credentials Secret; a Store names a \
                     ServiceAccount (spec.serviceAccountRef)",
                );
            }
            if auth["clientId"].is_object() {
                let mut wanted = vec![Wanted::Selector("clientId", &auth["clientId"])];
                wanted.extend(tenant);
                spec.insert("credentialsRef".into(), credentials_ref(&wanted, ctx));
            } else {
                let tenant = match p["tenantId"].as_str() {
                    Some(t) => format!("`tenantId: {t}`"),
                    None => "`tenantId`".to_owned(),
                };
                spec.insert("credentialsRef".into(), placeholder(ctx));
                ctx.notes.dropped(format!(
                    "SecretSync reads the client and tenant IDs from the credentials Secret (ESO took them from the \
                     ServiceAccount's annotations azure.workload.identity/client-id and tenant-id where the store \
                     did not give them): it needs `clientId` and {tenant}"
                ));
            }
        }
        other => {
            spec.insert("credentialsRef".into(), placeholder(ctx));
            ctx.notes.dropped(format!(
                "provider.azurekv.authType `{other}` has no SecretSync equivalent: use a service principal or \
                 workload identity"
            ));
        }
    }
    if p["identityId"].is_string() {
        ctx.notes.dropped(
            "provider.azurekv.identityId (a managed identity) has no SecretSync equivalent",
        );
    }
    for field in unknown_keys(p, KNOWN) {
        ctx.notes.dropped(format!(
            "provider.azurekv.{field} has no SecretSync equivalent"
        ));
    }
    Some(ProviderOut {
        provider: Provider::AzureKeyVault,
        spec,
        name_prefix: None,
        per_secret: Map::new(),
    })
}

/// `environmentType` (and an Azure Stack's `customCloudConfig`) → the Entra ID authority host.
fn authority_host(p: &Value, notes: &mut Notes) -> Option<String> {
    let host = match p["environmentType"].as_str().unwrap_or("PublicCloud") {
        "PublicCloud" => return None,
        "USGovernmentCloud" => "https://login.microsoftonline.us",
        "ChinaCloud" => "https://login.chinacloudapi.cn",
        "GermanCloud" => "https://login.microsoftonline.de",
        "AzureStackCloud" => match p["customCloudConfig"]["activeDirectoryEndpoint"].as_str() {
            Some(endpoint) => return Some(endpoint.trim_end_matches('/').to_owned()),
            None => {
                notes.dropped(
                    "AzureStackCloud without customCloudConfig.activeDirectoryEndpoint: set \
                     spec.azureKeyVault.authorityHost",
                );
                return None;
            }
        },
        other => {
            notes.dropped(format!(
                "environmentType `{other}` is unknown: set spec.azureKeyVault.authorityHost"
            ));
            return None;
        }
    };
    Some(host.to_owned())
}

/// ESO's remote key → the Key Vault secret name: `secret/<name>` and `<name>` are secrets; `key/` and `cert/`
/// (keys and certificates) are not pushed by SecretSync.
pub fn remote_name(remote_key: &str, notes: &mut Notes) -> Option<String> {
    if let Some(name) = remote_key.strip_prefix("secret/") {
        return Some(name.to_owned());
    }
    if remote_key.starts_with("key/") || remote_key.starts_with("cert/") {
        notes.dropped(format!(
            "remoteKey `{remote_key}` is a Key Vault key or certificate: SecretSync writes secrets only"
        ));
        return None;
    }
    Some(remote_key.to_owned())
}

/// The PushSecretMetadata `spec` of a Key Vault push: `tags` → labels; `expirationDate` has no equivalent.
pub fn metadata(spec: &Value, target: &mut Map<String, Value>, notes: &mut Notes) {
    super::push::tags_to_labels(&spec["tags"], target, notes);
    for field in unknown_keys(spec, &["tags"]) {
        notes.dropped(format!(
            "data[].metadata.spec.{field} has no SecretSync equivalent for Key Vault"
        ));
    }
}
