//! The mirror Task, run as a TaskRun's pod runs it, from one TLS registry to another, each
//! with a CA of its own: both trusted only through the Task's ca-bundle workspace, a volume of
//! two ConfigMap keys. skopeo, given both CAs, finds the source's digest at the destination.

use modelcar_testkit::base_image::push_busybox_base;
use modelcar_testkit::oci_tools::skopeo_inspect_with_cert_dir;
use modelcar_testkit::tekton::{bundle_dir, config_map_volume, load_task, LocalTaskRun};
use modelcar_testkit::tls::TestCa;
use modelcar_testkit::Registry;

#[test]
fn the_task_mirrors_between_tls_registries_through_its_ca_bundle_workspace() {
    let tmp = tempfile::tempdir().unwrap();
    let (src_ca, dest_ca) = (TestCa::new("source CA"), TestCa::new("destination CA"));
    let (src, dest) = (Registry::start_tls(&src_ca), Registry::start_tls(&dest_ca));
    let image = format!("{}/base/busybox", src.tls_host());
    push_busybox_base(tmp.path(), &format!("docker://{image}:1"));
    let cert_dir = tmp.path().join("skopeo-certs");
    std::fs::create_dir_all(&cert_dir).unwrap();
    src_ca.write_ca(&cert_dir, "source.crt");
    dest_ca.write_ca(&cert_dir, "destination.crt");
    let digest = skopeo_inspect_with_cert_dir(&format!("docker://{image}:1"), &cert_dir)["Digest"]
        .as_str()
        .unwrap()
        .to_string();
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(ws.join(".modelcar")).unwrap();
    std::fs::write(
        ws.join(".modelcar/metadata.json"),
        format!(r#"{{"schema":1,"image":"{image}","image_digest":"{digest}","image_tag":"1"}}"#),
    )
    .unwrap();
    let dockerconfig = tmp.path().join("dockerconfig");
    std::fs::create_dir_all(&dockerconfig).unwrap();
    std::fs::write(dockerconfig.join("config.json"), r#"{"auths":{}}"#).unwrap();
    let bundle = tmp.path().join("ca-bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    config_map_volume(
        &bundle,
        &[
            ("ca-bundle.crt", src_ca.ca_pem()),
            ("service-ca.crt", dest_ca.ca_pem()),
        ],
    );
    let copy = format!("{}/mirrored/busybox:1", dest.tls_host());
    let task = load_task(&bundle_dir().join("tasks/mirror.yaml"));
    let results =
        LocalTaskRun::of_binary("mirror", env!("CARGO_BIN_EXE_mirror").as_ref(), tmp.path())
            .param("dest", &copy)
            .workspace("source", &ws)
            .workspace("dockerconfig", &dockerconfig)
            .workspace("ca-bundle", &bundle)
            .succeeds(&task);
    assert_eq!(results["IMAGE_URL"], copy);
    assert_eq!(results["IMAGE_DIGEST"], digest);
    let inspected = skopeo_inspect_with_cert_dir(&format!("docker://{copy}"), &cert_dir);
    assert_eq!(inspected["Digest"], digest.as_str());
}
