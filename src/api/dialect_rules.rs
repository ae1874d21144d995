//! What each dialect requires of where it connects, as CEL rules: one table for a store's spec and for a
//! SecretSync's inline target, which hold the same fields.

use schemars::Schema;
use serde_json::{Value, json};

/// (dialect, CEL condition it needs, what the condition asks for in words).
const REQUIREMENTS: [(&str, &str, &str); 11] = [
    (
        "AzureKeyVault",
        "has(self.endpoint)",
        "endpoint (the vault URL, https://<vault>.vault.azure.net)",
    ),
    (
        "ServiceFabricMesh",
        "has(self.endpoint)",
        "endpoint (the cluster's HTTP gateway URL)",
    ),
    (
        "TencentSSM",
        "has(self.tencentSSM) && has(self.tencentSSM.region)",
        "tencentSSM.region",
    ),
    (
        "TencentSSM",
        "has(self.credentialsRef)",
        "credentialsRef (secretId and secretKey)",
    ),
    (
        "AWSSecretsManager",
        "has(self.awsSecretsManager) && has(self.awsSecretsManager.region)",
        "awsSecretsManager.region",
    ),
    (
        "AWSSecretsManager",
        "has(self.credentialsRef) || (has(self.awsSecretsManager) && has(self.awsSecretsManager.roleArn))",
        "credentialsRef (accessKeyId and secretAccessKey) or awsSecretsManager.roleArn with a store's serviceAccountRef",
    ),
    (
        "AzureKeyVault",
        "has(self.credentialsRef)",
        "credentialsRef (tenantId and clientId, with a client secret, a certificate or a store's serviceAccountRef)",
    ),
    (
        "Barbican",
        "has(self.credentialsRef) || (has(self.barbican) && has(self.barbican.projectId))",
        "credentialsRef (Keystone credentials) or barbican.projectId (no-auth mode)",
    ),
    (
        "Barbican",
        "has(self.credentialsRef) || has(self.endpoint)",
        "endpoint in no-auth mode (without credentialsRef)",
    ),
    (
        "Vault",
        "has(self.endpoint)",
        "endpoint (the Vault server's address)",
    ),
    (
        "Vault",
        "has(self.credentialsRef) || (has(self.vault) && has(self.vault.kubernetes))",
        "credentialsRef (token, or roleId and secretId) or vault.kubernetes with a store's serviceAccountRef",
    ),
];

/// Each dialect's settings block, by field name.
const SETTINGS: [(&str, &str); 7] = [
    ("azureKeyVault", "AzureKeyVault"),
    ("serviceFabricMesh", "ServiceFabricMesh"),
    ("barbican", "Barbican"),
    ("dockerSwarm", "DockerSwarm"),
    ("tencentSSM", "TencentSSM"),
    ("awsSecretsManager", "AWSSecretsManager"),
    ("vault", "Vault"),
];

/// The rules for an object whose `dialect` may be absent (`optional`) and whose fields are named in messages with
/// `prefix` (`spec.target.` on a SecretSync, nothing on a store).
fn rules(optional: bool, prefix: &str, settings: &[&str]) -> Vec<Value> {
    let guard = if optional {
        "!has(self.dialect) || "
    } else {
        ""
    };
    let needs = REQUIREMENTS.iter().map(|(dialect, condition, what)| {
        json!({
            "rule": format!("{guard}self.dialect != '{dialect}' || ({condition})"),
            "message": format!("{dialect} needs {prefix}{what}"),
        })
    });
    let only = SETTINGS
        .iter()
        .filter(|(field, _)| settings.contains(field))
        .map(|(field, dialect)| {
            json!({
                "rule": format!("!has(self.{field}) || {guard}self.dialect == '{dialect}'"),
                "message": format!("{prefix}{field} is only valid with dialect {dialect}"),
            })
        });
    needs.chain(only).collect()
}

fn append(schema: &mut Schema, rules: Vec<Value>) {
    let key = "x-kubernetes-validations";
    let mut all = match schema.remove(key) {
        Some(Value::Array(existing)) => existing,
        _ => Vec::new(),
    };
    all.extend(rules);
    schema.insert(key.to_owned(), Value::Array(all));
}

/// A store's spec: the dialect is always set.
pub fn for_store(schema: &mut Schema) {
    let settings = [
        "azureKeyVault",
        "serviceFabricMesh",
        "barbican",
        "tencentSSM",
        "awsSecretsManager",
        "vault",
    ];
    append(schema, rules(false, "", &settings));
}

/// A SecretSync's target: the dialect is set only for an inline target.
pub fn for_inline_target(schema: &mut Schema) {
    let settings = SETTINGS.map(|(field, _)| field);
    append(schema, rules(true, "spec.target.", &settings));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_rules_are_guarded_by_the_dialect_and_name_spec_target() {
        let inline = rules(true, "spec.target.", &["barbican"]);
        assert_eq!(inline.len(), REQUIREMENTS.len() + 1);
        assert_eq!(
            inline[0]["rule"],
            "!has(self.dialect) || self.dialect != 'AzureKeyVault' || (has(self.endpoint))"
        );
        assert_eq!(
            inline[0]["message"],
            "AzureKeyVault needs spec.target.endpoint (the vault URL, https://<vault>.vault.azure.net)"
        );
        assert_eq!(
            inline.last().unwrap()["rule"],
            "!has(self.barbican) || !has(self.dialect) || self.dialect == 'Barbican'"
        );
        let store = rules(false, "", &[]);
        assert_eq!(
            store[2]["rule"],
            "self.dialect != 'TencentSSM' || (has(self.tencentSSM) && has(self.tencentSSM.region))"
        );
    }
}
