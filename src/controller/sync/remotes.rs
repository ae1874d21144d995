//! A SecretSync that writes several remote secrets (`spec.data`, a selector, a template): steps 2 to 7 once over
//! the list of remote secrets it wants, and the ones it wrote before and no longer wants let go as
//! `deletionPolicy` says. Each remote secret is read, planned and written exactly as a single one is; what is
//! decided here is which remote secrets there are ([`want`]) and what the list adds up to ([`sum`], pure).

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Api, Resource, ResourceExt};
use tracing::info;

use super::decide::{self, Decision};
use super::dereference::{self, Dereferenced, Shared};
use super::error::Error;
use super::observation::Observation;
use super::outcome::{self, Effects, Next, Note};
use super::status::Report;
use super::{admit, apply, observe, source, validate};
use crate::api::{DeletionPolicy, Mode, Phase, RemoteEntryStatus, SecretSync, UsedStore};
use crate::controller::Context;
use crate::controller::pacing::startup_spread;
use crate::controller::stores::resolve::{self, Connection, Refusal};
use crate::controller::sync::source::SourceError;
use crate::controller::telemetry::events::EventType;
use crate::dialects::ErrorClass;
use crate::plan::entries::{Entry, Limits};
use crate::plan::shape::{self, Shape, ShapeError};
use crate::plan::verdict::Drift;
use crate::plan::{self, DeletePlan, RemoteRef};
use crate::value::SecretValue;

/// Steps 2 to 7 for a SecretSync that writes several remote secrets.
pub async fn work(
    obj: &SecretSync,
    ctx: &Context,
    ns: &str,
    connection: Connection,
    store: &UsedStore,
    protected: bool,
) -> Result<Effects, Error> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let limits = Limits::default();
    let sources = match (&obj.spec.source.secret_ref, &obj.spec.source.selector) {
        (Some(one), _) => vec![source::read_keys(&secrets, &one.name).await?],
        (None, Some(selector)) => {
            source::read_selected(&secrets, selector, limits.remotes as u32, limits.bytes).await?
        }
        (None, None) => return Err(Error::Incomplete),
    };
    for s in &sources {
        resolve::source_allowed(&connection, &s.data.name, &s.labels)?;
    }
    let names: Vec<String> = sources.iter().map(|s| s.data.name.clone()).collect();
    let data: Vec<shape::SourceData> = sources.into_iter().map(|s| s.data).collect();
    let wanted = want(obj, ns, &connection, &data, limits)?;
    drop(data);
    let shared = dereference::shared(obj, ctx, ns, &connection, protected).await?;
    let wanted: Vec<(Dereferenced, String)> = wanted
        .into_iter()
        .map(|e| {
            let desired = dereference::desired(obj, ctx, &connection, &shared, &e.value);
            let earlier = recorded(obj, &e.remote_name).map(reference);
            let read = shared.remote(&connection, e.value, desired, e.remote_name, earlier);
            (read, e.secret)
        })
        .collect();
    // Every remote secret passes the dialect's checks (names, sizes) before any is written: a spec that cannot
    // be carried out whole writes nothing.
    for (read, _) in &wanted {
        validate::target(read, ns).map_err(|e| whole(&read.remote_name, e))?;
    }
    let by_status: Vec<(&str, &str)> = wanted
        .iter()
        .map(|(r, _)| (r.remote_name.as_str(), r.desired.digest.as_str()))
        .collect();
    let in_sync = startup_spread::all_in_sync_by_status(obj, store, &by_status);
    if let Some(wait) = admit::spread_if(ctx, obj, in_sync) {
        return Ok(Effects::wait(wait));
    }
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let wanted_names: BTreeSet<String> =
        wanted.iter().map(|(r, _)| r.remote_name.clone()).collect();
    let mut done = Vec::with_capacity(wanted.len());
    for (read, secret) in wanted {
        done.push(one(obj, ctx, ns, read, secret).await);
    }
    let let_go = match obj.spec.mode {
        Mode::Sync => let_go(obj, ns, &connection, store, &shared, &wanted_names).await,
        Mode::Observe => LetGo::default(),
    };
    let key = ctx
        .digest_key
        .for_namespace(&shared.owner.scope.namespace_uid);
    let mut effects = sum(obj, done, let_go, &now, |all| key.digest(all.as_bytes()));
    effects.sources = names;
    Ok(effects)
}

/// The remote secrets the spec wants from these Secrets, named as the store names them. Refused when the rules
/// cannot be carried out or two of them would land on one remote secret.
pub fn want(
    obj: &SecretSync,
    ns: &str,
    connection: &Connection,
    sources: &[shape::SourceData],
    limits: Limits,
) -> Result<Vec<Entry>, Error> {
    let spec = &obj.spec;
    let invalid = |message: String| Error::Refused(Refusal::InvalidSpec(message));
    let rules = spec
        .data
        .iter()
        .enumerate()
        .map(|(i, d)| {
            shape::rule(
                d.secret_key.as_deref(),
                d.secret_key_regex.as_deref(),
                d.remote_name.as_deref(),
                d.property.as_deref(),
            )
            .map_err(|e| invalid(format!("spec.data[{i}]: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let name = obj.name_any();
    let wanted = shape::wanted(
        sources,
        &Shape {
            rules: &rules,
            key: spec
                .source
                .secret_ref
                .as_ref()
                .and_then(|r| r.key.as_deref()),
            template: spec
                .template
                .as_ref()
                .map(|t| (&t.data, t.merge_policy.into())),
            default_remote: spec.target.remote_name(&name),
            limits,
        },
    )
    .map_err(|e| match e {
        ShapeError::KeyNotFound { secret, key } => {
            Error::Source(SourceError::KeyNotFound { secret, key })
        }
        ShapeError::Empty(secret) => Error::Source(SourceError::SourceEmpty(secret)),
        other => invalid(format!("{other}; nothing was written")),
    })?;
    let mut seen = BTreeSet::new();
    wanted
        .into_iter()
        .map(|mut entry| {
            entry.remote_name = connection.remote_name_for(ns, &name, &entry.remote_name)?;
            if !seen.insert(entry.remote_name.clone()) {
                return Err(invalid(format!(
                    "the store's remoteNameTemplate makes one name, {:?}, of several remote secrets: it must \
                     contain {{remoteName}} for spec.data, a selector or a template; nothing was written",
                    entry.remote_name
                )));
            }
            Ok(entry)
        })
        .collect()
}

/// One remote secret's way through observe, plan and apply.
struct Done {
    name: String,
    secret: String,
    digest: String,
    result: Result<Effects, Error>,
}

async fn one(
    obj: &SecretSync,
    ctx: &Context,
    ns: &str,
    read: Dereferenced,
    secret: String,
) -> Done {
    let unchanged = recorded(obj, &read.remote_name)
        .is_some_and(|r| r.digest.as_deref() == Some(read.desired.digest.as_str()))
        && obj
            .status
            .as_ref()
            .is_some_and(|s| s.observed_generation == obj.meta().generation);
    let result = async {
        let observed = observe::remote(ctx, &read, ns).await?;
        let decision: Decision = decide::decide_with(&read, &observed, unchanged);
        if obj.spec.mode == Mode::Observe {
            return Ok(outcome::observed(&decision, &read));
        }
        let written = apply::write(ctx, &read, ns, &decision, &observed).await?;
        Ok(outcome::synced(&decision, written.as_ref(), &read))
    }
    .await;
    Done {
        digest: read.desired.digest.clone(),
        name: read.remote_name,
        secret,
        result,
    }
}

/// A check one remote secret fails refuses the whole spec, naming it; what only a change of the credentials can
/// fix stays as it is.
fn whole(remote: &str, e: Error) -> Error {
    let message = match &e {
        Error::Dialect(d) if d.class == ErrorClass::Permanent => d.message.clone(),
        Error::Refused(Refusal::InvalidSpec(m)) => m.clone(),
        _ => return e,
    };
    Error::Refused(Refusal::InvalidSpec(format!(
        "remote secret {remote:?}: {message}; nothing was written"
    )))
}

/// What the status recorded of a remote secret.
fn recorded<'a>(obj: &'a SecretSync, name: &str) -> Option<&'a RemoteEntryStatus> {
    obj.status.as_ref()?.remotes.iter().find(|r| r.name == name)
}

fn reference(r: &RemoteEntryStatus) -> RemoteRef {
    RemoteRef {
        name: r.name.clone(),
        id: r.id.clone(),
        version: r.version.clone(),
    }
}

/// The remote secrets written before and no longer wanted: what became of them.
#[derive(Default)]
struct LetGo {
    notes: Vec<Note>,
    /// Still to be deleted (the delete failed): kept in the status so the next reconcile tries again.
    kept: Vec<RemoteEntryStatus>,
    error: Option<Error>,
}

/// Deletes (under `deletionPolicy: Delete`, and only what is this SecretSync's) or leaves the remote secrets the
/// status lists and the spec no longer wants: a rule removed, a Secret unlabelled, a key deleted.
async fn let_go(
    obj: &SecretSync,
    ns: &str,
    connection: &Connection,
    store: &UsedStore,
    shared: &Shared,
    wanted: &BTreeSet<String>,
) -> LetGo {
    let mut out = LetGo::default();
    let Some(status) = &obj.status else {
        return out;
    };
    let same_store = status.store.as_ref() == Some(store);
    // A SecretSync that wrote one remote secret before it had `spec.data` (or a selector, or a template) lets
    // that one go too when the new list does not hold it.
    let single = status
        .synced_target
        .as_ref()
        .filter(|t| status.remotes.is_empty() && t.dialect == connection.dialect)
        .filter(|t| t.endpoint == connection.target.endpoint)
        .map(|t| RemoteEntryStatus {
            name: t.remote_name.clone(),
            ..RemoteEntryStatus::default()
        });
    for gone in status
        .remotes
        .iter()
        .chain(single.iter())
        .filter(|r| !wanted.contains(&r.name))
    {
        let left = |why: &str| {
            Note::new(
                EventType::Normal,
                "PreviousRemoteLeft",
                format!(
                    "remote secret {:?} is no longer written by this SecretSync and was left in place because {why}",
                    gone.name
                ),
            )
        };
        if obj.spec.deletion_policy == DeletionPolicy::Retain {
            out.notes.push(left("deletionPolicy is Retain"));
            continue;
        }
        if !same_store {
            out.notes.push(left(
                "it is in another store (the store or its dialect changed)",
            ));
            continue;
        }
        match delete_one(ns, connection, shared, &gone.name).await {
            Ok(DeletePlan::Delete) => out.notes.push(Note::new(
                EventType::Normal,
                "PreviousRemoteDeleted",
                format!(
                    "remote secret {:?} is no longer written by this SecretSync and was deleted",
                    gone.name
                ),
            )),
            Ok(DeletePlan::AlreadyGone) => {}
            Ok(DeletePlan::LeaveForeign) => out
                .notes
                .push(left("it is no longer owned by this SecretSync")),
            Err(e) => {
                out.kept.push(RemoteEntryStatus {
                    in_sync: false,
                    ..gone.clone()
                });
                out.error.get_or_insert(e);
            }
        }
    }
    out
}

/// Deletes one remote secret by name if it is this SecretSync's; what the plan was.
async fn delete_one(
    ns: &str,
    connection: &Connection,
    shared: &Shared,
    name: &str,
) -> Result<DeletePlan, Error> {
    let read = shared.remote(
        connection,
        SecretValue::new(Vec::new()),
        dereference::to_delete(shared.owner.clone()),
        name.to_owned(),
        None,
    );
    let req = read.request(ns);
    let observed = read.dialect.observe(&req).await?;
    let decided = plan::decide_delete(&shared.owner, &observed);
    if decided == DeletePlan::Delete {
        info!(remote = %name, "deleting a remote secret this SecretSync no longer writes");
        read.dialect.delete(&req, &observed).await?;
    }
    Ok(decided)
}

/// A SecretSync being deleted: deletes every remote secret its status lists that is still its own. Each that was
/// deleted or left is one Event note; the first failure stops (the finalizer stays, the next try goes on).
pub async fn delete_all(obj: &SecretSync, ctx: &Context, ns: &str) -> Result<Vec<Note>, Error> {
    let remotes: Vec<String> = obj
        .status
        .iter()
        .flat_map(|s| s.remotes.iter().map(|r| r.name.clone()))
        .collect();
    if remotes.is_empty() {
        return Ok(Vec::new());
    }
    let connection = dereference::store(obj, ctx, ns).await?;
    let cleanup = dereference::for_cleanup(obj, ctx, ns, connection).await?;
    let shared = Shared {
        dialect: cleanup.dialect.clone(),
        credentials: cleanup.credentials.clone(),
        owner: cleanup.desired.owner.clone(),
    };
    let mut notes = Vec::new();
    for name in remotes {
        let (reason, note) = match delete_one(ns, &cleanup.connection, &shared, &name).await? {
            DeletePlan::Delete => ("Deleted", format!("remote secret {name:?} deleted")),
            DeletePlan::AlreadyGone => continue,
            DeletePlan::LeaveForeign => (
                "LeftForeign",
                format!(
                    "remote secret {name:?} is not owned by this SecretSync and was left in place"
                ),
            ),
        };
        notes.push(Note::new(EventType::Normal, reason, note));
    }
    Ok(notes)
}

/// What the list of remote secrets adds up to: one status (the first failing remote secret named), every
/// remote secret's record, the Events and when to look again. Pure; `seal` digests the list's digests into the
/// object's `syncedDigest`.
fn sum(
    obj: &SecretSync,
    done: Vec<Done>,
    let_go: LetGo,
    now: &Time,
    seal: impl Fn(&str) -> String,
) -> Effects {
    let observing = obj.spec.mode == Mode::Observe;
    let total = done.len();
    let mut remotes = Vec::with_capacity(total + let_go.kept.len());
    let mut notes = Vec::new();
    let mut failed: Vec<(String, Report, Option<Error>)> = Vec::new();
    let (mut creating, mut wrote, mut repaired, mut all_in_step) = (false, false, false, true);
    let mut plan_items = Vec::new();
    let mut first_drift: Option<(Drift, String)> = None;
    let mut sealed = String::new();
    for d in done {
        let earlier = recorded(obj, &d.name).cloned().unwrap_or_default();
        let (report, error) = match d.result {
            Ok(effects) => {
                notes.extend(effects.notes);
                wrote |= effects.wrote;
                repaired |= effects.repaired_drift;
                (
                    effects
                        .report
                        .unwrap_or_else(|| Report::failed("Internal", "no report")),
                    None,
                )
            }
            Err(e) => (e.report(), Some(e)),
        };
        let in_sync = match &report.observation {
            Some(o) => o.drift.status() == "True",
            None => report.ready && report.phase == Phase::Ready,
        };
        if let Some(o) = &report.observation {
            plan_items.extend(o.plan.iter().cloned());
            if o.drift.status() != "True" && first_drift.is_none() {
                first_drift = Some((o.drift, o.message.clone()));
            }
        }
        creating |= report.phase == Phase::Creating;
        all_in_step &= report.in_step;
        let confirmed = report.synced_digest.is_some();
        if confirmed {
            sealed.push_str(&format!("{}={}\n", d.name, d.digest));
        }
        let remote = report.remote.clone();
        remotes.push(RemoteEntryStatus {
            name: d.name.clone(),
            id: remote.as_ref().map_or(earlier.id, |r| r.id.clone()),
            version: remote
                .as_ref()
                .map_or(earlier.version, |r| r.version.clone()),
            digest: if confirmed {
                Some(d.digest)
            } else {
                earlier.digest
            },
            last_write: if error.is_none() && !report.in_step && confirmed {
                Some(now.clone())
            } else {
                earlier.last_write
            },
            secret: Some(d.secret),
            in_sync,
        });
        if report.phase == Phase::Failed {
            failed.push((d.name, report, error));
        }
    }
    notes.extend(let_go.notes);
    remotes.extend(let_go.kept);
    remotes.sort_by(|a, b| a.name.cmp(&b.name));
    let mut error = failed.iter_mut().find_map(|f| f.2.take());
    let let_go_error = let_go.error;
    let mut report = if observing {
        let (drift, message) = first_drift.unwrap_or((
            Drift::Matches,
            format!("all {total} remote secrets match the source"),
        ));
        Report {
            observation: Some(Observation {
                drift,
                message,
                plan: plan_items,
            }),
            ..Report::new(
                Phase::Observing,
                true,
                "Observing",
                "spec.mode is Observe: SecretSync reads the store and writes nothing (see the InSync condition and status.plan)",
            )
        }
    } else if let Some((name, first, _)) = failed.first() {
        let more = match failed.len() {
            1 => String::new(),
            n => format!(" ({} more remote secrets failed)", n - 1),
        };
        Report::failed(
            &first.reason,
            format!("remote secret {name:?}: {}{more}", first.message),
        )
    } else if let Some(e) = &let_go_error {
        let r = e.report();
        Report::failed(
            "PreviousRemoteNotDeleted",
            format!(
                "every wanted remote secret is in sync, but one this SecretSync no longer writes could not be deleted: {}; fix the cause, or set spec.deletionPolicy: Retain to keep it",
                r.message
            ),
        )
    } else if creating {
        Report::new(
            Phase::Creating,
            false,
            "Creating",
            "the store is still creating one of the remote secrets",
        )
    } else {
        Report {
            in_step: all_in_step,
            synced_digest: Some(seal(&sealed)),
            ..Report::new(
                Phase::Ready,
                true,
                "Synced",
                format!("{total} remote secrets in sync"),
            )
        }
    };
    report.remotes = Some(remotes);
    if error.is_none() && !observing {
        error = let_go_error;
    }
    Effects {
        report: Some(report),
        notes,
        next: if creating {
            Next::PollCreating
        } else {
            Next::Refresh
        },
        applied: !observing,
        wrote,
        repaired_drift: repaired,
        sources: Vec::new(),
        failed: error,
    }
}
