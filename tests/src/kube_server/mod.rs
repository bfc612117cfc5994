//! A Kubernetes apiserver on localhost, for the few resources `deploy` touches: Namespaces,
//! ConfigMaps (read), Pods and Events (listed by selector), KServe ServingRuntimes and
//! ClusterServingRuntimes (read), and the objects deploy writes ([`Kind`]: InferenceServices,
//! LLMInferenceServices, DaemonSets: read, server-side apply, merge patch, list, watch,
//! delete).
//!
//! It lets the tests drive a real Kubernetes client (kube-rs, over plain HTTP with a bearer
//! token from a kubeconfig) without a cluster, so the wire format is the apiserver's, not
//! an idea of it: errors are `metav1.Status` bodies with the apiserver's reasons and
//! messages ([`status`]); apply keeps field ownership in `metadata.managedFields`, conflicts
//! with other managers and removes fields its manager stopped applying ([`fields`],
//! [`apply`]); watches stream newline-delimited events from an event history, and expire
//! (410) once the test compacts that history ([`watch`]). The test plays the KServe and
//! DaemonSet controllers and the kubelet ([`KubeServer::set_status`],
//! [`KubeServer::write_status`], [`KubeServer::add_pod`], [`KubeServer::add_event`]) and
//! other clients ([`KubeServer::merge_patch_as`]).
//!
//! Std-only HTTP on 127.0.0.1 ([`crate::http_server`]), one thread per connection, the state
//! in memory behind a mutex whose condition variable wakes the open watches on each change.
//! This module holds the server, its state and the test API; [`routes`] the endpoints.
//!
//! Like etcd, one resourceVersion counter serves every object; it moves only on a real
//! change, so a no-op apply is visible as one.

mod apply;
mod fields;
mod kinds;
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

pub use kinds::Kind;

/// An object clients write: its kind, namespace and name.
type Key = (Kind, String, String);

fn key(kind: Kind, ns: &str, name: &str) -> Key {
    (kind, ns.to_owned(), name.to_owned())
}

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

/// Every object stored, as the API returns it (written ones with their ownership).
#[derive(Default)]
struct State {
    /// The last resourceVersion given out.
    rv: u64,
    namespaces: BTreeMap<String, Value>,
    serving_runtimes: BTreeMap<(String, String), Value>,
    cluster_serving_runtimes: BTreeMap<String, Value>,
    /// `object` without `metadata.managedFields`, which is rendered from the managers on the
    /// way out.
    objects: BTreeMap<Key, Owned>,
    config_maps: BTreeMap<(String, String), Value>,
    pods: Vec<Value>,
    events: Vec<Value>,
    /// `(plural, namespace)` the token may not read: a 403, as RBAC answers.
    forbidden: Vec<(&'static str, String)>,
    /// What `/version` says, when not the default.
    git_version: Option<String>,
    /// Whether the ImageVolume feature gate is on (dry-run pods keep image volumes).
    image_volumes: bool,
    /// Every change of a written object, oldest first.
    history: Vec<Event>,
    /// The resourceVersion at the last [`KubeServer::compact_watch_history`]: a watch from
    /// before it expires. (Events are kept, for watches already open.)
    compacted_at: u64,
    /// Bumped to end the open watches; `stopped` ends them for good.
    watch_epoch: u64,
    stopped: bool,
}

impl State {
    /// RBAC: a 403 for what the test forbade ([`KubeServer::forbid`]).
    fn check_allowed(
        &self,
        resource: status::Resource,
        name: &str,
        verb: &str,
        ns: &str,
    ) -> Result<(), Failure> {
        match self
            .forbidden
            .iter()
            .any(|(plural, n)| *plural == resource.plural && n == ns)
        {
            true => Err(Failure::forbidden(resource, name, verb, ns)),
            false => Ok(()),
        }
    }

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
            state: Mutex::new(State {
                image_volumes: true,
                ..State::default()
            }),
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
        self.object(Kind::InferenceService, ns, name)
    }

    /// The object as a GET returns it.
    pub fn object(&self, kind: Kind, ns: &str, name: &str) -> Option<Value> {
        let state = self.shared.lock();
        state.objects.get(&key(kind, ns, name)).map(apply::served)
    }

    /// Polls until the InferenceService exists; panics after `timeout`, listing the
    /// requests the server got.
    pub fn wait_for_inference_service(&self, ns: &str, name: &str, timeout: Duration) -> Value {
        self.wait_for(Kind::InferenceService, ns, name, timeout)
    }

    /// Polls until the object exists; panics after `timeout`, listing the requests the
    /// server got.
    pub fn wait_for(&self, kind: Kind, ns: &str, name: &str, timeout: Duration) -> Value {
        self.poll(kind, ns, name, "", timeout, |_| true)
    }

    /// Polls until the object exists at `generation` (a controller waiting for the spec it
    /// is to report on); panics after `timeout`, listing the requests the server got.
    pub fn wait_for_generation(
        &self,
        kind: Kind,
        ns: &str,
        name: &str,
        generation: i64,
        timeout: Duration,
    ) {
        let at = format!(" of generation {generation}");
        self.poll(kind, ns, name, &at, timeout, |o| {
            o["metadata"]["generation"].as_i64() == Some(generation)
        });
    }

    /// The object once `ready` says so of it; a panic naming it `NAME{described}` after
    /// `timeout`.
    fn poll(
        &self,
        kind: Kind,
        ns: &str,
        name: &str,
        described: &str,
        timeout: Duration,
        ready: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(object) = self.object(kind, ns, name).filter(|o| ready(o)) {
                return object;
            }
            assert!(
                Instant::now() < deadline,
                "no {} {ns}/{name}{described} after {timeout:?}; requests: {:#?}",
                kind.name(),
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
        self.set_status_of(Kind::InferenceService, ns, name, conditions, url);
    }

    /// [`Self::set_status`] for an object of any kind with conditions.
    pub fn set_status_of(
        &self,
        kind: Kind,
        ns: &str,
        name: &str,
        conditions: Value,
        url: Option<&str>,
    ) {
        let key = key(kind, ns, name);
        self.shared
            .change(|state| state.set_status(&key, conditions, url));
    }

    /// Plays a controller that writes these fields of `status` (a JSON object, merged into
    /// what is there), e.g. the DaemonSet controller's `desiredNumberScheduled` and
    /// `numberReady`; `observedGeneration` becomes the generation. Panics if the object
    /// does not exist.
    pub fn write_status(&self, kind: Kind, ns: &str, name: &str, fields: Value) {
        let Value::Object(fields) = fields else {
            panic!("KubeServer::write_status: the fields are a JSON object, not {fields}");
        };
        let key = key(kind, ns, name);
        self.shared.change(|state| {
            state.write_status(&key, |status| {
                for (field, value) in fields {
                    status[field.as_str()] = value;
                }
            })
        });
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
        self.merge_patch_of(Kind::InferenceService, manager, ns, name, patch)
    }

    /// [`Self::merge_patch_as`] of an object of any kind.
    pub fn merge_patch_of(
        &self,
        kind: Kind,
        manager: &str,
        ns: &str,
        name: &str,
        patch: &Value,
    ) -> Result<Value, (u16, Value)> {
        let key = key(kind, ns, name);
        self.shared
            .change(|state| state.merge_patch(&key, manager, patch))
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
        let key = key(Kind::InferenceService, ns, name);
        self.shared
            .change(|state| state.apply(&key, manager, force, config.clone()))
            .map(|(_, object)| object)
            .map_err(|f| (f.code, f.body))
    }

    /// Deletes the InferenceService (a DELETED event for watchers); false if there was none.
    pub fn delete_inference_service(&self, ns: &str, name: &str) -> bool {
        let key = key(Kind::InferenceService, ns, name);
        self.shared.change(|state| state.delete(&key))
    }

    /// A ConfigMap `name` in `ns` with `data` (a map of strings).
    pub fn add_config_map(&self, ns: &str, name: &str, data: Value) {
        self.shared.change(|state| {
            let rv = state.bump();
            let map = objects::config_map(ns, name, data, rv);
            state.config_maps.insert((ns.into(), name.into()), map);
        });
    }

    /// From now on the token may not read `plural` (`configmaps`, `pods`...) in `ns`: every
    /// such request is RBAC's 403, as for a service account bound to its own namespace.
    pub fn forbid(&self, plural: &'static str, ns: &str) {
        self.shared
            .change(|state| state.forbidden.push((plural, ns.into())));
    }

    /// `/version` reports this Kubernetes (`v1.31.4`) instead of the default.
    pub fn set_version(&self, git_version: &str) {
        self.shared
            .change(|state| state.git_version = Some(git_version.into()));
    }

    /// Turns the ImageVolume feature gate off (or on again): a pod with an image volume is
    /// then refused, as the apiserver refuses it once it dropped the disabled field.
    pub fn set_image_volume_gate(&self, on: bool) {
        self.shared.change(|state| state.image_volumes = on);
    }

    /// An Event in `ns` (JSON with at least `metadata.name` and `involvedObject`), as the
    /// kubelet records them; completed like [`Self::add_pod`] completes a pod.
    pub fn add_event(&self, ns: &str, event: Value) {
        self.shared.change(|state| {
            let rv = state.bump();
            let event = objects::completed(ns, event, "Event", rv);
            state.events.push(event);
        });
    }

    /// A pod in `ns` (JSON with at least `metadata.name`); the server fills in what a
    /// stored pod has besides (`apiVersion`, `kind`, namespace, uid, resourceVersion...).
    pub fn add_pod(&self, ns: &str, pod: Value) {
        self.shared.change(|state| {
            let rv = state.bump();
            state.pods.push(objects::completed(ns, pod, "Pod", rv));
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
