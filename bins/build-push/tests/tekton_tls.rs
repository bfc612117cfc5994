//! The build-push Task, run as a TaskRun's pod runs it, pushing to a distribution registry that
//! serves TLS with a private CA: trusted only through the Task's ca-bundle workspace. skopeo,
//! given the same CA with --cert-dir, reads back the digest the Task reported.

use modelcar_testkit::model::write_model;
use modelcar_testkit::oci_tools::skopeo_inspect_with_cert_dir;
use modelcar_testkit::tekton::{bundle_dir, config_map_volume, load_task, LocalTaskRun};
use modelcar_testkit::tls::TestCa;
use modelcar_testkit::Registry;

#[test]
fn the_task_pushes_to_a_tls_registry_through_its_ca_bundle_workspace() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new("modelcar test registry CA");
    let registry = Registry::start_tls(&ca);
    let ws = tmp.path().join("ws");
    write_model(&ws.join("models/tiny"), 2, 1 << 20);
    let dockerconfig = tmp.path().join("dockerconfig");
    std::fs::create_dir_all(&dockerconfig).unwrap();
    std::fs::write(dockerconfig.join("config.json"), r#"{"auths":{}}"#).unwrap();
    let bundle = tmp.path().join("ca-bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    config_map_volume(&bundle, &[("ca-bundle.crt", ca.ca_pem())]);
    let dest = format!("{}/models/tiny:v1", registry.tls_host());
    let task = load_task(&bundle_dir().join("tasks/build-push.yaml"));
    let run = || {
        LocalTaskRun::of_binary(
            "build-push",
            env!("CARGO_BIN_EXE_build-push").as_ref(),
            tmp.path(),
        )
        .param("model-dir", "/workspace/source/models/tiny")
        .param("dest", &dest)
        .param("base", "scratch")
        .workspace("source", &ws)
        .workspace("dockerconfig", &dockerconfig)
    };

    run().refused_for_an_untrusted_ca(&task, &ca);

    let results = run().workspace("ca-bundle", &bundle).succeeds(&task);
    assert_eq!(results["IMAGE_URL"], dest);
    let cert_dir = tmp.path().join("skopeo-certs");
    std::fs::create_dir_all(&cert_dir).unwrap();
    ca.write_ca(&cert_dir, "ca.crt");
    let inspected = skopeo_inspect_with_cert_dir(&format!("docker://{dest}"), &cert_dir);
    assert_eq!(inspected["Digest"], results["IMAGE_DIGEST"]);
}
