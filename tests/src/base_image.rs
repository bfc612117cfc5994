//! A base image with a shell, made with umoci and pushed with skopeo (not with modelcar), so
//! build-push's base handling is tested against an image it did not write itself.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use crate::tools::run_tool as run;

/// The statically linked busybox of Debian's busybox-static.
const BUSYBOX: &str = "/bin/busybox";

/// Builds a one-layer busybox image (sh, ln, sleep, cat, ls) in `work` and copies it to
/// `dest` (a skopeo destination such as `docker://127.0.0.1:5000/base/busybox:1`).
pub fn push_busybox_base(work: &Path, dest: &str) {
    assert!(
        Path::new(BUSYBOX).is_file(),
        "{BUSYBOX} is missing: run scripts/test.sh, which installs busybox-static"
    );
    let layout = work.join("base-layout");
    let bundle = work.join("base-bundle");
    let image = format!("{}:base", layout.display());
    run(
        "umoci",
        &["init", "--layout", layout.to_str().expect("utf-8")],
    );
    run("umoci", &["new", "--image", &image]);
    run(
        "umoci",
        &["unpack", "--image", &image, bundle.to_str().expect("utf-8")],
    );
    let bin = bundle.join("rootfs/bin");
    fs::create_dir_all(&bin).expect("mkdir bin");
    fs::copy(BUSYBOX, bin.join("busybox")).expect("copy busybox");
    for applet in ["sh", "ln", "sleep", "cat", "ls"] {
        symlink("busybox", bin.join(applet)).expect("applet link");
    }
    run(
        "umoci",
        &["repack", "--image", &image, bundle.to_str().expect("utf-8")],
    );
    run(
        "umoci",
        &["config", "--image", &image, "--config.env", "PATH=/bin"],
    );
    run(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{image}"),
            dest,
        ],
    );
}

/// The busybox base pushed to the registry at `host` as `base/busybox:1` (built in `work`);
/// its reference, for `--base`.
pub fn busybox_base_in(work: &Path, host: &str) -> String {
    let base = format!("{host}/base/busybox:1");
    push_busybox_base(work, &format!("docker://{base}"));
    base
}
