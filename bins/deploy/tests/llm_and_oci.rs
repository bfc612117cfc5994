//! deploy --kind llminferenceservice against the testkit's API server, the test thread
//! playing KServe's LLMInferenceService controller; and the OCI preflight: KServe's
//! `inferenceservice-config` read where it can be, and the ImageVolume feature for
//! `oci+native://` told from the Kubernetes version and a dry-run pod.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use modelcar_testkit::kube_server::Kind;
use modelcar_testkit::KubeServer;
use serde_json::{json, Value};

mod common;
use common::{json_out, stderr, Cluster};

const NS: &str = "llm";
const NAME: &str = "mistral-small-24b";
const IMAGE: &str = "quay.io/org/mistral-small-24b@sha256:5f1e0c3d2b4a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0";
const URL: &str = "http://mistral-small-24b.llm.example.com";

fn llm_args<'a>(uri: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        NAME,
        "--namespace",
        NS,
        "--kind",
        "llminferenceservice",
        "--storage-uri",
        uri,
        "--gpus",
        "4",
    ];
    args.extend_from_slice(extra);
    args
}

/// Plays the LLMInferenceService controller: once generation `generation` exists, its
/// workload is still starting, then everything is Ready.
fn become_ready_at(server: &Arc<KubeServer>, generation: i64) -> thread::JoinHandle<()> {
    let server = Arc::clone(server);
    thread::spawn(move || {
        let kind = Kind::LlmInferenceService;
        server.wait_for_generation(kind, NS, NAME, generation, Duration::from_secs(10));
        let set = |conditions: Value, url| {
            server.set_status_of(Kind::LlmInferenceService, NS, NAME, conditions, url)
        };
        set(
            json!([
                {"type": "PresetsCombined", "status": "True"},
                {"type": "WorkloadsReady", "status": "False", "reason": "MinimumReplicasUnavailable"},
                {"type": "Ready", "status": "False", "reason": "WorkloadsNotReady"},
            ]),
            None,
        );
        thread::sleep(Duration::from_millis(300));
        set(
            json!([
                {"type": "PresetsCombined", "status": "True"},
                {"type": "WorkloadsReady", "status": "True"},
                {"type": "RouterReady", "status": "True"},
                {"type": "Ready", "status": "True"},
            ]),
            Some(URL),
        );
    })
}

#[test]
fn an_llm_inference_service_is_applied_updated_keeping_others_fields_and_waited_to_ready() {
    let cluster = Cluster::start(NS);
    let uri = format!("oci://{IMAGE}");
    let controller = become_ready_at(&cluster.server, 1);
    let out = cluster.run(&llm_args(
        &uri,
        &["--max-model-len", "16384", "--timeout", "20s"],
    ));
    controller.join().unwrap();
    let report = json_out(&out);
    assert_eq!(report["kind"], "LLMInferenceService");
    assert_eq!(report["change"], "created");
    assert_eq!(report["url"], URL);
    let object = cluster
        .server
        .object(Kind::LlmInferenceService, NS, NAME)
        .unwrap();
    assert_eq!(object["spec"]["model"], json!({"name": NAME, "uri": uri}));
    assert_eq!(object["spec"]["parallelism"], json!({"tensor": 4}));
    let main = &object["spec"]["template"]["containers"][0];
    assert_eq!(main["name"], "main");
    assert_eq!(main["env"][0]["value"], "--max-model-len=16384");
    assert_eq!(main["resources"]["limits"]["nvidia.com/gpu"], "4");
    assert!(stderr(&out).contains("WorkloadsReady=False (MinimumReplicasUnavailable)"));

    // Someone labels it and scales the router; deploy's rerun with a longer context keeps that.
    cluster
        .server
        .merge_patch_of(
            Kind::LlmInferenceService,
            "kubectl-label",
            NS,
            NAME,
            &json!({"metadata": {"labels": {"team": "search"}}}),
        )
        .unwrap();
    let controller = become_ready_at(&cluster.server, 2);
    let out = cluster.run(&llm_args(
        &uri,
        &["--max-model-len", "32768", "--timeout", "20s"],
    ));
    controller.join().unwrap();
    let report = json_out(&out);
    assert_eq!(report["change"], "updated");
    let object = cluster
        .server
        .object(Kind::LlmInferenceService, NS, NAME)
        .unwrap();
    assert_eq!(object["metadata"]["labels"]["team"], "search");
    assert_eq!(
        object["spec"]["template"]["containers"][0]["env"][0]["value"],
        "--max-model-len=32768"
    );
    assert_eq!(object["metadata"]["generation"], 2);
}

#[test]
fn an_llm_inference_service_refuses_fetch_and_the_other_kinds_flags() {
    let cluster = Cluster::start(NS);
    let fetch = format!("oci+fetch://{IMAGE}");
    let out = cluster.run(&llm_args(&fetch, &[]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("unsupported schema in model URI"),
        "{}",
        stderr(&out)
    );
    let uri = format!("oci://{IMAGE}");
    let out = cluster.run(&llm_args(&uri, &["--runtime", "vllm-nvidia-gpu"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--runtime does not apply"),
        "{}",
        stderr(&out)
    );
    assert!(cluster
        .server
        .requests()
        .iter()
        .all(|r| !r.starts_with("PATCH")));
}

/// KServe's ConfigMap with `storageInitializer` set to `settings`.
fn kserve_config(server: &KubeServer, settings: Value) {
    let data = json!({"storageInitializer": settings.to_string()});
    server.add_config_map("kserve", "inferenceservice-config", data);
}

fn deploy_isvc(cluster: &Cluster, uri: &str) -> std::process::Output {
    cluster.server.add_serving_runtime(NS, "vllm-nvidia-gpu");
    cluster.run(&[NAME, "--namespace", NS, "--storage-uri", uri, "--no-wait"])
}

#[test]
fn oci_models_off_in_kserve_config_are_refused_naming_the_setting() {
    let cluster = Cluster::start(NS);
    cluster.server.add_namespace("kserve");
    kserve_config(
        &cluster.server,
        json!({"image": "kserve/storage-initializer:v0.16.0"}),
    );
    let out = deploy_isvc(&cluster, &format!("oci://{IMAGE}"));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(text.contains("kserve/inferenceservice-config"), "{text}");
    assert!(text.contains("\"enableModelcar\": true"), "{text}");
    assert!(cluster
        .server
        .requests()
        .iter()
        .all(|r| !r.starts_with("PATCH")));

    // Where the service account may not read it, nothing is concluded.
    let cluster = Cluster::start(NS);
    cluster.server.add_namespace("kserve");
    kserve_config(&cluster.server, json!({}));
    cluster.server.forbid("configmaps", "kserve");
    let out = deploy_isvc(&cluster, &format!("oci://{IMAGE}"));
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn native_mode_is_checked_against_the_kubernetes_version_and_the_feature_gate() {
    let native = format!("oci+native://{IMAGE}");
    for (version, gate, refusal) in [
        ("v1.30.9", true, Some("has no ImageVolume")),
        ("v1.32.3", true, Some("without the subPath")),
        ("v1.34.1", false, Some("feature gate off")),
        ("v1.34.1", true, None),
        ("v1.35.0", false, None),
    ] {
        let cluster = Cluster::start(NS);
        cluster.server.set_version(version);
        cluster.server.set_image_volume_gate(gate);
        let out = deploy_isvc(&cluster, &native);
        match refusal {
            Some(words) => {
                assert_eq!(out.status.code(), Some(1), "{version}: {}", stderr(&out));
                assert!(stderr(&out).contains(words), "{version}: {}", stderr(&out));
                assert!(stderr(&out).contains(&version[1..]), "{}", stderr(&out));
            }
            None => assert!(out.status.success(), "{version}: {}", stderr(&out)),
        }
    }
    // A bare oci:// on a cluster whose KServe mounts it natively is checked the same way.
    let cluster = Cluster::start(NS);
    cluster.server.add_namespace("kserve");
    kserve_config(&cluster.server, json!({"ociModelMode": "native"}));
    cluster.server.set_version("v1.31.2");
    let out = deploy_isvc(&cluster, &format!("oci://{IMAGE}"));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("without the subPath"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_llm_inference_service_that_is_not_ready_is_diagnosed_from_its_workload_pods() {
    let cluster = Cluster::start(NS);
    // The workload's pod, labelled as `singleNodeLabels` labels it, and one of another service.
    for (pod, name) in [
        ("mistral-small-24b-kserve-0", NAME),
        ("other-kserve-0", "other"),
    ] {
        cluster.server.add_pod(
            NS,
            json!({
                "metadata": {"name": pod, "labels": {
                    "app.kubernetes.io/name": name,
                    "app.kubernetes.io/part-of": "llminferenceservice",
                    "app.kubernetes.io/component": "llminferenceservice-workload"}},
                "status": {"phase": "Pending", "conditions": [{
                    "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                    "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}]},
            }),
        );
    }
    let uri = format!("oci://{IMAGE}");
    let out = cluster.run(&llm_args(&uri, &["--timeout", "2s"]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains("LLMInferenceService mistral-small-24b was not Ready after 2s"),
        "{text}"
    );
    assert!(
        text.contains("pod mistral-small-24b-kserve-0: Unschedulable: 0/3 nodes are available"),
        "{text}"
    );
    assert!(!text.contains("other-kserve-0"), "{text}");
}
