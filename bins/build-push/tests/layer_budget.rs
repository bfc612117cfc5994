//! The layer budget and the layer size limit, against the real distribution registry: a
//! model of more shards than CRI-O can stack as layers is packed within `--max-layers` (base
//! layers included), reads back byte for byte, has the same digest from a directory and from
//! `hf://`, and resumes after SIGKILL; a file over `--max-layer-size` stops the run before
//! anything reaches the registry.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{assert_fails, build_push, MIB};
use modelcar_shared::hub::HubOptions;
use modelcar_testkit::base_image::busybox_base_in;
use modelcar_testkit::model::random_bytes;
use modelcar_testkit::oci_tools::{assert_same_tree, skopeo_copy, skopeo_inspect, umoci_unpack};
use modelcar_testkit::{CountingProxy, HubRepo, HubServer, Registry};
use serde_json::Value;

const REPO: &str = "org/many-shards";
const SHARDS: u64 = 200;
const SHARD: u64 = 256 << 10;

/// 200 shards of 256 KiB, each of other bytes, beside a config and a nested small file.
fn many_shards() -> HubRepo {
    let mut repo = HubRepo::new(REPO)
        .file("config.json", br#"{"architectures":["X"]}"#.to_vec())
        .file("extra/notes.txt", b"notes\n".to_vec());
    for i in 1..=SHARDS {
        let name = format!("model-{i:05}-of-{SHARDS:05}.safetensors");
        repo = repo.file(&name, random_bytes(SHARD, i));
    }
    repo
}

/// fetch-model's directory of the repo in `ws`.
async fn fetch(endpoint: &str, ws: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(ws).unwrap();
    fetch_model::run(fetch_model::Options {
        repo: REPO.into(),
        revision: "main".into(),
        rules: modelcar_shared::selection::Rules::new(&[], &[], false).unwrap(),
        target: fetch_model::Target::Workspace {
            ws: modelcar_shared::Workspace::open(ws).unwrap(),
            name: "many".into(),
        },
        hub: HubOptions {
            endpoint: endpoint.into(),
            ..HubOptions::default()
        },
        jobs: 4,
        min_free: 0,
        progress_every: Duration::from_secs(60),
    })
    .await
    .unwrap();
    ws.join("models/many")
}

/// build-push with `--output json` (and no threshold of its own, unlike `common::push_json`).
fn push_json(home: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(args);
    let out = build_push(home, &all);
    assert!(out.status.success(), "{args:?}: {}", common::stderr(&out));
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

fn digest(report: &Value) -> &str {
    report["digest"].as_str().unwrap()
}

/// The default budget: 100 layers for the whole image. With a one-layer base, 200 shards go
/// into 98 layers beside the small-files layer; directory and `hf://` give one digest, and
/// skopeo and umoci read every file back as it was.
#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_shards_fit_the_default_layer_budget() {
    let hub = HubServer::start(vec![many_shards()]);
    let registry = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let base = busybox_base_in(tmp.path(), &registry.host());
    let endpoint = hub.endpoint();
    let ws = tmp.path().join("ws");
    let model = fetch(&endpoint, &ws).await;

    let push = |source: &str, image: &str, more: &[&str]| {
        let mut args = vec![
            source,
            image,
            "--base",
            &base,
            "--hf-endpoint",
            &endpoint,
            "--layer-threshold",
            "64KiB",
        ];
        args.extend_from_slice(more);
        push_json(tmp.path(), &args)
    };
    let from_dir = format!("{}/org/from-dir:v1", registry.host());
    // The workspace's metadata file gives the directory build the Hub provenance labels
    // the hf:// build has.
    let dir_report = push(
        model.to_str().unwrap(),
        &from_dir,
        &["--workspace", ws.to_str().unwrap()],
    );
    let from_hf = format!("{}/org/from-hf:v1", registry.host());
    let hf_report = push(&format!("hf://{REPO}"), &from_hf, &[]);
    assert_eq!(
        digest(&dir_report),
        digest(&hf_report),
        "directory and hf://"
    );

    let inspect = skopeo_inspect(&format!("docker://{from_dir}"));
    let layers = inspect["Layers"].as_array().unwrap().len();
    eprintln!("{SHARDS} shards: an image of {layers} layers (1 base, 1 small files)");
    assert_eq!(layers, 100, "the whole budget, and no more");
    let titles: Vec<&str> = dir_report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["title"].as_str())
        .collect();
    assert_eq!(titles.len(), 99);
    assert_eq!(titles[0], "/models", "the small files first");
    assert!(
        titles[1].starts_with("/models/model-00001-of-00200.safetensors .. /models/model-0000"),
        "packed in path order: {titles:?}"
    );

    let layout = tmp.path().join("layout");
    skopeo_copy(
        &format!("docker://{from_dir}"),
        &format!("oci:{}:v1", layout.display()),
    );
    let bundle = tmp.path().join("bundle");
    umoci_unpack(&format!("{}:v1", layout.display()), &bundle);
    assert_same_tree(&model, &bundle.join("rootfs/models"));
    assert!(bundle.join("rootfs/bin/sh").exists(), "the base's shell");
}

/// Killed (SIGKILL) part way, the rerun of a packed image skips the layers the registry has
/// and gives the digest of an uninterrupted run.
#[tokio::test(flavor = "multi_thread")]
async fn a_packed_push_killed_and_rerun_skips_what_was_pushed() {
    let hub = HubServer::start(vec![many_shards()]);
    let registry = Registry::start();
    // Held to 16 MiB/s so that the kill lands part way, whatever this machine's speed.
    let proxy = CountingProxy::start_throttled(&registry.host(), Some(16 * MIB));
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let model = fetch(&hub.endpoint(), &ws).await;
    let (model, ws) = (model.to_str().unwrap(), ws.to_str().unwrap());
    let layout = format!("oci:{}:v1", tmp.path().join("layout").display());
    let common = [
        "--base",
        "scratch",
        "--layer-threshold",
        "64KiB",
        "--max-layers",
        "40",
    ];
    let mut uninterrupted = vec![model, layout.as_str(), "--no-cache", "--workspace", ws];
    uninterrupted.extend(common);
    let expected = push_json(tmp.path(), &uninterrupted);

    let image = format!("{}/org/killed:v1", proxy.host());
    let mut args = vec![model, image.as_str(), "--workspace", ws, "--output", "json"];
    args.extend(common);
    let mut child = common::command(tmp.path(), &args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let total = SHARDS * SHARD;
    proxy.wait_for_bytes_up(total / 2, &mut child);
    child.kill().unwrap();
    child.wait().unwrap();

    let out = build_push(tmp.path(), &args);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let rerun: Value = serde_json::from_slice(&out.stdout).unwrap();
    let sent = rerun["bytes_sent"].as_u64().unwrap();
    let skipped = rerun["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["sent"] == false)
        .count();
    eprintln!(
        "killed at half of {} MiB in 40 layers; the rerun skipped {skipped} layers and sent {:.1} MiB",
        total / MIB,
        sent as f64 / MIB as f64
    );
    assert_eq!(digest(&rerun), digest(&expected));
    assert_eq!(rerun["layers"].as_array().unwrap().len(), 40);
    assert!(
        sent <= total / 2 + 4 * (total / 39),
        "sent {sent} of {total}"
    );
    assert!(skipped >= 10, "{skipped} layers skipped");
}

/// A file over `--max-layer-size` stops the run while planning: the error names the file, its
/// size, the limit and what to do, and the registry (behind a counting proxy) sees nothing.
#[test]
fn a_file_over_the_layer_size_limit_is_refused_before_any_byte() {
    let registry = Registry::start();
    let proxy = CountingProxy::start(&registry.host());
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(model.join("config.json"), b"{}").unwrap();
    std::fs::write(model.join("small.safetensors"), random_bytes(2 * MIB, 1)).unwrap();
    std::fs::write(model.join("whole.gguf"), random_bytes(5 * MIB, 2)).unwrap();
    let image = format!("{}/org/too-big:v1", proxy.host());
    let out = build_push(
        tmp.path(),
        &[
            model.to_str().unwrap(),
            &image,
            "--base",
            "scratch",
            "--layer-threshold",
            "1MiB",
            "--max-layer-size",
            "4MiB",
        ],
    );
    let err = assert_fails(&out, 1, "/models/whole.gguf is 5.0 MiB");
    for part in [
        "4.0 MiB (--max-layer-size)",
        "--exclude",
        "raise the registry's limit",
    ] {
        assert!(err.contains(part), "{part:?} not in {err}");
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(proxy.bytes_up(), 0, "the registry was not even asked");
}
