//! Every reason a `Ready` condition can carry, with what it means and what to do: the one list that the book's
//! reference (`secretsync docs`) prints and that a test holds against the reasons the code emits.

/// One row: reasons that share a meaning, their class, the meaning and what to do. Text is Markdown; links are
/// relative to the book's `reference/` directory.
#[derive(Clone, Copy, Debug)]
pub struct ReasonDoc {
    pub reasons: &'static [&'static str],
    /// For the controller's reasons the phase they go with; for the dialects' the error class, which decides the
    /// retry.
    pub class: &'static str,
    pub meaning: &'static str,
    pub action: &'static str,
}

const fn row(
    reasons: &'static [&'static str],
    class: &'static str,
    meaning: &'static str,
    action: &'static str,
) -> ReasonDoc {
    ReasonDoc {
        reasons,
        class,
        meaning,
        action,
    }
}

/// Reasons the controller itself sets.
pub const CONTROLLER: &[ReasonDoc] = &[
    row(
        &["Synced"],
        "Ready",
        "`Ready=True`: the remote secret matches the source",
        "nothing",
    ),
    row(
        &["Observing"],
        "Observing",
        "`Ready=True`: `spec.mode: Observe`; the store was read and nothing written. The `InSync` condition \
         (reasons below) says whether it matches the source and `status.plan` what `Sync` would do",
        "read `InSync`; set `mode: Sync` to carry out the plan",
    ),
    row(
        &["Matches", "KeptByPolicy"],
        "InSync=True",
        "observing: the store holds the source's value and metadata under this SecretSync's marker \
         (`KeptByPolicy`: `updatePolicy: IfNotExists` keeps what is there)",
        "nothing",
    ),
    row(
        &["Missing", "ValueDiffers", "MetadataDiffers"],
        "InSync=False",
        "observing: the remote secret is missing, holds another value, or other metadata; `status.plan` says \
         what `Sync` would do (`Create`, `Update`, `UpdateMetadata`, `Adopt`, or `Conflict` for an immutable \
         field). Also the Warning Event when `InSync` becomes False",
        "switch to `mode: Sync`, or find who changes the store",
    ),
    row(
        &["NotOwned"],
        "InSync=False",
        "observing: the remote secret was not written by this SecretSync. With `adoptExisting` and a store whose \
         `adoption` allows it, the plan is `Adopt` (only a different value is written again); otherwise \
         `Conflict`",
        "set `adoptExisting: true` and ask the store's admin for `adoption: Unmarked`, or pick another `remoteName`",
    ),
    row(
        &["StoreCreating", "StoreFailed"],
        "InSync=Unknown",
        "observing: the store reports the remote secret as still being created, or as failed",
        "wait, or look at the store",
    ),
    row(
        &["ExistsNotUpdated"],
        "Ready",
        "`Ready=True`: `updatePolicy: IfNotExists` and the remote secret exists; it is not changed",
        "nothing, or switch to `Replace`",
    ),
    row(
        &["Creating"],
        "Creating",
        "the store is still creating the remote secret; polled after 3 s, then with backoff up to every 5 minutes",
        "wait",
    ),
    row(
        &["Suspended"],
        "Ready or Failed (kept)",
        "`spec.suspend` is true; nothing is read or written",
        "set `suspend: false`",
    ),
    row(
        &["SourceNotFound"],
        "Failed",
        "the source Secret is not in the SecretSync's namespace",
        "create it, or fix `source.secretRef.name`",
    ),
    row(
        &["KeyNotFound"],
        "Failed",
        "the source Secret has no such key",
        "fix `source.secretRef.key` or the Secret",
    ),
    row(
        &["SourceEmpty"],
        "Failed",
        "whole-Secret mode and the Secret has no data",
        "add data",
    ),
    row(
        &["CredentialsNotFound"],
        "Failed",
        "the store's `credentialsRef` Secret does not exist",
        "the store's admin creates it (a Store's in the store's namespace, a ClusterStore's in \
         `credentialsRef.namespace`)",
    ),
    row(
        &["StoreNotFound"],
        "Failed",
        "`storeRef` names no Store in the SecretSync's namespace, or no ClusterStore",
        "create the store, or fix `storeRef`",
    ),
    row(
        &["StoreNotAllowed"],
        "Failed",
        "the ClusterStore's `conditions` do not admit the namespace, or a Store's credentials ask for the \
         controller's own identity (`workloadIdentity`), or a serviceAccountRef asks for an audience outside \
         `--token-audiences`",
        "ask the store's admin to admit the namespace; in a Store use `serviceAccountRef`",
    ),
    row(
        &["EndpointNotAllowed"],
        "Failed (on the Store)",
        "a namespaced Store names a host or unix socket outside `--namespaced-store-hosts`; its SecretSyncs read \
         `StoreNotAllowed`",
        "ask the operator to list the host, or use a ClusterStore",
    ),
    row(
        &["TokenNotGranted"],
        "Failed",
        "the API server refused the TokenRequest for the store's `serviceAccountRef`: the ServiceAccount's \
         namespace has not granted the controller that one account",
        "grant it (the Store's message gives the two commands; with Helm, `tokenGrants`)",
    ),
    row(
        &["SourceNotAllowed"],
        "Failed",
        "the source Secret's labels do not match the store's `sourceSelector`",
        "label the Secret as the store asks, or use another store",
    ),
    row(
        &["InlineTargetNotAllowed"],
        "Failed",
        "an inline target (`spec.target.dialect`) and the controller runs without `--allow-inline-targets`",
        "move the target into a store (see \
         [Migrating from inline targets](../guides/migrating.md))",
    ),
    row(
        &["Conflict"],
        "Failed",
        "the remote secret exists but is not this SecretSync's: not created by SecretSync, owned by another \
         SecretSync (not named: in a shared store it may be another team's), or owned by one that no longer \
         exists; also a store's HTTP 409",
        "point two SecretSyncs at different names, or set `adoptExisting: true` to take it over where the store \
         allows it",
    ),
    row(
        &["AdoptionNotAllowed"],
        "Failed",
        "`adoptExisting` asked for a remote secret the store's `spec.adoption` does not let SecretSyncs take \
         (`Never` by default; `Unmarked`; `UnmarkedOrOrphaned`)",
        "use another `remoteName`, or ask the store's admin",
    ),
    row(
        &["ImmutableField"],
        "Failed",
        "a field the store fixes at creation (Service Fabric `contentType`) changed",
        "revert it, or set `serviceFabricMesh.allowReplace: true`",
    ),
    row(
        &["BackendFailed"],
        "Failed",
        "the store reports the remote secret as failed (Service Fabric `status: Failed`)",
        "read the secret resource's `statusDetails` at the store (SecretSync does not repeat the store's text)",
    ),
    row(
        &["DeletionBlocked"],
        "Failed",
        "`deletionPolicy: Delete` and the remote secret cannot be deleted, for example because the store is gone \
         or no longer admits the namespace",
        "fix the cause in the message (recreate or fix the store), or set `deletionPolicy: Retain` to release the \
         object and leave the remote secret. In a namespace being deleted SecretSync lets go by itself after \
         `--cleanup-timeout-seconds` (default 10 minutes), with a Warning Event `RemoteSecretLeft` naming the \
         remote secret",
    ),
    row(
        &["InvalidRefreshInterval"],
        "Failed",
        "`spec.refreshInterval` cannot be used (too large to represent, below `10s` or above `720h`); the API \
         server refuses such values, so the object was written before the CRD said so",
        "set a value in range, or `0s`",
    ),
    row(
        &["InternalError"],
        "Failed",
        "a reconcile of this object panicked (a bug); only this object is affected, and it is retried with backoff",
        "report a bug with the controller log line `panic` (its location)",
    ),
    row(
        &["PreviousRemoteNotDeleted"],
        "Ready",
        "`remoteName` changed under `deletionPolicy: Delete`; the new remote secret is in sync but the old one \
         could not be deleted (retried with the store error's class)",
        "fix the cause in the message (often a missing delete permission), or set `deletionPolicy: Retain` to \
         keep the old one",
    ),
    row(
        &["KubernetesError"],
        "Failed",
        "a Kubernetes API call failed",
        "check RBAC and the API server; retried with backoff",
    ),
    row(
        &["Pending", "ControllerStopping"],
        "Failed",
        "the controller has not yet seen the SecretSync's namespace in its cache, or it is shutting down; \
         retried",
        "nothing, unless it lasts: then check the controller's log",
    ),
    row(
        &["DialectUnavailable", "Invalid", "Internal"],
        "Failed",
        "should not happen (no such dialect in this build, object without namespace or uid, a planned write not \
         carried out)",
        "report a bug with the controller log",
    ),
];

/// Reasons the dialects report for a store's answer; the class decides the retry.
pub const DIALECT: &[ReasonDoc] = &[
    row(
        &["BackendUnreachable"],
        "retry",
        "connect or TLS failure",
        "check the store's endpoint, network policy, DNS, the CA (`caBundle` or `ca.crt`)",
    ),
    row(
        &["CertificateUntrusted"],
        "retry",
        "the store's TLS certificate does not verify against the roots the dialect trusts (the message names why, \
         such as `UnknownIssuer` or `NotValidForName`); Docker Swarm reports it as `BackendUnreachable`",
        "give the CA that signed it as `caBundle` or `ca.crt` (Service Fabric, Key Vault, Tencent, AWS, Docker \
         over TCP), or fix the server's certificate; retried, since a server may be between certificates",
    ),
    row(
        &["BackendTimeout"],
        "retry",
        "the store did not answer, its body included, within the 30 s deadline of one attempt (a store that hangs \
         or trickles)",
        "check the store; a create that timed out is not repeated in place, the next reconcile finds it",
    ),
    row(
        &["Redirected"],
        "permanent",
        "the store answered with a redirect (3xx); SecretSync never follows one, since it would carry credentials \
         and values to a host no store names",
        "set the store's endpoint to the final URL",
    ),
    row(
        &["ResponseTooLarge"],
        "permanent",
        "the store answered with more than 1 MiB; SecretSync stops reading at that point instead of holding it in \
         memory",
        "check that the endpoint is the store's API and not a proxy or file server",
    ),
    row(
        &["Throttled"],
        "retry",
        "HTTP 429, Tencent `RequestLimitExceeded` or AWS `Throttling`",
        "lower the store's `rateLimit` (or `--backend-rate`) or the number of objects per store; waits for \
         `Retry-After`",
    ),
    row(
        &["BackendError"],
        "retry",
        "HTTP 5xx or the store's internal error; also an unreadable reply from Key Vault or Barbican",
        "usually passes; check the store",
    ),
    row(
        &["BadResponse"],
        "retry",
        "the store answered something unexpected",
        "check that the endpoint is really that store",
    ),
    row(
        &["RemoteGone", "SecretNotFound"],
        "retry",
        "the remote secret vanished during a write (Barbican: HTTP 404)",
        "nothing: the next reconcile creates it again",
    ),
    row(
        &["BackendDeleting"],
        "retry",
        "Service Fabric is deleting the resource; Key Vault is still deleting, purging or recovering a secret of \
         that name (`ObjectIsBeingDeleted`, `ObjectIsBeingRecovered`)",
        "wait",
    ),
    row(
        &["StoreSealed"],
        "retry",
        "Vault is sealed (HTTP 503) or answered from a standby that cannot serve the request (429, 473)",
        "unseal Vault, or point the endpoint at the active node or a load balancer in front of it",
    ),
    row(
        &["NotSwarmManager"],
        "retry",
        "Docker 503: the node is not a swarm manager",
        "point the endpoint at a manager",
    ),
    row(
        &["TokenThrottled", "TokenEndpointError"],
        "retry",
        "Key Vault: the Entra ID token endpoint answered 429, 5xx or an unusable reply",
        "usually passes; check `authorityHost`",
    ),
    row(
        &["IdentityProviderError"],
        "retry",
        "AWS: STS could not reach the identity provider that issued the web identity token \
         (`IDPCommunicationError`)",
        "usually passes; otherwise check the cluster's OIDC issuer as AWS sees it",
    ),
    row(
        &["KeystoneError"],
        "retry",
        "Barbican: Keystone answered 429 or 5xx, or a token reply without a token",
        "usually passes; check Keystone",
    ),
    row(
        &["Unauthorized", "Forbidden"],
        "credentials",
        "HTTP 401 / 403, Tencent `UnauthorizedOperation`, AWS `AccessDeniedException`. Key Vault: a 401 after a \
         fresh token; a 403 means the identity lacks the Key Vault Secrets Officer role (or get, list, set, delete, \
         recover and purge on secrets). Barbican: a 401 after a new token; a 403 means the Keystone user has no \
         role that may manage secrets (such as `member`)",
        "fix the credentials or the identity's permissions",
    ),
    row(
        &["CredentialsRejected"],
        "credentials",
        "Tencent `AuthFailure.*` (bad key pair, expired token or signature); AWS: the access key, session token \
         or signature is refused; Vault: the AppRole or Kubernetes sign-in was refused",
        "fix `secretId` / `secretKey` / `token` (Tencent), `accessKeyId` / `secretAccessKey` / `sessionToken` \
         (AWS), `roleId` / `secretId` or the Vault role of `vault.kubernetes` (Vault)",
    ),
    row(
        &["CertificateRefused"],
        "credentials",
        "the store's TLS refused the client certificate (`tls.crt` and `tls.key`), or asked for one and got none",
        "give the store a certificate it trusts",
    ),
    row(
        &["MissingCredentials", "InvalidCredentials"],
        "credentials",
        "a needed key missing, empty or blank (`MissingCredentials`), or not UTF-8, not PEM, `tls.crt` without \
         `tls.key` (`InvalidCredentials`); Key Vault: `tenantId` without `clientId`, more than one of \
         `clientSecret`, `clientCertificate` and `workloadIdentity`, a `clientCertificate` key that is not RSA, a \
         bad `ca.crt`; Barbican: no `authUrl`, no password or application credential, `authUrl` not an \
         `http(s)://` URL",
        "fix the credentials Secret (see the dialect's keys)",
    ),
    row(
        &["WrongTenant"],
        "credentials",
        "Key Vault: the vault's 401 challenge names another tenant than `tenantId`",
        "use the vault's tenant, or a vault of your tenant",
    ),
    row(
        &["TokenRefused"],
        "credentials",
        "Key Vault: the Entra ID token endpoint refused the credentials (HTTP 400, 401, 403 or 404)",
        "fix `tenantId`, `clientId` and the secret or certificate; check `authorityHost`",
    ),
    row(
        &["WebIdentityRefused"],
        "credentials",
        "AWS: STS refused `AssumeRoleWithWebIdentity` with the ServiceAccount token (role, trust policy or \
         audience)",
        "check `awsSecretsManager.roleArn`, the role's trust policy for the ServiceAccount, and \
         `serviceAccountRef.audience` (`sts.amazonaws.com`)",
    ),
    row(
        &["WorkloadIdentityUnavailable"],
        "credentials",
        "Key Vault: `workloadIdentity: \"true\"` but the controller pod has no (readable) \
         `AZURE_FEDERATED_TOKEN_FILE`",
        "set up Azure workload identity for the controller's pod, or use the store's `serviceAccountRef`",
    ),
    row(
        &["KeystoneUnauthorized", "KeystoneForbidden"],
        "credentials",
        "Barbican: Keystone refused the user, password, domain and project, or the application credential (HTTP \
         401 / 403)",
        "fix the credentials Secret or the Keystone user",
    ),
    row(
        &["Unscoped"],
        "credentials",
        "Barbican: Keystone issued a token without a project",
        "set `projectName` or `projectId`",
    ),
    row(
        &["Conflict", "NameTaken", "SecretExists", "VersionExists"],
        "conflict",
        "the store reports the name or version as taken (HTTP 409, Docker 409, Tencent \
         `ResourceInUse.SecretExists`, AWS `ResourceExistsException`, Service Fabric version exists)",
        "usually settled by the next reconcile; otherwise see `Conflict` above",
    ),
    row(
        &["InvalidState", "SecretPendingDeletion"],
        "conflict",
        "AWS: the secret is scheduled for deletion (or its state does not allow the call); \
         `SecretPendingDeletion` when it is not this SecretSync's, so it is not restored",
        "restore it in AWS Secrets Manager, let `adoptExisting` take it as the store's `adoption` allows, or pick \
         another `remoteName`",
    ),
    row(
        &["SoftDeleted"],
        "conflict",
        "Key Vault: the name is held by a soft-deleted secret (`ObjectIsDeletedButRecoverable`) and the recovery \
         or purge has not settled it",
        "usually settled by the next reconcile; otherwise recover or purge it in Key Vault",
    ),
    row(
        &["SoftDeletedNotOwned"],
        "conflict",
        "Key Vault: the name is held by a soft-deleted secret that this SecretSync did not write",
        "recover or purge it in Key Vault, or choose another `remoteName`",
    ),
    row(
        &["PayloadAlreadySet"],
        "conflict",
        "Barbican 409: the secret already has a payload",
        "nothing: SecretSync reads it back and keeps it only if it is this value, or makes a new secret",
    ),
    row(
        &["SecretInUse"],
        "conflict",
        "Docker: a secret that must be removed or re-created is still used by a service",
        "move the services to the name in `status.remote.name`",
    ),
    row(
        &["UpdateOutOfSequence"],
        "conflict",
        "Docker label update raced with another writer",
        "nothing; retried",
    ),
    row(
        &[
            "InvalidName",
            "InvalidSpec",
            "InvalidSetting",
            "MissingSetting",
            "InvalidEndpoint",
        ],
        "permanent",
        "the SecretSync or its store breaks a rule of the store (a `remoteName` the dialect does not accept; Key \
         Vault: endpoint not the vault's `https://` URL alone, bad `apiVersion` or `authorityHost`; Barbican: \
         neither `credentialsRef` nor `barbican.projectId`, no-auth mode without `endpoint`; AWS: no `region`)",
        "fix the SecretSync or the store as the message says",
    ),
    row(
        &["InsecureEndpoint"],
        "permanent",
        "credentials with an `http://` endpoint (Service Fabric), or non-loopback `http://` (Tencent, AWS)",
        "use `https://`",
    ),
    row(
        &["NoKeyManagerEndpoint"],
        "permanent",
        "Barbican: the Keystone catalog has no `key-manager` endpoint with that `interface` (and `region`)",
        "set the store's `endpoint`, or its `barbican.interface` / `barbican.region`",
    ),
    row(
        &["NotBarbican", "KeystoneNotFound"],
        "permanent",
        "Barbican: `{endpoint}/v1/secrets` answered 404, or Keystone answered 404",
        "point `endpoint` at the Barbican API root, `authUrl` at Keystone v3",
    ),
    row(
        &["NotAcceptable"],
        "permanent",
        "Barbican 406: the payload was asked for in a content type the secret was not stored with (SecretSync \
         then treats the value as different and writes a new secret)",
        "nothing, unless it persists: then check `contentType`",
    ),
    row(
        &["ListingTooLong"],
        "permanent",
        "Barbican: listing the secrets of that name went past 20 pages of 100 (the store ignores `offset`, or \
         thousands of secrets match the name with SQL `LIKE`)",
        "check the store; choose a `remoteName` without `_` or `%`",
    ),
    row(
        &["MountNotFound"],
        "permanent",
        "Vault: no engine is mounted at `vault.mount` (or the route does not exist there)",
        "fix `vault.mount` (a KV version 2 engine), or mount one",
    ),
    row(
        &["KeystoneRejected"],
        "permanent",
        "Barbican: Keystone refused the token request with another 4xx",
        "the message names the HTTP status; Keystone's log says why",
    ),
    row(
        &[
            "LabelsUnsupported",
            "ContentTypeUnsupported",
            "UnsupportedContentType",
            "DescriptionUnsupported",
            "DescriptionTooLong",
        ],
        "permanent",
        "the store cannot keep that field (Key Vault and Barbican have no description; Barbican takes only \
         `text/plain` and `application/octet-stream`), or the description plus the ownership line is too long",
        "remove or shorten the field",
    ),
    row(
        &["InvalidLabels", "InvalidLabel", "TooManyLabels"],
        "permanent",
        "Key Vault: a reserved `secretsync` key, a tag name or value too long, or more than 11 labels; Barbican: a \
         key that is not 1-255 lower-case letters, digits, `-` and `_`, a reserved `secretsync` key, or a value \
         over 255 characters or with leading or trailing whitespace; AWS: tags beyond its limits",
        "fix `target.labels`",
    ),
    row(
        &["PayloadTooLarge", "ValueNotText", "EmptyValue"],
        "permanent",
        "the value is too large (Key Vault 25 KB, AWS 64 KB, Barbican `maxPayloadBytes` or the server's HTTP 413) \
         or empty (Docker, Barbican), or not UTF-8 where the store needs text (Key Vault; Barbican with \
         `contentType: text/plain`)",
        "change the value, or push a key that fits; for Barbican, leave `contentType` unset for binary values",
    ),
    row(
        &["ManagedSecret"],
        "permanent",
        "Key Vault: the secret backs a Key Vault certificate and cannot be written",
        "choose another `remoteName`",
    ),
    row(
        &["KmsKeyUnusable"],
        "permanent",
        "AWS: KMS could not encrypt or decrypt with the secret's key (`EncryptionFailure`, `DecryptionFailure`)",
        "check `awsSecretsManager.kmsKeyId` and the key's policy",
    ),
    row(
        &[
            "Immutable",
            "InvalidSecret",
            "BadParameter",
            "PayloadRejected",
            "BackendRejected",
        ],
        "permanent",
        "the store refused the request (Service Fabric type change, invalid secret, Docker 400, Barbican 400 on the \
         payload, other HTTP 4xx or store error codes)",
        "the message names the HTTP status and the store's error code; the store's own log or API says more",
    ),
    row(
        &["SecretDisabled"],
        "permanent (Tencent), conflict (Key Vault)",
        "Tencent: the secret is disabled or pending deletion. Key Vault: the version is disabled (HTTP 403); \
         SecretSync normally writes a new enabled version over it",
        "Tencent: enable or restore it in SSM, or use another `remoteName`; Key Vault: usually nothing, otherwise \
         enable the version",
    ),
    row(
        &["LimitExceeded"],
        "permanent",
        "Tencent or AWS: an account quota is reached",
        "raise the quota or free secrets",
    ),
    row(
        &["VersionLimit"],
        "permanent",
        "Tencent `History`: 10 versions and none created by SecretSync",
        "delete a version in SSM",
    ),
    row(
        &[
            "TlsSetup",
            "Serialization",
            "InvalidReference",
        ],
        "permanent",
        "internal errors (`InvalidReference`: Barbican returned a secret reference that is not a UUID)",
        "report a bug",
    ),
];

/// Reasons of the Events the controller publishes besides changes of the `Ready` condition.
pub const EVENTS: &[ReasonDoc] = &[
    row(
        &["Deleted"],
        "Normal",
        "on deletion: the remote secret was deleted",
        "nothing",
    ),
    row(
        &["LeftForeign"],
        "Normal",
        "on deletion: the remote secret was not this SecretSync's and was left in place",
        "nothing",
    ),
    row(
        &["DriftRepaired"],
        "Normal",
        "a refresh found the remote secret removed or changed in the store since SecretSync wrote it, and wrote \
         it again (counted by `secretsync_drift_repairs_total`)",
        "nothing; if it repeats, find who changes the store",
    ),
    row(
        &["PreviousRemoteDeleted", "PreviousRemoteLeft"],
        "Normal",
        "after a change of `remoteName`: what became of the old remote secret",
        "nothing; with `PreviousRemoteLeft` delete the old one by hand if it is no longer wanted",
    ),
    row(
        &["RemoteSecretLeft"],
        "Warning",
        "in a namespace being deleted, a SecretSync with `deletionPolicy: Delete` could not delete its remote \
         secret within `--cleanup-timeout-seconds`; on the Namespace (listed in `default`), naming the remote \
         secret left in place",
        "delete the remote secret at the store by hand",
    ),
];

/// Every documented reason.
pub fn documented() -> impl Iterator<Item = &'static str> {
    CONTROLLER
        .iter()
        .chain(DIALECT)
        .chain(EVENTS)
        .flat_map(|row| row.reasons.iter().copied())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;

    /// The code of `src/` without its test modules, file by file.
    fn sources() -> Vec<(String, String)> {
        fn walk(dir: &Path, out: &mut Vec<(String, String)>) {
            let mut entries: Vec<_> = std::fs::read_dir(dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|e| e.expect("directory entry").path())
                .collect();
            entries.sort();
            for path in entries {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if path.is_dir() {
                    walk(&path, out);
                } else if name.ends_with(".rs")
                    && !name.ends_with("tests.rs")
                    && name != "fixtures.rs"
                    && name != "reasons.rs"
                    // The reference generator fills every metric's labels with placeholders.
                    && name != "docs.rs"
                {
                    let text = std::fs::read_to_string(&path).expect("source file");
                    let code = match text.find("#[cfg(test)]\nmod tests") {
                        Some(at) => text[..at].to_owned(),
                        None => text,
                    };
                    out.push((path.display().to_string(), code));
                }
            }
        }
        let mut out = Vec::new();
        walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
        out
    }

    /// The string literal that opens `rest` after blanks, if it is one word (a reason).
    fn reason_at(rest: &str) -> Option<&str> {
        let rest = rest.trim_start().strip_prefix('"')?;
        let word = &rest[..rest.find('"')?];
        (!word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric())).then_some(word)
    }

    /// Reasons the code emits: the literal after a call that takes a reason, after `reason:` in a report or
    /// Event, and the arms of `fn reason`.
    fn emitted() -> BTreeSet<(String, String)> {
        const CALLS: &[&str] = &[
            "Report::failed(",
            "DialectError::retry(",
            "DialectError::conflict(",
            "DialectError::credentials(",
            "DialectError::permanent(",
            "ErrorClass::Retry,",
            "ErrorClass::Conflict,",
            "ErrorClass::Credentials,",
            "ErrorClass::Permanent,",
            "reason: ",
            "synced(&remote, ",
            "EventType::Normal,",
            "EventType::Warning,",
        ];
        let mut found = BTreeSet::new();
        for (file, code) in sources() {
            for call in CALLS {
                for (at, _) in code.match_indices(call) {
                    if let Some(reason) = reason_at(&code[at + call.len()..]) {
                        found.insert((reason.to_owned(), file.clone()));
                    }
                }
            }
            for (at, _) in code
                .match_indices("fn reason(")
                .chain(code.match_indices("fn store_reason("))
            {
                let body = &code[at..];
                let body = &body[..body.find("\n    }\n").unwrap_or(body.len())];
                for (arm, _) in body.match_indices("=> ") {
                    if let Some(reason) = reason_at(&body[arm + 3..]) {
                        found.insert((reason.to_owned(), file.clone()));
                    }
                }
            }
        }
        found
    }

    #[test]
    fn every_reason_the_code_emits_is_documented() {
        let documented: BTreeSet<_> = documented().collect();
        let emitted = emitted();
        // The scan finds what it should: a reason of each way of emitting one.
        for known in [
            "SourceNotFound",
            "StoreNotFound",
            "BackendUnreachable",
            "KmsKeyUnusable",
        ] {
            assert!(
                emitted.iter().any(|(r, _)| r == known),
                "the scan no longer finds {known}"
            );
        }
        let missing: Vec<_> = emitted
            .iter()
            .filter(|(reason, _)| !documented.contains(reason.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "reasons emitted but not in controller::reasons (add a row): {missing:?}"
        );
    }

    #[test]
    fn every_documented_reason_is_in_the_code() {
        let code: String = sources().into_iter().map(|(_, code)| code).collect();
        let stale: Vec<_> = documented()
            .filter(|reason| !code.contains(&format!("\"{reason}\"")))
            .collect();
        assert!(
            stale.is_empty(),
            "documented reasons no code emits: {stale:?}"
        );
    }

    #[test]
    fn a_reason_is_documented_once_per_table() {
        for table in [CONTROLLER, DIALECT, EVENTS] {
            let mut seen = BTreeSet::new();
            for reason in table.iter().flat_map(|row| row.reasons) {
                assert!(seen.insert(reason), "{reason} twice");
            }
        }
    }
}
