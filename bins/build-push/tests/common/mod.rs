//! Helpers shared by build-push's integration test files (each file uses some of them).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

pub const MIB: u64 = 1 << 20;

/// build-push with its cache and env isolated in `home`.
pub fn build_push(home: &Path, args: &[&str]) -> Output {
    command(home, args).output().expect("run build-push")
}

pub fn command(home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_build-push"));
    cmd.args(args)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("HOME", home)
        .env_remove("MODELCAR_WORKSPACE")
        .env_remove("REGISTRY_AUTH_FILE");
    cmd
}

/// Runs build-push with `--output json`; asserts success and returns the report.
pub fn push_json(home: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--output", "json", "--layer-threshold", "1MiB"];
    all.extend_from_slice(args);
    let out = build_push(home, &all);
    assert!(
        out.status.success(),
        "build-push {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the run failed with `code` and said `needle` on stderr; returns stderr.
pub fn assert_fails(out: &Output, code: i32, needle: &str) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert!(err.contains(needle), "expected {needle:?} in:\n{err}");
    err
}
