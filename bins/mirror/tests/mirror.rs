//! mirror end to end between real CNCF distribution registries; skopeo checks both sides.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use bytes::Bytes;
use modelcar_shared::oci::OCI_INDEX;
use modelcar_shared::registry::{ConnectOptions, Reference, RegistryClient};
use modelcar_testkit::model::write_model;
use modelcar_testkit::oci_tools::{skopeo_inspect, skopeo_raw_manifest};
use modelcar_testkit::{CountingProxy, Registry};

use common::{build_options, MIB};
use serde_json::Value;

/// Pushes a ModelCar of `model` with build-push (as a library) and returns its digest.
async fn build_image(model: &Path, dest: &str, platform: &str) -> String {
    build_push::run(build_options(model, dest, platform))
        .await
        .expect("build-push")
        .digest
}

/// An index over two platform images, PUT by hand: `image:v1` on each platform.
async fn build_index(model: &Path, registry: &Registry, repo: &str) -> String {
    let mut entries = Vec::new();
    for (platform, arch) in [("linux/amd64", "amd64"), ("linux/arm64", "arm64")] {
        let digest = build_image(
            model,
            &format!("{}/{repo}:{arch}", registry.host()),
            platform,
        )
        .await;
        let raw = raw_manifest(registry, repo, &digest).await;
        entries.push(format!(
            r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{digest}","size":{},"platform":{{"architecture":"{arch}","os":"linux"}}}}"#,
            raw.len()
        ));
    }
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
        entries.join(",")
    );
    let client = client(registry, repo).await;
    client
        .put_manifest("v1", OCI_INDEX, Bytes::from(index))
        .await
        .unwrap()
}

async fn client(registry: &Registry, repo: &str) -> RegistryClient {
    let reference = Reference::parse(&format!("{}/{repo}:v1", registry.host())).unwrap();
    RegistryClient::for_push(&reference, &[], &ConnectOptions::default())
        .await
        .unwrap()
}

async fn raw_manifest(registry: &Registry, repo: &str, digest: &str) -> Bytes {
    client(registry, repo)
        .await
        .get_manifest(digest, &modelcar_shared::oci::MANIFEST_TYPES)
        .await
        .unwrap()
        .bytes
}

fn mirror(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mirror"))
        .args(args)
        .env_remove("MODELCAR_WORKSPACE")
        .output()
        .expect("run mirror")
}

fn mirror_json(args: &[&str]) -> Value {
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(args);
    let out = mirror(&all);
    assert!(
        out.status.success(),
        "mirror {args:?}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

/// Both sides, read by skopeo: the same raw manifest bytes and the same digest.
/// Whether skopeo, an independent reader, finds `image` (HOST/REPO:TAG) at its registry.
fn tag_exists(image: &str) -> bool {
    Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            &format!("docker://{image}"),
        ])
        .output()
        .unwrap()
        .status
        .success()
}

fn assert_same_on_both_sides(src: &str, dest: &str) {
    let (a, b) = (format!("docker://{src}"), format!("docker://{dest}"));
    assert_eq!(skopeo_raw_manifest(&a), skopeo_raw_manifest(&b));
    let raw = |image: &str| {
        let out = Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false", image])
            .output()
            .unwrap();
        out.stdout
    };
    assert_eq!(raw(&a), raw(&b), "manifest bytes differ");
}

#[tokio::test(flavor = "multi_thread")]
async fn modelcar_and_index_arrive_with_identical_digests_and_a_rerun_copies_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    write_model(&model, 2, 2 * MIB);
    let (a, b) = (Registry::start(), Registry::start());
    let modelcar = build_image(&model, &format!("{}/org/model:v1", a.host()), "linux/amd64").await;
    let index = build_index(&model, &a, "org/multi").await;

    let (src, dest) = (
        format!("{}/org/model:v1", a.host()),
        format!("{}/org/model:v1", b.host()),
    );
    let (isrc, idest) = (
        format!("{}/org/multi:v1", a.host()),
        format!("{}/mirrored/multi:v1", b.host()),
    );
    let first = mirror_json(&[&src, &dest]);
    assert_eq!(first["digest"], modelcar);
    assert_eq!(first["destinations"][0]["digest"], modelcar);
    assert!(first["destinations"][0]["bytes_copied"].as_u64().unwrap() > 4 * MIB);
    assert_same_on_both_sides(&src, &dest);
    assert_eq!(
        skopeo_inspect(&format!("docker://{dest}"))["Digest"],
        modelcar
    );

    let copied = mirror_json(&[&isrc, &idest]);
    assert_eq!(copied["digest"], index);
    assert_eq!(
        copied["destinations"][0]["manifests"], 3,
        "the index and both manifests"
    );
    assert_same_on_both_sides(&isrc, &idest);
    for arch in ["amd64", "arm64"] {
        let out = Command::new("skopeo")
            .args([
                "inspect",
                "--tls-verify=false",
                "--override-arch",
                arch,
                &format!("docker://{idest}"),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{arch}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["Architecture"], arch);
    }

    // Again: nothing to copy, and it says so.
    let out = mirror(&[&src, &dest]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("copied 0 bytes"), "{text}");
    let again = mirror_json(&[&isrc, &idest]);
    assert_eq!(again["destinations"][0]["bytes_copied"], 0);

    // One platform out of the index: that manifest alone, byte for byte.
    let one = mirror_json(&[
        "--platform",
        "linux/arm64",
        &isrc,
        &format!("{}/one/arm:v1", b.host()),
    ]);
    let arm = skopeo_raw_manifest(&format!("docker://{}/org/multi:arm64", a.host()));
    assert_eq!(
        skopeo_raw_manifest(&format!("docker://{}/one/arm:v1", b.host())),
        arm
    );
    assert_eq!(one["destinations"][0]["manifests"], 1);
}

/// Two destinations from one read of the source: a counting proxy in front of the source
/// registry sees each blob go out once, not once per destination, and both destinations end
/// with the source's digest.
#[tokio::test(flavor = "multi_thread")]
async fn two_destinations_read_each_source_blob_once() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    write_model(&model, 3, 2 * MIB);
    let (a, b, c) = (Registry::start(), Registry::start(), Registry::start());
    let digest = build_image(&model, &format!("{}/org/model:v1", a.host()), "linux/amd64").await;
    let source = CountingProxy::start(&a.host());
    let (to_b, to_c) = (
        format!("{}/org/model:v1", b.host()),
        format!("{}/org/model:v1", c.host()),
    );
    let report = mirror_json(&[&format!("{}/org/model:v1", source.host()), &to_b, &to_c]);
    let blob_bytes = report["destinations"][0]["bytes_copied"].as_u64().unwrap();
    eprintln!(
        "two destinations: {} bytes read from the source for {blob_bytes} bytes of blobs \
         copied to each",
        source.bytes_down()
    );
    assert!(blob_bytes > 6 * MIB, "{report}");
    assert_eq!(report["destinations"][1]["bytes_copied"], blob_bytes);
    assert!(
        source.bytes_down() < blob_bytes + 256 * 1024,
        "each blob read once: {} bytes down for {blob_bytes} of blobs",
        source.bytes_down()
    );
    for dest in [&to_b, &to_c] {
        assert_eq!(
            skopeo_inspect(&format!("docker://{dest}"))["Digest"],
            digest
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn within_one_registry_blobs_are_mounted_not_copied() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    write_model(&model, 1, 2 * MIB);
    let a = Registry::start();
    let digest = build_image(&model, &format!("{}/org/model:v1", a.host()), "linux/amd64").await;
    let report = mirror_json(&[
        &format!("{}/org/model:v1", a.host()),
        &format!("{}/team/copy:v2", a.host()),
    ]);
    assert_eq!(report["destinations"][0]["bytes_copied"], 0, "{report}");
    assert_eq!(
        skopeo_inspect(&format!("docker://{}/team/copy:v2", a.host()))["Digest"],
        digest
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_source_blob_fails_clearly_and_leaves_no_tag() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    write_model(&model, 1, 2 * MIB);
    let (a, b) = (Registry::start(), Registry::start());
    build_image(&model, &format!("{}/org/model:v1", a.host()), "linux/amd64").await;
    let manifest = skopeo_raw_manifest(&format!("docker://{}/org/model:v1", a.host()));
    let layer = manifest["layers"][1]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let hex = layer.trim_start_matches("sha256:");
    let data = a.storage_dir().join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[1000] ^= 0xff; // same size, one byte flipped
    std::fs::write(&data, bytes).unwrap();

    // By default the destination registry's own check refuses the blob; with
    // --verify-locally mirror's hash catches it first. Either way nothing is tagged.
    let src = format!("{}/org/model:v1", a.host());
    for (repo, flags, says) in [
        (
            "default",
            &[][..],
            "hashed the bytes it received and refused them",
        ),
        ("local", &["--verify-locally"][..], "arrived with digest"),
    ] {
        let dest = format!("{}/org/{repo}:v1", b.host());
        let out = mirror(&[&[src.as_str(), &dest][..], flags].concat());
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&layer) && err.contains(says), "{err}");
        assert!(err.contains("nothing was committed"), "{err}");
        assert!(err.contains("the destination tag was not written"), "{err}");
        assert!(
            !tag_exists(&dest),
            "{repo}: the destination has a tag after a failed copy"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_outlasts_several_short_lived_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    write_model(&model, 6, 32 * MIB);
    let a = Registry::start();
    let ttl = 2;
    let b = Registry::start_with_token("robot", "t0ken", ttl);
    // Held to 40 MiB/s, the copy lasts longer than a token, however fast this machine is.
    let proxy = CountingProxy::start_throttled(&b.host(), Some(40 * MIB));
    let digest = build_image(&model, &format!("{}/org/model:v1", a.host()), "linux/amd64").await;
    let started = std::time::Instant::now();
    let report = mirror_json(&[
        &format!("{}/org/model:v1", a.host()),
        &format!("{}/org/model:v1", proxy.host()),
        "--dest-creds",
        "robot:t0ken",
        "--chunk-size",
        "4194304",
    ]);
    let elapsed = started.elapsed().as_secs_f64();
    let tokens = b.token_server().unwrap().tokens_issued();
    eprintln!("mirror bearer: copy took {elapsed:.1}s with {ttl}s tokens; {tokens} tokens issued");
    assert!(
        elapsed > 2.0 * ttl as f64,
        "the copy ({elapsed:.1}s) must outlast two tokens for this test to mean anything"
    );
    assert!(tokens >= 2, "{tokens} tokens for a {elapsed:.1}s copy");
    assert_eq!(report["destinations"][0]["digest"], digest);
}

#[tokio::test(flavor = "multi_thread")]
async fn from_metadata_and_workspace_record_every_destination() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, ws, results) = (
        tmp.path().join("model"),
        tmp.path().join("ws"),
        tmp.path().join("results"),
    );
    std::fs::create_dir_all(ws.join(".modelcar")).unwrap();
    write_model(&model, 1, 2 * MIB);
    let (a, b) = (Registry::start(), Registry::start());
    let digest = build_image(&model, &format!("{}/org/model:v1", a.host()), "linux/amd64").await;
    std::fs::write(
        ws.join(".modelcar/metadata.json"),
        format!(
            r#"{{"schema":1,"image":"{}/org/model","image_digest":"{digest}","image_tag":"v1"}}"#,
            a.host()
        ),
    )
    .unwrap();
    let dests = [
        format!("{}/x/one:v1", b.host()),
        format!("{}/x/two:v1", b.host()),
    ];
    let ws_arg = ws.to_str().unwrap();
    mirror_json(&[
        "--from-metadata",
        "--workspace",
        ws_arg,
        "--results-dir",
        results.to_str().unwrap(),
        &dests[0],
        &dests[1],
    ]);
    let meta: Value =
        serde_json::from_slice(&std::fs::read(ws.join(".modelcar/metadata.json")).unwrap())
            .unwrap();
    let mirrors = meta["mirrors"].as_array().unwrap();
    assert_eq!(mirrors.len(), 2);
    assert_eq!(mirrors[0]["image"], format!("{}/x/one", b.host()));
    assert!(mirrors.iter().all(|m| m["digest"] == digest.as_str()));
    assert_eq!(
        std::fs::read_to_string(results.join("IMAGE_URL")).unwrap(),
        dests[0]
    );
    assert_eq!(
        std::fs::read_to_string(results.join("IMAGE_DIGEST")).unwrap(),
        digest
    );

    // Bad input: no destination, a malformed reference.
    for (args, needle) in [
        (vec!["127.0.0.1:1/a/b:c"], "at least one DEST"),
        (vec!["127.0.0.1:1/A:b", "x/y"], "lowercase"),
    ] {
        let out = mirror(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(needle),
            "{args:?}"
        );
    }
}

/// The destination's password is a token file that is rotated part way through the copy: the
/// old token stops working, and the copy goes on with the new one, read from the file again.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_file_rotated_mid_copy_is_read_again() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    write_model(&model, 6, 32 * MIB);
    let a = Registry::start();
    let ttl = 2;
    let b = Registry::start_with_token(
        modelcar_shared::registry::credentials::TOKEN_FILE_USER,
        "token-1",
        ttl,
    );
    // Held to 40 MiB/s, the copy lasts longer than a token, however fast this machine is.
    let proxy = CountingProxy::start_throttled(&b.host(), Some(40 * MIB));
    let digest = build_image(&model, &format!("{}/org/model:v1", a.host()), "linux/amd64").await;
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, "token-1\n").unwrap();

    let started = std::time::Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_mirror"))
        .args([
            &format!("{}/org/model:v1", a.host()),
            &format!("{}/org/model:v1", proxy.host()),
        ])
        .args([
            "--output",
            "json",
            "--chunk-size",
            "4194304",
            "--dest-token-file",
            token_file.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let server = b.token_server().unwrap();
    // Rotation: both tokens valid for a moment, then only the new one.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    server.accept_passwords(&["token-1", "token-2"]);
    std::fs::write(&token_file, "token-2\n").unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.accept_passwords(&["token-2"]);
    let switched = started.elapsed().as_secs_f64();

    let out = child.wait_with_output().unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    let tokens = server.tokens_issued();
    eprintln!("rotation: copy took {elapsed:.1}s, old token refused from {switched:.1}s on; {tokens} tokens issued");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        elapsed > switched + ttl as f64,
        "the copy ({elapsed:.1}s) must need a token after the old one was refused ({switched:.1}s) for this test to mean anything"
    );
    assert!(tokens >= 2, "{tokens} tokens");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["destinations"][0]["digest"], digest);
}

/// Killed half way (SIGKILL), then run again: the rerun copies only the blobs that were
/// missing, and the destination ends with the source's digest.
#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_after_sigkill_copies_only_what_is_missing() {
    use std::io::{BufRead, BufReader};
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    write_model(&model, 6, 12 * MIB);
    let (a, b) = (Registry::start(), Registry::start());
    let digest = build_image(&model, &format!("{}/org/model:v1", a.host()), "linux/amd64").await;
    let (src, dest) = (
        format!("{}/org/model:v1", a.host()),
        format!("{}/org/model:v1", b.host()),
    );
    let args = [
        src.as_str(),
        dest.as_str(),
        "--jobs",
        "1",
        "--chunk-size",
        "1048576",
    ];

    let mut child = Command::new(env!("CARGO_BIN_EXE_mirror"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let copied_before_kill = lines
        .map_while(Result::ok)
        .filter(|l| l.contains("copied blob"))
        .take(3)
        .count();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(copied_before_kill, 3);
    assert!(
        !tag_exists(&dest),
        "the killed run must not have written the tag"
    );

    let report = mirror_json(&args);
    let d = &report["destinations"][0];
    let (blobs, copied) = (
        d["blobs"].as_u64().unwrap(),
        d["blobs_copied"].as_u64().unwrap(),
    );
    eprintln!(
        "mirror resume: the rerun copied {copied} of {blobs} blobs, {} bytes",
        d["bytes_copied"]
    );
    assert!(
        copied <= blobs - 3,
        "copied {copied} of {blobs} blobs after 3 had made it"
    );
    assert_eq!(d["digest"], digest);
    assert_same_on_both_sides(&src, &dest);
}

/// The ModelPack artifact beside a ModelCar (build-push --modelpack) is a manifest like any
/// other to mirror: it arrives with the same digest, and its blobs are the ModelCar's, so once
/// the ModelCar is there only the small config blob is new.
#[tokio::test(flavor = "multi_thread")]
async fn a_modelpack_artifact_is_copied_like_any_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    write_model(&model, 2, 2 * MIB);
    let (a, b) = (Registry::start(), Registry::start());
    let image = format!("{}/llm/pack:v1", a.host());
    let mut options = build_options(&model, &image, "linux/amd64");
    options.modelpack = Some(build_push::ModelPackTag::Suffixed);
    let report = build_push::run(options).await.expect("build-push");
    let pack = report.modelpack.expect("a ModelPack was pushed");

    let car_copy = format!("{}/llm/pack:v1", b.host());
    mirror_json(&[&image, &car_copy]);
    let pack_copy = format!("{}/llm/pack:v1-modelpack", b.host());
    let copied = mirror_json(&[&pack.image, &pack_copy]);
    assert_eq!(copied["digest"], pack.digest);
    assert_same_on_both_sides(&pack.image, &pack_copy);
    let raw = skopeo_raw_manifest(&format!("docker://{pack_copy}"));
    assert_eq!(
        raw["artifactType"],
        "application/vnd.cncf.model.manifest.v1+json"
    );
}
