//! The reasons the controller itself sets, and those of its Events.

use super::{ReasonDoc, row};

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
