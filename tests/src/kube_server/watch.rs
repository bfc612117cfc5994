//! Watches of the objects clients write ([`Kind`]): `GET .../{plural}?watch=true`, answered as the
//! apiserver's watch cache answers it. A 200 whose chunked body is one JSON event per line
//! (`{"type":"ADDED"|"MODIFIED"|"DELETED"|"BOOKMARK"|"ERROR","object":{...}}`), first
//! what happened after the requested resourceVersion (or, without one, an ADDED per
//! object), then each change as it is stored, until `timeoutSeconds` pass or the server
//! stops. A resourceVersion older than the history kept gets a single ERROR event with a
//! 410 `Expired` Status, as on a cluster whose etcd compacted, so that a client's recovery
//! (read again, watch from there) can be tested.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::apply::served;
use super::kinds::Kind;
use super::select::{Selector, CUSTOM_RESOURCE_FIELDS};
use super::status::Failure;
use super::{Shared, State};
use crate::http_server::{Reply, Request};

/// A watch without `timeoutSeconds` lasts this long.
const DEFAULT_SECONDS: u64 = 30;
/// Longer watches are cut to this (kube-rs asks for 290 s), so that a thread of a test
/// that forgot its server does not linger; clients watch again anyway.
const MAX_SECONDS: u64 = 300;

/// One change of an object, as watchers get it.
#[derive(Debug, Clone)]
pub(super) struct Event {
    pub rv: u64,
    pub kind: Kind,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub change: &'static str,
    /// The object as served after the change (before it, for DELETED).
    pub object: Value,
}

impl State {
    /// Appends a change at the current resourceVersion to the history.
    pub(super) fn record(&mut self, kind: Kind, change: &'static str, object: Value) {
        let rv = self.rv;
        self.history.push(Event {
            rv,
            kind,
            change,
            object,
        });
    }
}

/// What one watch sends.
struct Watch {
    kind: Kind,
    ns: String,
    selector: Selector,
    /// Every event up to this resourceVersion has been considered.
    seen: u64,
    deadline: Instant,
    bookmarks: bool,
    /// `end_watches` generation the watch started in.
    epoch: u64,
}

impl Watch {
    fn wants(&self, kind: Kind, object: &Value) -> bool {
        kind == self.kind
            && object["metadata"]["namespace"] == self.ns.as_str()
            && self.selector.matches(object)
    }
}

fn line(kind: &str, object: &Value) -> Vec<u8> {
    let mut line = json!({"type": kind, "object": object})
        .to_string()
        .into_bytes();
    line.push(b'\n');
    line
}

/// A BOOKMARK: only the kind and a resourceVersion the client may watch on from.
fn bookmark(kind: Kind, rv: u64, annotations: Option<Value>) -> Vec<u8> {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if let Some(annotations) = annotations {
        metadata["annotations"] = annotations;
    }
    let object =
        json!({"kind": kind.name(), "apiVersion": kind.api_version(), "metadata": metadata});
    line("BOOKMARK", &object)
}

/// `GET .../namespaces/{ns}/{plural}?watch=true`.
pub(super) fn watch(request: &Request, shared: &Arc<Shared>, kind: Kind, ns: &str) -> Reply {
    let selector = match Selector::from_request(request, CUSTOM_RESOURCE_FIELDS) {
        Ok(selector) => selector,
        Err(failure) => return failure.reply(),
    };
    let from = match request.param("resourceVersion").unwrap_or_default() {
        "" | "0" => None,
        rv => match rv.parse::<u64>() {
            Ok(rv) => Some(rv),
            Err(_) => {
                let message = format!("resourceVersion: Invalid value: {rv:?}: invalid syntax");
                return Failure::bad_request(message).reply();
            }
        },
    };
    // As in the apiserver, 0 means the default.
    let seconds = match request.param("timeoutSeconds").and_then(|s| s.parse().ok()) {
        None | Some(0) => DEFAULT_SECONDS,
        Some(seconds) => seconds.min(MAX_SECONDS),
    };
    let bookmarks = request.param("allowWatchBookmarks") == Some("true");
    let initial_events = request.param("sendInitialEvents") == Some("true");
    shared.watches.fetch_add(1, Ordering::SeqCst);

    let state = shared.lock();
    let mut watch = Watch {
        kind,
        ns: ns.to_owned(),
        selector,
        seen: state.rv,
        deadline: Instant::now() + Duration::from_secs(seconds),
        bookmarks,
        epoch: state.watch_epoch,
    };
    let mut first = Vec::new();
    match from {
        Some(rv) if rv < state.compacted_at => {
            let expired = Failure::expired(rv, state.compacted_at);
            first.push(line("ERROR", &expired.body));
            return Reply::stream(200, "application/json", move |out| out.write_all(&first[0]));
        }
        Some(rv) if !initial_events => watch.seen = rv,
        _ => {
            // The state now, as if everything had just been added.
            let current = state.objects.iter().filter(|(key, _)| key.0 == kind);
            for object in current.map(|(_, o)| served(o)) {
                if !watch.wants(kind, &object) {
                    continue;
                }
                first.push(line("ADDED", &object));
            }
            if initial_events {
                let end = json!({"k8s.io/initial-events-end": "true"});
                first.push(bookmark(kind, state.rv, Some(end)));
            }
        }
    }
    drop(state);
    let shared = Arc::clone(shared);
    Reply::stream(200, "application/json", move |out| {
        for event in &first {
            out.write_all(event)?;
        }
        follow(&shared, &mut watch, out)
    })
}

/// Sends each change as it is stored, until the deadline (then a BOOKMARK, if allowed) or
/// until the server stops or ends its watches.
fn follow(shared: &Shared, watch: &mut Watch, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    loop {
        let mut state = shared.lock();
        let lines = loop {
            if state.stopped || state.watch_epoch != watch.epoch {
                return Ok(());
            }
            let start = state.history.partition_point(|e| e.rv <= watch.seen);
            let new = &state.history[start..];
            let lines: Vec<Vec<u8>> = new
                .iter()
                .filter(|e| watch.wants(e.kind, &e.object))
                .map(|e| line(e.change, &e.object))
                .collect();
            watch.seen = new.last().map_or(watch.seen, |e| e.rv);
            if !lines.is_empty() {
                break lines;
            }
            let now = Instant::now();
            if now >= watch.deadline {
                // Every event up to now has been sent: the client may go on from here.
                let rv = state.rv.max(watch.seen);
                drop(state);
                if watch.bookmarks {
                    out.write_all(&bookmark(watch.kind, rv, None))?;
                }
                return Ok(());
            }
            state = shared
                .changed
                .wait_timeout(state, watch.deadline - now)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        };
        drop(state);
        for line in lines {
            out.write_all(&line)?;
        }
    }
}
