//! A Kubeflow Model Registry on localhost: the part of its REST API that registers a model
//! (registered model -> model version -> model artifact), as the OpenAPI spec
//! `api/openapi/model-registry.yaml` of `kubeflow/model-registry` (API version `v1alpha3`)
//! defines it.
//!
//! It lets the tests drive a client against the registry's real wire format without a
//! cluster: request bodies are checked as strictly as the real server checks them (its Go
//! decoder refuses unknown fields and wrong types with 400; a missing or empty required field
//! is a 422), every call needs `Authorization: Bearer <token>`, and the server can be told to
//! fail the next requests with 503 so that retries can be proven.
//!
//! Std-only HTTP on 127.0.0.1 ([`crate::http_server`]), state in memory behind a mutex. This
//! module holds the server, its state and the routing; [`handlers`] the endpoints and
//! [`schema`] the request bodies and their validation.
//!
//! Faithful to the real server, not to intuition, in two ways a client may trip over:
//! registered models and model versions share one id sequence (both are MLMD "contexts", so
//! the first version of the first model has id "2"), while artifacts have their own.

mod handlers;
mod schema;
mod state;

pub use state::Created;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::http_server::{HttpServer, Reply, Request};
use crate::tls::TestCa;
use crate::tls_front::TlsFront;
use handlers::*;
use state::State;

/// The path prefix of the spec, and the one of a future stable API that clients may also use.
pub const PREFIXES: [&str; 2] = ["/api/model_registry/v1alpha3", "/api/model_registry/v1"];

/// The model registry of one test: stopped when dropped.
pub struct ModelRegistryServer {
    server: HttpServer,
    shared: Arc<Shared>,
    /// With TLS, the front that serves it; dropped first, before the server it forwards to.
    front: Option<TlsFront>,
}

/// What the connection threads need.
struct Shared {
    token: String,
    /// The API prefixes served: both, or only v1alpha3 like a release before the move to v1.
    prefixes: Vec<&'static str>,
    state: Mutex<State>,
    /// Requests still to be answered with 503.
    fail_next: AtomicUsize,
    /// `METHOD target` of every request, in arrival order.
    requests: Mutex<Vec<String>>,
}

impl ModelRegistryServer {
    /// Starts a server on a free localhost port that accepts only `Bearer token`.
    pub fn start(token: &str) -> Self {
        Self::start_serving(token, PREFIXES.to_vec())
    }

    /// A server of a release from before the API moved to v1: only `v1alpha3` is served.
    pub fn start_v1alpha3_only(token: &str) -> Self {
        Self::start_serving(token, vec![PREFIXES[0]])
    }

    /// A server of the current API over TLS only, with a certificate `ca` issued, as
    /// OpenShift AI serves it (with the service CA): [`url`](Self::url) is
    /// `https://localhost:PORT`.
    pub fn start_tls(token: &str, ca: &TestCa) -> Self {
        let mut server = Self::start(token);
        server.front = Some(TlsFront::start(server.server.addr(), ca.server_config()));
        server
    }

    fn start_serving(token: &str, prefixes: Vec<&'static str>) -> Self {
        let shared = Arc::new(Shared {
            token: token.into(),
            prefixes,
            state: Mutex::new(State::default()),
            fail_next: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
        });
        let handler = {
            let shared = Arc::clone(&shared);
            Arc::new(move |request: &Request| handle(request, &shared))
        };
        Self {
            server: HttpServer::start("model registry", handler, |status, message| {
                Reply::error(status, message)
            }),
            shared,
            front: None,
        }
    }

    /// `http://127.0.0.1:PORT` (`https://localhost:PORT` with TLS), without a path.
    pub fn url(&self) -> String {
        match &self.front {
            Some(front) => format!("https://localhost:{}", front.port()),
            None => format!("http://{}", self.server.addr()),
        }
    }

    /// `127.0.0.1:PORT`, for [`crate::http::request`].
    pub fn host(&self) -> String {
        self.server.addr().to_string()
    }

    pub fn created(&self) -> Created {
        self.shared.lock_state().created
    }

    /// Answers the next `n` requests (whatever they are) with 503 and a JSON error body.
    pub fn fail_next(&self, n: usize) {
        self.shared.fail_next.store(n, Ordering::SeqCst);
    }

    /// `METHOD path?query` of every request received so far, including refused ones.
    pub fn requests(&self) -> Vec<String> {
        self.shared
            .requests
            .lock()
            .expect("request log lock")
            .clone()
    }

    /// Everything stored: `registeredModels`, `modelVersions`, `modelArtifacts` (as the API
    /// returns them) and `versionArtifacts` (`[{"modelVersionId", "artifactId"}]`).
    pub fn state_json(&self) -> Value {
        let state = self.shared.lock_state();
        let links: Vec<Value> = state
            .version_artifacts
            .iter()
            .map(|(version, artifact)| json!({"modelVersionId": version, "artifactId": artifact}))
            .collect();
        json!({
            "registeredModels": state.registered_models,
            "modelVersions": state.model_versions,
            "modelArtifacts": state.model_artifacts,
            "versionArtifacts": links,
        })
    }
}

impl Shared {
    fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("model registry state lock")
    }
}

/// Logs the request, then: injected 503s, authentication, the API.
fn handle(request: &Request, shared: &Shared) -> Reply {
    shared
        .requests
        .lock()
        .expect("request log lock")
        .push(format!("{} {}", request.method, request.target));
    let failing = shared
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        return Reply::error(503, "model registry test server: injected failure");
    }
    let expected = format!("Bearer {}", shared.token);
    if request.header("authorization") != Some(expected.as_str()) {
        return Reply::error(401, "missing or wrong bearer token");
    }
    let Some(rest) = shared
        .prefixes
        .iter()
        .find_map(|prefix| request.path.strip_prefix(prefix))
    else {
        return Reply::error(404, format!("no API under {}", request.path));
    };
    let segments: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    let mut state = shared.lock_state();
    route(request, &segments, &mut state)
}

fn route(request: &Request, segments: &[&str], state: &mut State) -> Reply {
    let method = request.method.as_str();
    match (method, segments) {
        ("GET", ["registered_model"]) => find_registered_model(request, state),
        ("GET", ["registered_models"]) => list(request, &state.registered_models),
        ("POST", ["registered_models"]) => create_registered_model(request, state),
        ("GET", ["registered_models", id]) => get(id, &state.registered_models, "RegisteredModel"),
        ("GET", ["model_version"]) => find_model_version(request, state),
        ("GET", ["model_versions"]) => list(request, &state.model_versions),
        ("POST", ["model_versions"]) => create_model_version(request, state),
        ("GET", ["model_versions", id]) => get(id, &state.model_versions, "ModelVersion"),
        ("GET", ["model_versions", id, "artifacts"]) => list_version_artifacts(request, id, state),
        ("POST", ["model_versions", id, "artifacts"]) => {
            upsert_version_artifact(request, id, state)
        }
        ("GET", ["model_artifact"]) => find_model_artifact(request, state),
        ("GET", ["model_artifacts", id]) => get(id, &state.model_artifacts, "ModelArtifact"),
        ("PATCH", ["model_artifacts", id]) => update_model_artifact(request, id, state),
        (
            _,
            ["registered_model" | "registered_models" | "model_version" | "model_versions"
            | "model_artifact"]
            | ["registered_models" | "model_versions" | "model_artifacts", _]
            | ["model_versions", _, "artifacts"],
        ) => Reply::error(405, format!("{method} is not served on this path")),
        _ => Reply::error(404, format!("no such endpoint: {}", request.path)),
    }
}
