//! The CNCF ModelPack artifact (modelpack/model-spec `docs/spec.md`, `docs/config.md`,
//! `docs/annotations.md`) beside the ModelCar: an OCI image manifest with `artifactType`
//! `application/vnd.cncf.model.manifest.v1+json` whose layers are the ModelCar's own model
//! layer blobs, typed by role, and whose config describes the model. It costs one small
//! config blob and one manifest: nothing is uploaded twice.

mod facts;
mod read;
mod roles;

pub use facts::ModelFacts;
pub use roles::Role;

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use serde_json::{json, Map};

use modelcar_shared::digest::sha256_digest;
use modelcar_shared::hub::HubRevision;
use modelcar_shared::oci::{Descriptor, ImageManifest, ANNOTATION_TITLE, OCI_MANIFEST};

use crate::hub_source::HubSource;
use crate::image::ImageInfo;
use crate::layers::ModelLayer;
use crate::plan::{Entry, EntryKind};
use crate::tar_stream::FILE_MODE;

pub const ARTIFACT_TYPE: &str = "application/vnd.cncf.model.manifest.v1+json";
pub const CONFIG_TYPE: &str = "application/vnd.cncf.model.config.v1+json";
const FILEPATH: &str = "org.cncf.model.filepath";
const FILE_METADATA: &str = "org.cncf.model.file.metadata+json";
const UNTESTED: &str = "org.cncf.model.file.mediatype.untested";
/// The files of a layer that holds several (the ModelCar's layer of small files): the spec's
/// `filepath` names one path, so those layers list theirs here.
const FILES: &str = "io.modelcar.layer.files";

/// Largest safetensors header read for the parameter count (real ones are well under 1 MiB).
const MAX_HEADER: u64 = 16 << 20;

/// The model files of a layer: (path in the model, entry).
fn files<'a>(layer: &'a ModelLayer, prefix: &'a str) -> impl Iterator<Item = (String, &'a Entry)> {
    let root = Path::new(prefix.trim_start_matches('/'));
    layer
        .plan
        .entries
        .iter()
        .filter(|entry| {
            matches!(
                entry.kind,
                EntryKind::File { .. } | EntryKind::HubFile { .. }
            )
        })
        .map(move |entry| {
            let path = entry
                .image_path
                .strip_prefix(root)
                .unwrap_or(&entry.image_path);
            (path.to_string_lossy().into_owned(), entry)
        })
}

/// Reads what the model says about itself: `config.json` and the safetensors headers. A file
/// that cannot be read leaves its facts out (they are optional in the spec), with a warning.
pub async fn gather_facts(
    layers: &[ModelLayer],
    prefix: &str,
    hub: Option<&HubSource>,
) -> ModelFacts {
    let mut facts = ModelFacts::default();
    let all: Vec<(String, &Entry)> = layers.iter().flat_map(|l| files(l, prefix)).collect();
    facts.read_format(all.iter().map(|(path, _)| path.as_str()));
    if let Some((_, config)) = all.iter().find(|(path, _)| path == "config.json") {
        match read::read_prefix(&config.kind, hub, 1 << 20).await {
            Ok(bytes) => facts.read_config(&bytes),
            Err(e) => tracing::warn!("ModelPack config: cannot read config.json: {e}"),
        }
    }
    let shards = all.iter().filter(|(p, _)| p.ends_with(".safetensors"));
    let mut parameters = Some(0u64);
    for (path, entry) in shards {
        let count = match safetensors_parameters(entry, hub).await {
            Ok(count) => count,
            Err(e) => {
                tracing::warn!("ModelPack config: no parameter count from {path}: {e}");
                None
            }
        };
        parameters = parameters.zip(count).map(|(a, b)| a + b);
    }
    facts.parameters = parameters.filter(|n| *n > 0);
    facts
}

async fn safetensors_parameters(
    entry: &Entry,
    hub: Option<&HubSource>,
) -> Result<Option<u64>, String> {
    let prefix = read::read_prefix(&entry.kind, hub, 8).await?;
    let Some(len) = facts::safetensors_header_len(&prefix).filter(|l| *l <= MAX_HEADER) else {
        return Ok(None);
    };
    let bytes = read::read_prefix(&entry.kind, hub, 8 + len).await?;
    Ok(bytes.get(8..).and_then(facts::safetensors_parameters))
}

/// Who the model is, for the config's `descriptor`.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    pub name: String,
    /// `(repo, commit sha)` when the model came from the Hub.
    pub hub: Option<HubRevision>,
}

/// The config and manifest blobs, with their descriptors.
pub struct ModelPack {
    pub config: Bytes,
    pub config_desc: Descriptor,
    pub manifest: Bytes,
    pub manifest_desc: Descriptor,
}

/// The ModelPack for `layers`, which were pushed as `pushed` (the ModelCar's model layer
/// descriptors, in the same order).
pub fn build(
    layers: &[ModelLayer],
    pushed: &[Descriptor],
    prefix: &str,
    facts: &ModelFacts,
    provenance: &Provenance,
    info: &ImageInfo,
) -> ModelPack {
    // A layer of directories only (the prefix alone) holds no model file: not the model's.
    let (layers, pushed): (Vec<&ModelLayer>, Vec<Descriptor>) = layers
        .iter()
        .zip(pushed)
        .filter(|(layer, _)| files(layer, prefix).next().is_some())
        .map(|(layer, desc)| (layer, desc.clone()))
        .unzip();
    let config = Bytes::from(config_json(&pushed, facts, provenance, info));
    let config_desc = Descriptor::new(CONFIG_TYPE, sha256_digest(&config), config.len() as u64);
    let layer_descs = layers
        .iter()
        .zip(&pushed)
        .map(|(layer, desc)| layer_descriptor(layer, desc, prefix, info))
        .collect();
    let annotations = info
        .annotations
        .iter()
        .filter(|(k, _)| !k.starts_with("org.opencontainers.image.base."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        config: config_desc.clone(),
        layers: layer_descs,
        annotations,
        extra: Map::from_iter([("artifactType".to_string(), ARTIFACT_TYPE.into())]),
    };
    let manifest = Bytes::from(serde_json::to_vec(&manifest).expect("a manifest serializes"));
    let manifest_desc = Descriptor::new(
        OCI_MANIFEST,
        sha256_digest(&manifest),
        manifest.len() as u64,
    );
    ModelPack {
        config,
        config_desc,
        manifest,
        manifest_desc,
    }
}

fn layer_descriptor(
    layer: &ModelLayer,
    pushed: &Descriptor,
    prefix: &str,
    info: &ImageInfo,
) -> Descriptor {
    let files: Vec<(String, &Entry)> = files(layer, prefix).collect();
    let role = Role::of_layer(files.iter().map(|(p, _)| p.as_str()));
    let mut desc = Descriptor::new(role.tar_media_type(), pushed.digest.clone(), pushed.size);
    let notes = &mut desc.annotations;
    notes.insert(UNTESTED.into(), "true".into());
    match files.as_slice() {
        [(path, entry)] => {
            let name = path.rsplit('/').next().unwrap_or(path).to_string();
            notes.insert(ANNOTATION_TITLE.into(), name.clone());
            notes.insert(FILEPATH.into(), path.clone());
            notes.insert(FILE_METADATA.into(), file_metadata(&name, entry, info));
        }
        many => {
            notes.insert(ANNOTATION_TITLE.into(), layer.plan.title.clone());
            let paths: Vec<&str> = many.iter().map(|(p, _)| p.as_str()).collect();
            notes.insert(FILES.into(), json!(paths).to_string());
        }
    }
    desc
}

/// The spec's FileMetadata of the one file in a layer, as the tar header has it: build-push
/// writes every model file with FILE_MODE, owned by 0:0, with the image's timestamp.
fn file_metadata(name: &str, entry: &Entry, info: &ImageInfo) -> String {
    let size = match &entry.kind {
        EntryKind::File { size, .. } | EntryKind::HubFile { size, .. } => *size,
        _ => 0,
    };
    json!({
        "name": name, "mode": FILE_MODE, "uid": 0, "gid": 0, "size": size,
        "mtime": info.created, "typeflag": b'0',
    })
    .to_string()
}

fn config_json(
    pushed: &[Descriptor],
    facts: &ModelFacts,
    provenance: &Provenance,
    info: &ImageInfo,
) -> Vec<u8> {
    let mut descriptor = BTreeMap::new();
    descriptor.insert("createdAt", json!(info.created));
    descriptor.insert("name", json!(provenance.name));
    if let Some(family) = &facts.family {
        descriptor.insert("family", json!(family));
    }
    if let Some(hub) = &provenance.hub {
        descriptor.insert("sourceURL", json!(hub.source_url()));
        descriptor.insert("revision", json!(hub.sha));
    }
    let mut config = BTreeMap::new();
    let fields = [
        ("architecture", facts.architecture.clone()),
        ("format", facts.format.clone()),
        ("paramSize", facts.param_size()),
        ("precision", facts.precision.clone()),
        ("quantization", facts.quantization.clone()),
    ];
    for (key, value) in fields {
        if let Some(value) = value {
            config.insert(key, json!(value));
        }
    }
    let diff_ids: Vec<&str> = pushed.iter().map(|d| d.digest.as_str()).collect();
    let model = json!({
        "descriptor": descriptor,
        "modelfs": {"type": "layers", "diffIds": diff_ids},
        "config": config,
    });
    serde_json::to_vec(&model).expect("a config serializes")
}
