//! build-push from `hf://`: each file streamed from the testkit's Hub server into
//! its layer, against the real distribution registry.

mod common;

use std::time::Duration;

use common::{build_push, push_json, stderr, MIB};
use modelcar_shared::hub::HubOptions;
use modelcar_testkit::model::random_bytes;
use modelcar_testkit::oci_tools::skopeo_inspect;
use modelcar_testkit::{HubRepo, HubServer, Registry};

const REPO: &str = "org/tiny-llm";

fn tiny_repo() -> HubRepo {
    HubRepo::new(REPO)
        .file(
            "config.json",
            br#"{"architectures":["MistralForCausalLM"]}"#.to_vec(),
        )
        .file("tokenizer.json", random_bytes(300_000, 3))
        .file("model-00001-of-00002.safetensors", random_bytes(3 * MIB, 1))
        .file("model-00002-of-00002.safetensors", random_bytes(3 * MIB, 2))
        .file("consolidated.safetensors", random_bytes(MIB, 4))
        .file("nested/dir/notes.txt", b"hello\n".to_vec())
}

fn hf_args<'a>(endpoint: &'a str, source: &'a str, image: &'a str) -> Vec<&'a str> {
    vec![
        source,
        image,
        "--hf-endpoint",
        endpoint,
        "--base",
        "scratch",
    ]
}

/// The same revision gives the same image digest streamed from the Hub as built from the
/// directory fetch-model downloads, and the `hf://` build downloads each chosen file once.
#[tokio::test(flavor = "multi_thread")]
async fn an_hf_build_has_the_digest_of_the_directory_build() {
    let hub = HubServer::start(vec![tiny_repo()]);
    let registry = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let endpoint = hub.endpoint();
    let from_hub = format!("{}/org/from-hub:v1", registry.host());
    let report = push_json(
        tmp.path(),
        &hf_args(&endpoint, &format!("hf://{REPO}"), &from_hub),
    );
    let chosen = [
        ("config.json", 40),
        ("tokenizer.json", 300_000),
        ("model-00001-of-00002.safetensors", 3 * MIB),
        ("model-00002-of-00002.safetensors", 3 * MIB),
        ("nested/dir/notes.txt", 6),
    ];
    for (path, size) in chosen {
        assert_eq!(hub.bytes_served_for(path), size, "{path} downloaded once");
    }
    assert_eq!(hub.bytes_served_for("consolidated.safetensors"), 0);

    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let workspace = modelcar_shared::Workspace::open(&ws).unwrap();
    fetch_model::run(fetch_model::Options {
        repo: REPO.into(),
        revision: "main".into(),
        rules: modelcar_shared::selection::Rules::new(&[], &[], false).unwrap(),
        target: fetch_model::Target::Workspace {
            ws: workspace,
            name: "tiny-llm".into(),
        },
        hub: HubOptions {
            endpoint: endpoint.clone(),
            ..HubOptions::default()
        },
        jobs: 2,
        min_free: 0,
        progress_every: Duration::from_secs(60),
    })
    .await
    .unwrap();
    let from_dir = format!("{}/org/from-dir:v1", registry.host());
    let model = ws.join("models/tiny-llm");
    let dir_report = push_json(
        tmp.path(),
        &[
            model.to_str().unwrap(),
            &from_dir,
            "--base",
            "scratch",
            "--workspace",
            ws.to_str().unwrap(),
        ],
    );
    eprintln!(
        "hf:// build {} = directory build {}",
        report["digest"], dir_report["digest"]
    );
    assert_eq!(report["digest"], dir_report["digest"]);
    let inspect = skopeo_inspect(&format!("docker://{from_hub}"));
    assert_eq!(inspect["Digest"], report["digest"]);
    assert_eq!(
        inspect["Labels"]["io.modelcar.hf.revision"],
        hub.sha(REPO, "main").as_str()
    );
}

/// `path` served with its first byte flipped fails its layer before the commit: the error
/// names the file and the `check` it failed, and no manifest (no tag) reaches the registry.
fn a_corrupt_file_fails_its_layer(path: &str, check: &str) {
    let hub = HubServer::start(vec![tiny_repo()]);
    hub.corrupt(path);
    let registry = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let image = format!("{}/org/bad:v1", registry.host());
    let endpoint = hub.endpoint();
    let out = build_push(
        tmp.path(),
        &hf_args(&endpoint, &format!("hf://{REPO}"), &image),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(path) && err.contains(check), "{err}");
    assert_eq!(
        modelcar_testkit::http::get_status(&registry.host(), "/v2/org/bad/tags/list", None)
            .unwrap(),
        404,
        "no manifest was pushed"
    );
}

/// An LFS file is checked against the Hub's sha256.
#[test]
fn a_file_that_does_not_match_its_sha256_leaves_no_manifest() {
    a_corrupt_file_fails_its_layer("model-00002-of-00002.safetensors", "sha256");
}

/// A file kept in git (not LFS) is checked too, by its git blob id, as fetch-model checks it.
#[test]
fn a_git_file_that_does_not_match_its_blob_id_leaves_no_manifest() {
    a_corrupt_file_fails_its_layer("config.json", "git blob id");
}

/// Killed (SIGKILL) once some layers are pushed, then run again with the same workspace: the
/// rerun downloads only the files whose layers had not reached the registry.
#[test]
fn a_rerun_after_sigkill_downloads_only_files_not_yet_pushed() {
    let mut repo = HubRepo::new(REPO).file("config.json", b"{}".to_vec());
    for i in 1..=6u64 {
        let name = format!("model-{i:05}-of-00006.safetensors");
        repo = repo.file(&name, random_bytes(4 * MIB, i));
    }
    let hub = HubServer::start(vec![repo]);
    let registry = Registry::start();
    // Held to 32 MiB/s so the kill lands between layers, whatever this machine's speed.
    let proxy = modelcar_testkit::CountingProxy::start_throttled(&registry.host(), Some(32 * MIB));
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let (endpoint, source) = (hub.endpoint(), format!("hf://{REPO}"));
    let image = format!("{}/org/killed:v1", proxy.host());
    let mut args = hf_args(&endpoint, &source, &image);
    args.extend([
        "--workspace",
        ws.to_str().unwrap(),
        "--jobs",
        "1",
        "--output",
        "json",
        "--layer-threshold",
        "1MiB",
    ]);

    let mut child = common::command(tmp.path(), &args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    proxy.wait_for_bytes_up(10 * MIB, &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    let served_before: Vec<u64> = (1..=6)
        .map(|i| hub.bytes_served_for(&format!("model-{i:05}-of-00006.safetensors")))
        .collect();
    hub.reset_counts();

    let out = common::command(tmp.path(), &args).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let served_after: Vec<u64> = (1..=6)
        .map(|i| hub.bytes_served_for(&format!("model-{i:05}-of-00006.safetensors")))
        .collect();
    eprintln!("hf:// rerun: bytes served per shard before the kill {served_before:?}, on the rerun {served_after:?}");
    let pushed_before = served_before.iter().take_while(|&&n| n == 4 * MIB).count();
    assert!(
        pushed_before >= 2,
        "the kill came too early to show anything: {served_before:?}"
    );
    for (i, after) in served_after.iter().enumerate() {
        // Shards whose layers were committed are not downloaded again (the last one fully
        // served before the kill may not have been committed yet).
        if i + 1 < pushed_before {
            assert_eq!(*after, 0, "shard {} was pushed before the kill", i + 1);
        } else {
            assert_eq!(
                *after,
                4 * MIB,
                "shard {} is downloaded once on the rerun",
                i + 1
            );
        }
    }
}

/// Two destinations from one read of the Hub: each file is downloaded once, both registries
/// get the same digest, and the JSON report lists both.
#[test]
fn two_destinations_get_the_same_image_from_one_read() {
    let hub = HubServer::start(vec![tiny_repo()]);
    let (a, b) = (Registry::start(), Registry::start());
    let tmp = tempfile::tempdir().unwrap();
    let endpoint = hub.endpoint();
    let (to_a, to_b) = (
        format!("{}/org/two:v1", a.host()),
        format!("{}/org/two:v1", b.host()),
    );
    let mut args = hf_args(&endpoint, "hf://org/tiny-llm", &to_a);
    args.push(&to_b);
    let report = push_json(tmp.path(), &args);
    let destinations = report["destinations"].as_array().unwrap();
    assert_eq!(destinations.len(), 2);
    assert_eq!(destinations[0]["digest"], destinations[1]["digest"]);
    assert_eq!(
        hub.bytes_served_for("model-00001-of-00002.safetensors"),
        3 * MIB,
        "read once"
    );
    for image in [&to_a, &to_b] {
        assert_eq!(
            skopeo_inspect(&format!("docker://{image}"))["Digest"],
            report["digest"]
        );
    }
}

/// `--modelpack` from `hf://`: the ModelPack config's facts come from the Hub without a model
/// copy (config.json, and the safetensors header read with a short request), and it names the
/// repo and the commit as source and revision.
#[tokio::test(flavor = "multi_thread")]
async fn an_hf_modelpack_names_the_repo_and_commit() {
    let elements: u64 = 512 * 1024;
    let header = format!(
        r#"{{"w":{{"dtype":"BF16","shape":[512,1024],"data_offsets":[0,{}]}}}}"#,
        elements * 2
    );
    let mut shard = (header.len() as u64).to_le_bytes().to_vec();
    shard.extend_from_slice(header.as_bytes());
    shard.extend(random_bytes(elements * 2, 9));
    let repo = HubRepo::new(REPO)
        .file(
            "config.json",
            br#"{"model_type":"mistral","torch_dtype":"bfloat16","num_attention_heads":8}"#
                .to_vec(),
        )
        .file("model.safetensors", shard);
    let hub = HubServer::start(vec![repo]);
    let registry = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let endpoint = hub.endpoint();
    let image = format!("{}/org/pack:v1", registry.host());
    let mut args = hf_args(&endpoint, "hf://org/tiny-llm", &image);
    args.push("--modelpack");
    let report = push_json(tmp.path(), &args);
    let pack = report["modelpack"]["image"].as_str().unwrap().to_owned();
    let manifest = modelcar_testkit::oci_tools::skopeo_raw_manifest(&format!("docker://{pack}"));
    let layout = tmp.path().join("pulled");
    modelcar_testkit::oci_tools::skopeo_copy(
        &format!("docker://{pack}"),
        &format!("oci:{}:p", layout.display()),
    );
    let digest = manifest["config"]["digest"].as_str().unwrap();
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(layout.join("blobs/sha256").join(&digest[7..])).unwrap(),
    )
    .unwrap();
    let descriptor = &config["descriptor"];
    assert_eq!(
        descriptor["sourceURL"],
        "https://huggingface.co/org/tiny-llm"
    );
    assert_eq!(descriptor["revision"], hub.sha(REPO, "main").as_str());
    assert_eq!(descriptor["name"], REPO);
    assert_eq!(descriptor["family"], "mistral");
    assert_eq!(config["config"]["paramSize"], "524.3K");
}
