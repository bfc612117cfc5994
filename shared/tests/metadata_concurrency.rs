//! Two processes update different keys of one metadata file 200 times each, at the same time:
//! every key must be present at the end (no lost update), and the file must parse at every
//! moment a third process looks at it (no half-written file).
//!
//! Runs without the libtest harness: the binary re-executes itself as the writer processes.

use std::env;
use std::path::Path;
use std::process::{Command, ExitCode};

use modelcar_shared::metadata::MetadataFile;
use serde_json::json;

const UPDATES: usize = 200;
const ROLE: &str = "MODELCAR_TEST_WRITER";

fn main() -> ExitCode {
    match env::var(ROLE) {
        Ok(role) => writer(&role, &env::var("MODELCAR_TEST_FILE").expect("file")),
        Err(_) => parent(),
    }
}

/// One writer process: its own keys `<role>-0` .. `<role>-199`, and its own typed field.
fn writer(role: &str, path: &str) -> ExitCode {
    let file = MetadataFile::at(path);
    for i in 0..UPDATES {
        file.update(|m| {
            m.extra.insert(format!("{role}-{i}"), json!(i));
            match role {
                "a" => m.image_tag = Some(format!("a{i}")),
                _ => m.hf_revision = Some(format!("b{i}")),
            }
        })
        .unwrap_or_else(|e| panic!("writer {role}: {e}"));
    }
    ExitCode::SUCCESS
}

fn parent() -> ExitCode {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("metadata.json");
    let spawn = |role: &str| {
        Command::new(env::current_exe().expect("current exe"))
            .env(ROLE, role)
            .env("MODELCAR_TEST_FILE", &path)
            .spawn()
            .expect("spawn writer")
    };
    let (mut a, mut b) = (spawn("a"), spawn("b"));
    let reads = read_while_running(&path, || {
        matches!(a.try_wait(), Ok(None)) || matches!(b.try_wait(), Ok(None))
    });
    assert!(
        a.wait().unwrap().success() && b.wait().unwrap().success(),
        "a writer failed"
    );

    let meta = MetadataFile::at(&path).read().expect("final file reads");
    let missing: Vec<String> = ["a", "b"]
        .iter()
        .flat_map(|role| (0..UPDATES).map(move |i| format!("{role}-{i}")))
        .filter(|key| !meta.extra.contains_key(key))
        .collect();
    assert!(
        missing.is_empty(),
        "lost updates: {} keys missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(meta.image_tag.as_deref(), Some("a199"));
    assert_eq!(meta.hf_revision.as_deref(), Some("b199"));
    println!(
        "test two_writers_lose_no_update ... ok ({} keys, {reads} concurrent reads all parsed)",
        2 * UPDATES
    );
    println!("\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
    ExitCode::SUCCESS
}

/// Reads the file as long as `running()`: every read must parse (atomic replacement).
fn read_while_running(path: &Path, mut running: impl FnMut() -> bool) -> usize {
    let file = MetadataFile::at(path);
    let mut reads = 0;
    while running() {
        file.read()
            .unwrap_or_else(|e| panic!("a reader saw a broken file: {e}"));
        reads += 1;
    }
    reads
}
