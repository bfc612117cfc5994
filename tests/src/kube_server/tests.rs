//! The server over real HTTP: raw requests, so that what is checked is the wire format a
//! Kubernetes client sees.

mod watch;

use serde_json::{json, Value};

use super::KubeServer;
use crate::http;

const APPLY: &str = "application/apply-patch+yaml";
const MERGE: &str = "application/merge-patch+json";
const ISVCS: &str = "/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices";

fn host(kube: &KubeServer) -> String {
    kube.url().trim_start_matches("http://").to_owned()
}

/// `method target` with the server's token; the status and the JSON body.
fn call(kube: &KubeServer, method: &str, target: &str, body: Option<(&str, &str)>) -> (u16, Value) {
    let auth = format!("Bearer {}", kube.token());
    let mut headers = vec![("Authorization", auth.as_str())];
    if let Some((content_type, _)) = body {
        headers.push(("Content-Type", content_type));
    }
    let bytes = body.map_or(&b""[..], |(_, b)| b.as_bytes());
    let response = http::request(&host(kube), method, target, &headers, bytes).expect("request");
    let body = serde_json::from_slice(&response.body).unwrap_or_else(|e| {
        panic!(
            "{method} {target}: not JSON ({e}): {}",
            response.body_text()
        )
    });
    (response.status, body)
}

fn isvc(args: &[&str]) -> Value {
    json!({
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "granite", "namespace": "default", "labels": {"app": "granite"}},
        "spec": {"predictor": {"model": {
            "modelFormat": {"name": "vLLM"},
            "storageUri": "oci://quay.io/m/granite:1",
            "args": args,
        }}},
    })
}

fn apply(kube: &KubeServer, manager: &str, config: &Value, force: bool) -> (u16, Value) {
    let force = if force { "&force=true" } else { "" };
    let target = format!("{ISVCS}/granite?&fieldManager={manager}{force}");
    call(kube, "PATCH", &target, Some((APPLY, &config.to_string())))
}

fn rv(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or_else(|| panic!("no resourceVersion in {object}"))
}

#[test]
fn apply_creates_then_the_same_apply_changes_nothing() {
    let kube = KubeServer::start();
    let (status, created) = apply(&kube, "modelcar-deploy", &isvc(&["--a"]), false);
    assert_eq!(status, 201, "{created}");
    let metadata = &created["metadata"];
    assert_eq!(metadata["generation"], 1);
    assert!(metadata["uid"].is_string() && metadata["creationTimestamp"].is_string());
    let managed = &metadata["managedFields"][0];
    assert_eq!(managed["manager"], "modelcar-deploy");
    assert_eq!(managed["operation"], "Apply");
    assert_eq!(managed["apiVersion"], "serving.kserve.io/v1beta1");
    assert_eq!(managed["fieldsType"], "FieldsV1");
    assert_eq!(
        managed["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:app": {}}},
               "f:spec": {"f:predictor": {"f:model": {
                   "f:args": {}, "f:modelFormat": {"f:name": {}}, "f:storageUri": {}}}}})
    );
    let (status, again) = apply(&kube, "modelcar-deploy", &isvc(&["--a"]), false);
    assert_eq!(status, 200);
    assert_eq!(again, created, "a no-op apply stores nothing");
    assert_eq!(kube.inference_service("default", "granite"), Some(created));
    let (status, got) = call(&kube, "GET", &format!("{ISVCS}/granite"), None);
    assert_eq!((status, rv(&got)), (200, rv(&again)));
}

#[test]
fn a_changed_spec_bumps_generation_and_metadata_does_not() {
    let kube = KubeServer::start();
    let (_, first) = apply(&kube, "modelcar-deploy", &isvc(&["--a"]), false);
    let (status, second) = apply(&kube, "modelcar-deploy", &isvc(&["--b"]), false);
    assert_eq!(status, 200);
    assert_eq!(second["metadata"]["generation"], 2);
    assert!(rv(&second) > rv(&first));
    let mut labelled = isvc(&["--b"]);
    labelled["metadata"]["labels"]["tier"] = "gpu".into();
    let (_, third) = apply(&kube, "modelcar-deploy", &labelled, false);
    assert_eq!(third["metadata"]["generation"], 2);
    assert!(rv(&third) > rv(&second));
}

#[test]
fn a_field_no_longer_applied_is_removed() {
    let kube = KubeServer::start();
    let mut config = isvc(&["--a"]);
    config["metadata"]["annotations"] = json!({"note": "x"});
    apply(&kube, "modelcar-deploy", &config, false);
    let (_, object) = apply(&kube, "modelcar-deploy", &isvc(&["--a"]), false);
    assert_eq!(object["metadata"].get("annotations"), None, "{object}");
    let mut fewer = isvc(&["--a"]);
    fewer["spec"]["predictor"]["model"]
        .as_object_mut()
        .unwrap()
        .remove("args");
    let (_, object) = apply(&kube, "modelcar-deploy", &fewer, false);
    assert_eq!(object["spec"]["predictor"]["model"].get("args"), None);
    assert_eq!(
        object["spec"]["predictor"]["model"]["storageUri"],
        "oci://quay.io/m/granite:1"
    );
}

#[test]
fn a_label_another_manager_set_survives_an_apply_without_it() {
    let kube = KubeServer::start();
    apply(&kube, "modelcar-deploy", &isvc(&["--a"]), false);
    let patch = json!({"metadata": {"labels": {"team": "ml"}}}).to_string();
    let target = format!("{ISVCS}/granite?fieldManager=kubectl-edit");
    let (status, patched) = call(&kube, "PATCH", &target, Some((MERGE, &patch)));
    assert_eq!(status, 200, "{patched}");
    let (_, applied) = apply(&kube, "modelcar-deploy", &isvc(&["--b"]), false);
    assert_eq!(
        applied["metadata"]["labels"],
        json!({"app": "granite", "team": "ml"})
    );
    let managers = applied["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(managers.len(), 2);
    assert_eq!(
        (&managers[1]["manager"], &managers[1]["operation"]),
        (&json!("kubectl-edit"), &json!("Update"))
    );
    assert_eq!(
        managers[1]["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:team": {}}}})
    );
    let logged = kube.requests();
    assert!(
        logged.contains(&format!("PATCH {target} {MERGE}")),
        "{logged:?}"
    );
}

#[test]
fn a_field_of_another_manager_conflicts_unless_forced() {
    let kube = KubeServer::start();
    apply(&kube, "modelcar-deploy", &isvc(&["--a"]), false);
    let patch = json!({"spec": {"predictor": {"model": {"args": ["--edited"]}}}});
    kube.merge_patch_as("kubectl-edit", "default", "granite", &patch)
        .expect("merge patch");
    // The same value is shared ownership, not a conflict.
    let (status, _) = apply(&kube, "modelcar-deploy", &isvc(&["--edited"]), false);
    assert_eq!(status, 200);

    let (status, failure) = apply(&kube, "modelcar-deploy", &isvc(&["--mine"]), false);
    assert_eq!(status, 409);
    let using = "conflict with \"kubectl-edit\" using serving.kserve.io/v1beta1";
    assert_eq!(
        failure,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": format!("Apply failed with 1 conflict: {using}: .spec.predictor.model.args"),
               "reason": "Conflict",
               "details": {"causes": [{"reason": "FieldManagerConflict", "message": using,
                                       "field": ".spec.predictor.model.args"}]},
               "code": 409})
    );
    let (status, forced) = apply(&kube, "modelcar-deploy", &isvc(&["--mine"]), true);
    assert_eq!(status, 200);
    assert_eq!(
        forced["spec"]["predictor"]["model"]["args"],
        json!(["--mine"])
    );
    let managers = forced["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(
        managers.len(),
        1,
        "kubectl-edit lost its only field: {managers:?}"
    );
}

#[test]
fn two_conflicts_are_listed_like_the_apiserver() {
    let kube = KubeServer::start();
    apply(&kube, "modelcar-deploy", &isvc(&["--a"]), false);
    let mut other = isvc(&["--other"]);
    other["spec"]["predictor"]["model"]["storageUri"] = "oci://other".into();
    let (status, _) = apply(&kube, "helm", &other, true);
    assert_eq!(status, 200);
    let (status, failure) = apply(&kube, "modelcar-deploy", &isvc(&["--a"]), false);
    assert_eq!(status, 409);
    assert_eq!(
        failure["message"],
        "Apply failed with 2 conflicts: conflicts with \"helm\":\n\
         - .spec.predictor.model.args\n- .spec.predictor.model.storageUri"
    );
    assert_eq!(
        failure["details"]["causes"][1]["message"],
        "conflict with \"helm\""
    );
}

#[test]
fn requests_without_the_token_are_unauthorized() {
    let kube = KubeServer::start();
    let target = "/api/v1/namespaces/default";
    for headers in [vec![], vec![("Authorization", "Bearer kube-bad")]] {
        let response = http::request(&host(&kube), "GET", target, &headers, b"").unwrap();
        let body: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(response.status, 401);
        assert_eq!(
            body,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
        );
    }
    assert_eq!(
        kube.requests(),
        [format!("GET {target}"), format!("GET {target}")]
    );
}

#[test]
fn patch_types_and_options_are_checked() {
    let kube = KubeServer::start();
    let body = isvc(&["--a"]).to_string();
    let target = format!("{ISVCS}/granite?fieldManager=m");
    let strategic = Some(("application/strategic-merge-patch+json", body.as_str()));
    let (status, failure) = call(&kube, "PATCH", &target, strategic);
    assert_eq!(
        (status, &failure["reason"]),
        (415, &json!("UnsupportedMediaType"))
    );
    let (status, failure) = call(
        &kube,
        "PATCH",
        &format!("{ISVCS}/granite"),
        Some((APPLY, &body)),
    );
    assert_eq!(status, 422);
    assert_eq!(
        failure["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    let (status, failure) = call(
        &kube,
        "PATCH",
        &format!("{ISVCS}/other?fieldManager=m"),
        Some((APPLY, &body)),
    );
    assert_eq!((status, &failure["reason"]), (400, &json!("BadRequest")));
    let (status, failure) = call(&kube, "PATCH", &target, Some((MERGE, "{}")));
    assert_eq!(
        (status, &failure["message"]),
        (
            404,
            &json!("inferenceservices.serving.kserve.io \"granite\" not found")
        )
    );
    let (status, failure) = call(&kube, "DELETE", &format!("{ISVCS}/granite"), None);
    assert_eq!((status, &failure["reason"]), (404, &json!("NotFound")));
    let (status, failure) = call(
        &kube,
        "PUT",
        &format!("{ISVCS}/granite"),
        Some((MERGE, "{}")),
    );
    assert_eq!(
        (status, &failure["reason"]),
        (405, &json!("MethodNotAllowed"))
    );
}

#[test]
fn missing_things_are_404s_and_lists_are_filtered() {
    let kube = KubeServer::start();
    let mut config = isvc(&["--a"]);
    config["metadata"]["namespace"] = "nowhere".into();
    let target = "/apis/serving.kserve.io/v1beta1/namespaces/nowhere/inferenceservices/granite?fieldManager=m";
    let (status, failure) = call(&kube, "PATCH", target, Some((APPLY, &config.to_string())));
    assert_eq!(status, 404);
    assert_eq!(
        failure,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "namespaces \"nowhere\" not found", "reason": "NotFound",
               "details": {"name": "nowhere", "kind": "namespaces"}, "code": 404})
    );
    let (status, failure) = call(&kube, "GET", &format!("{ISVCS}/granite"), None);
    assert_eq!(status, 404);
    assert_eq!(
        failure["details"],
        json!({"name": "granite", "group": "serving.kserve.io", "kind": "inferenceservices"})
    );
    let runtimes = "/apis/serving.kserve.io/v1alpha1/namespaces/nowhere/servingruntimes";
    let (status, list) = call(&kube, "GET", runtimes, None);
    assert_eq!(
        (status, &list["kind"], &list["items"]),
        (200, &json!("ServingRuntimeList"), &json!([]))
    );
    kube.add_serving_runtime("default", "vllm");
    let (_, runtime) = call(
        &kube,
        "GET",
        "/apis/serving.kserve.io/v1alpha1/namespaces/default/servingruntimes/vllm",
        None,
    );
    assert_eq!(
        runtime["spec"]["supportedModelFormats"],
        json!([{"autoSelect": true, "name": "vLLM"}])
    );
    let (status, _) = call(
        &kube,
        "GET",
        "/apis/serving.kserve.io/v1alpha1/clusterservingruntimes/vllm",
        None,
    );
    assert_eq!(status, 404);
    kube.add_pod(
        "default",
        json!({"metadata": {"name": "p1", "labels": {"app": "granite"}}}),
    );
    kube.add_pod(
        "default",
        json!({"metadata": {"name": "p2", "labels": {"app": "other"}}}),
    );
    let (_, pods) = call(
        &kube,
        "GET",
        "/api/v1/namespaces/default/pods?labelSelector=app%3Dgranite",
        None,
    );
    assert_eq!(pods["kind"], "PodList");
    assert_eq!(pods["items"].as_array().unwrap().len(), 1);
    assert_eq!(pods["items"][0]["metadata"]["name"], "p1");
    let (status, failure) = call(&kube, "GET", "/apis/apps/v1/deployments", None);
    assert_eq!((status, &failure["reason"]), (404, &json!("NotFound")));
}

#[test]
fn the_kubeconfig_names_the_server_and_token() {
    let kube = KubeServer::start();
    let dir = tempfile::tempdir().unwrap();
    let path = kube.write_kubeconfig(dir.path());
    let config: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(
        config["clusters"][0]["cluster"]["server"],
        kube.url().as_str()
    );
    assert_eq!(config["users"][0]["user"]["token"], "kube-good");
    assert_eq!(config["current-context"], "test");
}
