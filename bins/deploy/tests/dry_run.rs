//! `deploy --dry-run` against golden files for the two configurations of the old pipeline:
//! the quantized w4a16 model on 1 GPU, and the full fp16 model on 4 GPUs with 96Gi and a
//! node selector on the instance type. `UPDATE_GOLDEN=1` rewrites them (review the diff).

use std::path::Path;
use std::process::{Command, Output};

const IMAGE: &str = "quay.io/org/mistral-small-24b";
const DIGEST: &str = "sha256:5f1e0c3d2b4a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0";

fn deploy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deploy"))
        .args(args)
        .env_remove("MODELCAR_WORKSPACE")
        .output()
        .expect("run deploy")
}

fn assert_golden(name: &str, args: &[&str]) {
    let out = deploy(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = String::from_utf8(out.stdout).unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        got,
        want,
        "{} differs (UPDATE_GOLDEN=1 rewrites it)",
        path.display()
    );
}

#[test]
fn the_quantized_model_on_one_gpu() {
    let uri = format!("oci://{IMAGE}:w4a16@{DIGEST}");
    assert_golden(
        "w4a16-1gpu.yaml",
        &[
            "mistral-small-24b-w4a16",
            "--namespace",
            "llm",
            "--storage-uri",
            &uri,
            "--gpus",
            "1",
            "--max-model-len",
            "16384",
            "--gpu-memory-utilization",
            "0.9",
            "--cpu",
            "4",
            "--memory",
            "24Gi",
            "--dry-run",
        ],
    );
}

#[test]
fn the_full_fp16_model_on_four_gpus() {
    let uri = format!("oci://{IMAGE}:fp16@{DIGEST}");
    assert_golden(
        "fp16-4gpu.yaml",
        &[
            "mistral-small-24b-fp16",
            "--namespace",
            "llm",
            "--storage-uri",
            &uri,
            "--gpus",
            "4",
            "--tensor-parallel",
            "4",
            "--max-model-len",
            "32768",
            "--cpu",
            "16",
            "--memory",
            "96Gi",
            "--node-selector",
            "node.kubernetes.io/instance-type=g5.12xlarge",
            "--toleration",
            "nvidia.com/gpu:NoSchedule",
            "--arg=--enable-chunked-prefill",
            "--annotation",
            "serving.kserve.io/deploymentMode=RawDeployment",
            "--dry-run",
        ],
    );
}

#[test]
fn the_image_comes_from_the_metadata_file_by_digest() {
    let ws = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(ws.path().join(".modelcar")).unwrap();
    let meta = format!(r#"{{"schema":1,"image":"{IMAGE}","image_digest":"{DIGEST}"}}"#);
    std::fs::write(ws.path().join(".modelcar/metadata.json"), meta).unwrap();
    let out = deploy(&["m", "--workspace", ws.path().to_str().unwrap(), "--dry-run"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert!(
        yaml.contains(&format!("storageUri: oci://{IMAGE}@{DIGEST}")),
        "{yaml}"
    );

    let none = deploy(&["m", "--dry-run"]);
    assert_eq!(none.status.code(), Some(2));
    let bad = deploy(&["m", "--storage-uri", "s3://bucket/m", "--dry-run"]);
    assert_eq!(bad.status.code(), Some(2));
}

/// `--oci-mode` writes KServe's scheme for each way of mounting the image; golden files for
/// the two that are not the default.
#[test]
fn each_oci_mode_writes_its_scheme() {
    let uri = format!("oci://{IMAGE}:w4a16@{DIGEST}");
    for mode in ["native", "fetch"] {
        assert_golden(
            &format!("w4a16-1gpu-{mode}.yaml"),
            &[
                "mistral-small-24b-w4a16",
                "--namespace",
                "llm",
                "--storage-uri",
                &uri,
                "--oci-mode",
                mode,
                "--dry-run",
            ],
        );
    }
}

/// A mode named twice must agree, and an `oci+X://` KServe does not know is refused with the
/// schemes it does: usage errors (exit 2) naming the flags.
#[test]
fn oci_modes_that_disagree_or_do_not_exist_are_refused() {
    let native = format!("oci+native://{IMAGE}@{DIGEST}");
    let out = deploy(&["m", "--storage-uri", &native, "--dry-run"]);
    assert!(out.status.success());
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert!(yaml.contains(&format!("storageUri: {native}")), "{yaml}");

    let both = deploy(&[
        "m",
        "--storage-uri",
        &native,
        "--oci-mode",
        "fetch",
        "--dry-run",
    ]);
    assert_eq!(both.status.code(), Some(2));
    let said = String::from_utf8_lossy(&both.stderr);
    assert!(
        said.contains("names the native mode, and --oci-mode says fetch"),
        "{said}"
    );

    let unknown = format!("oci+lazy://{IMAGE}@{DIGEST}");
    let out = deploy(&["m", "--storage-uri", &unknown, "--dry-run"]);
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("KServe knows no oci+lazy://"), "{said}");
}

/// The LLMInferenceService of the fp16 model on 4 GPUs, in the two OCI modes its controller
/// takes (it refuses `oci+fetch://`, tested in `llm_and_oci.rs`).
#[test]
fn the_llm_inference_service_in_its_oci_modes() {
    let uri = format!("oci://{IMAGE}:fp16@{DIGEST}");
    for mode in ["modelcar", "native"] {
        assert_golden(
            &format!("llm-fp16-4gpu-{mode}.yaml"),
            &[
                "mistral-small-24b-fp16",
                "--kind",
                "llminferenceservice",
                "--namespace",
                "llm",
                "--storage-uri",
                &uri,
                "--oci-mode",
                mode,
                "--gpus",
                "4",
                "--max-model-len",
                "32768",
                "--gpu-memory-utilization",
                "0.92",
                "--memory",
                "96Gi",
                "--replicas",
                "2",
                "--node-selector",
                "node.kubernetes.io/instance-type=g5.12xlarge",
                "--toleration",
                "nvidia.com/gpu:NoSchedule",
                "--arg=--enable-chunked-prefill",
                "--dry-run",
            ],
        );
    }
}
