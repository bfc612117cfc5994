//! mirror into the registries users copy to, each a testkit [`Personality`]
//! copied from that registry's source or issue tracker: with default flags the copy has the
//! source's digest and manifest bytes (skopeo reads the destination's manifest back), a rerun
//! copies nothing, and a copy killed at 60% of a 1 GiB blob finishes on a rerun 0.3 s or 3 s
//! later, reading from the source (a Range request) and sending only what the destination
//! lacks where it kept the cut bytes.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{build_options, MIB};
use modelcar_testkit::model::{one_file_model, random_bytes};
use modelcar_testkit::oci_tools::skopeo_raw_manifest;
use modelcar_testkit::spec_registry::Personality;
use modelcar_testkit::{CountingProxy, Registry, SpecRegistry};
use serde_json::Value;

const LAYER: u64 = 1 << 30;
/// Requests, headers, the config and the manifests: what a run moves besides layer bytes.
const OVERHEAD: u64 = MIB;
/// What a resumed single-request upload may send beyond what the destination lacks.
const SLACK: u64 = 8 * MIB;

fn mirror(ws: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mirror"));
    cmd.args(args)
        .args(["--workspace", ws.to_str().unwrap(), "--output", "json"])
        .env_remove("MODELCAR_WORKSPACE");
    cmd
}

fn copied(ws: &Path, src: &str, dest: &str) -> (Value, String) {
    let out = mirror(ws, &[src, dest]).output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "mirror {src} {dest} failed:\n{log}");
    (serde_json::from_slice(&out.stdout).unwrap(), log)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_registry_takes_a_copy_with_default_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    // Over GHCR's 4 MiB per-request cap and ECR's 5 MiB part minimum, in two layers.
    std::fs::write(model.join("a.safetensors"), random_bytes(24 * MIB, 1)).unwrap();
    std::fs::write(model.join("b.safetensors"), random_bytes(7 * MIB, 2)).unwrap();
    let source = Registry::start();
    let src = format!("{}/org/m:v1", source.host());
    let options = build_options(&model, &src, "linux/amd64");
    let digest = build_push::run(options).await.expect("build-push").digest;
    for personality in Personality::ALL {
        let registry = SpecRegistry::start_as(personality);
        let dest = format!("{}/org/m:v1", registry.host());
        let ws = tmp.path().join(format!("ws-{personality:?}"));
        std::fs::create_dir_all(&ws).unwrap();
        let (report, _) = copied(&ws, &src, &dest);
        assert_eq!(
            report["destinations"][0]["digest"],
            digest.as_str(),
            "{personality:?}"
        );
        assert_eq!(
            skopeo_raw_manifest(&format!("docker://{src}")),
            skopeo_raw_manifest(&format!("docker://{dest}")),
            "{personality:?}: skopeo reads other manifest bytes"
        );
        let (_, log) = copied(&ws, &src, &dest);
        assert!(log.contains(": 0 bytes copied"), "{personality:?}: {log}");
        eprintln!("{personality:?}: copied with digest {digest}; the rerun copied nothing");
    }
}

/// Copies a 1 GiB layer through counting proxies, SIGKILLs mirror once 60% went out, and
/// runs it again 0.3 s or 3 s later: the rerun reads and sends only the rest where the
/// registry kept the cut bytes, and the blob once more (said once) where it did not.
#[tokio::test(flavor = "multi_thread")]
async fn a_copy_killed_at_60_percent_finishes_on_a_rerun() {
    let model = Path::new(env!("CARGO_TARGET_TMPDIR")).join("resume/model");
    one_file_model(&model, LAYER);
    let source = Registry::start();
    let src_image = format!("{}/org/big:v1", source.host());
    let options = build_options(&model, &src_image, "linux/amd64");
    let digest = build_push::run(options).await.expect("build-push").digest;
    let cases = Personality::ALL
        .into_iter()
        .flat_map(|p| [(p, Duration::from_millis(300)), (p, Duration::from_secs(3))]);
    for (personality, delay) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let registry = SpecRegistry::start_as(personality);
        let (from, to) = (
            CountingProxy::start(&source.host()),
            CountingProxy::start(&registry.host()),
        );
        let (src, dst) = (
            format!("{}/org/big:v1", from.host()),
            format!("{}/org/big:v1", to.host()),
        );
        let mut child = mirror(tmp.path(), &[&src, &dst])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        to.wait_for_bytes_up(LAYER * 6 / 10, &mut child);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        std::thread::sleep(delay);
        from.reset();
        to.reset();
        let (report, log) = copied(tmp.path(), &src, &dst);
        let (read, sent) = (from.bytes_down(), to.bytes_up());
        eprintln!(
            "{personality:?}, rerun {delay:?} after the kill: it read {} MiB and sent {} MiB of a \
             {} MiB layer",
            read / MIB,
            sent / MIB,
            LAYER / MIB
        );
        assert_eq!(report["destinations"][0]["digest"], digest.as_str());
        let restarts = log.matches("from byte 0").count();
        if personality.keeps_cut_bytes() {
            let rest = LAYER - LAYER * 6 / 10 + SLACK + OVERHEAD;
            assert!(sent <= rest && read <= rest, "{personality:?}: {log}");
            // The destination checks the digest: nothing it holds is read again to hash it.
            assert!(
                read <= sent + OVERHEAD,
                "{personality:?}: read {read} to send {sent}"
            );
            assert_eq!(restarts, 0, "{personality:?}: {log}");
        } else if personality == Personality::ArtifactoryHa {
            // Kept on one node: at most the rest to the wrong one, then the blob once more.
            let rest = LAYER - LAYER * 6 / 10 + SLACK;
            assert!(sent <= rest + LAYER + OVERHEAD, "{personality:?}: {log}");
            assert!(restarts <= 1, "{personality:?}: {log}");
        } else {
            assert!(sent <= LAYER + OVERHEAD, "{personality:?}: {log}");
            assert_eq!(restarts, 1, "{personality:?}: said once: {log}");
        }
    }
}
