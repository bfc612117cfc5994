//! fix-perms end to end, run as root on real trees, checked as unprivileged users would see them.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{chown, symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const SHARED_GID: u32 = 1500;

fn fix_perms(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fix-perms"))
        .args(args)
        .env_remove("MODELCAR_WORKSPACE")
        .output()
        .expect("cannot run fix-perms")
}

/// Runs fix-perms with `--output json` and returns the report, asserting exit code `code`.
fn fix_perms_json(args: &[&str], code: i32) -> Value {
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(args);
    let out = fix_perms(&all);
    assert_eq!(
        out.status.code(),
        Some(code),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

/// Runs `script` in sh as `uid` with primary group `uid` and supplementary group SHARED_GID,
/// the way a Tekton pod with fsGroup runs its steps.
fn sh_as(uid: u32, script: &str) -> Output {
    Command::new("setpriv")
        .args([
            format!("--reuid={uid}"),
            format!("--regid={uid}"),
            format!("--groups={SHARED_GID}"),
            "--".into(),
        ])
        .args(["sh", "-c", &format!("umask 002; {script}")])
        .output()
        .expect("cannot run setpriv")
}

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests chown files to other users: run them as root (scripts/test.sh does in CI)"
    );
}

/// A tree written by two different task UIDs, each with its own group and a private umask:
/// neither can write the other's files.
fn two_uid_tree(root: &Path) {
    chown(root, Some(0), Some(SHARED_GID)).unwrap();
    for (dir, uid, dir_mode, file_mode) in [
        ("by-1001", 1001, 0o700, 0o600),
        ("by-1002", 1002, 0o755, 0o644),
    ] {
        let d = root.join(dir);
        fs::create_dir_all(d.join("nested")).unwrap();
        fs::write(d.join("weights.bin"), b"w").unwrap();
        fs::write(d.join("nested/config.json"), b"{}").unwrap();
        for p in [d.join("weights.bin"), d.join("nested/config.json")] {
            fs::set_permissions(&p, fs::Permissions::from_mode(file_mode)).unwrap();
            chown(&p, Some(uid), Some(uid)).unwrap();
        }
        for p in [d.join("nested"), d.clone()] {
            fs::set_permissions(&p, fs::Permissions::from_mode(dir_mode)).unwrap();
            chown(&p, Some(uid), Some(uid)).unwrap();
        }
    }
}

/// (mode, uid, gid) of every entry below `root`, symlinks not followed.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u32, u32, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = fs::symlink_metadata(&p).unwrap();
        out.insert(p.clone(), (m.mode(), m.uid(), m.gid()));
        if m.is_dir() {
            stack.extend(fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    out
}

fn lstat(p: &Path) -> fs::Metadata {
    fs::symlink_metadata(p).unwrap()
}

#[test]
fn other_uids_can_create_and_overwrite_after_the_fix() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    two_uid_tree(root);
    let write = "echo new > by-1001/weights.bin && echo new > by-1001/nested/config.json \
                 && echo created > by-1002/nested/new.txt && mkdir by-1002/newdir \
                 && echo deep > by-1002/newdir/deeper.txt";
    let script = format!("cd {} && {write}", root.display());
    assert!(
        !sh_as(1003, &script).status.success(),
        "the broken tree was already writable: the test proves nothing"
    );

    // No --gid: the root's own group (the fsGroup) is used.
    let report = fix_perms_json(&[root.to_str().unwrap()], 0);
    assert_eq!(report["roots"][0]["gid"], SHARED_GID);
    assert_eq!(report["errors"], 0);

    let out = sh_as(1003, &script);
    assert!(
        out.status.success(),
        "uid 1003 cannot write after the fix: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fs::read_to_string(root.join("by-1001/weights.bin")).unwrap(),
        "new\n"
    );
    // The setgid dirs hand their group down to what other UIDs create, files and dirs alike.
    for new in [
        "by-1002/nested/new.txt",
        "by-1002/newdir",
        "by-1002/newdir/deeper.txt",
    ] {
        assert_eq!(lstat(&root.join(new)).gid(), SHARED_GID, "{new}");
    }
    assert_eq!(lstat(&root.join("by-1002/newdir")).mode() & 0o7777, 0o2775);
    // And the original owner can still overwrite what another UID created.
    let out = sh_as(
        1001,
        &format!(
            "cd {} && echo again > by-1002/newdir/deeper.txt",
            root.display()
        ),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn modes_follow_the_design_and_x_bits_are_kept() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    two_uid_tree(root);
    fs::write(root.join("run.sh"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o4750)).unwrap();
    fix_perms_json(&["--gid", "1600", root.to_str().unwrap()], 0);
    for (path, (mode, _, gid)) in snapshot(root) {
        assert_eq!(gid, 1600, "{}", path.display());
        let kind = mode & 0o170000;
        let want = match (kind, path.file_name().and_then(|n| n.to_str())) {
            (0o040000, _) => 0o2775,
            (_, Some("run.sh")) => 0o770,
            (_, _) if mode & 0o7777 == 0o664 => 0o664,
            _ => 0o660,
        };
        assert_eq!(
            mode & 0o7777,
            want,
            "{} has {:o}",
            path.display(),
            mode & 0o7777
        );
    }
}

#[test]
fn symlinks_out_of_the_tree_are_never_followed() {
    require_root();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    fs::write(&secret, b"s").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    fs::create_dir(outside.path().join("dir")).unwrap();
    fs::write(outside.path().join("dir/inner"), b"i").unwrap();
    fs::set_permissions(
        outside.path().join("dir"),
        fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    let before = snapshot(outside.path());

    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    symlink(&secret, root.join("link-to-file")).unwrap();
    symlink(outside.path().join("dir"), root.join("link-to-dir")).unwrap();
    symlink("../../../../../../../..", root.join("link-to-root")).unwrap();
    let report = fix_perms_json(&["--gid", "1700", root.to_str().unwrap()], 0);

    assert_eq!(
        snapshot(outside.path()),
        before,
        "something outside the tree changed"
    );
    // The links themselves were regrouped, and counted as entries, not walked into.
    assert_eq!(lstat(&root.join("link-to-file")).gid(), 1700);
    assert_eq!(lstat(&root.join("link-to-dir")).gid(), 1700);
    assert_eq!(report["scanned"], 4, "{report}");
}

#[test]
fn dangling_symlinks_and_fifos_do_not_crash_it() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    symlink("/nonexistent/target", root.join("dangling")).unwrap();
    nix::unistd::mkfifo(
        &root.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let report = fix_perms_json(&["--gid", "1800", root.to_str().unwrap()], 0);
    assert_eq!(report["errors"], 0);
    assert_eq!(report["scanned"], 3);
    assert_eq!(lstat(&root.join("fifo")).mode() & 0o777, 0o660);
    assert_eq!(lstat(&root.join("dangling")).gid(), 1800);
}

#[test]
fn dry_run_changes_nothing_but_counts_what_it_would_change() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    two_uid_tree(root);
    let before = snapshot(root);
    let out = fix_perms(&["--dry-run", "--output", "json", root.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(snapshot(root), before, "--dry-run changed the tree");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["changed"], 9, "{report}");
    // Each would-be change is listed on stderr with its path.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("would change") && stderr.contains("by-1001/weights.bin"),
        "{stderr}"
    );
}

#[test]
fn second_run_changes_nothing_and_says_so() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    two_uid_tree(root);
    let first = fix_perms_json(&[root.to_str().unwrap()], 0);
    assert_eq!(first["scanned"], 9);
    assert_eq!(first["changed"], 9);
    let after_first = snapshot(root);
    let out = fix_perms(&[root.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("changed 0 (already correct)"), "{text}");
    assert_eq!(snapshot(root), after_first);
}

#[test]
fn a_very_deep_tree_is_walked_to_the_bottom() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let mut deepest = tmp.path().to_path_buf();
    for _ in 0..1000 {
        deepest.push("d");
    }
    fs::create_dir_all(&deepest).unwrap();
    fs::write(deepest.join("leaf"), b"x").unwrap();
    let report = fix_perms_json(
        &["--gid", "1900", "--jobs", "4", tmp.path().to_str().unwrap()],
        0,
    );
    assert_eq!(report["scanned"], 1002);
    assert_eq!(lstat(&deepest.join("leaf")).gid(), 1900);
}

#[test]
fn the_workspace_is_the_default_root() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fix-perms"))
        .args(["--gid", "2000", "--output", "json"])
        .env("MODELCAR_WORKSPACE", tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(lstat(tmp.path()).gid(), 2000);
}

#[test]
fn bad_input_gives_clear_errors_and_exit_codes() {
    let out = fix_perms(&["/nonexistent/pvc"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/pvc") && stderr.contains("No such file"),
        "{stderr}"
    );

    let out = fix_perms(&[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "no DIR and no workspace is a usage error"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--workspace"));

    for bad in [
        &["--jobs", "0", "/tmp"][..],
        &["--gid", "abc", "/tmp"],
        &["--bogus"],
    ] {
        assert_eq!(fix_perms(bad).status.code(), Some(2), "{bad:?}");
    }

    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("plain-file");
    fs::write(&file, b"x").unwrap();
    let out = fix_perms(&[file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Not a directory"));
}
