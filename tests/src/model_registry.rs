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
//! Std-only HTTP on 127.0.0.1 (one thread per connection, `Connection: close`), state in
//! memory behind a mutex.
//!
//! Faithful to the real server, not to intuition, in two ways a client may trip over:
//! registered models and model versions share one id sequence (both are MLMD "contexts", so
//! the first version of the first model has id "2"), while artifacts have their own.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::prelude::{Engine, BASE64_STANDARD};
use serde_json::{json, Map, Value};

/// The path prefix of the spec, and the one of a future stable API that clients may also use.
pub const PREFIXES: [&str; 2] = ["/api/model_registry/v1alpha3", "/api/model_registry/v1"];

/// Longest request head the server reads.
const MAX_REQUEST_HEAD: usize = 64 * 1024;
/// Longest request body the server reads: metadata only, never model bytes.
const MAX_REQUEST_BODY: usize = 4 * 1024 * 1024;

/// How many objects of each kind the server has created so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Created {
    pub registered_models: usize,
    pub model_versions: usize,
    pub model_artifacts: usize,
}

/// The model registry of one test: stopped when dropped.
pub struct ModelRegistryServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    accept_thread: Option<JoinHandle<()>>,
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

/// Everything stored, as the JSON objects the API returns.
#[derive(Default)]
struct State {
    /// Registered models and model versions share this sequence, as in the real server.
    last_context_id: u64,
    last_artifact_id: u64,
    registered_models: Vec<Value>,
    model_versions: Vec<Value>,
    model_artifacts: Vec<Value>,
    /// `(model version id, artifact id)` associations, in the order they were made.
    version_artifacts: Vec<(String, String)>,
    created: Created,
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

    fn start_serving(token: &str, prefixes: Vec<&'static str>) -> Self {
        let shared = Arc::new(Shared {
            token: token.into(),
            prefixes,
            state: Mutex::new(State::default()),
            fail_next: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
        });
        let listener =
            TcpListener::bind("127.0.0.1:0").expect("cannot bind the model registry's port");
        let addr = listener
            .local_addr()
            .expect("model registry socket has no address");
        let stop = Arc::new(AtomicBool::new(false));
        let accept_thread = {
            let (shared, stop) = (Arc::clone(&shared), Arc::clone(&stop));
            thread::spawn(move || accept_loop(&listener, &shared, &stop))
        };
        Self {
            addr,
            shared,
            stop,
            accept_thread: Some(accept_thread),
        }
    }

    /// `http://127.0.0.1:PORT`, without a path.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:PORT`, for [`crate::http::request`].
    pub fn host(&self) -> String {
        self.addr.to_string()
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

impl Drop for ModelRegistryServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept() so the loop sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
    }
}

impl Shared {
    fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("model registry state lock")
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, stop: &AtomicBool) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(stream) = stream {
            let shared = Arc::clone(shared);
            thread::spawn(move || {
                // A client that hangs up early is its own problem, not the server's.
                let _ = serve_connection(stream, &shared);
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// One parsed request.
struct Request {
    method: String,
    /// Path and query as sent, for the request log.
    target: String,
    /// The path with the API prefix still on.
    path: String,
    query: Vec<(String, String)>,
    authorization: Option<String>,
    body: Vec<u8>,
}

impl Request {
    /// The last value of query parameter `name`, decoded.
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP response: status and a JSON body.
struct Reply {
    status: u16,
    body: Value,
}

impl Reply {
    fn ok(status: u16, body: Value) -> Self {
        Self { status, body }
    }

    /// The spec's `Error` schema: `code` is the status text (as the real server's
    /// `ErrorResponse` writes it), `message` says what is wrong.
    fn error(status: u16, message: impl Into<String>) -> Self {
        Self::error_with_code(status, status, message)
    }

    /// An error whose `code` names another status than the one sent: the real server answers
    /// a missing required field with 422 and the body `{"code": "Bad Request", ...}`.
    fn error_with_code(status: u16, code: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({"code": reason(code), "message": message.into()}),
        }
    }

    fn write_to(&self, stream: &mut TcpStream) -> std::io::Result<()> {
        let body = self.body.to_string();
        let head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            self.status,
            reason(self.status),
            body.len()
        );
        stream.write_all(head.as_bytes())?;
        stream.write_all(body.as_bytes())?;
        stream.flush()
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

fn serve_connection(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let reply = match read_request(&mut stream)? {
        Ok(request) => handle(&request, shared),
        Err(reply) => reply,
    };
    reply.write_to(&mut stream)
}

/// Reads the head and the body (by `Content-Length`, or chunked); a malformed request is an
/// `Err` holding the reply to send.
fn read_request(stream: &mut TcpStream) -> std::io::Result<Result<Request, Reply>> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut buf)?;
        if n == 0 || raw.len() > MAX_REQUEST_HEAD {
            return Ok(Err(Reply::error(400, "incomplete request head")));
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut body = raw.split_off(head_end + 4);
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split_whitespace();
    let method = request_line.next().unwrap_or_default().to_owned();
    let target = request_line.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let chunked = header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if length > MAX_REQUEST_BODY {
        return Ok(Err(Reply::error(413, "request body too large")));
    }
    if chunked {
        body = match read_chunked(stream, body)? {
            Some(body) => body,
            None => return Ok(Err(Reply::error(400, "malformed chunked body"))),
        };
    } else {
        while body.len() < length {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Ok(Err(Reply::error(
                    400,
                    "request body shorter than its length",
                )));
            }
            body.extend_from_slice(&buf[..n]);
        }
        body.truncate(length);
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    Ok(Ok(Request {
        method,
        target: target.clone(),
        path: path.to_owned(),
        query: parse_query(query),
        authorization: header("authorization"),
        body,
    }))
}

/// The decoded body of a `Transfer-Encoding: chunked` request whose first bytes are `raw`;
/// `None` if it is malformed.
fn read_chunked(stream: &mut TcpStream, mut raw: Vec<u8>) -> std::io::Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    let mut pos = 0;
    let mut buf = [0u8; 8192];
    loop {
        // Size line.
        let line_end = loop {
            if let Some(i) = raw[pos..].windows(2).position(|w| w == b"\r\n") {
                break pos + i;
            }
            let n = stream.read(&mut buf)?;
            if n == 0 || raw.len() > MAX_REQUEST_BODY {
                return Ok(None);
            }
            raw.extend_from_slice(&buf[..n]);
        };
        let size_text = String::from_utf8_lossy(&raw[pos..line_end]).into_owned();
        let size_hex = size_text.split(';').next().unwrap_or_default().trim();
        let Ok(size) = usize::from_str_radix(size_hex, 16) else {
            return Ok(None);
        };
        pos = line_end + 2;
        if size == 0 {
            return Ok(Some(body));
        }
        while raw.len() < pos + size + 2 {
            let n = stream.read(&mut buf)?;
            if n == 0 || raw.len() > MAX_REQUEST_BODY {
                return Ok(None);
            }
            raw.extend_from_slice(&buf[..n]);
        }
        body.extend_from_slice(&raw[pos..pos + size]);
        pos += size + 2;
    }
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

/// URL query decoding: `%XX` escapes and `+` for a space; invalid escapes are kept as-is.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], escaped) {
            (_, Some(byte)) => {
                out.push(byte);
                i += 3;
                continue;
            }
            (b'+', None) => out.push(b' '),
            (byte, None) => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Routing

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
    if request.authorization.as_deref() != Some(expected.as_str()) {
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

// ---------------------------------------------------------------------------------------------
// Handlers

fn find_registered_model(request: &Request, state: &State) -> Reply {
    let found = match (request.param("name"), request.param("externalId")) {
        (None, None) => return Reply::error(400, "name or externalId is required"),
        (name, external_id) => state
            .registered_models
            .iter()
            .find(|m| matches_name_and_external_id(m, name, external_id)),
    };
    match found {
        Some(model) => Reply::ok(200, model.clone()),
        None => Reply::error(404, "no registered model found"),
    }
}

/// `findModelVersion`: by `externalId`, or by `name` within the registered model
/// `parentResourceId` (a version name is unique only within its registered model).
fn find_model_version(request: &Request, state: &State) -> Reply {
    let name = request.param("name");
    let external_id = request.param("externalId");
    let parent = request.param("parentResourceId");
    if name.is_none() && external_id.is_none() {
        return Reply::error(400, "name or externalId is required");
    }
    if name.is_some() && parent.is_none() {
        return Reply::error(400, "parentResourceId is required when searching by name");
    }
    let found = state.model_versions.iter().find(|v| {
        matches_name_and_external_id(v, name, external_id)
            && parent.is_none_or(|p| v["registeredModelId"] == p)
    });
    match found {
        Some(version) => Reply::ok(200, version.clone()),
        None => Reply::error(404, "no model version found"),
    }
}

/// `findModelArtifact`: by `externalId`, or by `name` among the artifacts of the model version
/// `parentResourceId` (the official Python client names a model's artifact after the model).
fn find_model_artifact(request: &Request, state: &State) -> Reply {
    let name = request.param("name");
    let external_id = request.param("externalId");
    let parent = request.param("parentResourceId");
    if name.is_none() && external_id.is_none() {
        return Reply::error(400, "name or externalId is required");
    }
    if name.is_some() && parent.is_none() {
        return Reply::error(400, "parentResourceId is required when searching by name");
    }
    let linked = |artifact: &Value| {
        parent.is_none_or(|p| {
            state
                .version_artifacts
                .iter()
                .any(|(version, id)| version == p && artifact["id"] == id.as_str())
        })
    };
    let found = state
        .model_artifacts
        .iter()
        .find(|a| matches_name_and_external_id(a, name, external_id) && linked(a));
    match found {
        Some(artifact) => Reply::ok(200, artifact.clone()),
        None => Reply::error(404, "no model artifact found"),
    }
}

fn matches_name_and_external_id(
    object: &Value,
    name: Option<&str>,
    external_id: Option<&str>,
) -> bool {
    name.is_none_or(|n| object["name"] == n)
        && external_id.is_none_or(|e| object["externalId"] == e)
}

fn get(id: &str, objects: &[Value], kind: &str) -> Reply {
    if !is_id(id) {
        return Reply::error(400, format!("invalid {kind} id {id:?}"));
    }
    match objects.iter().find(|o| o["id"] == id) {
        Some(object) => Reply::ok(200, object.clone()),
        None => Reply::error(404, format!("no {kind} with id {id}")),
    }
}

fn create_registered_model(request: &Request, state: &mut State) -> Reply {
    let body = match validate(&request.body, &registered_model_create()) {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let name = &body["name"];
    if state.registered_models.iter().any(|m| &m["name"] == name) {
        return Reply::error(409, format!("registered model {name} already exists"));
    }
    state.last_context_id += 1;
    let mut model = server_fields(state.last_context_id);
    model.insert("state".into(), json!("LIVE"));
    model.extend(body);
    let model = Value::Object(model);
    state.registered_models.push(model.clone());
    state.created.registered_models += 1;
    Reply::ok(201, model)
}

fn create_model_version(request: &Request, state: &mut State) -> Reply {
    let body = match validate(&request.body, &model_version_create()) {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let parent = &body["registeredModelId"];
    if !state.registered_models.iter().any(|m| &m["id"] == parent) {
        return Reply::error(404, format!("no registered model with id {parent}"));
    }
    let name = &body["name"];
    let taken = state
        .model_versions
        .iter()
        .any(|v| &v["registeredModelId"] == parent && &v["name"] == name);
    if taken {
        return Reply::error(409, format!("model version {name} already exists"));
    }
    state.last_context_id += 1;
    let mut version = server_fields(state.last_context_id);
    version.insert("state".into(), json!("LIVE"));
    version.extend(body);
    let version = Value::Object(version);
    state.model_versions.push(version.clone());
    state.created.model_versions += 1;
    Reply::ok(201, version)
}

/// `upsertModelVersionArtifact`: the body is a whole `Artifact` (oneOf by `artifactType`);
/// without an `id` it is created (201), with one the existing artifact is updated and
/// associated (200). Only `model-artifact` is served here.
fn upsert_version_artifact(request: &Request, version_id: &str, state: &mut State) -> Reply {
    let body = match validate(&request.body, &model_artifact()) {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    if !state.model_versions.iter().any(|v| v["id"] == version_id) {
        return Reply::error(404, format!("no model version with id {version_id}"));
    }
    match body.get("id").and_then(Value::as_str).map(str::to_owned) {
        Some(id) => associate_existing_artifact(&id, body, version_id, state),
        None => create_model_artifact(body, version_id, state),
    }
}

fn create_model_artifact(body: Map<String, Value>, version_id: &str, state: &mut State) -> Reply {
    if let Some(name) = body.get("name") {
        let taken = state
            .version_artifacts
            .iter()
            .filter(|(v, _)| v == version_id)
            .filter_map(|(_, a)| state.model_artifacts.iter().find(|o| o["id"] == *a))
            .any(|a| a.get("name") == Some(name));
        if taken {
            return Reply::error(
                409,
                format!("artifact {name} already exists in this version"),
            );
        }
    }
    state.last_artifact_id += 1;
    let mut artifact = server_fields(state.last_artifact_id);
    artifact.insert("artifactType".into(), json!("model-artifact"));
    artifact.insert("state".into(), json!("UNKNOWN"));
    // Output-only times a client may echo back: the server's values win.
    artifact.extend(body.into_iter().filter(|(name, _)| {
        !matches!(
            name.as_str(),
            "createTimeSinceEpoch" | "lastUpdateTimeSinceEpoch"
        )
    }));
    let artifact = Value::Object(artifact);
    let id = artifact["id"].as_str().unwrap_or_default().to_owned();
    state.model_artifacts.push(artifact.clone());
    state.version_artifacts.push((version_id.to_owned(), id));
    state.created.model_artifacts += 1;
    Reply::ok(201, artifact)
}

fn associate_existing_artifact(
    id: &str,
    body: Map<String, Value>,
    version_id: &str,
    state: &mut State,
) -> Reply {
    let Some(artifact) = state.model_artifacts.iter_mut().find(|a| a["id"] == id) else {
        return Reply::error(404, format!("no artifact with id {id}"));
    };
    merge_update(artifact, body);
    let artifact = artifact.clone();
    let link = (version_id.to_owned(), id.to_owned());
    if !state.version_artifacts.contains(&link) {
        state.version_artifacts.push(link);
    }
    Reply::ok(200, artifact)
}

fn update_model_artifact(request: &Request, id: &str, state: &mut State) -> Reply {
    if !is_id(id) {
        return Reply::error(400, format!("invalid ModelArtifact id {id:?}"));
    }
    let body = match validate(&request.body, &model_artifact_update()) {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    match state.model_artifacts.iter_mut().find(|a| a["id"] == id) {
        Some(artifact) => {
            merge_update(artifact, body);
            Reply::ok(200, artifact.clone())
        }
        None => Reply::error(404, format!("no ModelArtifact with id {id}")),
    }
}

/// Applies the given fields (a PATCH: absent fields are kept) and bumps the update time.
fn merge_update(object: &mut Value, body: Map<String, Value>) {
    let Some(fields) = object.as_object_mut() else {
        return;
    };
    for (name, value) in body {
        if !matches!(
            name.as_str(),
            "id" | "createTimeSinceEpoch" | "lastUpdateTimeSinceEpoch"
        ) {
            fields.insert(name, value);
        }
    }
    fields.insert("lastUpdateTimeSinceEpoch".into(), json!(now_millis()));
}

fn list_version_artifacts(request: &Request, version_id: &str, state: &State) -> Reply {
    if !is_id(version_id) {
        return Reply::error(400, format!("invalid ModelVersion id {version_id:?}"));
    }
    if !state.model_versions.iter().any(|v| v["id"] == version_id) {
        return Reply::error(404, format!("no model version with id {version_id}"));
    }
    let name = request.param("name");
    let external_id = request.param("externalId");
    let artifact_type = request.param("artifactType");
    let artifacts: Vec<Value> = state
        .version_artifacts
        .iter()
        .filter(|(v, _)| v == version_id)
        .filter_map(|(_, a)| state.model_artifacts.iter().find(|o| o["id"] == *a))
        .filter(|a| matches_name_and_external_id(a, name, external_id))
        .filter(|a| artifact_type.is_none_or(|t| a["artifactType"] == t))
        .cloned()
        .collect();
    list(request, &artifacts)
}

/// A `...List` response: `items`, `size`, `pageSize`, `nextPageToken` (empty on the last
/// page), ordered by id (the spec's default `CREATE_TIME` ascending).
fn list(request: &Request, objects: &[Value]) -> Reply {
    let page_size = match request.param("pageSize") {
        None => objects.len().max(1),
        Some(text) if is_id(text) => text.parse().unwrap_or(usize::MAX),
        Some(text) => return Reply::error(400, format!("invalid pageSize {text:?}")),
    };
    let start = match request.param("nextPageToken").filter(|t| !t.is_empty()) {
        None => 0,
        Some(token) => match decode_page_token(token) {
            Some(start) => start,
            None => return Reply::error(400, format!("invalid nextPageToken {token:?}")),
        },
    };
    let mut sorted: Vec<&Value> = objects.iter().collect();
    sorted.sort_by_key(|o| o["id"].as_str().and_then(|id| id.parse::<u64>().ok()));
    if request.param("sortOrder") == Some("DESC") {
        sorted.reverse();
    }
    let items: Vec<Value> = sorted
        .iter()
        .skip(start)
        .take(page_size)
        .map(|o| (*o).clone())
        .collect();
    let end = start + items.len();
    let next = match end < sorted.len() {
        true => BASE64_STANDARD.encode(format!("offset:{end}")),
        false => String::new(),
    };
    Reply::ok(
        200,
        json!({
            "items": items,
            "size": items.len(),
            "pageSize": page_size,
            "nextPageToken": next,
        }),
    )
}

fn decode_page_token(token: &str) -> Option<usize> {
    let text = String::from_utf8(BASE64_STANDARD.decode(token).ok()?).ok()?;
    text.strip_prefix("offset:")?.parse().ok()
}

/// `id`, `createTimeSinceEpoch` and `lastUpdateTimeSinceEpoch` of a new object.
fn server_fields(id: u64) -> Map<String, Value> {
    let now = now_millis();
    let mut fields = Map::new();
    fields.insert("id".into(), json!(id.to_string()));
    fields.insert("createTimeSinceEpoch".into(), json!(now));
    fields.insert("lastUpdateTimeSinceEpoch".into(), json!(now));
    fields
}

/// Milliseconds since the epoch as a string: the spec's `int64` fields travel as strings.
fn now_millis() -> String {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        .to_string()
}

/// The spec's id pattern `^[1-9][0-9]{0,8}$`.
fn is_id(text: &str) -> bool {
    (1..=9).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_digit())
        && !text.starts_with('0')
}

// ---------------------------------------------------------------------------------------------
// Schemas: the request bodies of the spec, flattened from their `allOf`s.

/// The JSON type a field must have.
#[derive(Debug, Clone, Copy)]
enum Ty {
    Str,
    /// A string of the spec's id pattern.
    Id,
    StrList,
    /// `customProperties`: name -> `MetadataValue`.
    Properties,
    /// A string from a fixed set (the spec's enums, and the `artifactType` discriminator).
    Enum(&'static [&'static str]),
}

#[derive(Debug, Clone, Copy)]
struct Field {
    name: &'static str,
    ty: Ty,
    required: bool,
}

const fn opt(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: false,
    }
}

const fn req(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: true,
    }
}

const ARTIFACT_STATES: &[&str] = &[
    "UNKNOWN",
    "PENDING",
    "LIVE",
    "MARKED_FOR_DELETION",
    "DELETED",
    "ABANDONED",
    "REFERENCE",
];
/// `RegisteredModelState` and `ModelVersionState`.
const MODEL_STATES: &[&str] = &["LIVE", "ARCHIVED"];

/// `BaseResourceUpdate`.
const BASE_RESOURCE_UPDATE: &[Field] = &[
    opt("customProperties", Ty::Properties),
    opt("description", Ty::Str),
    opt("externalId", Ty::Str),
];

/// `BaseModel` (its `description` and `customProperties` repeat `BaseResourceUpdate`'s).
const BASE_MODEL: &[Field] = &[
    opt("readme", Ty::Str),
    opt("maturity", Ty::Str),
    opt("language", Ty::StrList),
    opt("tasks", Ty::StrList),
    opt("provider", Ty::Str),
    opt("logo", Ty::Str),
    opt("license", Ty::Str),
    opt("licenseLink", Ty::Str),
    opt("libraryName", Ty::Str),
];

/// `ModelArtifactUpdate` beyond `BaseResourceUpdate`.
const MODEL_ARTIFACT_FIELDS: &[Field] = &[
    opt("artifactType", Ty::Enum(&["model-artifact"])),
    opt("modelFormatName", Ty::Str),
    opt("storageKey", Ty::Str),
    opt("storagePath", Ty::Str),
    opt("modelFormatVersion", Ty::Str),
    opt("serviceAccountName", Ty::Str),
    opt("modelSourceKind", Ty::Str),
    opt("modelSourceClass", Ty::Str),
    opt("modelSourceGroup", Ty::Str),
    opt("modelSourceId", Ty::Str),
    opt("modelSourceName", Ty::Str),
    opt("uri", Ty::Str),
    opt("state", Ty::Enum(ARTIFACT_STATES)),
];

/// `RegisteredModelCreate` = `BaseResourceCreate` + `RegisteredModelUpdate` + required `name`.
fn registered_model_create() -> Vec<Field> {
    [
        BASE_RESOURCE_UPDATE,
        BASE_MODEL,
        &[
            req("name", Ty::Str),
            opt("owner", Ty::Str),
            opt("state", Ty::Enum(MODEL_STATES)),
        ],
    ]
    .concat()
}

/// `ModelVersionCreate` = `BaseResourceCreate` + `ModelVersionUpdate` + required `name` and
/// `registeredModelId`.
fn model_version_create() -> Vec<Field> {
    [
        BASE_RESOURCE_UPDATE,
        &[
            req("name", Ty::Str),
            req("registeredModelId", Ty::Id),
            opt("state", Ty::Enum(MODEL_STATES)),
            opt("author", Ty::Str),
        ],
    ]
    .concat()
}

/// `ModelArtifactUpdate`, the PATCH body.
fn model_artifact_update() -> Vec<Field> {
    [BASE_RESOURCE_UPDATE, MODEL_ARTIFACT_FIELDS].concat()
}

/// `ModelArtifact`, the `model-artifact` branch of `Artifact` (what the upsert endpoint
/// takes): `BaseArtifact` (with the output-only fields) + `ModelArtifactCreate`. The
/// discriminator `artifactType` selects the branch, so it is required here.
fn model_artifact() -> Vec<Field> {
    [
        BASE_RESOURCE_UPDATE,
        MODEL_ARTIFACT_FIELDS,
        &[
            req("artifactType", Ty::Enum(&["model-artifact"])),
            opt("name", Ty::Str),
            opt("id", Ty::Id),
            opt("createTimeSinceEpoch", Ty::Str),
            opt("lastUpdateTimeSinceEpoch", Ty::Str),
            opt("experimentId", Ty::Id),
            opt("experimentRunId", Ty::Id),
        ],
    ]
    .concat()
}

/// A body that is a JSON object of `schema`, or the error the real server sends: 400 for bad
/// JSON, an unknown field or a wrong type (its decoder fails), then 422 for a required field
/// that is missing or empty (its `Assert...Required` fails; the body says "Bad Request").
fn validate(body: &[u8], schema: &[Field]) -> Result<Map<String, Value>, Reply> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Reply::error(400, format!("request body is not JSON: {e}")))?;
    let Value::Object(object) = value else {
        return Err(Reply::error(400, "request body is not a JSON object"));
    };
    for (name, value) in &object {
        // The last definition wins where `allOf` parts repeat a field (e.g. `artifactType`).
        let field = schema
            .iter()
            .rev()
            .find(|f| f.name == name)
            .ok_or_else(|| Reply::error(400, format!("json: unknown field {name:?}")))?;
        check_type(field, value).map_err(|message| Reply::error(400, message))?;
    }
    for field in schema.iter().filter(|f| f.required) {
        let missing = match object.get(field.name) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(_) => false,
        };
        if missing {
            return Err(Reply::error_with_code(
                422,
                400,
                format!("required field '{}' is zero value.", field.name),
            ));
        }
    }
    Ok(object)
}

fn check_type(field: &Field, value: &Value) -> Result<(), String> {
    let name = field.name;
    let wrong = |expected: &str| format!("field {name:?} must be {expected}, not {value}");
    match (field.ty, value) {
        (Ty::Str, Value::String(_)) => Ok(()),
        (Ty::Id, Value::String(s)) if is_id(s) => Ok(()),
        (Ty::Id, _) => Err(wrong("an id string matching ^[1-9][0-9]{0,8}$")),
        (Ty::StrList, Value::Array(items)) if items.iter().all(Value::is_string) => Ok(()),
        (Ty::StrList, _) => Err(wrong("an array of strings")),
        (Ty::Enum(allowed), Value::String(s)) if allowed.contains(&s.as_str()) => Ok(()),
        (Ty::Enum(allowed), _) => Err(wrong(&format!("one of {allowed:?}"))),
        (Ty::Properties, Value::Object(properties)) => properties
            .iter()
            .try_for_each(|(key, v)| check_metadata_value(key, v)),
        (Ty::Properties, _) => Err(wrong("an object of MetadataValue")),
        (Ty::Str, _) => Err(wrong("a string")),
    }
}

/// A field of a `MetadataValue` variant and the check its value must pass.
type ValueField = (&'static str, fn(&Value) -> bool);

/// A `MetadataValue`: `oneOf` selected by `metadataType`, each variant with
/// `additionalProperties: false` and both of its fields required.
fn check_metadata_value(key: &str, value: &Value) -> Result<(), String> {
    let bad = |why: String| format!("customProperties[{key:?}]: {why}");
    let Value::Object(fields) = value else {
        return Err(bad(format!("must be a MetadataValue object, not {value}")));
    };
    let Some(Value::String(kind)) = fields.get("metadataType") else {
        return Err(bad("metadataType (a string) is required".into()));
    };
    let expected: &[ValueField] = match kind.as_str() {
        "MetadataStringValue" => &[("string_value", Value::is_string)],
        "MetadataIntValue" => &[("int_value", is_int32_string)],
        "MetadataDoubleValue" => &[("double_value", Value::is_number)],
        "MetadataBoolValue" => &[("bool_value", Value::is_boolean)],
        "MetadataStructValue" => &[("struct_value", is_base64)],
        "MetadataProtoValue" => &[("type", Value::is_string), ("proto_value", is_base64)],
        other => return Err(bad(format!("unknown metadataType {other:?}"))),
    };
    for name in fields.keys().filter(|n| *n != "metadataType") {
        if !expected.iter().any(|(n, _)| n == name) {
            return Err(bad(format!("unknown field {name:?} in {kind}")));
        }
    }
    for (name, is_valid) in expected {
        match fields.get(*name) {
            None => return Err(bad(format!("{kind} requires {name:?}"))),
            Some(v) if !is_valid(v) => return Err(bad(format!("{name:?} is invalid: {v}"))),
            Some(_) => {}
        }
    }
    Ok(())
}

/// `int_value`: an int32 carried as a string, pattern `^-?([1-9][0-9]{0,8}|0)$`.
fn is_int32_string(value: &Value) -> bool {
    let Some(text) = value.as_str() else {
        return false;
    };
    let digits = text.strip_prefix('-').unwrap_or(text);
    digits == "0" || is_id(digits)
}

/// `struct_value` / `proto_value`: base64 bytes (`format: byte`).
fn is_base64(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|text| BASE64_STANDARD.decode(text).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_spec_pattern() {
        assert!(is_id("1") && is_id("123456789"));
        assert!(!is_id("0") && !is_id("01") && !is_id("1234567890") && !is_id("a"));
    }

    #[test]
    fn int_values_are_int32_strings() {
        assert!(is_int32_string(&json!("0")) && is_int32_string(&json!("-42")));
        assert!(!is_int32_string(&json!(42)) && !is_int32_string(&json!("1.5")));
        assert!(!is_int32_string(&json!("007")));
    }

    #[test]
    fn metadata_values_are_checked_by_their_discriminator() {
        let ok = json!({"metadataType": "MetadataStructValue", "struct_value": "e30="});
        assert_eq!(check_metadata_value("k", &ok), Ok(()));
        let extra = json!({"metadataType": "MetadataBoolValue", "bool_value": true, "x": 1});
        assert!(check_metadata_value("k", &extra).is_err());
        let wrong = json!({"metadataType": "MetadataDoubleValue", "double_value": "1.5"});
        assert!(check_metadata_value("k", &wrong).is_err());
        let untyped = json!({"string_value": "v"});
        assert!(check_metadata_value("k", &untyped).is_err());
    }

    #[test]
    fn page_tokens_round_trip() {
        let token = BASE64_STANDARD.encode("offset:7");
        assert_eq!(decode_page_token(&token), Some(7));
        assert_eq!(decode_page_token("nonsense"), None);
    }

    #[test]
    fn queries_are_decoded() {
        assert_eq!(
            parse_query("name=my%20model&parentResourceId=2&x"),
            [
                ("name".to_owned(), "my model".to_owned()),
                ("parentResourceId".to_owned(), "2".to_owned()),
                ("x".to_owned(), String::new()),
            ]
        );
    }
}
