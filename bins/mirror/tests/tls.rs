//! mirror between two registries serving TLS, each with a CA of its own, trusted per side as
//! users trust them: each side's --cert-dir, the source's CA in certs.d with the destination's
//! from --ca-file, or neither checked with --src-insecure and --dest-insecure. A side whose CA
//! is missing ends the run at once, naming that side's flags. skopeo reads every copy back.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

use modelcar_testkit::base_image::push_busybox_base;
use modelcar_testkit::oci_tools::{skopeo_inspect, skopeo_inspect_with_cert_dir};
use modelcar_testkit::tls::{assert_said_at_once, user_certs_d, TestCa};
use modelcar_testkit::{run_tool, Registry, RegistryAuth};

/// mirror with `$HOME` (and so its certs.d) in `home`.
fn mirror(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mirror"))
        .args(args)
        .env("HOME", home)
        .env_remove("MODELCAR_WORKSPACE")
        .output()
        .expect("run mirror")
}

fn dir_with_ca(parent: &Path, name: &str, ca: &TestCa) -> String {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    ca.write_ca(&dir, "ca.crt");
    dir.to_str().unwrap().to_string()
}

#[test]
fn each_side_is_trusted_by_its_own_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let (src_ca, dest_ca) = (TestCa::new("source CA"), TestCa::new("destination CA"));
    let (src, dest) = (Registry::start_tls(&src_ca), Registry::start_tls(&dest_ca));
    let image = format!("{}/base/busybox:1", src.host());
    push_busybox_base(tmp.path(), &format!("docker://{image}"));
    let src_dir = dir_with_ca(tmp.path(), "src-certs", &src_ca);
    let dest_dir = dir_with_ca(tmp.path(), "dest-certs", &dest_ca);
    let digest = skopeo_inspect_with_cert_dir(&format!("docker://{image}"), src_dir.as_ref())
        ["Digest"]
        .as_str()
        .unwrap()
        .to_string();
    let copied = |tag: &str, flags: &[&str]| {
        let copy = format!("{}/mirrored/busybox:{tag}", dest.host());
        let out = mirror(tmp.path(), &[&[image.as_str(), &copy][..], flags].concat());
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "mirror {flags:?}:\n{log}");
        let read = skopeo_inspect_with_cert_dir(&format!("docker://{copy}"), dest_dir.as_ref());
        assert_eq!(read["Digest"], digest.as_str(), "{flags:?}");
    };

    copied(
        "a",
        &["--src-cert-dir", &src_dir, "--dest-cert-dir", &dest_dir],
    );

    src_ca.write_ca(&user_certs_d(tmp.path(), &src.host()), "ca.crt");
    let dest_ca_file = dest_ca.write_ca(tmp.path(), "dest-ca.pem");
    copied("b", &["--ca-file", dest_ca_file.to_str().unwrap()]);
    std::fs::remove_dir_all(tmp.path().join(".config")).unwrap();

    copied("c", &["--src-insecure", "--dest-insecure"]);

    // The destination's CA missing: refused at once, its own flags named.
    let copy = format!("{}/mirrored/busybox:d", dest.host());
    let started = Instant::now();
    let out = mirror(tmp.path(), &[&image, &copy, "--src-cert-dir", &src_dir]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let needles = [
        "issued by \"CN=destination CA\"",
        "--dest-cert-dir",
        "--dest-insecure",
    ];
    assert_said_at_once(started, &err, &needles);
}

/// The destination knows itself as `localhost:PORT` (its upload Locations are there) while
/// mirror names 127.0.0.1, over TLS, with tokens from an https token service: the copy
/// follows its uploads and skopeo finds the source's digest there.
#[test]
fn a_mirror_follows_the_uploads_of_a_tls_registry_known_by_another_name() {
    let tmp = tempfile::tempdir().unwrap();
    let (src_ca, dest_ca) = (TestCa::new("source CA"), TestCa::new("destination CA"));
    let src = Registry::start_tls(&src_ca);
    let auth = RegistryAuth::Token {
        user: "robot".into(),
        password: "s3cret".into(),
        ttl_secs: 300,
    };
    let dest = Registry::start_known_as_localhost(auth, Some(&dest_ca));
    assert!(dest.token_server().unwrap().realm().starts_with("https://"));
    let image = format!("{}/base/busybox:1", src.host());
    push_busybox_base(tmp.path(), &format!("docker://{image}"));
    let src_dir = dir_with_ca(tmp.path(), "src-certs", &src_ca);
    let dest_dir = dir_with_ca(tmp.path(), "dest-certs", &dest_ca);
    let copy = format!("{}/mirrored/busybox:1", dest.host());
    let out = mirror(
        tmp.path(),
        &[
            &image,
            &copy,
            "--src-cert-dir",
            &src_dir,
            "--dest-cert-dir",
            &dest_dir,
            "--dest-creds",
            "robot:s3cret",
        ],
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("places its uploads on another origin"),
        "{log}"
    );
    let digest = skopeo_inspect_with_cert_dir(&format!("docker://{image}"), src_dir.as_ref())
        ["Digest"]
        .clone();
    let read = run_tool(
        "skopeo",
        &[
            "inspect",
            "--creds=robot:s3cret",
            &format!("--cert-dir={dest_dir}"),
            &format!("docker://{copy}"),
        ],
    );
    let read: serde_json::Value = serde_json::from_str(&read).unwrap();
    assert_eq!(read["Digest"], digest);
}

/// Scheme and trust flags for one side or both: `--src-plain-http` with `--insecure` (both
/// sides), `--src-insecure` with `--dest-plain-http`, and `--plain-http` for both.
#[test]
fn the_scheme_and_trust_flags_apply_to_their_sides() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new("registry CA");
    let (plain, tls, other_plain) = (
        Registry::start(),
        Registry::start_tls(&ca),
        Registry::start(),
    );
    let image = format!("{}/base/busybox:1", plain.host());
    push_busybox_base(tmp.path(), &format!("docker://{image}"));
    let on_tls = format!("{}/mirrored/busybox:1", tls.host());
    let on_plain = format!("{}/mirrored/busybox:1", other_plain.host());
    for (src, dest, flags) in [
        (&image, &on_tls, &["--src-plain-http", "--insecure"][..]),
        (
            &on_tls,
            &on_plain,
            &["--src-insecure", "--dest-plain-http"][..],
        ),
        (&image, &on_plain, &["--plain-http"][..]),
    ] {
        let out = mirror(
            tmp.path(),
            &[&[src.as_str(), dest.as_str()][..], flags].concat(),
        );
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "mirror {flags:?}:\n{log}");
    }
    let dir = dir_with_ca(tmp.path(), "certs", &ca);
    let source = skopeo_inspect(&format!("docker://{image}"))["Digest"].clone();
    let read = skopeo_inspect_with_cert_dir(&format!("docker://{on_tls}"), dir.as_ref());
    assert_eq!(read["Digest"], source);
    assert_eq!(
        skopeo_inspect(&format!("docker://{on_plain}"))["Digest"],
        source
    );
}
