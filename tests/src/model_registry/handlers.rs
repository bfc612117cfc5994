//! The API's endpoints: finding, getting, listing, creating and updating registered models,
//! model versions and model artifacts in the server's [`State`].

use std::time::{SystemTime, UNIX_EPOCH};

use base64::prelude::{Engine, BASE64_STANDARD};
use serde_json::{json, Map, Value};

use super::schema::{
    is_id, model_artifact, model_artifact_update, model_version_create, registered_model_create,
    validate,
};
use super::state::State;
use crate::http_server::{Reply, Request};

pub(super) fn find_registered_model(request: &Request, state: &State) -> Reply {
    let (name, external_id) = (request.param("name"), request.param("externalId"));
    if name.is_none() && external_id.is_none() {
        return Reply::error(400, "name or externalId is required");
    }
    let found = state
        .registered_models
        .iter()
        .find(|m| matches_name_and_external_id(m, name, external_id));
    found_or_404(found, "registered model")
}

/// `findModelVersion`: by `externalId`, or by `name` within the registered model
/// `parentResourceId` (a version name is unique only within its registered model).
pub(super) fn find_model_version(request: &Request, state: &State) -> Reply {
    let (name, external_id, parent) = match child_search(request) {
        Ok(search) => search,
        Err(reply) => return reply,
    };
    let found = state.model_versions.iter().find(|v| {
        matches_name_and_external_id(v, name, external_id)
            && parent.is_none_or(|p| v["registeredModelId"] == p)
    });
    found_or_404(found, "model version")
}

/// `findModelArtifact`: by `externalId`, or by `name` among the artifacts of the model version
/// `parentResourceId` (the official Python client names a model's artifact after the model).
pub(super) fn find_model_artifact(request: &Request, state: &State) -> Reply {
    let (name, external_id, parent) = match child_search(request) {
        Ok(search) => search,
        Err(reply) => return reply,
    };
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
    found_or_404(found, "model artifact")
}

/// `name`, `externalId` and `parentResourceId` of a search for an object that lives in a
/// parent: one of the first two is required, and a name needs the parent.
fn child_search(request: &Request) -> Result<SearchKeys<'_>, Reply> {
    let name = request.param("name");
    let external_id = request.param("externalId");
    let parent = request.param("parentResourceId");
    if name.is_none() && external_id.is_none() {
        return Err(Reply::error(400, "name or externalId is required"));
    }
    if name.is_some() && parent.is_none() {
        return Err(Reply::error(
            400,
            "parentResourceId is required when searching by name",
        ));
    }
    Ok((name, external_id, parent))
}

type SearchKeys<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>);

fn found_or_404(found: Option<&Value>, kind: &str) -> Reply {
    match found {
        Some(object) => Reply::json(200, object),
        None => Reply::error(404, format!("no {kind} found")),
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

pub(super) fn get(id: &str, objects: &[Value], kind: &str) -> Reply {
    if !is_id(id) {
        return Reply::error(400, format!("invalid {kind} id {id:?}"));
    }
    match objects.iter().find(|o| o["id"] == id) {
        Some(object) => Reply::json(200, object),
        None => Reply::error(404, format!("no {kind} with id {id}")),
    }
}

pub(super) fn create_registered_model(request: &Request, state: &mut State) -> Reply {
    let body = match validate(&request.body, &registered_model_create()) {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let name = &body["name"];
    if state.registered_models.iter().any(|m| &m["name"] == name) {
        return Reply::error(409, format!("registered model {name} already exists"));
    }
    let model = new_context(state, body);
    state.registered_models.push(model.clone());
    state.created.registered_models += 1;
    Reply::json(201, &model)
}

pub(super) fn create_model_version(request: &Request, state: &mut State) -> Reply {
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
    let version = new_context(state, body);
    state.model_versions.push(version.clone());
    state.created.model_versions += 1;
    Reply::json(201, &version)
}

/// A new registered model or model version: the next id of their shared sequence, state
/// `LIVE` unless the body says otherwise.
fn new_context(state: &mut State, body: Map<String, Value>) -> Value {
    state.last_context_id += 1;
    let mut object = server_fields(state.last_context_id);
    object.insert("state".into(), json!("LIVE"));
    object.extend(body);
    Value::Object(object)
}

/// `upsertModelVersionArtifact`: the body is a whole `Artifact` (oneOf by `artifactType`);
/// without an `id` it is created (201), with one the existing artifact is updated and
/// associated (200). Only `model-artifact` is served here.
pub(super) fn upsert_version_artifact(
    request: &Request,
    version_id: &str,
    state: &mut State,
) -> Reply {
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
    Reply::json(201, &artifact)
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
    Reply::json(200, &artifact)
}

pub(super) fn update_model_artifact(request: &Request, id: &str, state: &mut State) -> Reply {
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
            Reply::json(200, artifact)
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

pub(super) fn list_version_artifacts(request: &Request, version_id: &str, state: &State) -> Reply {
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
pub(super) fn list(request: &Request, objects: &[Value]) -> Reply {
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
    Reply::json(
        200,
        &json!({
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip() {
        let token = BASE64_STANDARD.encode("offset:7");
        assert_eq!(decode_page_token(&token), Some(7));
        assert_eq!(decode_page_token("nonsense"), None);
    }
}
