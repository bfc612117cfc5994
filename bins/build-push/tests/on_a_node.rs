//! The ModelCar build-push writes, started as a node starts it (podman + runc over
//! containers/storage, the testkit's runtime harness): KServe's predictor pod for the
//! InferenceService deploy renders, under OpenShift's restricted security context, serves
//! every file of the model to a server of an arbitrary UID through the modelcar sidecar's
//! `/proc/<pid>/root` link; and an image without a shell is refused by KServe's
//! `modelcar-init` check, as on a cluster.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{build_push, stderr};
use deploy::{inference_service, ServeSpec};
use modelcar_testkit::base_image::push_busybox_base;
use modelcar_testkit::model::write_model;
use modelcar_testkit::runtime::kserve::{predictor_pod, MODEL_PATH};
use modelcar_testkit::runtime::reader::{model_reader, sums_in_logs, sums_of_dir};
use modelcar_testkit::runtime::{podman, PodSecurity, ARBITRARY_UID};
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
fn kserve_serves_every_file_of_a_200_shard_modelcar_to_an_arbitrary_uid() {
    let registry = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let base = format!("{}/base/busybox:1", registry.host());
    push_busybox_base(tmp.path(), &format!("docker://{base}"));
    let model = tmp.path().join("model");
    write_model(&model, 200, 16 << 10);
    let image = format!("{}/models/shards:v1", registry.host());
    let isvc = push(tmp.path(), &model, &image, &base);

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
    let pod = predictor_pod(&isvc, model_reader(podman, MODEL_PATH), PodSecurity::default());
    let Err(failed) = pod.start(podman) else {
        panic!("a ModelCar with no shell started");
    };
    assert_eq!(failed.container, "modelcar-init");
    let said = failed.to_string();
    assert!(said.contains("\"sh\""), "{said}");
}
