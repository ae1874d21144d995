//! `provider.aws` with `service: SecretsManager` → dialect `AWSSecretsManager`, and how its PushSecrets' metadata
//! reads. Parameter Store has no SecretSync dialect.

use serde_json::{Map, Value, json};

use super::Notes;
use super::stores::{
    Provider, ProviderOut, StoreCtx, Wanted, credentials_ref, placeholder, service_account_ref,
};
use super::unknown_keys;

const KNOWN: &[&str] = &[
    "service",
    "auth",
    "role",
    "region",
    "secretsManager",
    "prefix",
];

pub fn store(p: &Value, ctx: &mut StoreCtx<'_>) -> Option<ProviderOut> {
    let service = p["service"].as_str().unwrap_or("");
    if service != "SecretsManager" {
        ctx.notes.dropped(format!(
            "provider.aws.service `{service}` has no SecretSync dialect (AWS Secrets Manager has: \
             `service: SecretsManager`); the PushSecrets that use this store are not converted either"
        ));
        return None;
    }
    let mut spec = Map::new();
    spec.insert("dialect".into(), json!("AWSSecretsManager"));
    let mut settings = Map::new();
    match p["region"].as_str() {
        Some(region) => {
            settings.insert("region".into(), json!(region));
        }
        None => ctx
            .notes
            .dropped("provider.aws.region is missing: set spec.awsSecretsManager.region"),
    }
    let role = p["role"].as_str().filter(|r| !r.is_empty());
    let auth = &p["auth"];
    if auth["secretRef"].is_object() {
        let r = &auth["secretRef"];
        let mut wanted = vec![
            Wanted::Selector("secretAccessKey", &r["secretAccessKeySecretRef"]),
            Wanted::Selector("accessKeyId", &r["accessKeyIDSecretRef"]),
        ];
        if r["sessionTokenSecretRef"].is_object() {
            wanted.push(Wanted::Selector(
                "sessionToken",
                &r["sessionTokenSecretRef"],
            ));
        }
        spec.insert("credentialsRef".into(), credentials_ref(&wanted, ctx));
        if let Some(role) = role {
            ctx.notes.dropped(format!(
                "provider.aws.role `{role}` with access keys: SecretSync assumes a role only with a ServiceAccount's \
                 token (serviceAccountRef); the keys are used as they are"
            ));
        }
    } else if auth["jwt"]["serviceAccountRef"].is_object() {
        match role {
            Some(role) => {
                if let Some(sa) = service_account_ref(
                    &auth["jwt"]["serviceAccountRef"],
                    Some("sts.amazonaws.com"),
                    ctx,
                ) {
                    spec.insert("serviceAccountRef".into(), sa);
                    settings.insert("roleArn".into(), json!(role));
                }
                ctx.notes.dropped(format!(
                    "ESO assumed the role annotated on the ServiceAccount (eks.amazonaws.com/role-arn), then `{role}`; \
                     SecretSync assumes `{role}` directly with the ServiceAccount's token: its trust policy must trust \
                     the cluster's OIDC provider for that ServiceAccount"
                ));
            }
            None => {
                spec.insert("credentialsRef".into(), placeholder(ctx));
                ctx.notes.dropped(
                    "ESO assumed the role annotated on the ServiceAccount (eks.amazonaws.com/role-arn): replace \
                     spec.credentialsRef with spec.serviceAccountRef (audience sts.amazonaws.com) and \
                     spec.awsSecretsManager.roleArn set to that role",
                )
            }
        }
    } else {
        spec.insert("credentialsRef".into(), placeholder(ctx));
        ctx.notes.dropped(
            "no provider.aws.auth: ESO used the controller's own AWS credentials; SecretSync needs \
             spec.credentialsRef (accessKeyId, secretAccessKey) or spec.serviceAccountRef with \
             awsSecretsManager.roleArn",
        );
    }
    if !settings.is_empty() {
        spec.insert("awsSecretsManager".into(), Value::Object(settings));
    }
    let mut per_secret = Map::new();
    let sm = &p["secretsManager"];
    if sm["forceDeleteWithoutRecovery"].as_bool() == Some(true) {
        per_secret.insert("forceDeleteWithoutRecovery".into(), json!(true));
    }
    if let Some(days) = sm["recoveryWindowInDays"].as_u64().filter(|d| *d > 0) {
        per_secret.insert("recoveryWindowDays".into(), json!(days));
    }
    if !per_secret.is_empty() {
        ctx.notes.info(
            "provider.aws.secretsManager is a per-secret setting in SecretSync: the SecretSyncs converted with \
             this store carry it (target.awsSecretsManager)",
        );
    }
    let prefix = p["prefix"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    for field in unknown_keys(p, KNOWN) {
        ctx.notes
            .dropped(format!("provider.aws.{field} has no SecretSync equivalent"));
    }
    Some(ProviderOut {
        provider: Provider::AwsSecretsManager,
        spec,
        name_prefix: prefix,
        per_secret,
    })
}

/// The PushSecretMetadata `spec` of a Secrets Manager push: `tags` → labels, `description`, `kmsKeyId`;
/// `secretPushFormat` and `resourcePolicy` have no equivalent.
pub fn metadata(spec: &Value, target: &mut Map<String, Value>, notes: &mut Notes) {
    super::push::tags_to_labels(&spec["tags"], target, notes);
    if let Some(d) = spec["description"].as_str() {
        target.insert("description".into(), json!(d));
    }
    // ESO's own snippets spell it kmsKeyID; Go's JSON decoding ignores the case.
    if let Some(k) = spec["kmsKeyId"].as_str().or(spec["kmsKeyID"].as_str()) {
        let settings = target
            .entry("awsSecretsManager")
            .or_insert_with(|| json!({}));
        settings["kmsKeyId"] = json!(k);
    }
    match spec["secretPushFormat"].as_str() {
        Some("string") => {}
        _ => notes.info(
            "ESO wrote this value as SecretBinary (its default without `secretPushFormat: string`); SecretSync \
             writes text values as SecretString",
        ),
    }
    for field in unknown_keys(
        spec,
        &[
            "tags",
            "description",
            "kmsKeyId",
            "kmsKeyID",
            "secretPushFormat",
        ],
    ) {
        notes.dropped(format!(
            "data[].metadata.spec.{field} has no SecretSync equivalent for Secrets Manager"
        ));
    }
}
