//! fix-perms as the Tekton Task runs it: a non-root UID in the pod's fsGroup, on a volume
//! whose root, `lost+found` and some files belong to other UIDs. What it may not change but
//! every task can use is left alone with a warning (exit 0); what stays unusable is an error
//! naming it (exit 1). The trees are built as root; fix-perms and the checks run as others.

use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// The pod's fsGroup.
const FS_GROUP: u32 = 1500;
/// The UID fix-perms runs as.
const FIXER: u32 = 1001;

/// `cmd` run as `uid` with primary group `uid` and the fsGroup, as a pod's containers run.
fn as_task(uid: u32, cmd: &[&str]) -> Output {
    Command::new("setpriv")
        .args([
            format!("--reuid={uid}"),
            format!("--regid={uid}"),
            format!("--groups={FS_GROUP}"),
            "--".into(),
        ])
        .args(cmd)
        .env_remove("MODELCAR_WORKSPACE")
        .output()
        .expect("cannot run setpriv")
}

fn fix_perms_as_task(args: &[&str]) -> (Option<i32>, Value, String) {
    let mut cmd = vec![env!("CARGO_BIN_EXE_fix-perms"), "--output", "json"];
    cmd.extend_from_slice(args);
    let out = as_task(FIXER, &cmd);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), report, stderr)
}

/// Creates `path` (a directory when `mode` has the directory's x bits, else a file) owned by
/// `uid:gid` with `mode`.
fn make(path: &Path, dir: bool, uid: u32, gid: u32, mode: u32) {
    if dir {
        fs::create_dir_all(path).unwrap();
    } else {
        fs::write(path, b"bytes").unwrap();
    }
    chown(path, Some(uid), Some(gid)).unwrap();
    // After chown, which clears set-id bits.
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests chown files to other users: run them as root (scripts/test.sh does in CI)"
    );
}

/// Two volumes as a restricted pod finds them: an NFS-style root (0777 root:root) with ext4's
/// `lost+found` as mkfs leaves it (0700 root:root), and a root after the kubelet's fsGroup
/// pass (2775 root:fsGroup) with `lost+found` at 2770 root:fsGroup. Both hold files of two
/// other task UIDs and of the fixer itself.
fn restricted_volumes(nfs: &Path, ext4: &Path) {
    make(nfs, true, 0, 0, 0o777);
    make(&nfs.join("lost+found"), true, 0, 0, 0o700);
    make(ext4, true, 0, FS_GROUP, 0o2775);
    make(&ext4.join("lost+found"), true, 0, FS_GROUP, 0o2770);
    for root in [nfs, ext4] {
        let model = root.join("models/m");
        make(&root.join("models"), true, 1002, FS_GROUP, 0o2775);
        make(&model, true, 1002, FS_GROUP, 0o2775);
        make(&model.join("a.safetensors"), false, 1002, FS_GROUP, 0o664);
        // Another UID's file with its own group: readable by all, which is all a model needs.
        make(&model.join("b.safetensors"), false, 1003, 1003, 0o644);
        make(&model.join("mine.json"), false, FIXER, FIXER, 0o600);
        let state = root.join(".modelcar");
        make(&state, true, 1003, FS_GROUP, 0o2775);
        make(&state.join("metadata.json"), false, 1003, FS_GROUP, 0o664);
        make(&state.join("blobs.json"), false, 1002, FS_GROUP, 0o660);
    }
}

#[test]
fn a_restricted_pod_leaves_alone_what_it_need_not_change_and_succeeds() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let (nfs, ext4) = (tmp.path().join("nfs"), tmp.path().join("ext4"));
    restricted_volumes(&nfs, &ext4);
    let roots = [nfs.to_str().unwrap(), ext4.to_str().unwrap()];
    let gid = FS_GROUP.to_string();
    let args = |more: &[&'static str]| {
        let mut args = vec!["--gid", gid.as_str()];
        args.extend_from_slice(more);
        args.extend_from_slice(&roots);
        args
    };

    let (code, dry, _) = fix_perms_as_task(&args(&["--dry-run"]));
    assert_eq!(code, Some(0));
    let (code, report, stderr) = fix_perms_as_task(&args(&[]));
    eprintln!("{report}\n{stderr}");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(report["errors"], 0);
    // The NFS root, each lost+found, each b.safetensors of uid 1003.
    assert_eq!(report["skipped"], 5, "{stderr}");
    assert_eq!(
        dry["skipped"], report["skipped"],
        "--dry-run foresees the skips"
    );
    assert_eq!(
        report["changed"], 2,
        "the fixer's own mine.json on each volume"
    );
    let skipped = stderr
        .lines()
        .filter(|l| l.contains("left as it is"))
        .count();
    assert_eq!(skipped, 5, "one warning line each:\n{stderr}");
    for path in [
        nfs.display().to_string(),
        nfs.join("lost+found").display().to_string(),
        ext4.join("lost+found").display().to_string(),
        ext4.join("models/m/b.safetensors").display().to_string(),
    ] {
        assert!(stderr.contains(&path), "{path} not listed:\n{stderr}");
    }

    // Another task UID can now do everything the pipeline does on both volumes: create in
    // every directory, rewrite the state files, read every model file.
    for root in [&nfs, &ext4] {
        let script =
            "set -e; for d in . models models/m .modelcar; do echo x > $d/new-by-1004; done; \
                      echo '{}' > .modelcar/metadata.json; echo '{}' > .modelcar/blobs.json; \
                      cat models/m/*.safetensors models/m/mine.json > /dev/null";
        let out = as_task(
            1004,
            &["sh", "-c", &format!("cd {} && {script}", root.display())],
        );
        assert!(
            out.status.success(),
            "uid 1004 on {}: {}",
            root.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_model_file_the_tasks_cannot_read_fails_the_run_naming_it() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let root = tmp.path().join("ws");
    make(&root, true, 0, FS_GROUP, 0o2775);
    make(&root.join("models"), true, FIXER, FS_GROUP, 0o2775);
    make(&root.join("models/m"), true, FIXER, FS_GROUP, 0o2775);
    make(&root.join("models/m/ok.bin"), false, 1002, FS_GROUP, 0o664);
    let locked = root.join("models/m/locked.safetensors");
    make(&locked, false, 1003, 1003, 0o600);

    let (code, report, stderr) = fix_perms_as_task(&[root.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(report["errors"], 1);
    let line = stderr
        .lines()
        .find(|l| l.contains("ERROR") && l.contains("locked.safetensors"))
        .unwrap_or_else(|| panic!("no error naming the file:\n{stderr}"));
    assert!(
        line.contains(&locked.display().to_string()) && line.contains("cannot read it"),
        "{line}"
    );
}
