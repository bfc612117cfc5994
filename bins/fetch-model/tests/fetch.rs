//! fetch-model end to end against the testkit's Hub server (the Hub's public HTTP API:
//! revision, paged recursive tree, resolve with LFS redirects and Range), which counts the
//! bytes it serves.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use modelcar_testkit::model::random_bytes;
use modelcar_testkit::{HubRepo, HubServer};
use serde_json::Value;

const REPO: &str = "org/tiny-llm";
const SHARD: usize = 3 << 20;

fn random(len: usize, seed: u64) -> Vec<u8> {
    random_bytes(len as u64, seed)
}

/// An HF-format repo with its second copies of the weights (Mistral's consolidated file, Meta's
/// original/ checkpoint, PyTorch .bin), small json files kept in git, and a nested path.
fn tiny_repo() -> HubRepo {
    HubRepo::new(REPO)
        .file(
            "config.json",
            br#"{"architectures":["MistralForCausalLM"]}"#.to_vec(),
        )
        .file("tokenizer.json", random(300_000, 3))
        .file("model-00001-of-00002.safetensors", random(SHARD, 1))
        .file("model-00002-of-00002.safetensors", random(SHARD, 2))
        .file(
            "model.safetensors.index.json",
            br#"{"weight_map":{}}"#.to_vec(),
        )
        .file("consolidated.safetensors", random(SHARD, 4))
        .file("original/consolidated.00.pth", random(100_000, 5))
        .file("pytorch_model.bin", random(100_000, 6))
        .file("nested/dir/notes.txt", b"hello\n".to_vec())
        .revision(
            "v2",
            vec![
                ("config.json".into(), br#"{"v":2}"#.to_vec()),
                ("model.safetensors".into(), random(SHARD, 9)),
            ],
        )
}

fn fetch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fetch-model"))
        .args(args)
        .args(["--output", "json"])
        .env_remove("HF_TOKEN")
        .env_remove("HF_ENDPOINT")
        .env_remove("MODELCAR_WORKSPACE")
        .output()
        .expect("run fetch-model")
}

fn fetch_json(args: &[&str]) -> Value {
    let out = fetch(args);
    assert!(
        out.status.success(),
        "fetch-model {args:?}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn fails(out: &Output, needle: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(needle), "expected {needle:?} in:\n{err}");
    err
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_full_download_is_verified_recorded_group_writable_and_not_repeated() {
    let hub = HubServer::start(vec![tiny_repo()]);
    hub.set_page_size(3); // the tree listing comes in pages
    let ws = tempfile::tempdir().unwrap();
    let args = [
        REPO,
        "--endpoint",
        &hub.endpoint(),
        "--workspace",
        ws.path().to_str().unwrap(),
    ];
    let report = fetch_json(&args);
    let model = ws.path().join("models/tiny-llm");
    assert_eq!(
        files_under(&model),
        [
            "config.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "model.safetensors.index.json",
            "nested/dir/notes.txt",
            "tokenizer.json",
        ]
    );
    assert_eq!(
        std::fs::read(model.join("model-00002-of-00002.safetensors")).unwrap(),
        random(SHARD, 2)
    );
    let sha = hub.sha(REPO, "main");
    assert_eq!(report["revision"], sha.as_str());
    let skipped: Vec<&str> = report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect();
    assert_eq!(skipped.len(), 3, "{skipped:?}");

    let meta: Value =
        serde_json::from_slice(&std::fs::read(ws.path().join(".modelcar/metadata.json")).unwrap())
            .unwrap();
    assert_eq!(meta["hf_repo"], REPO);
    assert_eq!(meta["hf_revision"], sha.as_str());
    let config = meta["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "config.json")
        .unwrap();
    assert_eq!(
        config["sha256"],
        modelcar_shared::digest::hex(&sha256(br#"{"architectures":["MistralForCausalLM"]}"#))
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&model.join("nested/dir/notes.txt")), 0o664);
    assert_eq!(mode(&model.join("nested/dir")), 0o2775);

    hub.reset_counts();
    let again = fetch_json(&args);
    assert_eq!(again["downloaded"], 0);
    assert_eq!(hub.bytes_served(), 0, "a rerun downloads nothing");
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).to_vec()
}

#[test]
fn a_pinned_revision_takes_that_commit_and_records_its_sha() {
    let hub = HubServer::start(vec![tiny_repo()]);
    let dest = tempfile::tempdir().unwrap();
    let dir = dest.path().join("m");
    let report = fetch_json(&[
        REPO,
        "--endpoint",
        &hub.endpoint(),
        "--dest",
        dir.to_str().unwrap(),
        "--revision",
        "v2",
    ]);
    assert_eq!(report["revision"], hub.sha(REPO, "v2").as_str());
    assert_eq!(files_under(&dir), ["config.json", "model.safetensors"]);
    assert_eq!(
        std::fs::read(dir.join("config.json")).unwrap(),
        br#"{"v":2}"#
    );
    // The commit sha itself works as a revision.
    let by_sha = dest.path().join("by-sha");
    let sha = hub.sha(REPO, "v2");
    fetch_json(&[
        REPO,
        "--endpoint",
        &hub.endpoint(),
        "--dest",
        by_sha.to_str().unwrap(),
        "--revision",
        &sha,
    ]);
    assert_eq!(files_under(&by_sha), ["config.json", "model.safetensors"]);
}

#[test]
fn include_exclude_and_all_formats_choose_the_files() {
    let hub = HubServer::start(vec![tiny_repo()]);
    let tmp = tempfile::tempdir().unwrap();
    let ep = hub.endpoint();
    let only_json = tmp.path().join("json");
    fetch_json(&[
        REPO,
        "--endpoint",
        &ep,
        "--dest",
        only_json.to_str().unwrap(),
        "--include",
        "*.json",
    ]);
    assert_eq!(
        files_under(&only_json),
        [
            "config.json",
            "model.safetensors.index.json",
            "tokenizer.json"
        ]
    );

    let no_weights = tmp.path().join("no-weights");
    fetch_json(&[
        REPO,
        "--endpoint",
        &ep,
        "--dest",
        no_weights.to_str().unwrap(),
        "--exclude",
        "*.safetensors",
        "--exclude",
        "nested/*",
    ]);
    assert_eq!(
        files_under(&no_weights),
        [
            "config.json",
            "model.safetensors.index.json",
            "tokenizer.json"
        ]
    );

    let all = tmp.path().join("all");
    let report = fetch_json(&[
        REPO,
        "--endpoint",
        &ep,
        "--dest",
        all.to_str().unwrap(),
        "--all-formats",
    ]);
    assert_eq!(files_under(&all).len(), 9);
    assert_eq!(report["skipped"].as_array().unwrap().len(), 0);
}

#[test]
fn second_copies_of_the_weights_are_skipped_and_named_with_the_reason() {
    let hub = HubServer::start(vec![tiny_repo()]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    let out = Command::new(env!("CARGO_BIN_EXE_fetch-model"))
        .args([
            REPO,
            "--endpoint",
            &hub.endpoint(),
            "--dest",
            dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let human = String::from_utf8_lossy(&out.stdout);
    for path in [
        "consolidated.safetensors",
        "original/consolidated.00.pth",
        "pytorch_model.bin",
    ] {
        assert!(human.contains(path), "{path} named in:\n{human}");
        assert!(!dir.join(path).exists());
    }
    assert!(human.contains("--all-formats"), "{human}");
    assert_eq!(hub.bytes_served_for("consolidated.safetensors"), 0);
}

#[test]
fn a_dropped_connection_resumes_in_the_run_and_on_a_rerun_sends_only_the_rest() {
    let hub = HubServer::start(vec![tiny_repo()]);
    let tmp = tempfile::tempdir().unwrap();
    let shard = "model-00001-of-00002.safetensors";
    let cut = 1_000_000u64;

    // Within one run: the download goes on from where the connection dropped.
    let in_run = tmp.path().join("in-run");
    hub.drop_connection_after(shard, cut);
    fetch_json(&[
        REPO,
        "--endpoint",
        &hub.endpoint(),
        "--dest",
        in_run.to_str().unwrap(),
        "--include",
        shard,
    ]);
    assert_eq!(
        hub.bytes_served_for(shard),
        SHARD as u64,
        "every byte served once"
    );
    assert_eq!(std::fs::read(in_run.join(shard)).unwrap(), random(SHARD, 1));

    // With no retries the run fails, keeps what came, and the rerun asks only for the rest.
    hub.reset_counts();
    let rerun = tmp.path().join("rerun");
    hub.drop_connection_after(shard, cut);
    let args = [
        REPO,
        "--endpoint",
        &hub.endpoint(),
        "--dest",
        rerun.to_str().unwrap(),
        "--include",
        shard,
        "--retries",
        "0",
    ];
    fails(&fetch(&args), "broke off");
    assert_eq!(hub.bytes_served_for(shard), cut);
    hub.reset_counts();
    fetch_json(&args);
    let rest = hub.bytes_served_for(shard);
    eprintln!("fetch resume: {cut} bytes before the drop, the rerun was sent {rest} of {SHARD}");
    assert_eq!(rest, SHARD as u64 - cut, "the rerun sends only the rest");
    assert_eq!(std::fs::read(rerun.join(shard)).unwrap(), random(SHARD, 1));
}

#[test]
fn a_corrupted_file_is_replaced_on_the_next_run() {
    let hub = HubServer::start(vec![tiny_repo()]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    let args = [
        REPO,
        "--endpoint",
        &hub.endpoint(),
        "--dest",
        dir.to_str().unwrap(),
    ];
    fetch_json(&args);
    let shard = dir.join("model-00002-of-00002.safetensors");
    let mut bytes = std::fs::read(&shard).unwrap();
    bytes[SHARD / 2] ^= 0xff; // same size, one byte off
    std::fs::write(&shard, &bytes).unwrap();

    hub.reset_counts();
    let out = fetch(&args);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fetching it again"), "{err}");
    assert_eq!(std::fs::read(&shard).unwrap(), random(SHARD, 2));
    assert_eq!(
        hub.bytes_served(),
        SHARD as u64,
        "only the corrupted file is fetched again"
    );
}

/// A small tmpfs, unmounted when dropped (also when the test fails).
struct SmallTmpfs(std::path::PathBuf);

impl SmallTmpfs {
    fn mount(at: &Path) -> Option<Self> {
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
            .arg(at)
            .status();
        status
            .is_ok_and(|s| s.success())
            .then(|| Self(at.to_path_buf()))
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A 2 MiB tmpfs (where mounting is allowed, as root here) cannot take the 6 MiB of shards;
/// elsewhere `--min-free` stands in for the full volume. Either way nothing is downloaded.
#[test]
fn a_download_that_will_not_fit_is_refused_before_it_starts() {
    let hub = HubServer::start(vec![tiny_repo()]);
    let tmp = tempfile::tempdir().unwrap();
    let small = tmp.path().join("small");
    let tmpfs = SmallTmpfs::mount(&small);
    let (endpoint, dir) = (hub.endpoint(), small.join("m"));
    let mut args = vec![
        REPO,
        "--endpoint",
        &endpoint,
        "--dest",
        dir.to_str().unwrap(),
    ];
    if tmpfs.is_none() {
        eprintln!("no tmpfs could be mounted: --min-free stands in for a full volume");
        args.extend(["--min-free", "100000TiB"]);
    }
    let err = fails(&fetch(&args), "not enough space");
    eprintln!(
        "disk space refusal: {}",
        err.lines().last().unwrap_or_default()
    );
    assert!(err.contains("needs") && err.contains("free"), "{err}");
    assert_eq!(hub.bytes_served(), 0);
}

#[test]
fn unknown_repo_gated_repo_bad_token_and_unknown_revision_are_named() {
    let hub = HubServer::start(vec![
        tiny_repo(),
        HubRepo::new("org/gated")
            .file("config.json", b"{}".to_vec())
            .gated(),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("m");
    let (ep, dest) = (hub.endpoint(), dest.to_str().unwrap().to_string());
    let base = |repo: &'static str| {
        vec![
            repo.to_string(),
            "--endpoint".into(),
            ep.clone(),
            "--dest".into(),
            dest.clone(),
        ]
    };
    let run = |args: Vec<String>| fetch(&args.iter().map(String::as_str).collect::<Vec<_>>());

    fails(&run(base("org/nope")), "no model repository org/nope");
    fails(&run(base("org/gated")), "org/gated is gated");
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, "hf_wrong\n").unwrap();
    let mut bad = base("org/gated");
    bad.extend(["--token-file".into(), token_file.display().to_string()]);
    fails(&run(bad), "refused the token");
    std::fs::write(&token_file, "hf_good\n").unwrap();
    let mut good = base("org/gated");
    good.extend(["--token-file".into(), token_file.display().to_string()]);
    assert!(run(good).status.success());
    let mut no_rev = base(REPO);
    no_rev.extend(["--revision".into(), "v9".into()]);
    fails(&run(no_rev), "has no revision \"v9\"");

    let usage = fetch(&["not-a-repo-id", "--dest", "/tmp/x"]);
    assert_eq!(usage.status.code(), Some(2));
}
