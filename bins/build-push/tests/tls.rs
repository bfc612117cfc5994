//! build-push against registries serving TLS with a private CA, reached as users reach them:
//! on a loopback address with no flag (a port-forward), with the CA named, in a certs.d
//! directory or skipped; refused certificates end the run at once with their cause and fix;
//! a registry that demands a client certificate gets the one in certs.d. skopeo, given the
//! CA, reads back every digest.

mod common;

use std::path::Path;
use std::time::Instant;

use common::{assert_fails, build_push, push_json, stderr};
use modelcar_testkit::base_image::push_busybox_base;
use modelcar_testkit::model::{random_bytes, write_model};
use modelcar_testkit::oci_tools::{skopeo_inspect, skopeo_inspect_with_cert_dir};
use modelcar_testkit::tls::{assert_said_at_once, user_certs_d, TestCa};
use modelcar_testkit::{HubRepo, HubServer, Registry};

fn model(tmp: &Path) -> String {
    let dir = tmp.join("model");
    write_model(&dir, 2, 1 << 20);
    dir.to_str().unwrap().to_string()
}

/// The digest skopeo reads for `image`, trusting only `ca`.
fn skopeo_digest(tmp: &Path, image: &str, ca: &TestCa) -> String {
    let dir = tempfile::tempdir_in(tmp).unwrap();
    ca.write_ca(dir.path(), "ca.crt");
    let inspected = skopeo_inspect_with_cert_dir(&format!("docker://{image}"), dir.path());
    inspected["Digest"].as_str().unwrap().to_string()
}

fn digest(report: serde_json::Value) -> String {
    report["digest"].as_str().unwrap().to_string()
}

#[test]
fn a_loopback_registry_is_spoken_tls_or_plain_http_as_it_answers_with_no_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let model = model(tmp.path());
    let ca = TestCa::new("modelcar test registry CA");
    let ca_file = ca.write_ca(tmp.path(), "ca.pem");
    let tls = Registry::start_tls(&ca);

    // 127.0.0.1 and localhost, as `oc port-forward` gives: TLS with the CA trusted.
    for host in [tls.host(), tls.tls_host()] {
        let image = format!("{host}/models/tiny:v1");
        let args = [&model, &image, "--base", "scratch", "--ca-file"];
        let report = push_json(
            tmp.path(),
            &[&args[..], &[ca_file.to_str().unwrap()]].concat(),
        );
        assert_eq!(digest(report), skopeo_digest(tmp.path(), &image, &ca));
    }

    // Not trusted: --insecure, and nothing else, gets through.
    let image = format!("{}/models/insecure:v1", tls.host());
    let report = push_json(
        tmp.path(),
        &[&model, &image, "--base", "scratch", "--insecure"],
    );
    assert_eq!(digest(report), skopeo_digest(tmp.path(), &image, &ca));

    // A plain-HTTP registry on loopback, the base's too: no flag, probed and said once.
    let plain = Registry::start();
    let base = format!("{}/base/busybox:1", plain.host());
    push_busybox_base(tmp.path(), &format!("docker://{base}"));
    let image = format!("{}/models/plain:v1", plain.host());
    let out = build_push(tmp.path(), &[&model, &image, "--base", &base]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert_eq!(
        log.matches("speaks plain HTTP, not TLS").count(),
        1,
        "{log}"
    );
}

#[test]
fn dest_and_base_on_two_tls_registries_with_the_bases_ca_only_in_certs_d() {
    let tmp = tempfile::tempdir().unwrap();
    let model = model(tmp.path());
    let (dest_ca, base_ca) = (TestCa::new("dest CA"), TestCa::new("base CA"));
    let dest = Registry::start_tls(&dest_ca);
    let base = Registry::start_tls(&base_ca);
    let base_image = format!("{}/base/busybox:1", base.tls_host());
    push_busybox_base(tmp.path(), &format!("docker://{base_image}"));
    // The base's CA where podman and docker keep it, for the name the image is pulled by.
    base_ca.write_ca(&user_certs_d(tmp.path(), &base.tls_host()), "ca.crt");
    let dest_ca_file = dest_ca.write_ca(tmp.path(), "dest-ca.pem");
    let image = format!("{}/models/tiny:v1", dest.tls_host());
    let report = push_json(
        tmp.path(),
        &[
            &model,
            &image,
            "--base",
            &base_image,
            "--ca-file",
            dest_ca_file.to_str().unwrap(),
        ],
    );
    let pushed = digest(report);
    assert_eq!(pushed, skopeo_digest(tmp.path(), &image, &dest_ca));

    // The same with each side's own directory: --cert-dir for DEST, --base-cert-dir for the
    // base, and nothing in certs.d.
    std::fs::remove_dir_all(tmp.path().join(".config")).unwrap();
    let (dest_dir, base_dir) = (tmp.path().join("dest-certs"), tmp.path().join("base-certs"));
    for (dir, ca) in [(&dest_dir, &dest_ca), (&base_dir, &base_ca)] {
        std::fs::create_dir_all(dir).unwrap();
        ca.write_ca(dir, "ca.crt");
    }
    let image = format!("{}/models/tiny:v2", dest.tls_host());
    let args = [
        &model,
        &image,
        "--base",
        &base_image,
        "--cert-dir",
        dest_dir.to_str().unwrap(),
        "--base-cert-dir",
        base_dir.to_str().unwrap(),
    ];
    assert_eq!(digest(push_json(tmp.path(), &args)), pushed);
}

/// Runs a push to `registry` with no CA given; asserts it failed with exit 1 within
/// a second and said every one of `needles`.
fn refused_at_once(tmp: &Path, registry: &Registry, needles: &[&str]) {
    let model = model(tmp);
    let image = format!("{}/models/tiny:v1", registry.host());
    let started = Instant::now();
    let out = build_push(tmp, &[&model, &image, "--base", "scratch"]);
    let err = assert_fails(&out, 1, needles[0]);
    assert_said_at_once(started, &err, needles);
    assert!(
        !err.contains("retry"),
        "a certificate error was retried:\n{err}"
    );
}

#[test]
fn an_untrusted_ca_is_named_with_its_fix_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Private Registry CA");
    let registry = Registry::start_tls(&ca);
    let certs_d = format!("/etc/containers/certs.d/{}/ca.crt", registry.host());
    refused_at_once(
        tmp.path(),
        &registry,
        &[
            "issued by a CA this run does not trust",
            "issued by \"CN=Private Registry CA\"",
            "valid for localhost, 127.0.0.1",
            &certs_d,
            "--ca-file",
            "--insecure",
        ],
    );
}

#[test]
fn a_certificate_for_another_name_is_named_with_its_fix_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Private Registry CA");
    let registry = Registry::start_tls_with(ca.server_pair_for(&["quay.example.com"]), None);
    // Trusted, so the name is all that is wrong.
    let certs_d = user_certs_d(tmp.path(), &registry.host());
    ca.write_ca(&certs_d, "ca.crt");
    refused_at_once(
        tmp.path(),
        &registry,
        &[
            "not valid for the name it was reached by",
            "valid for quay.example.com",
            "with 127.0.0.1 among its names",
        ],
    );
}

#[test]
fn an_expired_certificate_is_named_with_its_dates_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Private Registry CA");
    let registry = Registry::start_tls_with(ca.expired_server_pair(), None);
    ca.write_ca(&user_certs_d(tmp.path(), &registry.host()), "ca.crt");
    refused_at_once(
        tmp.path(),
        &registry,
        &["has expired", "2021", "renewed", "--insecure"],
    );
}

#[test]
fn a_registry_demanding_a_client_certificate_gets_the_pair_in_certs_d() {
    let tmp = tempfile::tempdir().unwrap();
    let model = model(tmp.path());
    let (ca, clients) = (TestCa::new("registry CA"), TestCa::new("client CA"));
    let registry = Registry::start_tls_with(ca.server_pair(), Some(&clients));
    let certs_d = user_certs_d(tmp.path(), &registry.host());
    ca.write_ca(&certs_d, "ca.crt");
    let image = format!("{}/models/tiny:v1", registry.host());

    let started = Instant::now();
    let out = build_push(tmp.path(), &[&model, &image, "--base", "scratch"]);
    let err = assert_fails(&out, 1, "asks for a client certificate");
    assert!(err.contains("client.cert, client.key"), "{err}");
    assert_said_at_once(started, &err, &[]);

    // docker's names for the pair, which podman's rule (NAME.cert, NAME.key) takes too.
    clients
        .client_pair("modelcar")
        .write_client_files(&certs_d, "client");
    let report = push_json(tmp.path(), &[&model, &image, "--base", "scratch"]);
    let dir = tempfile::tempdir_in(tmp.path()).unwrap();
    ca.write_ca(dir.path(), "ca.crt");
    clients
        .client_pair("skopeo")
        .write_client_files(dir.path(), "client");
    let inspected = skopeo_inspect_with_cert_dir(&format!("docker://{image}"), dir.path());
    assert_eq!(inspected["Digest"].as_str().unwrap(), digest(report));
}

#[test]
fn an_hf_source_on_a_tls_hub_is_read_with_its_ca_and_refused_at_once_without() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Hub proxy CA");
    let repo = HubRepo::new("org/tiny")
        .file("config.json", b"{}".to_vec())
        .file("model.safetensors", random_bytes(3 << 20, 7));
    let hub = HubServer::start_tls(vec![repo], &ca);
    let registry = Registry::start();
    let image = format!("{}/models/tiny:v1", registry.host());
    let endpoint = hub.endpoint();
    let args = [
        "hf://org/tiny",
        &image,
        "--base",
        "scratch",
        "--hf-endpoint",
        &endpoint,
    ];

    let started = Instant::now();
    let out = build_push(tmp.path(), &args);
    let err = assert_fails(&out, 1, "TLS to the Hub");
    assert_said_at_once(
        started,
        &err,
        &["issued by \"CN=Hub proxy CA\"", "--ca-file"],
    );

    let ca_file = ca.write_ca(tmp.path(), "hub-ca.pem");
    let report = push_json(
        tmp.path(),
        &[&args[..], &["--ca-file", ca_file.to_str().unwrap()]].concat(),
    );
    let inspected = skopeo_inspect(&format!("docker://{image}"));
    assert_eq!(inspected["Digest"].as_str().unwrap(), digest(report));
}

/// The base's registry takes its own scheme and trust flags, DEST's registry its own:
/// `--plain-http` with `--base-insecure`, then `--base-plain-http` with the CA from
/// `--service-ca-file`; `--plain-http=false` to a plain-HTTP registry ends at once, naming
/// the flag.
#[test]
fn each_side_takes_its_own_scheme_and_trust_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let model = model(tmp.path());
    let ca = TestCa::new("registry CA");
    let (plain, tls) = (Registry::start(), Registry::start_tls(&ca));
    let plain_base = format!("{}/base/busybox:1", plain.host());
    let tls_base = format!("{}/base/busybox:1", tls.host());
    push_busybox_base(tmp.path(), &format!("docker://{plain_base}"));
    let again = tmp.path().join("again");
    std::fs::create_dir_all(&again).unwrap();
    push_busybox_base(&again, &format!("docker://{tls_base}"));

    let image = format!("{}/models/a:v1", plain.host());
    let args = [
        &model,
        &image,
        "--plain-http",
        "--base",
        &tls_base,
        "--base-insecure",
    ];
    let report = push_json(tmp.path(), &args);
    assert_eq!(
        skopeo_inspect(&format!("docker://{image}"))["Digest"],
        report["digest"]
    );

    let image = format!("{}/models/b:v1", tls.host());
    let ca_file = ca.write_ca(tmp.path(), "service-ca.crt");
    let args = [
        &model,
        &image,
        "--base",
        &plain_base,
        "--base-plain-http",
        "--service-ca-file",
        ca_file.to_str().unwrap(),
    ];
    let pushed = digest(push_json(tmp.path(), &args));
    assert_eq!(skopeo_digest(tmp.path(), &image, &ca), pushed);

    let image = format!("{}/models/c:v1", plain.host());
    let started = Instant::now();
    let out = build_push(
        tmp.path(),
        &[&model, &image, "--base", "scratch", "--plain-http=false"],
    );
    let err = assert_fails(&out, 1, "answered the TLS handshake with something else");
    assert!(err.contains("say --plain-http"), "{err}");
    assert_said_at_once(started, &err, &[]);
}
