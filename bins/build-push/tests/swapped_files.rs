//! A model file swapped after planning (by anything else that can write the shared PVC) for a
//! symlink to a secret, or for another file: build-push refuses to read it, and the secret's
//! bytes reach no layer in the registry.

mod common;

use std::path::Path;
use std::process::Stdio;

use common::{stderr, MIB};
use modelcar_testkit::model::random_bytes;
use modelcar_testkit::{CountingProxy, Registry};

/// What the service-account token might hold: found in no blob the registry stores.
const SECRET: &[u8] = b"eyJhbGciOiJSUzI1NiJ9.SECRET-SERVICE-ACCOUNT-TOKEN.do-not-leak";

/// Every blob file the registry stores, read back: whether any holds `needle`.
fn registry_holds(storage: &Path, needle: &[u8]) -> bool {
    let mut stack = vec![storage.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    return true;
                }
            }
        }
    }
    false
}

/// Pushes a model of a 48 MiB file and a small later one through a throttled proxy, and
/// `swap`s the later one once the first is on its way.
fn push_and_swap(swap: impl Fn(&Path, &Path)) -> (String, bool) {
    let registry = Registry::start();
    // 16 MiB/s: the first layer takes 3 s, time enough to swap the second file.
    let proxy = CountingProxy::start_throttled(&registry.host(), Some(16 * MIB));
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(model.join("a.safetensors"), random_bytes(48 * MIB, 1)).unwrap();
    std::fs::write(model.join("b.safetensors"), random_bytes(2 * MIB, 2)).unwrap();
    let secret = tmp.path().join("token");
    std::fs::write(&secret, SECRET.repeat(40_000)).unwrap();
    let image = format!("{}/org/swapped:v1", proxy.host());
    let args = [
        model.to_str().unwrap(),
        &image,
        "--base",
        "scratch",
        "--layer-threshold",
        "1MiB",
        "--jobs",
        "1",
    ];
    let mut child = common::command(tmp.path(), &args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    proxy.wait_for_bytes_up(8 * MIB, &mut child);
    swap(&model.join("b.safetensors"), &secret);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let leaked = registry_holds(&registry.storage_dir(), SECRET);
    (stderr(&out), leaked)
}

#[test]
fn a_file_swapped_for_a_symlink_to_a_secret_is_refused() {
    let (err, leaked) = push_and_swap(|file, secret| {
        std::fs::remove_file(file).unwrap();
        std::os::unix::fs::symlink(secret, file).unwrap();
    });
    eprintln!("{err}");
    assert!(
        err.contains("b.safetensors") && err.contains("was replaced after the layers were planned"),
        "{err}"
    );
    assert!(!leaked, "the secret's bytes are in a blob of the registry");
}

#[test]
fn a_file_swapped_for_another_file_is_refused() {
    let (err, leaked) = push_and_swap(|file, secret| {
        let staged = file.with_extension("new");
        std::fs::copy(secret, &staged).unwrap();
        std::fs::rename(&staged, file).unwrap();
    });
    assert!(
        err.contains("was replaced after the layers were planned"),
        "{err}"
    );
    assert!(!leaked, "the secret's bytes are in a blob of the registry");
}
