//! fetch-model against a Hub (or a mirror, or a proxy in front of one) that lies in its
//! listing: the token goes to no other host, a listing that never ends or a page of 100 MiB
//! is a clear error with memory bounded; and two runs of one model on one workspace at once
//! both end with verified, identical files.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use modelcar_testkit::model::random_bytes;
use modelcar_testkit::{CaptureListener, HubRepo, HubServer};
use sha2::{Digest, Sha256};

const REPO: &str = "org/many-files";

fn repo(files: usize, size: u64) -> HubRepo {
    (0..files).fold(HubRepo::new(REPO), |repo, i| {
        repo.file(
            &format!("model-{i:05}.safetensors"),
            random_bytes(size, i as u64),
        )
    })
}

fn command(endpoint: &str, dest: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fetch-model"));
    cmd.args([
        REPO,
        "--endpoint",
        endpoint,
        "--dest",
        dest.to_str().unwrap(),
    ])
    .env("HF_TOKEN", "hf_good")
    .env_remove("HF_ENDPOINT")
    .env_remove("MODELCAR_WORKSPACE");
    cmd
}

/// Runs `cmd` to its end, within `limit`; returns its output and its peak RSS in KiB.
fn run_measured(mut cmd: Command, limit: Duration) -> (Output, u64) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let started = Instant::now();
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < limit,
            "still running after {limit:?}: it does not end"
        );
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let hwm = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
        peak = peak.max(hwm.unwrap_or(0));
        std::thread::sleep(Duration::from_millis(20));
    }
    (child.wait_with_output().unwrap(), peak)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A listing whose next page is on another host: refused naming it, and the host never sees
/// the token (it is not even asked).
#[test]
fn a_link_to_another_host_gets_no_token() {
    let hub = HubServer::start(vec![repo(4, 1000)]);
    hub.set_page_size(2);
    let capture = CaptureListener::start();
    hub.link_pages_to(&capture.origin());
    let tmp = tempfile::tempdir().unwrap();
    let (out, _) = run_measured(
        command(&hub.endpoint(), &tmp.path().join("m")),
        Duration::from_secs(60),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&capture.origin()) && err.contains("not on the Hub's own origin"),
        "{err}"
    );
    assert!(capture.requests().is_empty(), "{:?}", capture.requests());
}

/// A listing whose pages link back to themselves: an error, not a run that never ends.
#[test]
fn a_listing_that_loops_is_an_error() {
    let hub = HubServer::start(vec![repo(4, 1000)]);
    hub.set_page_size(2);
    hub.link_pages_to_themselves();
    let tmp = tempfile::tempdir().unwrap();
    let (out, _) = run_measured(
        command(&hub.endpoint(), &tmp.path().join("m")),
        Duration::from_secs(60),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("loop back"), "{err}");
}

/// A listing page of 100 MiB: refused once 16 MiB have come, naming the Hub, with the
/// process's peak memory far below the page.
#[test]
fn a_100_mib_listing_page_is_refused_with_memory_bounded() {
    let hub = HubServer::start(vec![repo(2, 1000)]);
    hub.serve_huge_tree_page(100 << 20);
    let tmp = tempfile::tempdir().unwrap();
    let (out, peak_kib) = run_measured(
        command(&hub.endpoint(), &tmp.path().join("m")),
        Duration::from_secs(60),
    );
    let err = stderr(&out);
    eprintln!(
        "a 100 MiB listing page: fetch-model peaked at {} MiB of RSS",
        peak_kib / 1024
    );
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("larger than") && err.contains(&hub.endpoint()),
        "{err}"
    );
    assert!(peak_kib < 64 * 1024, "peak RSS {peak_kib} KiB");
}

/// Two runs of the same model into one workspace at the same moment: one downloads each
/// file, the other waits for it and finds it in place; both end with every file verified and
/// the Hub's bytes.
#[test]
fn two_runs_at_once_on_one_workspace_both_end_verified() {
    let files = 3;
    let hub = HubServer::start(vec![repo(files, 4 << 20)]);
    // 8 MiB/s: each file takes half a second, so the runs overlap on every file.
    hub.throttle(8 << 20);
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let run = || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fetch-model"));
        cmd.args([
            REPO,
            "--endpoint",
            &hub.endpoint(),
            "--workspace",
            ws.to_str().unwrap(),
        ])
        .env_remove("HF_TOKEN")
        .env_remove("HF_ENDPOINT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        cmd.spawn().unwrap()
    };
    let started = Instant::now();
    let (first, second) = (run(), run());
    let (first, second) = (
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    );
    let logs = format!("{}\n{}", stderr(&first), stderr(&second));
    assert!(first.status.success() && second.status.success(), "{logs}");
    let waited = logs
        .matches("another fetch-model run is downloading it")
        .count();
    eprintln!(
        "two runs at once: {:.1} s, {waited} waits for the other run, {} MiB served for {} MiB of files",
        started.elapsed().as_secs_f64(),
        hub.bytes_served() >> 20,
        (files as u64 * (4 << 20)) >> 20
    );
    assert!(waited >= 1, "the runs did not overlap: {logs}");
    for i in 0..files {
        let name = format!("model-{i:05}.safetensors");
        let got = std::fs::read(ws.join("models/many-files").join(&name)).unwrap();
        let want = random_bytes(4 << 20, i as u64);
        assert_eq!(
            Sha256::digest(&got),
            Sha256::digest(&want),
            "{name} is not the Hub's bytes"
        );
    }
}
