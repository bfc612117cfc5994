//! register end to end against an in-test Model Registry that follows the OpenAPI spec and
//! validates bodies as the real server does.

use std::path::Path;
use std::process::{Command, Output};

use modelcar_testkit::model_registry::Created;
use modelcar_testkit::ModelRegistryServer;
use serde_json::Value;

const TOKEN: &str = "sa-token-123";
const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn register(server: &ModelRegistryServer, token_file: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_register"))
        .args([
            "--url",
            &server.url(),
            "--token-file",
            token_file.to_str().unwrap(),
            "--output",
            "json",
        ])
        .args(args)
        .env_remove("MODELCAR_WORKSPACE")
        .output()
        .expect("run register")
}

fn ok_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "register failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn token_file(dir: &Path, token: &str) -> std::path::PathBuf {
    let path = dir.join("token");
    std::fs::write(&path, format!("{token}\n")).unwrap();
    path
}

const BASIC: [&str; 8] = [
    "--model-name",
    "Mistral-Small-24B",
    "--version-name",
    "w4a16-1124",
    "--uri",
    "oci://quay.io/org/mistral@sha256:1111111111111111111111111111111111111111111111111111111111111111",
    "--model-format-name",
    "vLLM",
];

#[test]
fn first_run_creates_three_objects_and_a_second_creates_none() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ModelRegistryServer::start(TOKEN);
    let token = token_file(tmp.path(), TOKEN);
    let first = ok_json(&register(&server, &token, &BASIC));
    assert_eq!(
        first["created"],
        serde_json::json!(["registered_model", "model_version", "model_artifact"])
    );
    assert_eq!(
        server.created(),
        Created {
            registered_models: 1,
            model_versions: 1,
            model_artifacts: 1
        }
    );

    let out = register(&server, &token, &BASIC);
    let second = ok_json(&out);
    assert_eq!(second["created"], serde_json::json!([]));
    assert_eq!(second["updated"], false);
    for id in [
        "registered_model_id",
        "model_version_id",
        "model_artifact_id",
    ] {
        assert_eq!(second[id], first[id], "{id}");
    }
    assert_eq!(
        server.created(),
        Created {
            registered_models: 1,
            model_versions: 1,
            model_artifacts: 1
        }
    );
    // Every request carried the bearer token: the server refuses any that does not.
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.contains("/api/model_registry/v1/")),
        "{:?}",
        server.requests()
    );
}

#[test]
fn both_api_versions_work() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ModelRegistryServer::start(TOKEN);
    let token = token_file(tmp.path(), TOKEN);
    let mut args = BASIC.to_vec();
    args.extend(["--api-version", "v1alpha3"]);
    let old = ok_json(&register(&server, &token, &args));
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.contains("/api/model_registry/v1alpha3/")),
        "{:?}",
        server.requests()
    );
    let new = ok_json(&register(&server, &token, &BASIC));
    assert_eq!(
        old["model_artifact_id"], new["model_artifact_id"],
        "the same objects under either prefix"
    );
}

#[test]
fn the_api_version_is_detected_on_an_older_service() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ModelRegistryServer::start_v1alpha3_only(TOKEN);
    let token = token_file(tmp.path(), TOKEN);
    let mut args = BASIC.to_vec();
    args.push("--uri-tag"); // ignored: --uri is given
    ok_json(&register(&server, &token, &args));
    let requests = server.requests();
    assert!(
        requests[0].contains("/api/model_registry/v1/"),
        "v1 is tried first: {requests:?}"
    );
    assert!(
        requests[1..].iter().all(|r| r.contains("/v1alpha3/")),
        "{requests:?}"
    );
    assert_eq!(server.created().model_artifacts, 1);
}

#[test]
fn a_version_pointing_elsewhere_is_refused_unless_update() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ModelRegistryServer::start(TOKEN);
    let token = token_file(tmp.path(), TOKEN);
    let first = ok_json(&register(&server, &token, &BASIC));
    let mut other = BASIC.to_vec();
    let new_uri = format!("oci://quay.io/org/mistral@sha256:{}", "2".repeat(64));
    other[5] = &new_uri;

    let out = register(&server, &token, &other);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already records") && err.contains("--update"),
        "{err}"
    );

    other.push("--update");
    let updated = ok_json(&register(&server, &token, &other));
    assert_eq!(updated["updated"], true);
    assert_eq!(updated["model_artifact_id"], first["model_artifact_id"]);
    let stored = server.state_json().to_string();
    assert!(
        stored.contains(&"2".repeat(64)),
        "the artifact now records the new URI"
    );
}

#[test]
fn a_rejected_token_is_named_and_transient_failures_are_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ModelRegistryServer::start(TOKEN);
    let wrong = token_file(tmp.path(), "expired");
    let out = register(&server, &wrong, &BASIC);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rejected the token from token file") && err.contains("token"),
        "{err}"
    );

    let token = token_file(tmp.path(), TOKEN);
    server.fail_next(2);
    ok_json(&register(&server, &token, &BASIC));
    assert_eq!(server.created().model_artifacts, 1);
}

#[test]
fn the_workspace_gives_the_defaults_and_gets_the_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ModelRegistryServer::start(TOKEN);
    let token = token_file(tmp.path(), TOKEN);
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(ws.join(".modelcar")).unwrap();
    let meta = format!(
        r#"{{"schema":1,"hf_repo":"mistralai/Mistral-Small-24B","hf_revision":"abc","image":"quay.io/org/mistral","image_digest":"{DIGEST}","image_tag":"v1","pushed_at_utc":"2026-11-24T10:00:00Z","mirrors":[{{"image":"image-registry.svc:5000/ns/m","digest":"{DIGEST}","mirrored_at_utc":"t"}}],"files":[{{"name":"a","size":10}},{{"name":"b","size":5}}]}}"#
    );
    std::fs::write(ws.join(".modelcar/metadata.json"), meta).unwrap();
    let report = ok_json(&register(
        &server,
        &token,
        &[
            "--workspace",
            ws.to_str().unwrap(),
            "--variant",
            "full-fp16",
            "--property",
            "team=ml",
        ],
    ));
    assert_eq!(report["model_name"], "Mistral-Small-24B");
    assert_eq!(report["version_name"], "full-fp16-1124");
    assert_eq!(report["uri"], format!("oci://quay.io/org/mistral@{DIGEST}"));

    let stored: Value =
        serde_json::from_slice(&std::fs::read(ws.join(".modelcar/metadata.json")).unwrap())
            .unwrap();
    for id in [
        "registered_model_id",
        "model_version_id",
        "model_artifact_id",
    ] {
        assert_eq!(stored[id], report[id], "{id}");
    }
    let state = server.state_json().to_string();
    for needle in [
        "hf_revision",
        "abc",
        "image-registry.svc:5000/ns/m",
        "model_size_bytes",
        "team",
        "MetadataStringValue",
    ] {
        assert!(
            state.contains(needle),
            "{needle} missing from the stored artifact: {state}"
        );
    }

    // --uri-tag records the tag form instead of the digest.
    let tagged = ok_json(&register(
        &server,
        &token,
        &[
            "--workspace",
            ws.to_str().unwrap(),
            "--version-name",
            "tagged",
            "--uri-tag",
        ],
    ));
    assert_eq!(tagged["uri"], "oci://quay.io/org/mistral:v1");

    // Without a workspace and without flags: a usage error naming the flag.
    let out = register(&server, &token, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--model-name"));
}

/// The official Python client (`model-registry` from PyPI) reads back what register wrote.
/// scripts/test.sh installs it into target/python; the test says so if it is missing.
#[test]
fn the_official_python_client_reads_the_properties_back() {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/python/bin/python");
    assert!(
        python.is_file(),
        "{} missing: run scripts/test.sh, which installs model-registry from PyPI",
        python.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let server = ModelRegistryServer::start(TOKEN);
    let token = token_file(tmp.path(), TOKEN);
    let mut args = BASIC.to_vec();
    args.extend([
        "--property",
        "hf_repo=mistralai/Mistral-Small-24B",
        "--property",
        "image_digest=sha256:abc",
    ]);
    ok_json(&register(&server, &token, &args));

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/src/python_readback.py");
    let out = Command::new(&python)
        .arg(script)
        .args([&server.url(), TOKEN, "Mistral-Small-24B", "w4a16-1124"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the Python client failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["uri"], BASIC[5]);
    assert_eq!(seen["model_format_name"], "vLLM");
    assert_eq!(
        seen["custom_properties"]["hf_repo"],
        "mistralai/Mistral-Small-24B"
    );
    assert_eq!(seen["custom_properties"]["image_digest"], "sha256:abc");
}
