//! The reasons the dialects' errors carry.

use super::{ReasonDoc, row};

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
        "HTTP 5xx or the store's internal error; also an unreadable reply from Key Vault (Barbican's is `BadResponse`)",
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
        &["Serialization", "InvalidReference"],
        "permanent",
        "internal errors (`InvalidReference`: Barbican returned a secret reference that is not a UUID)",
        "report a bug",
    ),
];
