//! Registry credentials from a file (`--creds-file`), the form the docs show: a flag's value
//! is in `/proc/PID/cmdline` for every process on the node to read.

mod common;

use common::{assert_fails, build_push, MIB};
use modelcar_testkit::model::random_bytes;
use modelcar_testkit::Registry;

#[test]
fn credentials_come_from_a_file_and_a_bad_file_is_named() {
    let registry = Registry::start_with_htpasswd("robot", "pa:ss");
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(model.join("w.safetensors"), random_bytes(2 * MIB, 1)).unwrap();
    let creds = tmp.path().join("creds");
    std::fs::write(&creds, "robot:pa:ss\n").unwrap();
    let image = format!("{}/org/m:v1", registry.host());
    let args = |file: &str| {
        vec![
            model.to_str().unwrap().to_string(),
            image.clone(),
            "--base".into(),
            "scratch".into(),
            "--creds-file".into(),
            file.to_string(),
        ]
    };
    let run = |file: &str| {
        let args = args(file);
        build_push(
            tmp.path(),
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    };
    let out = run(creds.to_str().unwrap());
    assert!(out.status.success(), "{}", common::stderr(&out));

    let missing = tmp.path().join("nope");
    assert_fails(&run(missing.to_str().unwrap()), 2, "--creds-file");
    let empty = tmp.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let err = assert_fails(&run(empty.to_str().unwrap()), 2, "is empty");
    assert!(err.contains(empty.to_str().unwrap()), "{err}");
}
