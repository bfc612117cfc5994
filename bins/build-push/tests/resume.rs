//! Byte-level resume (issue #12): a 1 GiB single-file layer interrupted part way (the process
//! killed, or the registry restarted) goes on from the byte the registry holds. A counting
//! proxy in front of the registry measures what each run puts on the wire.
//!
//! Against a registry that resumes as the distribution spec says ([`SpecRegistry`]), the rerun
//! sends only the rest. Against Debian's distribution 2.8.2, which cancels an upload cut off
//! mid-PATCH (fixed in distribution 3.0), the rerun is told so and starts the blob again.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{big_model, command, push_json, MIB};
use modelcar_testkit::model::one_file_model;
use modelcar_testkit::oci_tools::skopeo_inspect;
use modelcar_testkit::{CountingProxy, Registry, Restartable, SpecRegistry};
use serde_json::Value;

use common::LAYER;
const CHUNK: u64 = 64 * MIB;
/// Requests, headers, the config and the manifest: what a run sends besides layer bytes.
const OVERHEAD: u64 = MIB;

fn spawn(home: &Path, args: &[&str]) -> Child {
    command(home, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start build-push")
}

fn uploads_in(ws: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(ws.join(".modelcar/uploads.json")).unwrap_or_default();
    let file: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    file["uploads"].as_array().cloned().unwrap_or_default()
}

/// What one interrupted push and its sequel did.
struct Outcome {
    /// Bytes towards the registry before the interruption, and after it.
    before: u64,
    after: u64,
    log: String,
    digest: String,
}

fn push_args<'a>(model: &'a str, image: &'a str, ws: &'a str) -> Vec<&'a str> {
    vec![
        model,
        image,
        "--base",
        "scratch",
        "--layer-threshold",
        "1MiB",
        "--workspace",
        ws,
        "--output",
        "json",
    ]
}

/// Pushes through a counting proxy to `registry`, SIGKILLs build-push once 60% of the layer
/// went out, then runs it again to the end.
fn kill_at_60_percent_and_rerun(registry: &str) -> Outcome {
    let tmp = tempfile::tempdir().unwrap();
    let (model, _) = big_model();
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let proxy = CountingProxy::start(registry);
    let image = format!("{}/org/big:v1", proxy.host());
    let args = push_args(model.to_str().unwrap(), &image, ws.to_str().unwrap());

    let mut child = spawn(tmp.path(), &args);
    proxy.wait_for_bytes_up(LAYER * 6 / 10, &mut child);
    child.kill().unwrap(); // SIGKILL: no chance to clean up or to save anything more
    child.wait().unwrap();
    let before = proxy.settled_bytes_up();
    let open = uploads_in(&ws);
    assert_eq!(
        open.len(),
        1,
        "the uploads log holds the open upload: {open:?}"
    );
    assert!(open[0]["offset"].as_u64().unwrap() > 0, "{open:?}");

    proxy.reset();
    let out = command(tmp.path(), &args).output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "the rerun failed:\n{log}");
    assert!(
        uploads_in(&ws).is_empty(),
        "a finished upload leaves the log"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    Outcome {
        before,
        after: proxy.bytes_up(),
        log,
        digest: report["digest"].as_str().unwrap().to_string(),
    }
}

/// Pushes through a counting proxy to `registry`, which is stopped for a second once half the
/// layer went out and started again; the same process goes on.
fn restart_registry_at_half(mut registry: impl Restartable) -> Outcome {
    let tmp = tempfile::tempdir().unwrap();
    let (model, _) = big_model();
    let proxy = CountingProxy::start(&registry.host());
    let image = format!("{}/org/big:v1", proxy.host());
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let mut child = spawn(
        tmp.path(),
        &push_args(model.to_str().unwrap(), &image, ws.to_str().unwrap()),
    );
    proxy.wait_for_bytes_up(LAYER / 2, &mut child);
    registry.stop();
    std::thread::sleep(Duration::from_secs(1));
    registry.start_again();
    let before = proxy.bytes_up();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "the push failed:\n{log}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    Outcome {
        before,
        after: proxy.bytes_up() - before,
        log,
        digest: report["digest"].as_str().unwrap().to_string(),
    }
}

#[test]
fn a_push_killed_at_60_percent_sends_only_the_rest_on_rerun() {
    let registry = SpecRegistry::start();
    let outcome = kill_at_60_percent_and_rerun(&registry.host());
    eprintln!(
        "resume after SIGKILL: killed after {} MiB of a {} MiB layer went out; the rerun sent {} MiB",
        outcome.before / MIB,
        LAYER / MIB,
        outcome.after / MIB
    );
    assert!(
        outcome.log.contains("going on from there"),
        "{}",
        outcome.log
    );
    assert!(
        outcome.after <= LAYER - LAYER * 6 / 10 + CHUNK + OVERHEAD,
        "the rerun sent {} bytes: more than the remaining 40% plus one chunk",
        outcome.after
    );
    assert_eq!(outcome.digest, big_model().1);
}

#[test]
fn a_registry_restarted_mid_blob_is_resumed_not_restarted() {
    let outcome = restart_registry_at_half(SpecRegistry::start());
    eprintln!(
        "resume after a registry restart: {} MiB had gone out; {} MiB more after the restart",
        outcome.before / MIB,
        outcome.after / MIB
    );
    assert!(
        outcome.log.contains("the destination holds"),
        "{}",
        outcome.log
    );
    assert!(
        outcome.before + outcome.after <= LAYER + CHUNK + OVERHEAD,
        "{} bytes sent in all: the blob was started again rather than resumed",
        outcome.before + outcome.after
    );
    assert_eq!(outcome.digest, big_model().1);
}

/// Debian's distribution 2.8.2 cancels an upload cut off mid-PATCH (its `_state` offset no
/// longer matches the bytes on disk): the rerun is told so, starts the blob again, and the
/// image is still right.
#[test]
fn distribution_2_8_cancels_a_cut_upload_and_the_rerun_starts_it_again() {
    let registry = Registry::start();
    let outcome = kill_at_60_percent_and_rerun(&registry.host());
    assert!(
        outcome.log.contains("no longer has the upload"),
        "{}",
        outcome.log
    );
    assert!(
        outcome.after <= LAYER + OVERHEAD,
        "the rerun sent {} MiB:\n{}",
        outcome.after / MIB,
        outcome.log
    );
    assert_eq!(outcome.digest, big_model().1);
    let image = format!("docker://{}/org/big:v1", registry.host());
    assert_eq!(skopeo_inspect(&image)["Digest"], big_model().1);
}

#[test]
fn distribution_2_8_restarted_mid_blob_gets_the_blob_again() {
    let outcome = restart_registry_at_half(Registry::start());
    assert!(
        outcome.log.contains("no longer has this upload"),
        "{}",
        outcome.log
    );
    assert_eq!(outcome.digest, big_model().1);
}

/// One blob whose upload outlasts several short-lived bearer tokens (the proxy holds it to
/// 200 MiB/s, so the 1 GiB layer takes over 5 s against 2 s tokens): a new token is fetched
/// between chunks, and no chunk request outlives its token by much.
#[test]
fn one_blob_upload_outlasts_several_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, expected) = big_model();
    let ttl = 2;
    let registry = Registry::start_with_token("robot", "t0ken", ttl);
    let proxy = CountingProxy::start_throttled(&registry.host(), Some(200 * MIB));
    let image = format!("{}/org/tokens:v1", proxy.host());
    let started = std::time::Instant::now();
    let report = push_json(
        tmp.path(),
        &[
            model.to_str().unwrap(),
            &image,
            "--base",
            "scratch",
            "--creds",
            "robot:t0ken",
            "--chunk-size",
            "32MiB",
        ],
    );
    let elapsed = started.elapsed().as_secs_f64();
    let tokens = registry.token_server().unwrap().tokens_issued();
    eprintln!("one blob, {ttl}s tokens: the upload took {elapsed:.1}s; {tokens} tokens issued");
    assert!(
        elapsed > 2.0 * ttl as f64,
        "the upload ({elapsed:.1}s) must outlast two tokens for this test to mean anything"
    );
    assert!(tokens >= 3, "{tokens} tokens for a {elapsed:.1}s upload");
    assert_eq!(report["digest"], expected);
}

/// A registry that asks for chunks of at least 8 MiB (`OCI-Chunk-Min-Length`) gets them even
/// when `--chunk-size` is smaller; only a blob's last chunk is shorter.
#[test]
fn chunks_are_at_least_what_the_registry_asks_for() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    one_file_model(&model, 20 * MIB);
    let registry = SpecRegistry::start_with_min_chunk(8 * MIB);
    let image = format!("{}/org/small:v1", registry.host());
    push_json(
        tmp.path(),
        &[
            model.to_str().unwrap(),
            &image,
            "--base",
            "scratch",
            "--chunk-size",
            "1MiB",
        ],
    );
    let sizes = registry.patch_sizes();
    assert!(sizes.contains(&(8 * MIB)), "{sizes:?}");
    let blob_ends = sizes.iter().filter(|&&s| s < 8 * MIB).count();
    assert_eq!(
        blob_ends, 2,
        "one short last chunk per blob (2 layers): {sizes:?}"
    );
}
