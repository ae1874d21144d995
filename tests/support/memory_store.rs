//! An in-memory dialect: a store that lives in the test process, so the controller's behaviour (status, Events,
//! conditions, backoff, finalizer, conflicts, fair shares) can be tested without any store on the bed.
//!
//! It registers under an existing [`DialectKind`] (a Store of that dialect reaches it, whatever its endpoint) and is
//! scriptable per remote name: fail the next N calls of an operation, hold an operation until released, count
//! and time every call, and place an entry SecretSync did not write. Scripts name remote names exactly, so the
//! stores' own periodic checks (which read a probe name) never use them up.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use secretsync::api::{DialectKind, Target};
use secretsync::dialects::{Dialect, DialectError, ErrorClass, Outcome, Request};
use secretsync::plan::{
    Capabilities, Metadata, Observed, Owner, Remote, RemoteRef, RemoteState, Support, Write,
};
use secretsync::value::SecretValue;

/// A dialect operation that reaches the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Observe,
    Apply,
    Delete,
    ReadValue,
}

/// One remote secret as the memory store holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub value: Vec<u8>,
    /// The ownership marker; `None` for an entry SecretSync did not write.
    pub owner: Option<Owner>,
    /// The digest marker written with the value; `None` when unknown (a foreign entry).
    pub digest: Option<String>,
    /// Counts value versions: 1 at creation, +1 for each new value; a metadata update keeps it.
    pub version: u64,
    pub metadata: Metadata,
}

/// An error the next `times` calls of `op` on `name` return.
struct Fault {
    op: Op,
    name: String,
    times: u32,
    class: ErrorClass,
    reason: &'static str,
    retry_after: Option<Duration>,
}

/// A call the store received.
#[derive(Clone, Debug)]
pub struct Call {
    pub op: Op,
    pub name: String,
    pub at: Instant,
}

/// Holds calls of one operation on some names until released (or dropped).
pub struct Hold {
    gate: Arc<Gate>,
}

struct Gate {
    op: Op,
    names: Vec<String>,
    open: tokio::sync::watch::Sender<bool>,
    waiting: AtomicUsize,
    most_waiting: AtomicUsize,
}

impl Hold {
    /// Calls held right now.
    pub fn waiting(&self) -> usize {
        self.gate.waiting.load(Ordering::SeqCst)
    }

    /// The most calls held at the same time so far.
    pub fn most_waiting(&self) -> usize {
        self.gate.most_waiting.load(Ordering::SeqCst)
    }

    /// Lets every held call (and every later one) through.
    pub fn release(&self) {
        self.gate.open.send_replace(true);
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.release();
    }
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    faults: Vec<Fault>,
    gates: Vec<Arc<Gate>>,
    calls: Vec<Call>,
    /// Names the store's naming rules refuse.
    refused_names: Vec<String>,
    /// Names whose writes the store accepts but is still creating.
    creating: Vec<String>,
}

/// The in-memory store and its dialect.
pub struct MemoryStore {
    kind: DialectKind,
    state: Mutex<State>,
}

impl MemoryStore {
    /// A memory store that takes the place of `kind`'s dialect.
    pub fn new(kind: DialectKind) -> Arc<MemoryStore> {
        Arc::new(MemoryStore {
            kind,
            state: Mutex::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    // ---- scripting ----

    /// The next `times` calls of `op` on `name` fail with an error of `class` and `reason`. Faults queue up in the
    /// order they were added.
    pub fn fail_next(
        &self,
        op: Op,
        name: &str,
        times: u32,
        class: ErrorClass,
        reason: &'static str,
    ) {
        self.fail_next_after(op, name, times, class, reason, None);
    }

    /// Like [`MemoryStore::fail_next`], with the store's `Retry-After`.
    pub fn fail_next_after(
        &self,
        op: Op,
        name: &str,
        times: u32,
        class: ErrorClass,
        reason: &'static str,
        retry_after: Option<Duration>,
    ) {
        self.lock().faults.push(Fault {
            op,
            name: name.to_owned(),
            times,
            class,
            reason,
            retry_after,
        });
    }

    /// Drops the faults not used yet for `op` on `name`.
    pub fn clear_faults(&self, op: Op, name: &str) {
        self.lock()
            .faults
            .retain(|f| !(f.op == op && f.name == name));
    }

    /// Holds every call of `op` on any of `names` until the returned handle is released or dropped.
    pub fn hold(&self, op: Op, names: &[&str]) -> Hold {
        let gate = Arc::new(Gate {
            op,
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            open: tokio::sync::watch::Sender::new(false),
            waiting: AtomicUsize::new(0),
            most_waiting: AtomicUsize::new(0),
        });
        self.lock().gates.push(gate.clone());
        Hold { gate }
    }

    /// Places an entry SecretSync did not write (no ownership marker, no digest marker).
    pub fn put_foreign(&self, name: &str, value: &[u8]) {
        self.lock().entries.insert(
            name.to_owned(),
            Entry {
                value: value.to_vec(),
                owner: None,
                digest: None,
                version: 1,
                metadata: Metadata::default(),
            },
        );
    }

    /// The store's naming rules refuse `name` (as a store refuses a name too long or with characters it lacks).
    pub fn refuse_name(&self, name: &str) {
        self.lock().refused_names.push(name.to_owned());
    }

    /// Writes of `name` are accepted and reported as still being created, until [`MemoryStore::finish_creating`].
    pub fn keep_creating(&self, name: &str) {
        self.lock().creating.push(name.to_owned());
    }

    pub fn finish_creating(&self, name: &str) {
        self.lock().creating.retain(|n| n != name);
    }

    /// Removes an entry behind SecretSync's back.
    pub fn remove(&self, name: &str) {
        self.lock().entries.remove(name);
    }

    /// Places an entry as it is, marker and digest included (as an earlier SecretSync left it).
    pub fn put_entry(&self, name: &str, entry: Entry) {
        self.lock().entries.insert(name.to_owned(), entry);
    }

    // ---- inspection ----

    pub fn entry(&self, name: &str) -> Option<Entry> {
        self.lock().entries.get(name).cloned()
    }

    /// Calls of `op` on `name` so far.
    pub fn calls(&self, op: Op, name: &str) -> usize {
        self.call_times(op, name).len()
    }

    /// When each call of `op` on `name` arrived, oldest first.
    pub fn call_times(&self, op: Op, name: &str) -> Vec<Instant> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.op == op && c.name == name)
            .map(|c| c.at)
            .collect()
    }

    // ---- the store's side of a call ----

    /// Records the call, waits while a hold covers it, then returns the fault it meets, if any.
    async fn enter(&self, op: Op, name: &str) -> Result<(), DialectError> {
        let gate = {
            let mut state = self.lock();
            state.calls.push(Call {
                op,
                name: name.to_owned(),
                at: Instant::now(),
            });
            state
                .gates
                .iter()
                .find(|g| g.op == op && g.names.iter().any(|n| n == name) && !*g.open.borrow())
                .cloned()
        };
        if let Some(gate) = gate {
            let now = gate.waiting.fetch_add(1, Ordering::SeqCst) + 1;
            gate.most_waiting.fetch_max(now, Ordering::SeqCst);
            let mut open = gate.open.subscribe();
            // The sender lives in the gate, which this call holds: the wait ends only on release.
            let _ = open.wait_for(|o| *o).await;
            gate.waiting.fetch_sub(1, Ordering::SeqCst);
        }
        let mut state = self.lock();
        let Some(fault) = state
            .faults
            .iter_mut()
            .find(|f| f.op == op && f.name == name && f.times > 0)
        else {
            return Ok(());
        };
        fault.times -= 1;
        let err = DialectError::new(
            fault.class,
            fault.reason,
            format!(
                "the memory store refused this {op:?} (scripted {})",
                fault.reason
            ),
        )
        .with_retry_after(fault.retry_after);
        state.faults.retain(|f| f.times > 0);
        Err(err)
    }

    fn reference(name: &str, version: u64) -> RemoteRef {
        RemoteRef {
            name: name.to_owned(),
            id: Some(format!("memory:{name}")),
            version: Some(version.to_string()),
        }
    }
}

#[async_trait]
impl Dialect for MemoryStore {
    fn kind(&self) -> DialectKind {
        self.kind
    }

    fn capabilities(&self, _target: &Target) -> Capabilities {
        Capabilities {
            content_type: Support::Mutable,
            description: Support::Mutable,
            labels: Support::Mutable,
        }
    }

    fn check(&self, req: &Request<'_>, _value: &SecretValue) -> Result<(), DialectError> {
        if req.target.endpoint.is_none() {
            return Err(DialectError::permanent(
                "EndpointRequired",
                "the memory store needs an endpoint (any URL) in its Store",
            ));
        }
        if self
            .lock()
            .refused_names
            .iter()
            .any(|n| n == req.remote_name)
        {
            return Err(DialectError::permanent(
                "InvalidName",
                "the memory store refuses this name",
            ));
        }
        Ok(())
    }

    async fn observe(&self, req: &Request<'_>) -> Result<Observed, DialectError> {
        let name = req.remote_name;
        self.enter(Op::Observe, name).await?;
        let state = self.lock();
        let creating = state.creating.iter().any(|n| n == name);
        Ok(match state.entries.get(name) {
            None => Observed::Absent,
            Some(entry) => Observed::Present(Remote {
                reference: Self::reference(name, entry.version),
                owner: entry.owner.clone(),
                owner_exists: true,
                digest: entry.digest.clone(),
                metadata: entry.metadata.clone(),
                state: if creating {
                    RemoteState::Creating
                } else {
                    RemoteState::Ready
                },
                detail: Default::default(),
            }),
        })
    }

    async fn apply(
        &self,
        req: &Request<'_>,
        write: &Write,
        _observed: &Observed,
        value: &SecretValue,
    ) -> Result<Outcome, DialectError> {
        let name = req.remote_name;
        self.enter(Op::Apply, name).await?;
        let desired = req.desired;
        let mut state = self.lock();
        let existing = state.entries.get(name).cloned();
        let entry = match (write, existing) {
            (Write::Create, Some(_)) => {
                return Err(DialectError::conflict(
                    "AlreadyExists",
                    "the memory store already holds a secret of this name",
                ));
            }
            (Write::Create, None) => Entry {
                value: value.expose().to_vec(),
                owner: Some(desired.owner.clone()),
                digest: Some(desired.digest.clone()),
                version: 1,
                metadata: desired.metadata.clone(),
            },
            (Write::NewVersion | Write::Replace { .. }, old) => Entry {
                value: value.expose().to_vec(),
                owner: Some(desired.owner.clone()),
                digest: Some(desired.digest.clone()),
                version: old.map_or(1, |e| e.version + 1),
                metadata: desired.metadata.clone(),
            },
            // As the stores' dialects do, the marker written with the metadata names the value it holds (the
            // planner updates metadata alone only when that value is the source's).
            (Write::UpdateMetadata, Some(old)) => Entry {
                owner: Some(desired.owner.clone()),
                digest: Some(desired.digest.clone()),
                metadata: desired.metadata.clone(),
                ..old
            },
            (Write::UpdateMetadata, None) => {
                return Err(DialectError::retry(
                    "NotFound",
                    "the memory store has no secret of this name to update",
                ));
            }
        };
        let reference = Self::reference(name, entry.version);
        state.entries.insert(name.to_owned(), entry);
        if state.creating.iter().any(|n| n == name) {
            return Ok(Outcome::Creating(reference));
        }
        Ok(Outcome::Ready(reference))
    }

    async fn read_value(
        &self,
        req: &Request<'_>,
        _remote: &Remote,
    ) -> Result<Option<SecretValue>, DialectError> {
        self.enter(Op::ReadValue, req.remote_name).await?;
        let state = self.lock();
        let entry = state.entries.get(req.remote_name);
        Ok(entry.map(|e| SecretValue::new(e.value.clone())))
    }

    async fn delete(&self, req: &Request<'_>, _observed: &Observed) -> Result<(), DialectError> {
        self.enter(Op::Delete, req.remote_name).await?;
        self.lock().entries.remove(req.remote_name);
        Ok(())
    }
}
