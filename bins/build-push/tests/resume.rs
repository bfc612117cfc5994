//! Byte-level resume within one run: a 1 GiB single-file layer whose registry is
//! restarted part way goes on from the byte the registry holds; tokens that expire mid-blob
//! and a registry's minimum chunk. A counting proxy in front of the registry measures what
//! each run puts on the wire. A run killed and run again: see `registries.rs`.

mod common;

use std::time::Duration;

use common::{big_model, push_json, resume_args, spawn, LAYER, MIB};
use modelcar_testkit::model::one_file_model;
use modelcar_testkit::{CountingProxy, Registry, Restartable, SpecRegistry};
use serde_json::Value;

const CHUNK: u64 = 64 * MIB;
/// Requests, headers, the config and the manifest: what a run sends besides layer bytes.
const OVERHEAD: u64 = MIB;

/// What one interrupted push and its sequel did.
struct Outcome {
    /// Bytes towards the registry before the interruption, and after it.
    before: u64,
    after: u64,
    log: String,
    digest: String,
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
        &resume_args(model.to_str().unwrap(), &image, ws.to_str().unwrap()),
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
