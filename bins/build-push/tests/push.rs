//! build-push end to end, against real CNCF distribution registries, with skopeo and umoci as
//! the independent readers of what it wrote.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use modelcar_testkit::base_image::busybox_base_in;
use modelcar_testkit::model::{write_model, write_random};
use modelcar_testkit::oci_tools::{
    assert_same_tree, skopeo_copy, skopeo_inspect, skopeo_raw_manifest, umoci_unpack,
};
use modelcar_testkit::{CountingProxy, Registry};
use serde_json::Value;

mod common;

use common::{assert_fails, build_push, command, push_json, stderr, MIB};

/// Copies `image` to an OCI layout with skopeo, unpacks it with umoci, and compares /models.
fn assert_image_holds(image: &str, model: &Path, work: &Path) -> std::path::PathBuf {
    let layout = work.join("copied");
    skopeo_copy(image, &format!("oci:{}:t", layout.display()));
    let bundle = work.join("bundle");
    umoci_unpack(&format!("{}:t", layout.display()), &bundle);
    assert_same_tree(model, &bundle.join("rootfs/models"));
    bundle
}

#[test]
fn pushed_image_reads_back_identically_with_skopeo_and_umoci() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    write_model(&model, 3, 2 * MIB + 123);
    let registry = Registry::start();
    let image = format!("{}/org/model:v1", registry.host());

    let report = push_json(
        tmp.path(),
        &[model.to_str().unwrap(), &image, "--base", "scratch"],
    );
    // One layer for the small files, one per shard (the deep.bin of 70 kB stays small).
    assert_eq!(report["layers"].as_array().unwrap().len(), 4, "{report}");
    assert_eq!(report["image"], image);

    let inspect = skopeo_inspect(&format!("docker://{image}"));
    assert_eq!(inspect["Digest"], report["digest"]);
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 4);
    let manifest = skopeo_raw_manifest(&format!("docker://{image}"));
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    for layer in manifest["layers"].as_array().unwrap() {
        assert_eq!(layer["mediaType"], "application/vnd.oci.image.layer.v1.tar");
        assert!(layer["annotations"]["org.opencontainers.image.title"]
            .as_str()
            .unwrap()
            .starts_with("/models"));
    }
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.created"],
        "1970-01-01T00:00:00Z"
    );
    assert_image_holds(&format!("docker://{image}"), &model, tmp.path());
}

#[test]
fn same_input_same_digest_on_two_registries_and_an_oci_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    write_model(&model, 2, 2 * MIB);
    let (a, b) = (Registry::start(), Registry::start());
    let dests = [
        format!("{}/x/model:1", a.host()),
        format!("docker://{}/other/name:2", b.host()),
        format!("oci:{}:3", tmp.path().join("layout").display()),
    ];
    let digests: Vec<Value> = dests
        .iter()
        .map(|dest| {
            push_json(
                tmp.path(),
                &[
                    model.to_str().unwrap(),
                    dest,
                    "--base",
                    "scratch",
                    "--no-cache",
                ],
            )["digest"]
                .clone()
        })
        .collect::<Vec<_>>();
    assert!(digests.iter().all(|d| d == &digests[0]), "{digests:?}");
    // And again on another day: SOURCE_DATE_EPOCH, not the clock, sets every timestamp.
    let again = push_json(
        tmp.path(),
        &[model.to_str().unwrap(), &dests[0], "--base", "scratch"],
    );
    assert_eq!(again["digest"], digests[0]);
}

#[test]
fn rerun_after_sigkill_sends_only_the_missing_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, ws) = (tmp.path().join("model"), tmp.path().join("ws"));
    std::fs::create_dir(&ws).unwrap();
    write_model(&model, 6, 12 * MIB);
    let registry = Registry::start();
    let image = format!("{}/org/killed:v1", registry.host());
    let args = [
        model.to_str().unwrap(),
        &image,
        "--base",
        "scratch",
        "--jobs",
        "1",
        "--chunk-size",
        "1MiB",
        "--layer-threshold",
        "1MiB",
        "--workspace",
        ws.to_str().unwrap(),
    ];

    // Kill the first run once two shards are in.
    let mut child = command(tmp.path(), &args)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let killed_after = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("sent /models/model-00002-of-00006"))
        .expect("the first run reported shard 2 before ending");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(killed_after.contains("sent"));
    let unfinished = Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            &format!("docker://{image}"),
        ])
        .output()
        .unwrap();
    assert!(
        !unfinished.status.success(),
        "the killed run must not have pushed a manifest"
    );

    let mut all = vec!["--output", "json"];
    all.extend_from_slice(&args);
    let out = build_push(tmp.path(), &all);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let layers = report["layers"].as_array().unwrap();
    let skipped: Vec<&str> = layers
        .iter()
        .filter(|l| l["sent"] == false)
        .map(|l| l["title"].as_str().unwrap())
        .collect();
    let total: u64 = layers.iter().map(|l| l["size"].as_u64().unwrap()).sum();
    let sent = report["bytes_sent"].as_u64().unwrap();
    eprintln!("resume: second run sent {sent} of {total} layer bytes; skipped {skipped:?}");
    assert!(
        skipped.contains(&"/models")
            && skipped.contains(&"/models/model-00002-of-00006.safetensors"),
        "{skipped:?}"
    );
    assert!(sent <= total - 2 * 12 * MIB, "sent {sent} of {total}");
    assert_image_holds(&format!("docker://{image}"), &model, tmp.path());
}

#[test]
fn basic_auth_registry_takes_creds_and_rejects_wrong_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    write_model(&model, 1, 2 * MIB);
    let registry = Registry::start_with_htpasswd("alice", "s3cret");
    let image = format!("{}/team/model:v1", registry.host());
    let m = model.to_str().unwrap();

    let out = build_push(
        tmp.path(),
        &[m, &image, "--base", "scratch", "--creds", "alice:wrong"],
    );
    let err = assert_fails(&out, 1, "rejected the credentials from --creds");
    assert!(err.contains(&registry.host()), "{err}");

    let out = build_push(tmp.path(), &[m, &image, "--base", "scratch"]);
    assert_fails(&out, 1, "requires credentials and none were found");

    // From an auth file, as podman login writes it.
    let authfile = tmp.path().join("auth.json");
    let auth = modelcar_testkit::http::basic_auth("alice", "s3cret");
    let encoded = auth.trim_start_matches("Basic ");
    std::fs::write(
        &authfile,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{encoded}"}}}}}}"#,
            registry.host()
        ),
    )
    .unwrap();
    let report = push_json(
        tmp.path(),
        &[
            m,
            &image,
            "--base",
            "scratch",
            "--authfile",
            authfile.to_str().unwrap(),
        ],
    );
    assert_eq!(
        skopeo_inspect_with_creds(&image, "alice:s3cret")["Digest"],
        report["digest"]
    );
}

fn skopeo_inspect_with_creds(image: &str, creds: &str) -> Value {
    let out = Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            "--creds",
            creds,
            &format!("docker://{image}"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn base_layers_are_mounted_within_a_registry_and_streamed_across() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    write_model(&model, 1, 2 * MIB);
    let (a, b) = (Registry::start(), Registry::start());
    let base = busybox_base_in(tmp.path(), &a.host());
    let m = model.to_str().unwrap();

    let same = push_json(
        tmp.path(),
        &[
            m,
            &format!("{}/org/model:v1", a.host()),
            "--base",
            &base,
            "--platform",
            "linux/amd64",
        ],
    );
    let base_layer = &same["layers"][0];
    assert_eq!(
        base_layer["sent"], false,
        "the base layer is mounted, not sent: {same}"
    );
    assert!(same["base"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}/base/busybox@sha256:", a.host())));

    let across = push_json(
        tmp.path(),
        &[
            m,
            &format!("{}/org/model:v1", b.host()),
            "--base",
            &base,
            "--platform",
            "linux/amd64",
        ],
    );
    assert_eq!(
        across["layers"][0]["sent"], true,
        "the base layer is streamed registry to registry"
    );
    assert_eq!(
        across["digest"], same["digest"],
        "same base and model, same image"
    );

    let inspect = skopeo_inspect(&format!("docker://{}/org/model:v1", b.host()));
    assert_eq!(inspect["Env"][0], "PATH=/bin", "the base config is kept");
    let manifest = skopeo_raw_manifest(&format!("docker://{}/org/model:v1", b.host()));
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.base.name"],
        base
    );
    let bundle = assert_image_holds(
        &format!("docker://{}/org/model:v1", b.host()),
        &model,
        tmp.path(),
    );
    // What KServe's modelcar sidecar runs: a shell that links /models and reads it.
    let out = Command::new("chroot")
        .arg(bundle.join("rootfs"))
        .args([
            "/bin/sh",
            "-c",
            "ln -sf /models /mnt-models && cat /mnt-models/config.json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("MistralForCausalLM"));
}

#[test]
fn workspace_records_the_push_and_results_dir_has_tekton_results() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, ws, results) = (
        tmp.path().join("model"),
        tmp.path().join("ws"),
        tmp.path().join("results"),
    );
    std::fs::create_dir(&ws).unwrap();
    std::fs::create_dir_all(ws.join(".modelcar")).unwrap();
    std::fs::write(
        ws.join(".modelcar/metadata.json"),
        r#"{"schema":1,"hf_repo":"mistralai/Mistral-Small","hf_revision":"abc123","keep":"me"}"#,
    )
    .unwrap();
    write_model(&model, 1, 2 * MIB);
    let registry = Registry::start();
    let image = format!("{}/org/model:v7", registry.host());
    let report = push_json(
        tmp.path(),
        &[
            model.to_str().unwrap(),
            &image,
            "--base",
            "scratch",
            "--workspace",
            ws.to_str().unwrap(),
            "--results-dir",
            results.to_str().unwrap(),
            "--label",
            "team=ml",
            "--annotation",
            "note=hi",
        ],
    );

    let meta: Value =
        serde_json::from_slice(&std::fs::read(ws.join(".modelcar/metadata.json")).unwrap())
            .unwrap();
    assert_eq!(meta["image"], format!("{}/org/model", registry.host()));
    assert_eq!(meta["image_digest"], report["digest"]);
    assert_eq!(meta["image_tag"], "v7");
    assert_eq!(meta["keep"], "me");
    assert!(meta["pushed_at_utc"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        std::fs::read_to_string(results.join("IMAGE_URL")).unwrap(),
        image
    );
    assert_eq!(
        std::fs::read_to_string(results.join("IMAGE_DIGEST")).unwrap(),
        report["digest"].as_str().unwrap()
    );

    let manifest = skopeo_raw_manifest(&format!("docker://{image}"));
    let ann = &manifest["annotations"];
    assert_eq!(ann["io.modelcar.hf.repo"], "mistralai/Mistral-Small");
    assert_eq!(ann["io.modelcar.hf.revision"], "abc123");
    assert_eq!(ann["org.opencontainers.image.revision"], "abc123");
    assert_eq!(
        ann["org.opencontainers.image.source"],
        "https://huggingface.co/mistralai/Mistral-Small"
    );
    assert_eq!(ann["note"], "hi");
    let inspect = skopeo_inspect(&format!("docker://{image}"));
    assert_eq!(inspect["Labels"]["team"], "ml");
    assert_eq!(
        inspect["Labels"]["io.modelcar.hf.repo"],
        "mistralai/Mistral-Small"
    );
}

#[test]
fn bad_input_gives_errors_that_name_the_thing_at_fault() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let dest = "127.0.0.1:1/x/y:z";
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            vec!["/nonexistent/model".into(), dest.into()],
            1,
            "/nonexistent/model does not exist",
        ),
        (
            vec![
                home.to_str().unwrap().into(),
                "127.0.0.1:5000/Bad/Ref".into(),
            ],
            2,
            "lowercase",
        ),
        (
            vec![
                home.to_str().unwrap().into(),
                dest.into(),
                "--layer-threshold".into(),
                "big".into(),
            ],
            2,
            "not a size",
        ),
    ];
    for (args, code, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_fails(&build_push(home, &args), code, needle);
    }

    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(empty.join("only/dirs")).unwrap();
    let out = build_push(home, &[empty.to_str().unwrap(), dest, "--base", "scratch"]);
    assert_fails(&out, 1, "contains no files");

    let escaping = tmp.path().join("escaping");
    write_model(&escaping, 1, 1000);
    std::os::unix::fs::symlink("/etc/passwd", escaping.join("passwd")).unwrap();
    let out = build_push(
        home,
        &[escaping.to_str().unwrap(), dest, "--base", "scratch"],
    );
    assert_fails(
        &out,
        1,
        "passwd points to /etc/passwd, outside the model directory",
    );

    // Nothing listens on port 1.
    let model = tmp.path().join("model");
    write_model(&model, 1, 1000);
    let out = build_push(
        home,
        &[
            model.to_str().unwrap(),
            dest,
            "--base",
            "scratch",
            "--retries",
            "1",
        ],
    );
    let err = assert_fails(&out, 1, "cannot reach registry 127.0.0.1:1");
    assert!(err.contains("gave up after 2 attempts"), "{err}");
    assert_eq!(
        err.matches("retry 1 of 1").count(),
        1,
        "retried once, and not again at the blob level: {err}"
    );
}

#[test]
fn an_unreadable_file_is_named_before_anything_is_pushed() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    write_model(&model, 1, 1000);
    write_random(&model.join("secret.bin"), 10, 1);
    let mode = |p: &Path, m| {
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(m)).unwrap()
    };
    mode(&model.join("secret.bin"), 0o600);
    mode(tmp.path(), 0o755);
    let registry = Registry::start();
    // As an unprivileged user: root could read the file anyway.
    let out = Command::new("setpriv")
        .args(["--reuid=1001", "--regid=1001", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_build-push"))
        .args([
            model.to_str().unwrap(),
            &format!("{}/x/y:z", registry.host()),
            "--base",
            "scratch",
            "--cache-file",
            "/tmp/modelcar-test-nocache/blobs.json",
        ])
        .output()
        .unwrap();
    let err = assert_fails(&out, 1, "Permission denied");
    assert!(
        err.contains("cannot read") && err.contains("secret.bin"),
        "{err}"
    );
    assert_eq!(
        modelcar_testkit::http::get_status(&registry.host(), "/v2/x/y/tags/list", None).unwrap(),
        404,
        "nothing was pushed"
    );
}

/// A file above 8 GiB needs the GNU base-256 size field. Slow (it streams 9 GiB twice), so it
/// is ignored by default: `cargo test --release -p build-push --test push -- --ignored`.
#[test]
#[ignore]
fn a_file_over_8_gib_unpacks_to_the_right_size_and_bytes() {
    use std::io::{Seek, SeekFrom, Write};
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    std::fs::create_dir(&model).unwrap();
    let big = model.join("huge.safetensors");
    let size = (9u64 << 30) + 123;
    let mut f = std::fs::File::create(&big).unwrap();
    f.write_all(b"head of the huge file").unwrap();
    f.seek(SeekFrom::Start(size - 16)).unwrap();
    f.write_all(b"tail of the file").unwrap();
    drop(f);
    std::fs::write(model.join("config.json"), b"{}").unwrap();
    let registry = Registry::start();
    let image = format!("{}/org/huge:v1", registry.host());
    let started = std::time::Instant::now();
    let report = push_json(
        tmp.path(),
        &[
            model.to_str().unwrap(),
            &image,
            "--base",
            "scratch",
            "--no-cache",
        ],
    );
    eprintln!(
        "huge: pushed {size} bytes in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let layer = report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["title"] == "/models/huge.safetensors")
        .unwrap();
    assert!(layer["size"].as_u64().unwrap() > size);
    assert_image_holds(&format!("docker://{image}"), &model, tmp.path());
}

/// Tokens that the registry refuses long before their announced expiry: the client learns of
/// each expiry from a 401 in the middle of the push, fetches a new token and goes on.
#[test]
fn a_token_revoked_mid_push_is_replaced_and_the_push_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    // Each blob goes up well within one token's life; the whole push takes several.
    write_model(&model, 24, 8 * MIB);
    let ttl = 2;
    let registry = Registry::start_with_token("robot", "t0ken", ttl);
    registry.token_server().unwrap().advertise_expires_in(3600);
    // Held to 40 MiB/s, the push lasts longer than a token, however fast this machine is.
    let proxy = CountingProxy::start_throttled(&registry.host(), Some(40 * MIB));
    let image = format!("{}/org/revoked:v1", proxy.host());
    let started = std::time::Instant::now();
    let out = build_push(
        tmp.path(),
        &[
            "--output",
            "json",
            "--layer-threshold",
            "1MiB",
            model.to_str().unwrap(),
            &image,
            "--base",
            "scratch",
            "--creds",
            "robot:t0ken",
            "--chunk-size",
            "1MiB",
            "--jobs",
            "1",
        ],
    );
    let elapsed = started.elapsed().as_secs_f64();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let tokens = registry.token_server().unwrap().tokens_issued();
    // A chunk rejected at byte 0 leaves nothing at the registry to go on from: only those
    // rejected further in can be resumed.
    let rejected = err.matches("rejected the token during").count();
    let rejected_mid_blob = err
        .split("rejected the token during upload bytes ")
        .skip(1)
        .filter(|rest| !rest.starts_with("0-"))
        .count();
    let resumed = err.matches("going on from there").count();
    eprintln!("revoked: push took {elapsed:.1}s with tokens dying after {ttl}s but announced for an hour; {tokens} tokens, {rejected} chunks rejected mid-upload, {resumed} blobs resumed at the registry's offset");
    assert_eq!(resumed, rejected_mid_blob, "every blob hit by a rejected token went on from the registry's offset, none restarted: {err}");
    assert!(
        elapsed > 2.0 * ttl as f64,
        "the push ({elapsed:.1}s) must outlast two tokens for this test to mean anything"
    );
    assert!(
        tokens >= 2,
        "only a 401 could have told the client to fetch token {tokens}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        skopeo_inspect_with_creds(&image, "robot:t0ken")["Digest"],
        report["digest"]
    );
}

/// Evicted (SIGTERM) part way: it stops at once with exit 1 and a message saying how to go on,
/// leaves no partial blob in an OCI layout, and the rerun finishes without resending.
#[test]
fn sigterm_stops_cleanly_and_the_rerun_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, layout) = (tmp.path().join("model"), tmp.path().join("layout"));
    write_model(&model, 6, 12 * MIB);
    let dest = format!("oci:{}:v1", layout.display());
    let args = [
        model.to_str().unwrap(),
        &dest,
        "--base",
        "scratch",
        "--jobs",
        "1",
    ];
    let mut child = command(tmp.path(), &args)
        .args(["--layer-threshold", "1MiB"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("sent /models/model-00001"))
        .expect("a first shard");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{rest:?}");
    assert!(
        rest.iter()
            .any(|l| l.contains("stopped by SIGTERM") && l.contains("run again")),
        "{rest:?}"
    );
    let partial: Vec<_> = std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".partial"))
        .collect();
    assert!(
        partial.is_empty(),
        "a partial blob was left behind: {partial:?}"
    );

    let report = push_json(tmp.path(), &args);
    let skipped = report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["sent"] == false)
        .count();
    assert!(
        skipped >= 2,
        "the small-files layer and shard 1 were done before SIGTERM: {report}"
    );
}
