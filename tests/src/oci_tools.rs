//! Independent readers of what modelcar writes: skopeo and umoci, run as the user would.

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::tools::run_tool as run;

/// `skopeo inspect` of `image` (`docker://...` over plain HTTP, or `oci:...`), as JSON.
pub fn skopeo_inspect(image: &str) -> serde_json::Value {
    let text = run("skopeo", &["inspect", "--tls-verify=false", image]);
    serde_json::from_str(&text).expect("skopeo inspect prints JSON")
}

/// `skopeo inspect` of `image` on a TLS registry, trusting the CAs (`*.crt`) in `cert_dir`.
pub fn skopeo_inspect_with_cert_dir(image: &str, cert_dir: &Path) -> serde_json::Value {
    let dir = cert_dir.to_str().expect("utf-8 path");
    let text = run("skopeo", &["inspect", "--cert-dir", dir, image]);
    serde_json::from_str(&text).expect("skopeo inspect prints JSON")
}

/// The raw manifest, as skopeo reads it.
pub fn skopeo_raw_manifest(image: &str) -> serde_json::Value {
    let text = run("skopeo", &["inspect", "--raw", "--tls-verify=false", image]);
    serde_json::from_str(&text).expect("a manifest is JSON")
}

/// `skopeo copy --preserve-digests` from `src` to `dest`.
pub fn skopeo_copy(src: &str, dest: &str) {
    run(
        "skopeo",
        &[
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            src,
            dest,
        ],
    );
}

/// `umoci unpack` of `layout:tag` into `bundle`; the files are under `bundle/rootfs`.
/// Run as root, so the owners in the tar headers are applied as written.
pub fn umoci_unpack(layout_and_tag: &str, bundle: &Path) {
    run(
        "umoci",
        &[
            "unpack",
            "--image",
            layout_and_tag,
            bundle.to_str().expect("utf-8 path"),
        ],
    );
}

/// Asserts that `unpacked` holds exactly `model`: the same names, bytes and symlink targets,
/// files 0644, directories 0755, everything owned by 0:0.
pub fn assert_same_tree(model: &Path, unpacked: &Path) {
    let names = |dir: &Path| -> Vec<String> {
        let mut n: Vec<String> = fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    };
    assert_eq!(
        names(model),
        names(unpacked),
        "entries of {}",
        unpacked.display()
    );
    for name in names(model) {
        let (src, got) = (model.join(&name), unpacked.join(&name));
        let (sm, gm) = (
            fs::symlink_metadata(&src).expect("stat"),
            fs::symlink_metadata(&got).expect("stat"),
        );
        assert_eq!((gm.uid(), gm.gid()), (0, 0), "owner of {}", got.display());
        if sm.file_type().is_symlink() {
            assert!(
                gm.file_type().is_symlink(),
                "{} is not a symlink",
                got.display()
            );
            assert_eq!(
                fs::read_link(&src).ok(),
                fs::read_link(&got).ok(),
                "target of {}",
                got.display()
            );
        } else if sm.is_dir() {
            assert_eq!(gm.mode() & 0o7777, 0o755, "mode of {}", got.display());
            assert_same_tree(&src, &got);
        } else {
            assert_eq!(gm.mode() & 0o7777, 0o644, "mode of {}", got.display());
            assert_eq!(sm.len(), gm.len(), "size of {}", got.display());
            assert!(
                same_bytes(&src, &got),
                "content of {} differs",
                got.display()
            );
        }
    }
}

fn same_bytes(a: &Path, b: &Path) -> bool {
    let (mut fa, mut fb) = (
        fs::File::open(a).expect("open"),
        fs::File::open(b).expect("open"),
    );
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let na = read_full(&mut fa, &mut ba);
        let nb = read_full(&mut fb, &mut bb);
        if na != nb || ba[..na] != bb[..nb] {
            return false;
        }
        if na == 0 {
            return true;
        }
    }
}

fn read_full(f: &mut fs::File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]).expect("read") {
            0 => break,
            k => n += k,
        }
    }
    n
}
