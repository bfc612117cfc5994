//! A stand-in for the model server of a KServe pod: an image of Debian's static busybox,
//! imported into a store when it is not there yet, whose container waits for the model
//! directory as a runtime told `MODEL_INIT_MODE=async` does, then prints its UID and the
//! sha256 of every file under it, which [`sums_in_logs`] reads back.

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use sha2::{Digest, Sha256};

use super::pod::Container;
use super::podman::Podman;
use crate::tools::{hex, run_tool};

const BUSYBOX: &str = "/bin/busybox";
const IMAGE: &str = "localhost/modelcar-testkit/reader:1";
const APPLETS: [&str; 8] = ["sh", "id", "find", "sha256sum", "sleep", "test", "[", "ls"];

/// The reader image, imported into `podman`'s store (each store of its own: a node's) if it
/// is not there yet.
pub fn reader_image(podman: &Podman) -> &'static str {
    static IMPORTING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = IMPORTING.lock().unwrap_or_else(PoisonError::into_inner);
    if podman.has_image(IMAGE) {
        return IMAGE;
    }
    {
        let dir = tempfile::tempdir().expect("reader rootfs");
        let bin = dir.path().join("rootfs/bin");
        std::fs::create_dir_all(&bin).expect("mkdir bin");
        std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap_or_else(|e| {
            panic!("{BUSYBOX}: {e}: run scripts/test.sh, which installs busybox-static")
        });
        for applet in APPLETS {
            symlink("busybox", bin.join(applet)).expect("applet link");
        }
        let tar = dir.path().join("rootfs.tar");
        let rootfs = dir.path().join("rootfs");
        run_tool(
            "tar",
            &["-C", path_str(&rootfs), "-cf", path_str(&tar), "."],
        );
        podman.ok(&["import", "--change", "ENV PATH=/bin", path_str(&tar), IMAGE]);
    }
    IMAGE
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// The server container: waits for `model_dir` to resolve, then prints `uid=<UID>` and a
/// `sha256sum` line per file under it, and exits 0 only if every file could be read.
pub fn model_reader(podman: &Podman, model_dir: &str) -> Container {
    let script = format!(
        "until [ -e {model_dir}/ ]; do sleep 0.1; done; echo uid=$(id -u); \
         cd {model_dir}/ && find . -type f -exec sha256sum {{}} +"
    );
    Container {
        name: "kserve-container".into(),
        image: reader_image(podman).into(),
        command: vec!["sh".into(), "-c".into()],
        // `$$` for the kubelet's expansion, which would keep `$(id -u)` anyway: as written.
        args: vec![script.replace('$', "$$")],
        ..Container::default()
    }
}

/// The files the reader printed, by path relative to the model directory, to their sha256.
pub fn sums_in_logs(logs: &str) -> BTreeMap<String, String> {
    logs.lines()
        .filter_map(|line| {
            let (sum, path) = line.split_once("  ")?;
            let path = path.strip_prefix("./")?;
            (sum.len() == 64).then(|| (path.to_string(), sum.to_string()))
        })
        .collect()
}

/// The same for a directory here: every regular file under `dir`, by relative path.
pub fn sums_of_dir(dir: &Path) -> BTreeMap<String, String> {
    let mut sums = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("dir entry").path();
            let kind = std::fs::symlink_metadata(&path)
                .expect("metadata")
                .file_type();
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                let rel = path.strip_prefix(dir).expect("under dir");
                sums.insert(rel.to_string_lossy().into_owned(), sha256_of(&path));
            }
        }
    }
    sums
}

/// The sha256 of the file at `path`, read through a fixed buffer.
fn sha256_of(path: &Path) -> String {
    use std::io::Read;
    let mut hasher = Sha256::new();
    let mut file = std::fs::File::open(path).expect("open model file");
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match file.read(&mut buf).expect("read model file") {
            0 => return hex(&hasher.finalize()),
            n => hasher.update(&buf[..n]),
        }
    }
}
