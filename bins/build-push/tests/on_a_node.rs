//! The ModelCar build-push writes, started as a node starts it (podman + runc over
//! containers/storage, the testkit's runtime harness): KServe's predictor pod for the
//! InferenceService deploy renders, under OpenShift's restricted security context, serves
//! every file of the model to a server of an arbitrary UID through the modelcar sidecar's
//! `/proc/<pid>/root` link, and as an ImageVolume (`oci+native`); an image without a shell is refused by KServe's `modelcar-init`
//! check, as on a cluster; and the layer count containers/storage starts a container from is
//! the one `--max-layers` documents; and a node `deploy --prewarm` ran on starts the
//! predictor without pulling.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{build_push, stderr};
use deploy::{inference_service, ServeSpec};
use modelcar_testkit::base_image::busybox_base_in;
use modelcar_testkit::model::write_model;
use modelcar_testkit::oci_tools::skopeo_inspect;
use modelcar_testkit::runtime::kserve::{
    modelcar_image, native_pod, predictor_pod, ImageMount, MODEL_PATH,
};
use modelcar_testkit::runtime::reader::{model_reader, sums_in_logs, sums_of_dir};
use modelcar_testkit::runtime::{podman, Container, Pod, PodSecurity, Podman, ARBITRARY_UID};
use modelcar_testkit::Registry;
use serde_json::Value;

/// The InferenceService `deploy --dry-run` prints for `image@digest`.
fn isvc_for(report: &Value) -> Value {
    let image = report["image"].as_str().expect("image in the report");
    let digest = report["digest"].as_str().expect("digest in the report");
    let repo = image.split_once('@').map_or(image, |(r, _)| r);
    inference_service(&ServeSpec {
        name: "served".into(),
        namespace: "models".into(),
        storage_uri: format!("oci://{repo}@{digest}"),
        runtime: "vllm-nvidia-gpu".into(),
        model_format: "vLLM".into(),
        gpus: 1,
        ..ServeSpec::default()
    })
}

/// Pushes the model at `model` with `base`; the InferenceService that serves it.
fn push(home: &Path, model: &Path, image: &str, base: &str) -> Value {
    let model = model.to_str().unwrap();
    let args = [model, image, "--base", base, "--layer-threshold", "8KiB"];
    let out = build_push(home, &[&["--output", "json"], &args[..]].concat());
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    isvc_for(&serde_json::from_slice(&out.stdout).expect("one JSON report"))
}

#[test]
fn kserve_serves_every_file_of_a_200_shard_modelcar_to_an_arbitrary_uid_in_both_modes() {
    let registry = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let base = busybox_base_in(tmp.path(), &registry.host());
    let model = tmp.path().join("model");
    write_model(&model, 200, 16 << 10);
    let image = format!("{}/models/shards:v1", registry.host());
    let isvc = push(tmp.path(), &model, &image, &base);
    let layers = skopeo_inspect(&format!("docker://{image}"))["Layers"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(
        layers,
        build_push::limits::DEFAULT_MAX_LAYERS,
        "200 shards fill the default budget"
    );

    let podman = podman();
    let server = model_reader(podman, MODEL_PATH);
    let pod = predictor_pod(&isvc, server, PodSecurity::default());
    let running = pod.start(podman).unwrap_or_else(|e| panic!("{e}"));
    let (code, logs) = running.wait("kserve-container", Duration::from_secs(120));
    assert_eq!(code, 0, "the server could not read the model:\n{logs}");
    assert!(
        logs.contains(&format!("uid={ARBITRARY_UID}")),
        "the server ran as the restricted SCC's UID: {logs}"
    );
    let served = sums_in_logs(&logs);
    let on_disk = sums_of_dir(&model);
    eprintln!(
        "{} files served through {MODEL_PATH} to UID {ARBITRARY_UID}",
        served.len()
    );
    assert_eq!(served, on_disk, "what the server read, against the model");
    drop(running);

    // The same image as KServe's oci+native mode mounts it: an ImageVolume, read-only.
    let mounted = ImageMount::of(podman, &modelcar_image(&isvc));
    let pod = native_pod(
        &mounted,
        model_reader(podman, MODEL_PATH),
        PodSecurity::default(),
    );
    let running = pod.start(podman).unwrap_or_else(|e| panic!("{e}"));
    let (code, logs) = running.wait("kserve-container", Duration::from_secs(120));
    assert_eq!(
        code, 0,
        "the server could not read the image volume:\n{logs}"
    );
    assert_eq!(sums_in_logs(&logs), on_disk, "read from the image volume");
}

#[test]
fn a_modelcar_without_a_shell_fails_kserves_modelcar_init() {
    let registry = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    write_model(&model, 2, 16 << 10);
    let image = format!("{}/models/no-shell:v1", registry.host());
    let isvc = push(tmp.path(), &model, &image, "scratch");

    let podman = podman();
    let pod = predictor_pod(
        &isvc,
        model_reader(podman, MODEL_PATH),
        PodSecurity::default(),
    );
    let Err(failed) = pod.start(podman) else {
        panic!("a ModelCar with no shell started");
    };
    assert_eq!(failed.container, "modelcar-init");
    let said = failed.to_string();
    assert!(said.contains("\"sh\""), "{said}");
}

/// The most layers containers/storage (CRI-O's and podman's storage) starts a container
/// from, as `--max-layers`' help and docs/design.md state it: measured here by bisecting
/// images of 100 to 300 layers, and kept true by the test below.
const NODE_LAYER_LIMIT: usize = 128;

/// Starts `image` with a shell command, as a pod's container starts; podman's stderr if not.
fn start_fails(image: &str) -> Option<String> {
    let out = podman().output(&[
        "run",
        "--rm",
        "--tls-verify=false",
        image,
        "sh",
        "-c",
        "true",
    ]);
    (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn containers_storage_starts_the_documented_layer_limit_and_no_more() {
    let registry = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let base = busybox_base_in(tmp.path(), &registry.host());
    let model = tmp.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    for i in 0..NODE_LAYER_LIMIT + 8 {
        let file = model.join(format!("shard-{i:04}.bin"));
        modelcar_testkit::model::write_random(&file, 4096, i as u64);
    }
    let image_of = |layers: usize| {
        let image = format!("{}/models/layers-{layers}:v1", registry.host());
        let max = layers.to_string();
        let args = [model.to_str().unwrap(), &image, "--base", &base];
        let more = ["--layer-threshold", "1KiB", "--max-layers", &max];
        let out = build_push(tmp.path(), &[&args[..], &more[..]].concat());
        assert!(out.status.success(), "{}", stderr(&out));
        let layers_pushed = skopeo_inspect(&format!("docker://{image}"))["Layers"]
            .as_array()
            .map_or(0, Vec::len);
        assert_eq!(layers_pushed, layers, "{image}");
        image
    };
    let at_limit = image_of(NODE_LAYER_LIMIT);
    if let Some(err) = start_fails(&at_limit) {
        panic!("{NODE_LAYER_LIMIT} layers did not start: {err}");
    }
    let over = image_of(NODE_LAYER_LIMIT + 1);
    let err = start_fails(&over).expect("an image over the limit started");
    assert!(err.contains("max depth exceeded"), "{err}");
    eprintln!(
        "{NODE_LAYER_LIMIT} layers start, {} do not; the default budget ({}) is {} below",
        NODE_LAYER_LIMIT + 1,
        build_push::limits::DEFAULT_MAX_LAYERS,
        NODE_LAYER_LIMIT - build_push::limits::DEFAULT_MAX_LAYERS
    );
}

/// `deploy --prewarm` on a node: the DaemonSet's pod, as deploy renders it, pulls the
/// ModelCar into the node's store; the predictor pod then starts from the store with the
/// registry gone, so nothing was pulled at its start. A node without the prewarm pulls at
/// the predictor's start. Both start times are printed, for the record.
#[test]
fn a_prewarmed_node_starts_the_modelcar_pod_without_pulling() {
    let mut registry = Some(Registry::start());
    let host = registry.as_ref().unwrap().host();
    let tmp = tempfile::tempdir().unwrap();
    let base = busybox_base_in(tmp.path(), &host);
    let model = tmp.path().join("model");
    write_model(&model, 8, 16 << 20);
    let isvc = push(tmp.path(), &model, &format!("{host}/models/warm:v1"), &base);
    let image = modelcar_image(&isvc);

    // A cold node: the kubelet pulls the ModelCar when the predictor pod starts.
    let cold = podman().with_store(&tmp.path().join("cold-node"));
    let cold_start = start_predictor(&cold, &isvc, &model);

    // A node the prewarm DaemonSet ran on.
    let node = podman().with_store(&tmp.path().join("warm-node"));
    let spec = ServeSpec {
        name: "warm".into(),
        storage_uri: format!("oci://{image}"),
        ..ServeSpec::default()
    };
    let daemon_set = deploy::prewarm::daemon_set(&spec, &image, Some(1010));
    let hold = &daemon_set["spec"]["template"]["spec"]["containers"][0];
    let prewarm = Pod {
        containers: vec![Container {
            name: "hold".into(),
            image: hold["image"].as_str().unwrap().into(),
            command: serde_json::from_value(hold["command"].clone()).unwrap(),
            read_only_root: true,
            ..Container::default()
        }],
        security: PodSecurity {
            run_as_user: 1010,
            run_as_group: 0,
            fs_group: None,
        },
        ..Pod::default()
    };
    let started = Instant::now();
    let holding = prewarm.start(&node).unwrap_or_else(|e| panic!("{e}"));
    let prewarm_time = started.elapsed();
    drop(holding);
    assert!(
        node.has_image(&image),
        "the prewarm pod left the image on the node"
    );

    registry.take();
    let warm_start = start_predictor(&node, &isvc, &model);
    eprintln!(
        "ModelCar of 128 MiB: predictor start {cold_start:.2?} on a cold node (pull included), \
         {warm_start:.2?} on a prewarmed one (prewarm took {prewarm_time:.2?}, registry gone)"
    );
}

/// Starts KServe's predictor pod for `isvc` on `node` and waits until its server read the
/// whole model; how long that took.
fn start_predictor(node: &Podman, isvc: &Value, model: &Path) -> Duration {
    let server = model_reader(node, MODEL_PATH);
    let started = Instant::now();
    let running = predictor_pod(isvc, server, PodSecurity::default())
        .start(node)
        .unwrap_or_else(|e| panic!("{e}"));
    let (code, logs) = running.wait("kserve-container", Duration::from_secs(300));
    let took = started.elapsed();
    assert_eq!(code, 0, "the server could not read the model:\n{logs}");
    assert_eq!(sums_in_logs(&logs), sums_of_dir(model));
    took
}
