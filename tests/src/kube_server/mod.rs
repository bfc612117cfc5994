//! A Kubernetes apiserver on localhost, for the few resources `deploy` touches: Namespaces,
//! Pods (listed by label), KServe ServingRuntimes and ClusterServingRuntimes (read), and
//! InferenceServices (read, server-side apply, merge patch, list, watch).
//!
//! It lets the tests drive a real Kubernetes client (kube-rs, over plain HTTP with a bearer
//! token from a kubeconfig) without a cluster, so the wire format is the apiserver's, not
//! an idea of it: errors are `metav1.Status` bodies with the apiserver's reasons and
//! messages ([`status`]); apply keeps field ownership in `metadata.managedFields`, conflicts
//! with other managers and removes fields its manager stopped applying ([`fields`],
//! [`apply`]); watches stream newline-delimited events from an event history, and expire
//! (410) once the test compacts that history ([`watch`]). The test plays the KServe
//! controller ([`KubeServer::set_status`]) and other clients ([`KubeServer::merge_patch_as`]).
//!
//! Std-only HTTP on 127.0.0.1 ([`crate::http_server`]), one thread per connection, the state
//! in memory behind a mutex whose condition variable wakes the open watches on each change.
//! This module holds the server, its state and the test API; [`routes`] the endpoints.
//!
//! Like etcd, one resourceVersion counter serves every object; it moves only on a real
//! change, so a no-op apply is visible as one.

mod apply;
mod fields;
mod objects;
mod routes;
mod select;
mod status;
mod watch;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http_server::{HttpServer, Request};
use crate::tls::TestCa;
use crate::tls_front::TlsFront;
use fields::Owned;
use status::Failure;
use watch::Event;

/// The token [`KubeServer::start`] accepts.
pub const TOKEN: &str = "kube-good";

/// The apiserver of one test: stopped, and its open watches ended, when dropped.
pub struct KubeServer {
    server: HttpServer,
    shared: Arc<Shared>,
    /// Serving TLS (as every API server does), and the CA its kubeconfig names.
    tls: Option<(TlsFront, String)>,
}

/// What the connection threads need.
struct Shared {
    token: String,
    state: Mutex<State>,
    /// Notified on every change of `state`: what open watches wait on.
    changed: Condvar,
    /// `METHOD target[ content-type]` of every request, in arrival order.
    requests: Mutex<Vec<String>>,
    /// Watch requests answered so far.
    watches: AtomicUsize,
}

/// Every object stored, as the API returns it (InferenceServices with their ownership).
#[derive(Default)]
struct State {
    /// The last resourceVersion given out.
    rv: u64,
    namespaces: BTreeMap<String, Value>,
    serving_runtimes: BTreeMap<(String, String), Value>,
    cluster_serving_runtimes: BTreeMap<String, Value>,
    /// By namespace and name; `object` without `metadata.managedFields`, which is rendered
    /// from the managers on the way out.
    inference_services: BTreeMap<(String, String), Owned>,
    pods: Vec<Value>,
    /// Every change of an InferenceService, oldest first.
    history: Vec<Event>,
    /// The resourceVersion at the last [`KubeServer::compact_watch_history`]: a watch from
    /// before it expires. (Events are kept, for watches already open.)
    compacted_at: u64,
    /// Bumped to end the open watches; `stopped` ends them for good.
    watch_epoch: u64,
    stopped: bool,
}

impl State {
    /// The next resourceVersion, for a change about to be stored.
    fn bump(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not take the server down with it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs a change of the state, then wakes the watches.
    fn change<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let result = f(&mut self.lock());
        self.changed.notify_all();
        result
    }

    fn log(&self, request: &Request) {
        let mut line = format!("{} {}", request.method, request.target);
        if !request.body.is_empty() {
            line.push(' ');
            line.push_str(request.header("content-type").unwrap_or(""));
        }
        self.requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(line);
    }
}

impl KubeServer {
    /// A server on a free localhost port with the namespace `default`, accepting only
    /// `Bearer kube-good`.
    pub fn start() -> Self {
        let shared = Arc::new(Shared {
            token: TOKEN.into(),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            requests: Mutex::new(Vec::new()),
            watches: AtomicUsize::new(0),
        });
        let handler = {
            let shared = Arc::clone(&shared);
            Arc::new(move |request: &Request| routes::handle(request, &shared))
        };
        let server = HttpServer::start("Kubernetes API server", handler, |_, message| {
            Failure::bad_request(message).reply()
        });
        let kube = Self {
            server,
            shared,
            tls: None,
        };
        kube.add_namespace("default");
        kube
    }

    /// [`Self::start`], serving TLS with a certificate `ca` issued, as every API server does:
    /// its kubeconfig carries the CA (`certificate-authority-data`), as a cluster's does.
    pub fn start_tls(ca: &TestCa) -> Self {
        let mut kube = Self::start();
        let front = TlsFront::start(kube.server.addr(), ca.server_config());
        kube.tls = Some((front, ca.ca_pem().to_string()));
        kube
    }

    /// `http://127.0.0.1:PORT`, or `https://` when serving TLS: the cluster's server URL.
    pub fn url(&self) -> String {
        match &self.tls {
            Some((front, _)) => format!("https://127.0.0.1:{}", front.port()),
            None => format!("http://{}", self.server.addr()),
        }
    }

    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// Writes `dir/kubeconfig`: cluster `test` at [`Self::url`], user `test` with the bearer
    /// token, context `test` (no namespace: clients default to `default`), current.
    pub fn write_kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let ca = match &self.tls {
            Some((_, pem)) => {
                use base64::Engine;
                let data = base64::engine::general_purpose::STANDARD.encode(pem);
                format!("    certificate-authority-data: {data}\n")
            }
            None => String::new(),
        };
        let config = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\n{ca}\
             users:\n- name: test\n  user:\n    token: {}\ncontexts:\n- name: test\n  context:\n    \
             cluster: test\n    user: test\ncurrent-context: test\n",
            self.url(),
            self.token()
        );
        std::fs::write(&path, config)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }

    pub fn add_namespace(&self, ns: &str) {
        self.shared.change(|state| {
            let rv = state.bump();
            state
                .namespaces
                .insert(ns.into(), objects::namespace(ns, rv));
        });
    }

    /// A vLLM `ServingRuntime` called `name` in `ns` (`supportedModelFormats` vLLM,
    /// `autoSelect`).
    pub fn add_serving_runtime(&self, ns: &str, name: &str) {
        self.shared.change(|state| {
            let rv = state.bump();
            let runtime = objects::serving_runtime(Some(ns), name, rv);
            state
                .serving_runtimes
                .insert((ns.into(), name.into()), runtime);
        });
    }

    /// The same runtime as a `ClusterServingRuntime`.
    pub fn add_cluster_serving_runtime(&self, name: &str) {
        self.shared.change(|state| {
            let rv = state.bump();
            let runtime = objects::serving_runtime(None, name, rv);
            state.cluster_serving_runtimes.insert(name.into(), runtime);
        });
    }

    /// The InferenceService as a GET returns it.
    pub fn inference_service(&self, ns: &str, name: &str) -> Option<Value> {
        let state = self.shared.lock();
        state
            .inference_services
            .get(&(ns.into(), name.into()))
            .map(apply::served)
    }

    /// Polls until the InferenceService exists; panics after `timeout`, listing the
    /// requests the server got.
    pub fn wait_for_inference_service(&self, ns: &str, name: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(object) = self.inference_service(ns, name) {
                return object;
            }
            assert!(
                Instant::now() < deadline,
                "no InferenceService {ns}/{name} after {timeout:?}; requests: {:#?}",
                self.requests()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Plays the KServe controller: `status.conditions` becomes `conditions` (objects with
    /// `type`, `status`, optional `reason` and `message`; each gets a `lastTransitionTime`,
    /// kept from before if its status did not change), `status.url` is set if given, and
    /// `status.observedGeneration` is the generation. A status write: a new
    /// resourceVersion and a MODIFIED event, managedFields untouched. Panics if the
    /// InferenceService does not exist.
    pub fn set_status(&self, ns: &str, name: &str, conditions: Value, url: Option<&str>) {
        self.shared
            .change(|state| state.set_status(ns, name, conditions, url));
    }

    /// A merge patch (RFC 7386) by field manager `manager`, exactly as the HTTP PATCH with
    /// `application/merge-patch+json` does it: the object, or the status code and Status body.
    pub fn merge_patch_as(
        &self,
        manager: &str,
        ns: &str,
        name: &str,
        patch: &Value,
    ) -> Result<Value, (u16, Value)> {
        self.shared
            .change(|state| state.merge_patch(ns, name, manager, patch))
            .map_err(|f| (f.code, f.body))
    }

    /// A server-side apply of `config` by `manager`, exactly as the HTTP PATCH with
    /// `application/apply-patch+yaml` does it: for a test playing another applier.
    pub fn apply_as(
        &self,
        manager: &str,
        ns: &str,
        name: &str,
        config: &Value,
        force: bool,
    ) -> Result<Value, (u16, Value)> {
        self.shared
            .change(|state| state.apply(ns, name, manager, force, config.clone()))
            .map(|(_, object)| object)
            .map_err(|f| (f.code, f.body))
    }

    /// Deletes the InferenceService (a DELETED event for watchers); false if there was none.
    pub fn delete_inference_service(&self, ns: &str, name: &str) -> bool {
        self.shared.change(|state| state.delete(ns, name))
    }

    /// A pod in `ns` (JSON with at least `metadata.name`); the server fills in what a
    /// stored pod has besides (`apiVersion`, `kind`, namespace, uid, resourceVersion...).
    pub fn add_pod(&self, ns: &str, pod: Value) {
        self.shared.change(|state| {
            let rv = state.bump();
            state.pods.push(objects::pod(ns, pod, rv));
        });
    }

    /// Forgets the watch history up to now, as etcd compaction does: a watch from an older
    /// resourceVersion gets a 410 `Expired` ERROR event.
    pub fn compact_watch_history(&self) {
        self.shared.change(|state| state.compacted_at = state.rv);
    }

    /// Ends every open watch now, without a last BOOKMARK (as an apiserver restart or a load
    /// balancer would): clients are expected to watch again from the last event they saw.
    pub fn end_watches(&self) {
        self.shared.change(|state| state.watch_epoch += 1);
    }

    /// `METHOD target` (and ` content-type` for a request with a body) of every request so
    /// far, including refused ones.
    pub fn requests(&self) -> Vec<String> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// How many watch requests have been answered so far.
    pub fn watches(&self) -> usize {
        self.shared.watches.load(Ordering::SeqCst)
    }
}

impl Drop for KubeServer {
    fn drop(&mut self) {
        // Open watches end their bodies; then `server` stops accepting.
        self.shared.change(|state| state.stopped = true);
    }
}
