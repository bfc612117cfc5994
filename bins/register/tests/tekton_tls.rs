//! The register Task, run as a TaskRun's pod runs it, against a Model Registry served with TLS
//! by a private CA (as OpenShift AI serves it with the service CA): trusted only through the
//! Task's ca-bundle workspace; the token comes from the service-account mount, as in a pod.

use modelcar_testkit::tekton::{
    bundle_dir, config_map_volume, load_task, LocalTaskRun, SERVICE_ACCOUNT_DIR,
};
use modelcar_testkit::tls::TestCa;
use modelcar_testkit::ModelRegistryServer;

const TOKEN: &str = "sa-token-tls";
const DIGEST: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

#[test]
fn the_task_reaches_a_tls_model_registry_through_its_ca_bundle_workspace() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new("modelcar test service CA");
    let server = ModelRegistryServer::start_tls(TOKEN, &ca);
    assert!(server.url().starts_with("https://"), "{}", server.url());
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(ws.join(".modelcar")).unwrap();
    let meta = format!(
        r#"{{"schema":1,"hf_repo":"org/tiny","hf_revision":"abc","image":"quay.io/org/tiny","image_digest":"{DIGEST}","image_tag":"v1","pushed_at_utc":"2026-12-06T10:00:00Z"}}"#
    );
    std::fs::write(ws.join(".modelcar/metadata.json"), meta).unwrap();
    let account = tmp.path().join("serviceaccount");
    std::fs::create_dir_all(&account).unwrap();
    std::fs::write(account.join("token"), TOKEN).unwrap();
    let bundle = tmp.path().join("ca-bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    config_map_volume(&bundle, &[("service-ca.crt", ca.ca_pem())]);
    let task = load_task(&bundle_dir().join("tasks/register.yaml"));
    let run = || {
        let mut run = LocalTaskRun::of_binary(
            "register",
            env!("CARGO_BIN_EXE_register").as_ref(),
            tmp.path(),
        )
        .param("url", &server.url())
        .param("variant", "tls")
        .workspace("source", &ws);
        run.mounts.push((
            SERVICE_ACCOUNT_DIR.trim_end_matches('/').to_string(),
            account.clone(),
        ));
        run
    };

    run().refused_for_an_untrusted_ca(&task, &ca);

    let results = run().workspace("ca-bundle", &bundle).succeeds(&task);
    assert!(!results["MODEL_VERSION_ID"].is_empty(), "{results:?}");
    assert_eq!(server.created().model_artifacts, 1);
}

/// The CA flags on the command line: the Model Registry's CA as `--service-ca-file` (where
/// OpenShift's service CA goes), and `--no-service-ca` beside `--ca-file`.
#[test]
fn the_model_registrys_ca_is_taken_from_either_ca_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new("modelcar test service CA");
    let server = ModelRegistryServer::start_tls(TOKEN, &ca);
    let ca_file = ca.write_ca(tmp.path(), "service-ca.crt");
    let token = tmp.path().join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let uri = format!("oci://quay.io/org/tiny@{DIGEST}");
    for flags in [
        ["--service-ca-file", ca_file.to_str().unwrap(), ""],
        ["--ca-file", ca_file.to_str().unwrap(), "--no-service-ca"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_register"))
            .args(["--url", &server.url(), "--token-file"])
            .arg(&token)
            .args([
                "--model-name",
                "tiny",
                "--version-name",
                "v1",
                "--uri",
                &uri,
            ])
            .args(["--model-format-name", "vLLM"])
            .args(flags.iter().filter(|f| !f.is_empty()))
            .env_remove("MODELCAR_WORKSPACE")
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{flags:?}:\n{log}");
    }
}
