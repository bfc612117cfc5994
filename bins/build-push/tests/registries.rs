//! build-push against the registries users push to, each a testkit
//! [`Personality`] copied from that registry's source or issue tracker, and Debian's real
//! distribution 2.8: with default flags a push gives the digest it gives anywhere; killed at
//! 60% of a 1 GiB blob, a rerun 0.3 s or 3 s later finishes with the same digest, sending only
//! the rest where the registry keeps what arrived; two runs at once both finish; a commit the
//! registry fails and forgets is sent again in a new upload.

mod common;

use std::process::{Child, Output};
use std::time::Duration;

use common::{big_model, command, push_json, resume_args, spawn, uploads_in, LAYER, MIB};
use modelcar_testkit::model::random_bytes;
use modelcar_testkit::spec_registry::Personality;
use modelcar_testkit::{CountingProxy, HubRepo, HubServer, Registry, Restartable, SpecRegistry};
use serde_json::Value;

/// Requests, headers, the config and the manifest: what a run sends besides layer bytes.
const OVERHEAD: u64 = MIB;
/// What a rerun of a single-request upload may send beyond the missing bytes.
const SLACK: u64 = 8 * MIB;

fn digest_of(out: &Output) -> String {
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "build-push failed:\n{log}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON report");
    report["digest"].as_str().unwrap().to_string()
}

/// With default flags every personality takes a directory push and an `hf://` push, and
/// gives the digest the real distribution registry gives.
#[test]
fn every_registry_takes_a_push_with_default_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    // Over GHCR's 4 MiB per-request cap and ECR's 5 MiB part minimum, in two layers.
    std::fs::write(model.join("a.safetensors"), random_bytes(24 * MIB, 1)).unwrap();
    std::fs::write(model.join("b.safetensors"), random_bytes(7 * MIB, 2)).unwrap();
    std::fs::write(model.join("config.json"), b"{}").unwrap();
    let repo = HubRepo::new("org/m")
        .file("config.json", b"{}".to_vec())
        .file("model.safetensors", random_bytes(12 * MIB, 3));
    let hub = HubServer::start(vec![repo]);
    let endpoint = hub.endpoint();
    let push = |image: &str, source: &str| {
        push_json(
            tmp.path(),
            &[
                source,
                image,
                "--base",
                "scratch",
                "--hf-endpoint",
                &endpoint,
            ],
        )["digest"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let plain = Registry::start();
    let model = model.to_str().unwrap();
    let dir_digest = push(&format!("{}/org/m:v1", plain.host()), model);
    let hf_digest = push(&format!("{}/org/hf:v1", plain.host()), "hf://org/m");
    for personality in Personality::ALL {
        let registry = SpecRegistry::start_as(personality);
        let dir = push(&format!("{}/org/m:v1", registry.host()), model);
        let hf = push(&format!("{}/org/hf:v1", registry.host()), "hf://org/m");
        eprintln!("{personality:?}: directory {dir}, hf:// {hf}");
        assert_eq!(dir, dir_digest, "{personality:?}");
        assert_eq!(hf, hf_digest, "{personality:?}");
    }
}

/// What one interrupted push and its rerun did.
struct Rerun {
    sent: u64,
    log: String,
}

/// Pushes the 1 GiB model through a counting proxy to `registry`, SIGKILLs build-push once
/// 60% went out, waits `delay`, and runs it again to the end.
fn kill_at_60_percent_and_rerun(registry: &str, delay: Duration, lingering: bool) -> Rerun {
    let tmp = tempfile::tempdir().unwrap();
    let (model, expected) = big_model();
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let proxy = match lingering {
        true => CountingProxy::start_lingering(registry),
        false => CountingProxy::start(registry),
    };
    let image = format!("{}/org/big:v1", proxy.host());
    let args = resume_args(model.to_str().unwrap(), &image, ws.to_str().unwrap());
    let mut child = spawn(tmp.path(), &args);
    wait_for_bytes_up(&proxy, LAYER * 6 / 10, &mut child);
    child.kill().unwrap(); // SIGKILL: no chance to clean up or to save anything more
    child.wait().unwrap();
    let open = uploads_in(&ws);
    assert_eq!(
        open.len(),
        1,
        "the uploads log holds the open upload: {open:?}"
    );
    assert!(open[0]["offset"].as_u64().unwrap() > 0, "{open:?}");
    std::thread::sleep(delay);
    proxy.reset();
    let out = command(tmp.path(), &args).output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(digest_of(&out), expected, "{log}");
    assert!(
        uploads_in(&ws).is_empty(),
        "a finished upload leaves the log"
    );
    Rerun {
        sent: proxy.bytes_up(),
        log,
    }
}

/// Waits for `bytes` to go out through `proxy`; if the run ends first, fails with its log.
fn wait_for_bytes_up(proxy: &CountingProxy, bytes: u64, child: &mut Child) {
    while proxy.bytes_up() < bytes {
        if child.try_wait().unwrap().is_some() {
            let mut log = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut log).unwrap();
            panic!("build-push ended before {bytes} bytes went out:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What a rerun may send: the rest where the registry kept the cut bytes; the blob once
/// more (said once) where it did not; where they are kept on one node of a cluster, the rest
/// (to the wrong node) then the blob once more.
#[derive(Clone, Copy, PartialEq)]
enum Expect {
    Rest,
    Again,
    RestThenAgain,
}

impl Expect {
    fn of(personality: Personality) -> Self {
        match personality {
            p if p.keeps_cut_bytes() => Self::Rest,
            Personality::ArtifactoryHa => Self::RestThenAgain,
            _ => Self::Again,
        }
    }
}

fn check_rerun(rerun: &Rerun, expect: Expect, what: &str) {
    let restarts = rerun.log.matches("from byte 0").count();
    eprintln!(
        "{what}: the rerun sent {} MiB of a {} MiB layer; {restarts} restart(s) logged",
        rerun.sent / MIB,
        LAYER / MIB
    );
    let rest = LAYER - LAYER * 6 / 10 + SLACK;
    let (most, restarts_said) = match expect {
        Expect::Rest => (rest, 0..=0),
        Expect::Again => (LAYER, 1..=1),
        Expect::RestThenAgain => (rest + LAYER, 0..=1),
    };
    assert!(
        rerun.sent <= most + OVERHEAD,
        "{what}: the rerun sent {} MiB:\n{}",
        rerun.sent / MIB,
        rerun.log
    );
    assert!(restarts_said.contains(&restarts), "{what}:\n{}", rerun.log);
}

/// Kills a push to a fresh registry from `start` at 60% and runs it again 0.3 s later, then
/// the same with 3 s.
fn kill_and_rerun_twice<R: Restartable>(what: &str, start: impl Fn() -> R, expect: Expect) {
    for delay in [Duration::from_millis(300), Duration::from_secs(3)] {
        let registry = start();
        let rerun = kill_at_60_percent_and_rerun(&registry.host(), delay, false);
        check_rerun(
            &rerun,
            expect,
            &format!("{what}, rerun {delay:?} after the kill"),
        );
    }
}

fn kill_and_rerun_personality(personality: Personality) {
    let what = format!("{personality:?}");
    let start = || SpecRegistry::start_as(personality);
    kill_and_rerun_twice(&what, start, Expect::of(personality));
}

#[test]
fn killed_and_rerun_against_distribution_3() {
    kill_and_rerun_personality(Personality::Distribution3);
}

#[test]
fn killed_and_rerun_against_quay() {
    kill_and_rerun_personality(Personality::Quay);
}

/// Quay answering uploads on its SERVER_HOSTNAME (`localhost:PORT`) while the push names
/// 127.0.0.1: the rerun takes up the upload there at the byte, as the registry vouches for
/// that origin again in this run.
#[test]
fn killed_and_rerun_against_quay_known_by_another_name() {
    let start = || SpecRegistry::start_known_as_localhost(Personality::Quay);
    kill_and_rerun_twice(
        "Quay known as localhost",
        start,
        Expect::of(Personality::Quay),
    );
}

#[test]
fn killed_and_rerun_against_ghcr() {
    kill_and_rerun_personality(Personality::Ghcr);
}

#[test]
fn killed_and_rerun_against_artifact_registry() {
    kill_and_rerun_personality(Personality::ArtifactRegistry);
}

#[test]
fn killed_and_rerun_against_ecr() {
    kill_and_rerun_personality(Personality::Ecr);
}

#[test]
fn killed_and_rerun_against_artifactory_ha() {
    kill_and_rerun_personality(Personality::ArtifactoryHa);
}

/// Debian's distribution 2.8.2 cancels an upload cut off mid-PATCH (fixed in 3.0).
#[test]
fn killed_and_rerun_against_distribution_2_8() {
    kill_and_rerun_twice("distribution 2.8", Registry::start, Expect::Again);
}

/// A proxy that goes on delivering the killed run's bytes for 1.5 s: the rerun waits for the
/// upload to stop growing, then goes on from there.
#[test]
fn killed_behind_a_proxy_that_still_delivers_and_rerun_at_once() {
    for delay in [Duration::from_millis(300), Duration::from_secs(3)] {
        let registry = SpecRegistry::start_as(Personality::Distribution3);
        let rerun = kill_at_60_percent_and_rerun(&registry.host(), delay, true);
        check_rerun(
            &rerun,
            Expect::Rest,
            &format!("lingering proxy, rerun after {delay:?}"),
        );
    }
}

/// A second run started while the first is still sending the same blob to the same upload
/// (a Tekton retry beside a terminating pod): both finish with the right digest, at every
/// personality and at Debian's distribution 2.8.
#[test]
fn two_runs_at_once_both_finish() {
    for personality in Personality::ALL {
        let registry = SpecRegistry::start_as(personality);
        two_runs_at_once(&registry.host(), &format!("{personality:?}"));
    }
    two_runs_at_once(&Registry::start().host(), "distribution 2.8");
}

fn two_runs_at_once(registry: &str, what: &str) {
    let (model, expected) = big_model();
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let proxy = CountingProxy::start(registry);
    let image = format!("{}/org/big:v1", proxy.host());
    let args = resume_args(model.to_str().unwrap(), &image, ws.to_str().unwrap());
    let mut first = spawn(tmp.path(), &args);
    wait_for_bytes_up(&proxy, LAYER * 3 / 10, &mut first);
    let second = spawn(tmp.path(), &args);
    let (first, second) = (
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    );
    assert_eq!(digest_of(&first), expected, "{what}, first run");
    assert_eq!(digest_of(&second), expected, "{what}, second run");
    eprintln!(
        "{what}: two runs at once both finished, {} MiB sent in all",
        proxy.bytes_up() / MIB
    );
}

/// A registry that fails a commit and drops the upload, by closing the connection without an
/// answer (Quay's database error) or with a 500 (distribution cancels the upload): the blob
/// goes again in a new upload, and the failure is not reported as an unreachable registry.
#[test]
fn a_commit_the_registry_fails_and_forgets_is_sent_again() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(model.join("a.safetensors"), random_bytes(20 * MIB, 5)).unwrap();
    let layout = tmp.path().join("layout");
    let expected = push_json(
        tmp.path(),
        &[
            model.to_str().unwrap(),
            &format!("oci:{}:v1", layout.display()),
            "--base",
            "scratch",
        ],
    )["digest"]
        .as_str()
        .unwrap()
        .to_string();
    for (personality, closes) in [
        (Personality::Quay, true),
        (Personality::Distribution3, false),
    ] {
        let registry = SpecRegistry::start_as(personality);
        match closes {
            true => registry.fail_next_commits(1),
            false => registry.fail_next_commits_with_500(1),
        }
        let image = format!("{}/org/m:v1", registry.host());
        let args = [
            model.to_str().unwrap(),
            &image,
            "--base",
            "scratch",
            "--layer-threshold",
            "1MiB",
            "--output",
            "json",
        ];
        let out = command(tmp.path(), &args).output().unwrap();
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(digest_of(&out), expected, "{personality:?}: {log}");
        assert_eq!(
            log.matches("new upload").count(),
            1,
            "{personality:?}: {log}"
        );
        assert!(
            !log.contains("cannot reach registry"),
            "{personality:?}: {log}"
        );
    }
}

/// The real distribution 3.x, to check the testkit's `Distribution3` against: it is not
/// packaged here, so these run only with `--ignored` and a binary built by hand, named by
/// `MODELCAR_DISTRIBUTION_3`.
fn real_distribution_3() -> Registry {
    Registry::start_v3().unwrap_or_else(|| panic!("set {} to a 3.x binary", Registry::V3_ENV))
}

#[test]
#[ignore = "needs a distribution 3.x binary in MODELCAR_DISTRIBUTION_3"]
fn killed_and_rerun_against_real_distribution_3() {
    kill_and_rerun_twice("real distribution 3", real_distribution_3, Expect::Rest);
    let registry = real_distribution_3();
    let rerun = kill_at_60_percent_and_rerun(&registry.host(), Duration::from_millis(300), true);
    check_rerun(
        &rerun,
        Expect::Rest,
        "real distribution 3 behind a lingering proxy",
    );
}

#[test]
#[ignore = "needs a distribution 3.x binary in MODELCAR_DISTRIBUTION_3"]
fn two_runs_at_once_against_real_distribution_3() {
    two_runs_at_once(&real_distribution_3().host(), "real distribution 3");
}
