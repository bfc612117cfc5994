//! build-push against servers that try to get its credentials or slip it other bytes: a
//! planted upload record, an upload `Location` on another host (followed, with no password),
//! a token realm on another host
//! over http, a base served with bytes that are not its pin's, a 100 MiB token answer. A
//! listener on another host (127.0.0.2) records what reaches it; the registries are the real
//! distribution, behind a proxy that rewrites what a compromised one would.

mod common;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::{build_push, command, stderr, uploads_in, MIB};
use modelcar_testkit::base_image::{busybox_base_in, push_busybox_base};
use modelcar_testkit::http_server::{HttpServer, Reply};
use modelcar_testkit::model::random_bytes;
use modelcar_testkit::oci_tools::skopeo_inspect;
use modelcar_testkit::{run_tool, CaptureListener, CountingProxy, Registry, RewritingProxy};
use serde_json::Value;

const USER: &str = "robot";
const PASSWORD: &str = "s3cret";

fn model(dir: &Path, mib: u64) -> String {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("w.safetensors"), random_bytes(mib * MIB, 1)).unwrap();
    std::fs::write(dir.join("config.json"), b"{}").unwrap();
    dir.to_str().unwrap().to_string()
}

fn push(home: &Path, args: &[&str]) -> Output {
    let mut all = vec![
        "--output",
        "json",
        "--base",
        "scratch",
        "--creds",
        "robot:s3cret",
    ];
    all.extend_from_slice(args);
    build_push(home, &all)
}

fn digest(out: &Output) -> String {
    assert!(out.status.success(), "{}", stderr(out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    report["digest"].as_str().unwrap().to_string()
}

/// The registry's first answer to an upload names another host as its place: build-push
/// follows it, as docker and skopeo do (a registry behind a proxy, or Quay with its
/// SERVER_HOSTNAME, answers so), but sends no password there: that host sees the upload and no
/// credentials. It refuses the upload, a new one is opened, and the push ends with the image.
#[test]
fn an_upload_location_on_another_host_gets_no_password() {
    let registry = Registry::start_with_htpasswd(USER, PASSWORD);
    let proxy = RewritingProxy::start(&registry.host());
    let capture = CaptureListener::start();
    proxy.rewrite_first_upload_location(&capture.origin());
    let tmp = tempfile::tempdir().unwrap();
    let image = format!("{}/org/m:v1", proxy.host());
    let out = push(tmp.path(), &[&model(&tmp.path().join("m"), 4), &image]);
    let pushed = digest(&out);
    let seen = capture.requests();
    assert!(!seen.is_empty(), "the registry's Location was not followed");
    for request in &seen {
        assert!(
            request
                .headers
                .iter()
                .all(|(name, _)| name != "authorization"),
            "credentials reached another origin: {request:?}"
        );
    }
    let inspect = run_tool(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &format!("--creds={USER}:{PASSWORD}"),
            &format!("docker://{}/org/m:v1", registry.host()),
        ],
    );
    let inspect: Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(inspect["Digest"], pushed.as_str());
}

/// The registry's first challenge names a token service on another host over plain http:
/// no credential goes there (it is not even asked); the request is sent again, the next
/// challenge names the real token service, and the push ends.
#[test]
fn a_token_realm_on_another_host_over_http_gets_no_credentials() {
    let registry = Registry::start_with_token(USER, PASSWORD, 300);
    let proxy = RewritingProxy::start(&registry.host());
    let capture = CaptureListener::start();
    proxy.rewrite_first_realm(&format!("{}/token", capture.origin()));
    let tmp = tempfile::tempdir().unwrap();
    let image = format!("{}/org/m:v1", proxy.host());
    let out = push(tmp.path(), &[&model(&tmp.path().join("m"), 2), &image]);
    digest(&out);
    assert!(stderr(&out).contains("not sending credentials to this token service"));
    assert!(capture.requests().is_empty(), "{:?}", capture.requests());
}

/// A record in the workspace's uploads log (group-writable on the PVC) pointing at another
/// host: ignored with a warning, and the rerun pushes the image with no request there.
#[test]
fn a_planted_upload_record_sends_nothing_elsewhere() {
    let registry = Registry::start_with_htpasswd(USER, PASSWORD);
    // 16 MiB/s: the first run is killed part way through its one large blob.
    let proxy = CountingProxy::start_throttled(&registry.host(), Some(16 * MIB));
    let capture = CaptureListener::start();
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let model = model(&tmp.path().join("m"), 48);
    let image = format!("{}/org/m:v1", proxy.host());
    let args = [
        model.as_str(),
        &image,
        "--base",
        "scratch",
        "--creds",
        "robot:s3cret",
        "--workspace",
        ws.to_str().unwrap(),
        "--output",
        "json",
    ];
    let mut child = command(tmp.path(), &args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    proxy.wait_for_bytes_up(16 * MIB, &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    let log = ws.join(".modelcar/uploads.json");
    let mut file: Value = serde_json::from_str(&std::fs::read_to_string(&log).unwrap()).unwrap();
    let records = file["uploads"].as_array_mut().unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    let old = records[0]["location"].as_str().unwrap().to_string();
    let path = &old[old.find("/v2/").unwrap()..];
    records[0]["location"] = format!("{}{path}", capture.origin()).into();
    std::fs::write(&log, file.to_string()).unwrap();

    let out = command(tmp.path(), &args).output().unwrap();
    digest(&out);
    assert!(
        stderr(&out).contains("ignoring an upload record"),
        "{}",
        stderr(&out)
    );
    assert!(capture.requests().is_empty(), "{:?}", capture.requests());
    assert!(uploads_in(&ws).is_empty());
}

/// A base pinned by digest, whose registry answers with another image's manifest: refused
/// before anything is pushed, and nothing is tagged at the destination.
#[test]
fn a_base_that_does_not_match_its_pin_is_refused() {
    let registry = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let base = busybox_base_in(tmp.path(), &registry.host());
    let pin = skopeo_inspect(&format!("docker://{base}"))["Digest"]
        .as_str()
        .unwrap()
        .to_string();
    // Another image in the registry, served for the pinned digest.
    let other = tmp.path().join("other");
    let dest_other = format!("{}/base/other:1", registry.host());
    digest(&push(tmp.path(), &[&model(&other, 1), &dest_other]));
    let proxy = RewritingProxy::start(&registry.host());
    proxy.serve_path_as(
        &format!("/v2/base/busybox/manifests/{pin}"),
        "/v2/base/other/manifests/1",
    );
    let out = build_push(
        tmp.path(),
        &[
            &model(&tmp.path().join("m"), 1),
            &format!("{}/org/m:v1", registry.host()),
            "--base",
            &format!("{}/base/busybox@{pin}", proxy.host()),
        ],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("refused") && err.contains("digest"), "{err}");
    let status =
        modelcar_testkit::http::get_status(&registry.host(), "/v2/org/m/tags/list", None).unwrap();
    assert_eq!(status, 404, "nothing tagged");
}

/// A base on the destination's own registry, behind auth, with `--creds` alone; and a base on
/// a second registry never sees them.
#[test]
fn creds_reach_a_base_on_the_destination_registry_and_no_other() {
    let registry = Registry::start_with_htpasswd(USER, PASSWORD);
    let open = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let open_base = format!("{}/base/busybox:1", open.host());
    push_busybox_base(tmp.path(), &format!("docker://{open_base}"));
    run_tool(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &format!("--dest-creds={USER}:{PASSWORD}"),
            &format!("docker://{open_base}"),
            &format!("docker://{}/base/busybox:1", registry.host()),
        ],
    );
    let model = model(&tmp.path().join("m"), 1);
    let run = |base: &str| {
        build_push(
            tmp.path(),
            &[
                &model,
                &format!("{}/org/m:v1", registry.host()),
                "--base",
                base,
                "--creds",
                "robot:s3cret",
            ],
        )
    };
    let out = run(&format!("{}/base/busybox:1", registry.host()));
    assert!(out.status.success(), "{}", stderr(&out));

    let watched = RewritingProxy::start(&open.host());
    let out = run(&format!("{}/base/busybox:1", watched.host()));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        watched.authorized_requests().is_empty(),
        "{:?}",
        watched.authorized_requests()
    );
}

/// A registry whose token service answers 100 MiB: refused once 64 KiB have come, naming the
/// registry, with build-push's memory far below the answer.
#[test]
fn a_100_mib_token_answer_is_refused_with_memory_bounded() {
    let server = HttpServer::start(
        "token flood",
        std::sync::Arc::new(|request: &modelcar_testkit::http_server::Request| {
            if request.path.starts_with("/token") {
                return Reply::stream(200, "application/json", |out| {
                    out.write_all(br#"{"token":""#)?;
                    let chunk = vec![b'a'; 1 << 20];
                    for _ in 0..100 {
                        out.write_all(&chunk)?;
                    }
                    out.write_all(br#""}"#)
                });
            }
            let realm = format!(
                "Bearer realm=\"http://{}/token\",service=\"flood\"",
                request.header("host").unwrap_or_default()
            );
            Reply::error(401, "authentication required").with_header("WWW-Authenticate", &realm)
        }),
        |status, message| Reply::error(status, message),
    );
    let tmp = tempfile::tempdir().unwrap();
    let image = format!("{}/org/m:v1", server.addr());
    let model = model(&tmp.path().join("m"), 1);
    let (out, peak_kib) = run_measured(command(
        tmp.path(),
        &[
            &model,
            &image,
            "--base",
            "scratch",
            "--creds",
            "robot:s3cret",
            "--retries",
            "0",
        ],
    ));
    let err = stderr(&out);
    eprintln!(
        "a 100 MiB token answer: build-push peaked at {} MiB of RSS",
        peak_kib / 1024
    );
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("more than 65536 bytes"), "{err}");
    assert!(peak_kib < 64 * 1024, "peak RSS {peak_kib} KiB");
}

/// Runs `cmd` to its end (within a minute); its output and peak RSS in KiB.
fn run_measured(mut cmd: std::process::Command) -> (Output, u64) {
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
            started.elapsed() < Duration::from_secs(60),
            "it does not end"
        );
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let hwm = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
        peak = peak.max(hwm.unwrap_or(0));
        std::thread::sleep(Duration::from_millis(10));
    }
    (child.wait_with_output().unwrap(), peak)
}
