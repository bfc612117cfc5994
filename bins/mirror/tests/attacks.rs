//! mirror from a source registry that sends what it should not: a 100 MiB manifest, an
//! index whose child is served with other bytes than its digest names, a blob longer than its
//! descriptor. Each is a clear error naming the registry, with memory bounded, and nothing is
//! tagged at the destination. The source is a small in-test server (no real registry serves
//! such answers); the destination is the real distribution registry.

use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use modelcar_testkit::http::get_status;
use modelcar_testkit::http_server::{HttpServer, Reply, Request};
use modelcar_testkit::Registry;
use serde_json::json;

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn digest(bytes: &[u8]) -> String {
    modelcar_shared::digest::sha256_digest(bytes).to_string()
}

/// A source registry whose answers `answer` gives, by request path (after `/v2/src/m/`).
fn source(answer: impl Fn(&str) -> Reply + Send + Sync + 'static) -> HttpServer {
    HttpServer::start(
        "hostile source",
        Arc::new(
            move |request: &Request| match request.path.strip_prefix("/v2/src/m/") {
                Some(rest) => answer(rest),
                None => Reply::json(200, &json!({})),
            },
        ),
        |status, message| Reply::error(status, message),
    )
}

/// Bytes as a reply with `content_type`, streamed (no `Content-Length` to refuse up front).
fn bytes(content_type: &'static str, body: Vec<u8>) -> Reply {
    Reply::stream(200, content_type, move |out| out.write_all(&body))
        .with_header("Docker-Content-Digest", &digest(&[]))
}

/// mirror from the source to the destination; its output and peak RSS in KiB.
fn mirror(src: &str, dest: &str) -> (Output, u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mirror"))
        .args([src, dest, "--retries", "0"])
        .env_remove("MODELCAR_WORKSPACE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (pid, started, mut peak) = (child.id(), Instant::now(), 0u64);
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

fn assert_refused(out: &Output, needle: &str, dest: &Registry) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(needle), "expected {needle:?} in {err}");
    let tags = get_status(&dest.host(), "/v2/copy/m/tags/list", None).unwrap();
    assert_eq!(tags, 404, "nothing tagged at the destination");
    err
}

/// An image: its config, one layer of `layer`, and the manifest over them.
fn image(layer: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(layer), "size": layer.len()}],
    });
    (config.to_vec(), manifest.to_string().into_bytes())
}

#[test]
fn a_100_mib_manifest_is_refused_with_memory_bounded() {
    let src = source(|_| {
        Reply::stream(200, MANIFEST, |out| {
            out.write_all(br#"{"schemaVersion":2,"annotations":{"x":""#)?;
            let chunk = vec![b'a'; 1 << 20];
            for _ in 0..100 {
                out.write_all(&chunk)?;
            }
            out.write_all(br#""}}"#)
        })
    });
    let dest = Registry::start();
    let (out, peak_kib) = mirror(
        &format!("{}/src/m:v1", src.addr()),
        &format!("{}/copy/m:v1", dest.host()),
    );
    eprintln!(
        "a 100 MiB manifest: mirror peaked at {} MiB of RSS",
        peak_kib / 1024
    );
    assert_refused(&out, "more than 4194304 bytes", &dest);
    assert!(peak_kib < 64 * 1024, "peak RSS {peak_kib} KiB");
}

#[test]
fn an_index_child_served_with_other_bytes_is_refused() {
    let (_, child) = image(b"the layer");
    let (_, other) = image(b"another layer");
    let index = json!({
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [{"mediaType": MANIFEST, "digest": digest(&child), "size": child.len(),
                       "platform": {"os": "linux", "architecture": "amd64"}}],
    })
    .to_string()
    .into_bytes();
    let src = source(move |rest| match rest {
        "manifests/v1" => bytes(INDEX, index.clone()),
        _ => bytes(MANIFEST, other.clone()),
    });
    let dest = Registry::start();
    let (out, _) = mirror(
        &format!("{}/src/m:v1", src.addr()),
        &format!("{}/copy/m:v1", dest.host()),
    );
    assert_refused(&out, "the manifest's bytes have digest", &dest);
}

#[test]
fn a_blob_longer_than_its_descriptor_is_refused() {
    let layer = vec![7u8; 1 << 20];
    let (config, manifest) = image(&layer);
    let (config_digest, layer_digest) = (digest(&config), digest(&layer));
    let src = source(move |rest| {
        if rest == format!("blobs/{config_digest}") {
            bytes("application/octet-stream", config.clone())
        } else if rest == format!("blobs/{layer_digest}") {
            // The layer, and then 16 MiB more than its descriptor says.
            let mut longer = layer.clone();
            longer.extend(std::iter::repeat_n(0u8, 16 << 20));
            bytes("application/octet-stream", longer)
        } else {
            bytes(MANIFEST, manifest.clone())
        }
    });
    let dest = Registry::start();
    let (out, _) = mirror(
        &format!("{}/src/m:v1", src.addr()),
        &format!("{}/copy/m:v1", dest.host()),
    );
    assert_refused(&out, "goes on past its 1048576 bytes", &dest);
}
