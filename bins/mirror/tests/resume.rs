//! mirror's byte-level resume (issue #12): a 1 GiB layer copied from a real distribution
//! registry to one that resumes as the distribution spec says (see `SpecRegistry` for why not
//! a second distribution 2.8.2), mirror killed with SIGKILL at 60% and run again. Counting
//! proxies on both sides measure what the rerun reads (a Range request from the byte the
//! destination holds, since the destination checks the digest and nothing needs re-hashing)
//! and what it sends (only the rest).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use modelcar_testkit::model::one_file_model;
use modelcar_testkit::{CountingProxy, Registry, SpecRegistry};
use serde_json::Value;

use common::{build_options, CHUNK, MIB};

const LAYER: u64 = 1 << 30;
/// Requests, headers, the config and the manifests: what a run moves besides layer bytes.
const OVERHEAD: u64 = MIB;

async fn push_big_image(dest: &str) -> String {
    let model = Path::new(env!("CARGO_TARGET_TMPDIR")).join("resume/model");
    one_file_model(&model, LAYER);
    let options = build_options(&model, dest, "linux/amd64");
    build_push::run(options).await.expect("build-push").digest
}

fn mirror(ws: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mirror"));
    cmd.args(args)
        .args(["--workspace", ws.to_str().unwrap(), "--output", "json"])
        .args(["--jobs", "1"])
        .env_remove("MODELCAR_WORKSPACE");
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_killed_at_60_percent_reads_and_sends_only_the_rest_on_rerun() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path();
    let (source, dest) = (Registry::start(), SpecRegistry::start());
    let digest = push_big_image(&format!("{}/org/big:v1", source.host())).await;
    let (from, to) = (
        CountingProxy::start(&source.host()),
        CountingProxy::start(&dest.host()),
    );
    let src = format!("{}/org/big:v1", from.host());
    let dst = format!("{}/org/big:v1", to.host());

    let mut child = mirror(ws, &[&src, &dst])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    to.wait_for_bytes_up(LAYER * 6 / 10, &mut child);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let killed_at = to.settled_bytes_up();
    from.reset();
    to.reset();

    let out = mirror(ws, &[&src, &dst]).output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the rerun failed:\n{log}");
    let (read, sent) = (from.bytes_down(), to.bytes_up());
    eprintln!(
        "mirror resume after SIGKILL: killed after {} MiB of a {} MiB layer went out; the rerun \
         read {} MiB from the source and sent {} MiB",
        killed_at / MIB,
        LAYER / MIB,
        read / MIB,
        sent / MIB
    );
    assert!(log.contains("going on from there"), "{log}");
    let rest = LAYER - LAYER * 6 / 10 + CHUNK + OVERHEAD;
    assert!(sent <= rest, "the rerun sent {sent} bytes");
    assert!(read <= rest, "the rerun read {read} bytes from the source");
    assert!(
        read <= sent + OVERHEAD,
        "the rerun read {read} bytes to send {sent}: it re-read bytes the destination holds"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["destinations"][0]["digest"], digest.as_str());
}
