//! What a registry announces, what it saw, and what it keeps across restarts.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

use super::personality::Personality;
use super::table::Table;

#[derive(Default)]
pub(super) struct Settings {
    pub(super) personality: Option<Personality>,
    pub(super) port: AtomicU64,
    /// Answers every upload with an absolute Location on `localhost:PORT`, the name it knows
    /// itself by (Quay's `SERVER_HOSTNAME`, `endpoints/v2/blob.py` `_upload_url`; distribution's
    /// `http.host`), whatever name the client used; PORT is the one the client reached, as
    /// behind a port-forward or proxy that keeps it (so a test's proxy stays in the path).
    pub(super) known_as_localhost: bool,
    /// Sent as `OCI-Chunk-Min-Length` when a session opens.
    pub(super) min_chunk: Option<u64>,
    /// The body length of every PATCH, in arrival order.
    pub(super) patches: Mutex<Vec<u64>>,
    /// Commits still to fail with the connection closed unanswered, and with a 500.
    pub(super) commit_failures: AtomicU32,
    pub(super) commit_500s: AtomicU32,
    pub(super) uploads: Table,
}

impl Settings {
    pub(super) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port.load(Ordering::SeqCst))
    }

    pub(super) fn take_commit_failure(&self) -> bool {
        take_one(&self.commit_failures)
    }

    pub(super) fn take_commit_500(&self) -> bool {
        take_one(&self.commit_500s)
    }
}

fn take_one(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}
