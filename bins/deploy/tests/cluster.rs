//! deploy against the testkit's Kubernetes API server (server-side apply, GET, watch, as the
//! apiserver speaks them), with the test thread playing the KServe controller: create, rerun
//! updates and keeps other managers' fields, Ready reached through the watch, timeout
//! reported with the conditions and the predictor pod's reason, and the refusals. The API
//! server speaks TLS, trusted through the kubeconfig's certificate-authority-data alone.

use std::process::{Command, Output};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use modelcar_testkit::kube_server::Kind;
use modelcar_testkit::tls::assert_said_at_once;
use modelcar_testkit::KubeServer;
use serde_json::{json, Value};

const NS: &str = "llm";
const NAME: &str = "mistral-small-24b-w4a16";
const RUNTIME: &str = "vllm-nvidia-gpu";
const URI: &str = "oci://quay.io/org/mistral-small-24b:w4a16@sha256:5f1e0c3d2b4a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0";
const SERVE_URL: &str = "https://mistral-small-24b-w4a16-llm.apps.example.com";

mod common;
use common::{json_out, stderr, Cluster};

/// A cluster with namespace `llm` and the vLLM ServingRuntime in it.
fn cluster() -> Cluster {
    let cluster = Cluster::start(NS);
    cluster.server.add_serving_runtime(NS, RUNTIME);
    cluster
}

trait Deploy {
    fn deploy(&self, extra: &[&str]) -> Output;
    fn deploy_in(&self, namespace: &str, extra: &[&str]) -> Output;
    fn isvc(&self) -> Value;
    fn patches(&self) -> usize;
    fn become_ready_at(&self, generation: i64) -> thread::JoinHandle<()>;
}

impl Deploy for Cluster {
    /// Runs deploy for `NAME` in `NS` with `extra` flags after the common ones.
    fn deploy(&self, extra: &[&str]) -> Output {
        self.deploy_in(NS, extra)
    }

    fn deploy_in(&self, namespace: &str, extra: &[&str]) -> Output {
        let mut args = vec![NAME, "--namespace", namespace, "--storage-uri", URI];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    fn isvc(&self) -> Value {
        self.server
            .inference_service(NS, NAME)
            .expect("the InferenceService exists")
    }

    fn patches(&self) -> usize {
        self.server
            .requests()
            .iter()
            .filter(|r| r.starts_with("PATCH "))
            .count()
    }

    /// Plays the KServe controller: once the InferenceService of generation `generation`
    /// exists, reports it loading, then Ready.
    fn become_ready_at(&self, generation: i64) -> thread::JoinHandle<()> {
        let server = Arc::clone(&self.server);
        thread::spawn(move || {
            wait_for_generation(&server, generation);
            thread::sleep(Duration::from_millis(300));
            server.set_status(
                NS,
                NAME,
                json!([
                    {"type": "PredictorReady", "status": "False", "reason": "ProgressDeadlineNotExceeded",
                     "message": "loading the model"},
                    {"type": "Ready", "status": "False", "reason": "PredictorNotReady"},
                ]),
                None,
            );
            thread::sleep(Duration::from_millis(300));
            server.set_status(
                NS,
                NAME,
                json!([
                    {"type": "PredictorReady", "status": "True"},
                    {"type": "Ready", "status": "True"},
                ]),
                Some(SERVE_URL),
            );
        })
    }
}

fn wait_for_generation(server: &KubeServer, generation: i64) {
    let kind = Kind::InferenceService;
    server.wait_for_generation(kind, NS, NAME, generation, Duration::from_secs(5));
}

/// deploy --no-wait with the kubeconfig at `path`, as written by the test.
fn deploy_no_wait(path: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deploy"))
        .args([NAME, "--namespace", NS, "--storage-uri", URI, "--no-wait"])
        .arg("--kubeconfig")
        .arg(path)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap()
}

#[test]
fn creates_waits_for_ready_and_records_it() {
    let cluster = cluster();
    let ws = tempfile::tempdir().unwrap();
    let results = ws.path().join("results");
    let controller = cluster.become_ready_at(1);
    let out = cluster.deploy(&[
        "--workspace",
        ws.path().to_str().unwrap(),
        "--results-dir",
        results.to_str().unwrap(),
        "--timeout",
        "30s",
    ]);
    controller.join().unwrap();
    let report = json_out(&out);
    assert_eq!(report["change"], "created");
    assert_eq!(report["ready"], true);
    assert_eq!(report["url"], SERVE_URL);
    let log = stderr(&out);
    assert!(
        log.contains("PredictorReady=False (ProgressDeadlineNotExceeded): loading the model")
            && log.contains("Ready=True"),
        "condition changes are logged as they happen: {log}"
    );

    // Server-side apply under deploy's field manager, then a watch, not a polling loop.
    let requests = cluster.server.requests();
    assert!(
        requests.iter().any(|r| r.starts_with("PATCH ")
            && r.contains("fieldManager=modelcar-deploy")
            && r.ends_with("application/apply-patch+yaml")),
        "{requests:#?}"
    );
    assert!(cluster.server.watches() >= 1);
    let gets = requests
        .iter()
        .filter(|r| r.contains("/inferenceservices/"))
        .count();
    assert!(gets <= 3, "no polling: {requests:#?}");

    let isvc = cluster.isvc();
    let model = &isvc["spec"]["predictor"]["model"];
    assert_eq!(model["storageUri"], URI);
    assert_eq!(model["runtime"], RUNTIME);
    assert_eq!(model["resources"]["limits"]["nvidia.com/gpu"], "1");

    assert_eq!(
        std::fs::read_to_string(results.join("URL")).unwrap(),
        SERVE_URL
    );
    let meta: Value =
        serde_json::from_slice(&std::fs::read(ws.path().join(".modelcar/metadata.json")).unwrap())
            .unwrap();
    assert_eq!(meta["deployed"]["namespace"], NS);
    assert_eq!(meta["deployed"]["name"], NAME);
    assert_eq!(meta["deployed"]["url"], SERVE_URL);
    assert!(meta["deployed"]["ready_at_utc"].is_string());
}

#[test]
fn a_rerun_updates_and_keeps_other_managers_fields() {
    let cluster = cluster();
    let controller = cluster.become_ready_at(1);
    json_out(&cluster.deploy(&["--timeout", "30s"]));
    controller.join().unwrap();

    // Someone labels it by hand (another field manager).
    cluster
        .server
        .merge_patch_as(
            "kubectl-label",
            NS,
            NAME,
            &json!({"metadata": {"labels": {"team": "nlp"}}}),
        )
        .unwrap();

    // Two GPUs: a new generation; Ready of the old one must not count.
    let controller = cluster.become_ready_at(2);
    let report = json_out(&cluster.deploy(&["--gpus", "2", "--timeout", "30s"]));
    controller.join().unwrap();
    assert_eq!(report["change"], "updated");
    assert_eq!(report["ready"], true);
    let isvc = cluster.isvc();
    assert_eq!(isvc["metadata"]["generation"], 2);
    assert_eq!(isvc["metadata"]["labels"]["team"], "nlp", "{isvc:#}");
    let model = &isvc["spec"]["predictor"]["model"];
    assert_eq!(model["resources"]["limits"]["nvidia.com/gpu"], "2");
    assert!(model["args"]
        .as_array()
        .unwrap()
        .contains(&json!("--tensor-parallel-size=2")));

    // The same again changes nothing and is Ready at once.
    let report = json_out(&cluster.deploy(&["--gpus", "2", "--timeout", "5s"]));
    assert_eq!(report["change"], "unchanged");
    assert_eq!(report["ready"], true);
    assert_eq!(cluster.isvc()["metadata"]["generation"], 2);
}

#[test]
fn a_conflicting_change_stops_the_apply_unless_forced() {
    let cluster = cluster();
    json_out(&cluster.deploy(&["--no-wait"]));
    cluster
        .server
        .merge_patch_as(
            "kubectl-edit",
            NS,
            NAME,
            &json!({"spec": {"predictor": {"model": {"args": ["--max-model-len=4096"]}}}}),
        )
        .unwrap();

    let out = cluster.deploy(&["--no-wait"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("kubectl-edit") && err.contains("--force-conflicts"),
        "{err}"
    );
    assert_eq!(
        cluster.isvc()["spec"]["predictor"]["model"]["args"],
        json!(["--max-model-len=4096"])
    );

    let report = json_out(&cluster.deploy(&["--no-wait", "--force-conflicts"]));
    assert_eq!(report["change"], "updated");
    assert_eq!(
        cluster.isvc()["spec"]["predictor"]["model"]["args"],
        json!(["--tensor-parallel-size=1"])
    );
}

#[test]
fn a_timeout_names_the_conditions_and_the_pods_reason() {
    let cluster = cluster();
    cluster.server.add_pod(
        NS,
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "mistral-small-24b-w4a16-predictor-7d9f-x2l", "namespace": NS,
                         "labels": {"serving.kserve.io/inferenceservice": NAME,
                                    "component": "predictor"}},
            "status": {"phase": "Pending", "containerStatuses": [{
                "name": "kserve-container", "image": "vllm", "imageID": "", "ready": false,
                "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff",
                                      "message": "Back-off pulling image \"quay.io/org/mistral-small-24b\""}}}]}
        }),
    );
    let server = Arc::clone(&cluster.server);
    let controller = thread::spawn(move || {
        wait_for_generation(&server, 1);
        server.set_status(
            NS,
            NAME,
            json!([{"type": "Ready", "status": "False", "reason": "PredictorNotReady",
                    "message": "predictor is not ready"}]),
            None,
        );
    });
    let out = cluster.deploy(&["--timeout", "2s"]);
    controller.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    for expected in [
        "was not Ready after 2s",
        "Ready=False (PredictorNotReady): predictor is not ready",
        "container kserve-container: ImagePullBackOff",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in: {err}");
    }
    assert!(out.stdout.is_empty(), "no result on failure");
}

#[test]
fn a_missing_serving_runtime_is_refused_with_those_there() {
    let cluster = cluster();
    cluster.server.add_serving_runtime(NS, "vllm-cuda-runtime");
    let out = cluster.deploy(&["--runtime", "vllm-gaudi", "--no-wait"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("\"vllm-gaudi\"")
            && err.contains(RUNTIME)
            && err.contains("vllm-cuda-runtime"),
        "{err}"
    );
    assert_eq!(cluster.patches(), 0, "nothing applied");
}

#[test]
fn a_cluster_serving_runtime_is_found_too() {
    let cluster = cluster();
    cluster.server.add_cluster_serving_runtime("kserve-vllm");
    let report = json_out(&cluster.deploy(&["--runtime", "kserve-vllm", "--no-wait"]));
    assert_eq!(report["change"], "created");
    assert_eq!(report["ready"], false);
}

#[test]
fn a_missing_namespace_is_refused() {
    let cluster = cluster();
    let out = cluster.deploy_in("nope", &["--no-wait"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("namespace \"nope\" does not exist"),
        "{}",
        stderr(&out)
    );
    assert_eq!(cluster.patches(), 0);
}

#[test]
fn no_wait_returns_once_applied_with_an_empty_url_result() {
    let cluster = cluster();
    let results = cluster.dir.path().join("results");
    let report =
        json_out(&cluster.deploy(&["--no-wait", "--results-dir", results.to_str().unwrap()]));
    assert_eq!(report["change"], "created");
    assert_eq!(report["ready"], false);
    assert_eq!(cluster.server.watches(), 0);
    assert_eq!(std::fs::read_to_string(results.join("URL")).unwrap(), "");
}

#[test]
fn wrong_credentials_are_named() {
    let cluster = cluster();
    let path = cluster.server.write_kubeconfig(cluster.dir.path());
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace(cluster.server.token(), "expired")).unwrap();
    let out = deploy_no_wait(&path);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("refused the credentials (401"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn no_cluster_configuration_is_a_clear_error() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_deploy"))
        .args([NAME, "--storage-uri", URI])
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--kubeconfig"), "{}", stderr(&out));
}

#[test]
fn a_watch_that_ends_or_expires_is_opened_again() {
    let cluster = cluster();
    let server = Arc::clone(&cluster.server);
    let controller = thread::spawn(move || {
        wait_for_generation(&server, 1);
        while server.watches() == 0 {
            thread::sleep(Duration::from_millis(20));
        }
        // Something else changes in the cluster, the history deploy watches from is
        // compacted away, and the server ends the open watch: the next watch gets 410 Gone.
        server.add_pod(
            NS,
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "unrelated", "namespace": NS}}),
        );
        server.compact_watch_history();
        server.end_watches();
        thread::sleep(Duration::from_millis(300));
        server.set_status(
            NS,
            NAME,
            json!([{"type": "Ready", "status": "True"}]),
            Some(SERVE_URL),
        );
    });
    let report = json_out(&cluster.deploy(&["--timeout", "30s"]));
    controller.join().unwrap();
    assert_eq!(report["ready"], true);
    assert!(cluster.server.watches() >= 2, "watched again after the end");
    let lists = cluster
        .server
        .requests()
        .iter()
        .filter(|r| {
            r.starts_with("GET ") && r.contains("/inferenceservices?") && !r.contains("watch")
        })
        .count();
    assert_eq!(lists, 1, "one fresh read after the 410, then watching on");
}

#[test]
fn an_api_server_certificate_the_kubeconfig_does_not_trust_is_said_at_once() {
    let cluster = cluster();
    let path = cluster.server.write_kubeconfig(cluster.dir.path());
    let text = std::fs::read_to_string(&path).unwrap();
    let without_ca: String = text
        .lines()
        .filter(|l| !l.contains("certificate-authority-data"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&path, without_ca).unwrap();
    let started = std::time::Instant::now();
    let out = deploy_no_wait(&path);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let needles = [
        "TLS to the API server failed",
        "issued by a CA this run does not trust",
        "certificate-authority-data",
    ];
    assert_said_at_once(started, &err, &needles);
}
