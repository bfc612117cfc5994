//! The fetch-model Task, run as a TaskRun's pod runs it (the step's command, args and env after
//! Tekton's substitution, nothing else), against a Hub mirror that serves TLS with a private
//! CA: trusted only through the Task's ca-bundle workspace, a ConfigMap volume.

use modelcar_testkit::model::random_bytes;
use modelcar_testkit::tekton::{bundle_dir, config_map_volume, load_task, LocalTaskRun};
use modelcar_testkit::tls::TestCa;
use modelcar_testkit::{HubRepo, HubServer};

#[test]
fn the_task_reaches_a_tls_hub_mirror_through_its_ca_bundle_workspace() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new("modelcar test Hub mirror CA");
    let weights = random_bytes(3 << 20, 7);
    let hub = HubServer::start_tls(
        vec![HubRepo::new("org/tiny")
            .file("config.json", b"{}".to_vec())
            .file("model.safetensors", weights.clone())],
        &ca,
    );
    assert!(hub.endpoint().starts_with("https://"), "{}", hub.endpoint());
    let task = load_task(&bundle_dir().join("tasks/fetch-model.yaml"));
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let bundle = tmp.path().join("ca-bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    config_map_volume(&bundle, &[("ca-bundle.crt", ca.ca_pem())]);
    let run = || {
        LocalTaskRun::of_binary(
            "fetch-model",
            env!("CARGO_BIN_EXE_fetch-model").as_ref(),
            tmp.path(),
        )
        .param("repo", "org/tiny")
        .param("hf-endpoint", &hub.endpoint())
        .workspace("source", &ws)
    };

    // Without the workspace the private CA is trusted nowhere.
    run().refused_for_an_untrusted_ca(&task, &ca);

    let results = run().workspace("ca-bundle", &bundle).succeeds(&task);
    let model_dir = &results["MODEL_DIR"];
    // /workspace/source/models/tiny in the pod: the source workspace is `ws` here.
    assert_eq!(model_dir, ws.join("models/tiny").to_str().unwrap());
    let fetched = std::fs::read(ws.join("models/tiny/model.safetensors")).unwrap();
    assert!(fetched == weights, "the weights arrived whole");
}

/// The CA flags on the command line: the Hub's CA as `--service-ca-file` (where OpenShift's
/// service CA goes), and `--no-service-ca` beside `--ca-file`.
#[test]
fn the_hubs_ca_is_taken_from_either_ca_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new("modelcar test Hub CA");
    let hub = HubServer::start_tls(
        vec![HubRepo::new("org/tiny").file("config.json", b"{}".to_vec())],
        &ca,
    );
    let ca_file = ca.write_ca(tmp.path(), "service-ca.crt");
    for (n, flags) in [
        ["--service-ca-file", ca_file.to_str().unwrap(), ""],
        ["--ca-file", ca_file.to_str().unwrap(), "--no-service-ca"],
    ]
    .iter()
    .enumerate()
    {
        let dest = tmp.path().join(format!("model-{n}"));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_fetch-model"))
            .args(["org/tiny", "--endpoint", &hub.endpoint(), "--dest"])
            .arg(&dest)
            .args(flags.iter().filter(|f| !f.is_empty()))
            .env_remove("HF_TOKEN")
            .env_remove("MODELCAR_WORKSPACE")
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{flags:?}:\n{log}");
        assert_eq!(std::fs::read(dest.join("config.json")).unwrap(), b"{}");
    }
}
