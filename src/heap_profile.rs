//! `--features heap-profile` only: dhat's heap profiler, written out when the controller is asked to stop and
//! before it lets go of anything, so the profile's "at end" figures are what the controller holds at rest (the
//! bench's restart phase stops it with every SecretSync synced). Read it with `bench/heap.py`.

use std::sync::Mutex;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

static PROFILER: Mutex<Option<dhat::Profiler>> = Mutex::new(None);

/// Starts recording every allocation. The profile goes to `$SECRETSYNC_HEAP_PROFILE`, or
/// `dhat-heap-<pid>.json` in the working directory.
pub fn start() {
    let file = std::env::var("SECRETSYNC_HEAP_PROFILE")
        .unwrap_or_else(|_| format!("dhat-heap-{}.json", std::process::id()));
    let profiler = dhat::Profiler::builder()
        .file_name(file)
        // Deep enough to reach past serde and kube's frames to the controller's own.
        .trim_backtraces(Some(60))
        .build();
    *PROFILER.lock().unwrap_or_else(|e| e.into_inner()) = Some(profiler);
}

/// Writes the profile (dropping the profiler writes it); later allocations are no longer recorded.
pub fn finish() {
    drop(PROFILER.lock().unwrap_or_else(|e| e.into_inner()).take());
}
