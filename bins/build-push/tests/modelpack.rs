//! `build-push --modelpack` against the real distribution registry: the CNCF ModelPack
//! artifact sits beside the ModelCar and points at the same layer blobs (nothing is sent
//! twice), its config validates against the model-spec schema (vendored in tests/modelpack),
//! skopeo pulls it and every file comes back byte for byte, and it is compared field by field
//! with what `olot --add-modelpack` writes for the same files.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::push_json;
use modelcar_testkit::oci_tools::{assert_same_tree, skopeo_copy, skopeo_raw_manifest};
use modelcar_testkit::{CountingProxy, Registry};
use serde_json::{json, Value};

const ARTIFACT_TYPE: &str = "application/vnd.cncf.model.manifest.v1+json";
const CONFIG_TYPE: &str = "application/vnd.cncf.model.config.v1+json";
const WEIGHT: &str = "application/vnd.cncf.model.weight.v1.tar";
const WEIGHT_CONFIG: &str = "application/vnd.cncf.model.weight.config.v1.tar";
const DOC: &str = "application/vnd.cncf.model.doc.v1.tar";

/// A Mistral-like model: two safetensors shards of 768 x 1024 bf16 (1.5 MiB each, with real
/// headers), config.json, the shard index, tokenizer files and a README.
fn mistral_like(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    for shard in 1..=2 {
        let data_len: u64 = 768 * 1024 * 2;
        let header = json!({"__metadata__": {"format": "pt"},
            "w": {"dtype": "BF16", "shape": [768, 1024], "data_offsets": [0, data_len]}})
        .to_string();
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend(modelcar_testkit::model::random_bytes(data_len, shard));
        let name = format!("model-0000{shard}-of-00002.safetensors");
        fs::write(dir.join(name), bytes).unwrap();
    }
    let files = [
        (
            "config.json",
            r#"{"architectures":["MistralForCausalLM"],"model_type":"mistral","torch_dtype":"bfloat16","num_attention_heads":32}"#,
        ),
        (
            "model.safetensors.index.json",
            r#"{"metadata":{"total_size":3145728},"weight_map":{}}"#,
        ),
        ("tokenizer.json", r#"{"version":"1.0"}"#),
        ("tokenizer_config.json", r#"{"model_max_length":32768}"#),
        ("README.md", "# A test model\n"),
    ];
    for (name, text) in files {
        fs::write(dir.join(name), text).unwrap();
    }
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    fs::read(layout.join("blobs/sha256").join(hex)).expect("the blob is in the layout")
}

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/modelpack")
}

fn python_tool(name: &str) -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/python/bin");
    let tool = venv.join(name);
    assert!(
        tool.exists(),
        "{} is missing: scripts/test.sh installs it",
        tool.display()
    );
    tool
}

/// Asserts `config` (bytes) is valid against the vendored model-spec schema.
fn assert_valid_config(config: &[u8], work: &Path) {
    let path = work.join("config-to-validate.json");
    fs::write(&path, config).unwrap();
    let out = Command::new(python_tool("python"))
        .arg(schema_dir().join("validate.py"))
        .arg(schema_dir().join("config-schema.json"))
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the ModelPack config is not valid against model-spec's schema:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn layer_digests(manifest: &Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_modelpack_shares_the_modelcar_blobs_and_reads_back() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("mistral-test");
    mistral_like(&model);
    let m = model.to_str().unwrap();

    // The same push without and with --modelpack, each to a fresh registry, byte-counted.
    let plain = Registry::start();
    let plain_proxy = CountingProxy::start(&plain.host());
    push_json(
        tmp.path(),
        &[
            m,
            &format!("{}/llm/mistral:1", plain_proxy.host()),
            "--base",
            "scratch",
            "--no-cache",
        ],
    );
    let registry = Registry::start();
    let proxy = CountingProxy::start(&registry.host());
    let image = format!("{}/llm/mistral:1", proxy.host());
    // `--modelpack` first, as one types it: its tag is only ever given with `=`.
    let report = push_json(
        tmp.path(),
        &["--modelpack", m, &image, "--base", "scratch", "--no-cache"],
    );
    let extra = proxy.settled_bytes_up() as i64 - plain_proxy.settled_bytes_up() as i64;
    eprintln!(
        "bytes up: {} without --modelpack, {} with it: {extra} more",
        plain_proxy.settled_bytes_up(),
        proxy.settled_bytes_up()
    );
    assert!(
        (0..64 * 1024).contains(&extra),
        "the ModelPack costs only its config and manifest, not a second upload: {extra} more bytes"
    );

    let pack_ref = format!("{}/llm/mistral:1-modelpack", registry.host());
    assert_eq!(
        report["modelpack"]["image"],
        format!("{}/llm/mistral:1-modelpack", proxy.host())
    );
    let modelcar = skopeo_raw_manifest(&format!("docker://{}/llm/mistral:1", registry.host()));
    let pack = skopeo_raw_manifest(&format!("docker://{pack_ref}"));
    assert_eq!(pack["artifactType"], ARTIFACT_TYPE);
    assert_eq!(
        pack["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(pack["config"]["mediaType"], CONFIG_TYPE);
    let car_layers: BTreeSet<String> = layer_digests(&modelcar).into_iter().collect();
    for digest in layer_digests(&pack) {
        assert!(
            car_layers.contains(&digest),
            "{digest} is a ModelCar layer too"
        );
    }

    // Roles and paths: each shard its own weight layer; the small files share one layer.
    let layers = pack["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3, "{pack:#}");
    let by_path = |path: &str| {
        layers
            .iter()
            .find(|l| l["annotations"]["org.cncf.model.filepath"] == path)
            .unwrap_or_else(|| panic!("no layer for {path}: {pack:#}"))
    };
    let shard = by_path("model-00001-of-00002.safetensors");
    assert_eq!(shard["mediaType"], WEIGHT);
    let metadata: Value = serde_json::from_str(
        shard["annotations"]["org.cncf.model.file.metadata+json"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let size = fs::metadata(model.join("model-00001-of-00002.safetensors"))
        .unwrap()
        .len();
    assert_eq!(metadata["size"], size);
    assert_eq!(metadata["mode"], 0o644);
    let small = layers
        .iter()
        .find(|l| l["mediaType"] == WEIGHT_CONFIG)
        .unwrap();
    let files: Value = serde_json::from_str(
        small["annotations"]["io.modelcar.layer.files"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(files.as_array().unwrap().len(), 5);

    // An independent reader: skopeo pulls the artifact; every file comes back byte for byte.
    let layout = tmp.path().join("pulled");
    skopeo_copy(
        &format!("docker://{pack_ref}"),
        &format!("oci:{}:pack", layout.display()),
    );
    let unpacked = tmp.path().join("unpacked");
    fs::create_dir_all(&unpacked).unwrap();
    for digest in layer_digests(&pack) {
        let tar = layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        let status = Command::new("tar")
            .args([
                "-xpf",
                tar.to_str().unwrap(),
                "-C",
                unpacked.to_str().unwrap(),
            ])
            .status()
            .unwrap();
        assert!(status.success());
    }
    assert_same_tree(&model, &unpacked.join("models"));

    // The config: valid against the spec's schema, and filled from the model.
    let config = blob(&layout, pack["config"]["digest"].as_str().unwrap());
    assert_valid_config(&config, tmp.path());
    let config: Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(config["descriptor"]["name"], "mistral-test");
    assert_eq!(config["descriptor"]["family"], "mistral");
    assert_eq!(config["descriptor"]["createdAt"], "1970-01-01T00:00:00Z");
    assert_eq!(
        config["config"],
        json!({"architecture": "transformer", "format": "safetensors",
               "paramSize": "1.6M", "precision": "bfloat16"})
    );
    assert_eq!(config["modelfs"]["type"], "layers");
    assert_eq!(config["modelfs"]["diffIds"], json!(layer_digests(&pack)));
}

#[test]
fn the_modelpack_tag_and_the_metadata_file() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("m");
    mistral_like(&model);
    let ws = tmp.path().join("ws");
    fs::create_dir_all(&ws).unwrap();
    let registry = Registry::start();
    let image = format!("{}/llm/mistral:w4a16", registry.host());
    let args = [
        model.to_str().unwrap(),
        &image,
        "--base",
        "scratch",
        "--modelpack=w4a16-pack",
        "--workspace",
        ws.to_str().unwrap(),
    ];
    let report = push_json(tmp.path(), &args);
    let pack = format!("{}/llm/mistral:w4a16-pack", registry.host());
    assert_eq!(report["modelpack"]["image"], pack);
    assert_eq!(report["destinations"][0]["modelpack"], pack);
    let meta: Value =
        serde_json::from_slice(&fs::read(ws.join(".modelcar/metadata.json")).unwrap()).unwrap();
    assert_eq!(meta["modelpack"]["image"], pack);
    assert_eq!(meta["modelpack"]["digest"], report["modelpack"]["digest"]);
    // A rerun sends no layer and pushes the same artifact.
    let again = push_json(tmp.path(), &args);
    assert_eq!(again["bytes_sent"], 0);
    assert_eq!(again["modelpack"]["digest"], report["modelpack"]["digest"]);
}

/// An OCI layout as olot wants it (a multi-arch index over one linux/amd64 image with one
/// base layer holding `models/`), written by hand: olot refuses a single-arch layout.
fn olot_base_layout(dir: &Path, work: &Path) {
    use modelcar_shared::digest::sha256_digest;
    let put = |bytes: &[u8]| -> Value {
        let digest = sha256_digest(bytes);
        let blobs = dir.join("blobs/sha256");
        fs::create_dir_all(&blobs).unwrap();
        fs::write(blobs.join(digest.trim_start_matches("sha256:")), bytes).unwrap();
        json!({"digest": digest, "size": bytes.len()})
    };
    fs::create_dir_all(work.join("base/models")).unwrap();
    let tar = work.join("base.tar");
    let status = Command::new("tar")
        .args([
            "-cf",
            tar.to_str().unwrap(),
            "--owner=0",
            "--group=0",
            "--mtime=@0",
            "-C",
        ])
        .arg(work.join("base"))
        .arg("models")
        .status()
        .unwrap();
    assert!(status.success());
    let layer = put(&fs::read(&tar).unwrap());
    let config = put(json!({"architecture": "amd64", "os": "linux", "config": {},
               "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
               "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "base"}]})
    .to_string()
    .as_bytes());
    let with = |mut d: Value, media_type: &str| {
        d["mediaType"] = json!(media_type);
        d
    };
    let manifest = put(
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
               "config": with(config, "application/vnd.oci.image.config.v1+json"),
               "layers": [with(layer, "application/vnd.oci.image.layer.v1.tar")]})
        .to_string()
        .as_bytes(),
    );
    let mut platform = with(manifest, "application/vnd.oci.image.manifest.v1+json");
    platform["platform"] = json!({"architecture": "amd64", "os": "linux"});
    let index = put(
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
               "manifests": [platform]})
        .to_string()
        .as_bytes(),
    );
    let mut tagged = with(index, "application/vnd.oci.image.index.v1+json");
    tagged["annotations"] = json!({"org.opencontainers.image.ref.name": "latest"});
    fs::write(
        dir.join("index.json"),
        json!({"schemaVersion": 2, "manifests": [tagged]}).to_string(),
    )
    .unwrap();
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

/// The manifest in `layout` whose index.json entry satisfies `pick`.
fn manifest_in(layout: &Path, pick: impl Fn(&Value) -> bool) -> Value {
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| pick(m))
        .unwrap_or_else(|| panic!("no such manifest in {index:#}"))
        .clone();
    serde_json::from_slice(&blob(layout, entry["digest"].as_str().unwrap())).unwrap()
}

/// The one file a layer holds: its bytes.
fn file_in_layer(layout: &Path, digest: &str, work: &Path) -> Vec<u8> {
    let dir = work.join(digest.trim_start_matches("sha256:"));
    fs::create_dir_all(&dir).unwrap();
    let tar = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let status = Command::new("tar")
        .args(["-xf", tar.to_str().unwrap(), "-C", dir.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut files = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p)
            } else {
                files.push(p)
            }
        }
    }
    assert_eq!(files.len(), 1, "one file per layer here");
    fs::read(&files[0]).unwrap()
}

/// olot 1.2.1 (`olot --add-modelpack`) and build-push (`--modelpack --layer-threshold 1`, so
/// that every file has its own layer as with olot) on the same files, field by field. Equal:
/// the manifest and config media types, artifactType, one layer per file with the same title
/// and the same file bytes inside, `modelfs.type`, and both configs valid. Different, each on
/// purpose (asserted, so a change on either side shows up here):
/// - layer media types: olot types every file `weight`; build-push types by role, as the spec
///   asks (config and tokenizer files `weight.config`, README `doc`);
/// - `diffIds`: olot writes bare hex; the spec's type is a digest (`sha256:<hex>`, as in its
///   example), which build-push writes;
/// - layer digests: olot's tars carry each file's on-disk mtime and owner name, build-push's
///   are reproducible (SOURCE_DATE_EPOCH, no names), so the blobs differ while the files in
///   them are the same;
/// - descriptor and config: olot leaves them empty; build-push fills name, family, createdAt,
///   architecture, format, paramSize, precision from the model;
/// - layer annotations: olot has only the title; build-push adds the spec's filepath, file
///   metadata and `mediatype.untested`;
/// - placement: olot adds the manifest untagged to index.json and to the image index;
///   build-push tags it `<tag>-modelpack` (in a registry, an index would change the ModelCar's
///   digest, which deploy and register pin).
#[test]
fn compared_with_olot_field_by_field() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("mistral-test");
    mistral_like(&model);
    let mut names: Vec<String> = fs::read_dir(&model)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();

    let olot_layout = tmp.path().join("olot");
    olot_base_layout(&olot_layout, tmp.path());
    let out = Command::new(python_tool("olot"))
        .arg("--add-modelpack")
        .arg("--root-dir")
        .arg(&model)
        .arg(&olot_layout)
        .args(names.iter().map(|n| model.join(n)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "olot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = manifest_in(&olot_layout, |m| {
        m["annotations"]["io.opendatahub.modelcar.manifest.type"] == "modelpack"
    });

    let ours_layout = tmp.path().join("ours");
    let dest = format!("oci:{}:1", ours_layout.display());
    let out = common::build_push(
        tmp.path(),
        &[
            model.to_str().unwrap(),
            &dest,
            "--base",
            "scratch",
            "--layer-threshold",
            "1",
            "--modelpack",
        ],
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    let ours = manifest_in(&ours_layout, |m| {
        m["annotations"]["org.opencontainers.image.ref.name"] == "1-modelpack"
    });

    for key in ["schemaVersion", "mediaType", "artifactType"] {
        assert_eq!(ours[key], theirs[key], "{key}");
    }
    assert_eq!(ours["config"]["mediaType"], theirs["config"]["mediaType"]);
    let by_title = |manifest: &Value| -> Vec<(String, Value)> {
        let mut layers: Vec<(String, Value)> = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["annotations"]["org.opencontainers.image.title"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                    l.clone(),
                )
            })
            .collect();
        layers.sort_by(|a, b| a.0.cmp(&b.0));
        layers
    };
    let (our_layers, their_layers) = (by_title(&ours), by_title(&theirs));
    let titles = |l: &[(String, Value)]| l.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>();
    assert_eq!(titles(&our_layers), names);
    assert_eq!(titles(&their_layers), names);
    for ((title, our), (_, their)) in our_layers.iter().zip(&their_layers) {
        let expected_role = match title.as_str() {
            t if t.ends_with(".safetensors") => WEIGHT,
            "README.md" => DOC,
            _ => WEIGHT_CONFIG,
        };
        assert_eq!(our["mediaType"], expected_role, "{title}: ours, by role");
        assert_eq!(
            their["mediaType"], WEIGHT,
            "{title}: olot types every file weight"
        );
        assert_ne!(
            our["digest"], their["digest"],
            "{title}: reproducible tar vs on-disk mtime"
        );
        assert_eq!(
            file_in_layer(
                &ours_layout,
                our["digest"].as_str().unwrap(),
                &tmp.path().join("x-ours")
            ),
            file_in_layer(
                &olot_layout,
                their["digest"].as_str().unwrap(),
                &tmp.path().join("x-olot")
            ),
            "{title}: the same bytes in both layers"
        );
        assert_eq!(
            their["annotations"].as_object().unwrap().len(),
            1,
            "olot: title only"
        );
        assert_eq!(
            our["annotations"]["org.cncf.model.filepath"],
            title.as_str()
        );
        assert_eq!(
            our["annotations"]["org.cncf.model.file.mediatype.untested"],
            "true"
        );
    }

    let our_config = blob(&ours_layout, ours["config"]["digest"].as_str().unwrap());
    let their_config = blob(&olot_layout, theirs["config"]["digest"].as_str().unwrap());
    assert_valid_config(&our_config, tmp.path());
    assert_valid_config(&their_config, tmp.path());
    let (our_config, their_config): (Value, Value) = (
        serde_json::from_slice(&our_config).unwrap(),
        serde_json::from_slice(&their_config).unwrap(),
    );
    assert_eq!(
        our_config["modelfs"]["type"],
        their_config["modelfs"]["type"]
    );
    let bare: Vec<Value> = layer_digests(&theirs)
        .iter()
        .map(|d| json!(d.trim_start_matches("sha256:")))
        .collect();
    assert_eq!(
        their_config["modelfs"]["diffIds"],
        json!(bare),
        "olot: bare hex"
    );
    assert_eq!(
        our_config["modelfs"]["diffIds"],
        json!(layer_digests(&ours)),
        "ours: sha256:<hex>"
    );
    assert_eq!(their_config["descriptor"], json!({}));
    assert_eq!(their_config["config"], json!({}));
    assert_eq!(our_config["descriptor"]["family"], "mistral");
    assert_eq!(our_config["config"]["format"], "safetensors");
}
