//! The in-test Kubeflow Model Registry, driven with raw HTTP: the register flow (registered
//! model -> version -> model artifact), finds, strict body validation, bearer auth, both path
//! prefixes and injected 503s.

use modelcar_testkit::http::{request, Response};
use modelcar_testkit::model_registry::{Created, PREFIXES};
use modelcar_testkit::ModelRegistryServer;
use serde_json::{json, Value};

const TOKEN: &str = "test-token";
const V1ALPHA3: &str = "/api/model_registry/v1alpha3";

/// `method prefix+path` with the right bearer token and a JSON body (if any).
fn call(server: &ModelRegistryServer, method: &str, path: &str, body: Option<Value>) -> Response {
    call_as(server, Some(TOKEN), method, path, body)
}

fn call_as(
    server: &ModelRegistryServer,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Response {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(auth) = auth.as_deref() {
        headers.push(("Authorization", auth));
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    request(&server.host(), method, path, &headers, body.as_bytes())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn json_of(response: &Response) -> Value {
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", response.body_text()))
}

/// Asserts the status, and that the body is the spec's `Error` when it is an error.
fn expect(response: &Response, status: u16) -> Value {
    assert_eq!(response.status, status, "{}", response.body_text());
    let body = json_of(response);
    if status >= 400 {
        assert!(body["code"].is_string(), "no code: {body}");
        assert!(body["message"].is_string(), "no message: {body}");
    }
    body
}

#[test]
fn register_model_version_and_artifact_then_find_them() {
    let server = ModelRegistryServer::start(TOKEN);
    assert!(server.url().starts_with("http://127.0.0.1:"));

    let model = expect(
        &call(
            &server,
            "POST",
            &format!("{V1ALPHA3}/registered_models"),
            Some(json!({
                "name": "granite",
                "description": "a model",
                "owner": "alice",
                "customProperties": {
                    "team": {"metadataType": "MetadataStringValue", "string_value": "ml"},
                    "layers": {"metadataType": "MetadataIntValue", "int_value": "32"},
                    "score": {"metadataType": "MetadataDoubleValue", "double_value": 0.5},
                    "public": {"metadataType": "MetadataBoolValue", "bool_value": true},
                    "extra": {"metadataType": "MetadataStructValue", "struct_value": "e30="},
                },
            })),
        ),
        201,
    );
    assert_eq!(model["id"], "1");
    assert_eq!(model["name"], "granite");
    assert_eq!(model["state"], "LIVE");
    assert_eq!(model["customProperties"]["layers"]["int_value"], "32");
    let created_ms: u128 = model["createTimeSinceEpoch"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        created_ms > 1_600_000_000_000,
        "not milliseconds: {created_ms}"
    );
    assert!(model["lastUpdateTimeSinceEpoch"].is_string());

    let version = expect(
        &call(
            &server,
            "POST",
            &format!("{V1ALPHA3}/model_versions"),
            Some(json!({"name": "v1", "registeredModelId": "1", "author": "alice"})),
        ),
        201,
    );
    // Registered models and versions share one id sequence, as in the real server.
    assert_eq!(version["id"], "2");
    assert_eq!(version["registeredModelId"], "1");
    assert_eq!(version["state"], "LIVE");

    let artifact = expect(
        &call(
            &server,
            "POST",
            &format!("{V1ALPHA3}/model_versions/2/artifacts"),
            Some(json!({
                "artifactType": "model-artifact",
                "name": "granite-v1",
                "uri": "oci://registry.example/granite:v1",
                "modelFormatName": "safetensors",
                "modelFormatVersion": "1",
            })),
        ),
        201,
    );
    assert_eq!(artifact["id"], "1");
    assert_eq!(artifact["artifactType"], "model-artifact");
    assert_eq!(artifact["state"], "UNKNOWN");

    let patched = expect(
        &call(
            &server,
            "PATCH",
            &format!("{V1ALPHA3}/model_artifacts/1"),
            Some(json!({"artifactType": "model-artifact", "state": "LIVE"})),
        ),
        200,
    );
    assert_eq!(patched["state"], "LIVE");
    assert_eq!(patched["uri"], "oci://registry.example/granite:v1");

    let found = expect(
        &call(
            &server,
            "GET",
            &format!("{V1ALPHA3}/registered_model?name=granite"),
            None,
        ),
        200,
    );
    assert_eq!(found["id"], "1");
    expect(
        &call(
            &server,
            "GET",
            &format!("{V1ALPHA3}/registered_model?name=nope"),
            None,
        ),
        404,
    );
    let found = expect(
        &call(
            &server,
            "GET",
            &format!("{V1ALPHA3}/model_version?name=v1&parentResourceId=1"),
            None,
        ),
        200,
    );
    assert_eq!(found["id"], "2");

    let artifacts = expect(
        &call(
            &server,
            "GET",
            &format!("{V1ALPHA3}/model_versions/2/artifacts"),
            None,
        ),
        200,
    );
    assert_eq!(artifacts["size"], 1);
    assert_eq!(artifacts["nextPageToken"], "");
    assert_eq!(artifacts["items"][0]["state"], "LIVE");

    let models = expect(
        &call(
            &server,
            "GET",
            &format!("{V1ALPHA3}/registered_models"),
            None,
        ),
        200,
    );
    assert_eq!(models["size"], 1);
    assert!(models["pageSize"].is_number());

    assert_eq!(
        server.created(),
        Created {
            registered_models: 1,
            model_versions: 1,
            model_artifacts: 1,
        }
    );
    let state = server.state_json();
    assert_eq!(
        state["versionArtifacts"],
        json!([{"modelVersionId": "2", "artifactId": "1"}])
    );
    assert!(server
        .requests()
        .contains(&format!("GET {V1ALPHA3}/registered_model?name=granite")));
}

#[test]
fn both_prefixes_serve_the_same_state() {
    let server = ModelRegistryServer::start(TOKEN);
    for (i, prefix) in PREFIXES.iter().enumerate() {
        let name = format!("model-{i}");
        let model = expect(
            &call(
                &server,
                "POST",
                &format!("{prefix}/registered_models"),
                Some(json!({"name": name})),
            ),
            201,
        );
        let id = model["id"].as_str().unwrap();
        let got = expect(
            &call(
                &server,
                "GET",
                &format!("{prefix}/registered_models/{id}"),
                None,
            ),
            200,
        );
        assert_eq!(got["name"], name.as_str());
    }
    let listed = expect(
        &call(
            &server,
            "GET",
            "/api/model_registry/v1/registered_models",
            None,
        ),
        200,
    );
    assert_eq!(listed["size"], 2);
}

#[test]
fn unknown_fields_and_wrong_types_are_400() {
    let server = ModelRegistryServer::start(TOKEN);
    let path = format!("{V1ALPHA3}/registered_models");
    let bodies = [
        json!({"name": "m", "colour": "red"}),
        json!({"name": 7}),
        json!({"name": "m", "state": "GONE"}),
        json!({"name": "m", "customProperties": {"k": {"string_value": "v"}}}),
        json!({"name": "m", "customProperties": {"k":
            {"metadataType": "MetadataIntValue", "int_value": 3}}}),
        json!({"name": "m", "customProperties": {"k":
            {"metadataType": "MetadataStringValue", "string_value": "v", "x": 1}}}),
    ];
    for body in bodies {
        expect(&call(&server, "POST", &path, Some(body)), 400);
    }
    let not_json = request(
        &server.host(),
        "POST",
        &path,
        &[("Authorization", "Bearer test-token")],
        b"{",
    )
    .unwrap();
    expect(&not_json, 400);
    assert_eq!(server.created(), Created::default());
}

#[test]
fn missing_required_fields_are_refused() {
    let server = ModelRegistryServer::start(TOKEN);
    // The real server answers a missing required field with 422 (body code "Bad Request").
    let no_name = call(
        &server,
        "POST",
        &format!("{V1ALPHA3}/registered_models"),
        Some(json!({"description": "x"})),
    );
    let body = expect(&no_name, 422);
    assert!(body["message"].as_str().unwrap().contains("name"), "{body}");
    expect(
        &call(
            &server,
            "POST",
            &format!("{V1ALPHA3}/model_versions"),
            Some(json!({"name": "v1"})),
        ),
        422,
    );
    // The upsert body is a oneOf: without its discriminator it cannot be a model artifact.
    expect(
        &call(
            &server,
            "POST",
            &format!("{V1ALPHA3}/model_versions/2/artifacts"),
            Some(json!({"uri": "oci://x"})),
        ),
        422,
    );
    assert_eq!(server.created(), Created::default());
}

#[test]
fn bearer_token_is_required() {
    let server = ModelRegistryServer::start(TOKEN);
    let path = format!("{V1ALPHA3}/registered_models");
    expect(&call_as(&server, None, "GET", &path, None), 401);
    expect(&call_as(&server, Some("wrong"), "GET", &path, None), 401);
    expect(&call_as(&server, Some(TOKEN), "GET", &path, None), 200);
}

#[test]
fn injected_failures_answer_503_then_recover() {
    let server = ModelRegistryServer::start(TOKEN);
    let path = format!("{V1ALPHA3}/registered_models");
    server.fail_next(2);
    expect(&call(&server, "GET", &path, None), 503);
    expect(&call(&server, "GET", &path, None), 503);
    expect(&call(&server, "GET", &path, None), 200);
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn stops_on_drop() {
    let server = ModelRegistryServer::start(TOKEN);
    let host = server.host();
    drop(server);
    assert!(
        std::net::TcpStream::connect(&host).is_err(),
        "model registry still listening on {host}"
    );
}
