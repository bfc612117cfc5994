//! build-push to registries that know themselves by another name than the one they are
//! reached by: every upload Location is on `localhost:PORT` while the push names
//! `127.0.0.1:PORT` (a port-forward, a proxy, Quay's SERVER_HOSTNAME). The real distribution
//! (its `http.host`), open, with token auth, over TLS, and every look-alike personality: each
//! push follows the Location and ends with the digest skopeo reads. A password is never sent
//! there: a registry that only takes one says so, naming both origins.

mod common;

use std::path::Path;

use common::{assert_fails, build_push, push_json};
use modelcar_testkit::model::write_model;
use modelcar_testkit::oci_tools::{skopeo_inspect, skopeo_inspect_with_cert_dir};
use modelcar_testkit::spec_registry::Personality;
use modelcar_testkit::tls::TestCa;
use modelcar_testkit::{run_tool, Registry, RegistryAuth, SpecRegistry};

fn model(tmp: &Path) -> String {
    let dir = tmp.join("model");
    if !dir.exists() {
        write_model(&dir, 2, 3 << 20);
    }
    dir.to_str().unwrap().to_string()
}

/// Pushes the model to `image`, which places its uploads on another origin: the run says it
/// follows them, and gives the digest.
fn pushed(tmp: &Path, image: &str, extra: &[&str]) -> String {
    let model = model(tmp);
    let args = [&[model.as_str(), image, "--base", "scratch"][..], extra].concat();
    let report = push_json(tmp, &args);
    report["digest"].as_str().unwrap().to_string()
}

/// [`pushed`], asserting the run said it follows uploads to another origin.
fn pushed_elsewhere(tmp: &Path, image: &str, extra: &[&str]) -> String {
    let model = model(tmp);
    let args = [
        &[
            model.as_str(),
            image,
            "--base",
            "scratch",
            "--output",
            "json",
            "--layer-threshold",
            "1MiB",
        ][..],
        extra,
    ]
    .concat();
    let out = build_push(tmp, &args);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("places its uploads on another origin"),
        "{log}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    report["digest"].as_str().unwrap().to_string()
}

#[test]
fn a_push_follows_the_uploads_of_a_registry_known_by_another_name() {
    let tmp = tempfile::tempdir().unwrap();

    let open = Registry::start_known_as_localhost(RegistryAuth::None, None);
    let image = format!("{}/models/open:v1", open.host());
    let digest = pushed_elsewhere(tmp.path(), &image, &[]);
    assert_eq!(
        skopeo_inspect(&format!("docker://{image}"))["Digest"],
        digest.as_str()
    );

    // A bearer token may follow, to a loopback address or over HTTPS.
    let auth = RegistryAuth::Token {
        user: "robot".into(),
        password: "s3cret".into(),
        ttl_secs: 300,
    };
    let tokens = Registry::start_known_as_localhost(auth, None);
    let image = format!("{}/models/token:v1", tokens.host());
    let digest = pushed_elsewhere(tmp.path(), &image, &["--creds", "robot:s3cret"]);
    let inspect = run_tool(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--creds=robot:s3cret",
            &format!("docker://{image}"),
        ],
    );
    let inspect: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(inspect["Digest"], digest.as_str());

    let ca = TestCa::new("registry CA");
    let tls = Registry::start_known_as_localhost(RegistryAuth::None, Some(&ca));
    let ca_dir = tmp.path().join("ca");
    std::fs::create_dir_all(&ca_dir).unwrap();
    ca.write_ca(&ca_dir, "ca.crt");
    let image = format!("{}/models/tls:v1", tls.host());
    let digest = pushed_elsewhere(tmp.path(), &image, &["--ca-file", ca_dir.to_str().unwrap()]);
    let inspect = skopeo_inspect_with_cert_dir(&format!("docker://{image}"), &ca_dir);
    assert_eq!(inspect["Digest"], digest.as_str());
}

#[test]
fn every_personality_known_by_another_name_takes_the_push() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = Registry::start();
    let expected = pushed(
        tmp.path(),
        &format!("{}/models/m:v1", reference.host()),
        &[],
    );
    for personality in Personality::ALL {
        let registry = SpecRegistry::start_known_as_localhost(personality);
        let image = format!("{}/models/m:v1", registry.host());
        assert_eq!(
            pushed_elsewhere(tmp.path(), &image, &[]),
            expected,
            "{personality:?}"
        );
    }
}

#[test]
fn a_password_never_follows_an_upload_to_another_origin() {
    let tmp = tempfile::tempdir().unwrap();
    let auth = RegistryAuth::Htpasswd {
        user: "robot".into(),
        password: "s3cret".into(),
    };
    let registry = Registry::start_known_as_localhost(auth, None);
    let image = format!("{}/models/basic:v1", registry.host());
    let out = build_push(
        tmp.path(),
        &[
            &model(tmp.path()),
            &image,
            "--base",
            "scratch",
            "--creds",
            "robot:s3cret",
        ],
    );
    let err = assert_fails(&out, 1, "a password is never sent to another origin");
    let own = format!("http://{}", registry.host());
    let other = format!("http://localhost:{}", registry.port());
    assert!(err.contains(&own) && err.contains(&other), "{err}");
}
