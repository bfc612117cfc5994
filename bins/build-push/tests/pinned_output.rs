//! The exact output of build-push, pinned: the ModelCar and ModelPack manifest digests of one
//! model built from a directory and from `hf://`, against the real distribution registry.
//! A manifest digest covers the config and every layer's bytes, so any change to what is
//! pushed (a tar header, a label, a layer cut, the config) changes these. They were recorded
//! before the code was rearranged (build-push's run split into modules, one `send_blob` for
//! build-push and mirror) and must not move unless the image format is meant to change.

mod common;

use std::fs;
use std::path::Path;

use common::{push_json, MIB};
use modelcar_testkit::model::random_bytes;
use modelcar_testkit::oci_tools::skopeo_raw_manifest;
use modelcar_testkit::{HubRepo, HubServer, Registry};
use serde_json::Value;

const REPO: &str = "org/pinned-llm";

const DIR_MODELCAR: &str =
    "sha256:7b2e9e9a8b811c8c5e9f67aedd2771e6754763fefcf8d6bd2bece45596c5c62f";
const DIR_MODELPACK: &str =
    "sha256:a6e61a8715ceaabf4911bde233917fd50ef267aa57b10d5834c5b9a59e5411cb";
const HUB_MODELCAR: &str =
    "sha256:e4a05ca520ae1d09e6a25d4468deb337f438ef72d2ac5ae17cbffc9bfdaf35f4";
const HUB_MODELPACK: &str =
    "sha256:efab29fc846016d329cf3ef9518219f0650abeb6e236cf6277d55c8391924df1";

/// Two shards over the layer threshold, small files beside them, one nested.
fn files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "config.json",
            br#"{"architectures":["MistralForCausalLM"],"model_type":"mistral"}"#.to_vec(),
        ),
        ("tokenizer.json", random_bytes(200_000, 7)),
        ("model-00001-of-00002.safetensors", random_bytes(2 * MIB, 8)),
        ("model-00002-of-00002.safetensors", random_bytes(2 * MIB, 9)),
        ("docs/README.md", b"# pinned\n".to_vec()),
    ]
}

fn write_model(dir: &Path) {
    for (path, bytes) in files() {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }
}

/// Pushes with `--modelpack`; returns both manifest digests, checked against the registry.
fn push(home: &Path, source: &str, image: &str, extra: &[&str]) -> (String, String) {
    let mut args = vec![
        "--modelpack",
        source,
        image,
        "--base",
        "scratch",
        "--no-cache",
    ];
    args.extend_from_slice(extra);
    let report = push_json(home, &args);
    let car = report["digest"].as_str().unwrap().to_owned();
    let pack = report["modelpack"]["digest"].as_str().unwrap().to_owned();
    let registry_image = image.rsplit_once(':').map_or(image, |(name, _)| name);
    for digest in [&car, &pack] {
        let manifest: Value = skopeo_raw_manifest(&format!("docker://{registry_image}@{digest}"));
        assert!(manifest["layers"].is_array(), "{manifest:#}");
    }
    (car, pack)
}

#[test]
fn a_directory_build_pushes_the_pinned_manifests() {
    let registry = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("pinned-llm");
    write_model(&model);
    let image = format!("{}/org/pinned:v1", registry.host());
    let (car, pack) = push(tmp.path(), model.to_str().unwrap(), &image, &[]);
    assert_eq!((car.as_str(), pack.as_str()), (DIR_MODELCAR, DIR_MODELPACK));
}

#[test]
fn an_hf_build_pushes_the_pinned_manifests() {
    let mut repo = HubRepo::new(REPO);
    for (path, bytes) in files() {
        repo = repo.file(path, bytes);
    }
    let hub = HubServer::start(vec![repo]);
    let registry = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let image = format!("{}/org/pinned:v1", registry.host());
    let endpoint = hub.endpoint();
    let source = format!("hf://{REPO}");
    let (car, pack) = push(tmp.path(), &source, &image, &["--hf-endpoint", &endpoint]);
    assert_eq!((car.as_str(), pack.as_str()), (HUB_MODELCAR, HUB_MODELPACK));
}
