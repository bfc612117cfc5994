//! The image config and manifest (`docs/design.md`, "The ModelCar image"): the base's config with the model layers
//! added (diff_ids, history), the user and labels set; a manifest over base and model layers
//! with the provenance annotations.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use modelcar_shared::oci::{Descriptor, ImageManifest, OCI_CONFIG, OCI_MANIFEST};

/// What the user and the metadata file say about the image.
#[derive(Debug, Clone, Default)]
pub struct ImageInfo {
    pub user: String,
    /// RFC 3339, from SOURCE_DATE_EPOCH, so rebuilds are identical.
    pub created: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// The config: `base` plus the model layers, whose digests are their diff_ids (uncompressed).
pub fn config_json(
    mut base: Map<String, Value>,
    layers: &[Descriptor],
    info: &ImageInfo,
) -> Vec<u8> {
    base.insert("created".into(), info.created.clone().into());
    let runtime = object_at(&mut base, "config");
    runtime.insert("User".into(), info.user.clone().into());
    if !info.labels.is_empty() {
        let labels = object_at(runtime, "Labels");
        for (k, v) in &info.labels {
            labels.insert(k.clone(), v.clone().into());
        }
    }
    let rootfs = object_at(&mut base, "rootfs");
    rootfs.insert("type".into(), "layers".into());
    let diff_ids = array_at(rootfs, "diff_ids");
    let base_layer_count = diff_ids.len();
    diff_ids.extend(layers.iter().map(|l| Value::from(l.digest.to_string())));
    // History must line up with the layers; add ours only where the base's does (or is empty).
    let history = array_at(&mut base, "history");
    let base_history_layers = history
        .iter()
        .filter(|h| h.get("empty_layer") != Some(&Value::Bool(true)))
        .count();
    if base_history_layers == base_layer_count {
        history.extend(layers.iter().map(|l| {
            json!({
                "created": info.created,
                "created_by": "modelcar build-push",
                "comment": l.annotations.get(modelcar_shared::oci::ANNOTATION_TITLE).cloned().unwrap_or_default(),
            })
        }));
    }
    serde_json::to_vec(&Value::Object(base)).expect("a config always serializes")
}

pub fn manifest_json(
    config: Descriptor,
    layers: Vec<Descriptor>,
    annotations: BTreeMap<String, String>,
) -> Vec<u8> {
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        config: Descriptor {
            media_type: OCI_CONFIG.into(),
            ..config
        },
        layers,
        annotations,
        extra: Map::new(),
    };
    serde_json::to_vec(&manifest).expect("a manifest always serializes")
}

fn object_at<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = map.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut().expect("made an object above")
}

fn array_at<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Vec<Value> {
    let slot = map.entry(key).or_insert_with(|| Value::Array(Vec::new()));
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    slot.as_array_mut().expect("made an array above")
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelcar_shared::oci::ANNOTATION_TITLE;

    #[test]
    fn model_layers_are_appended_to_the_base_config() {
        let base = json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Env": ["PATH=/bin"], "Labels": {"base": "yes"}},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:base"]},
            "history": [{"created_by": "base"}, {"created_by": "env", "empty_layer": true}],
            "future_field": 1
        });
        let model = modelcar_shared::digest::sha256_digest(b"model");
        let mut layer = Descriptor::new("t", model.clone(), 10);
        layer
            .annotations
            .insert(ANNOTATION_TITLE.into(), "/models".into());
        let info = ImageInfo {
            user: "1001".into(),
            created: "1970-01-01T00:00:00Z".into(),
            labels: [("k".to_string(), "v".to_string())].into(),
            ..Default::default()
        };
        let bytes = config_json(base.as_object().unwrap().clone(), &[layer], &info);
        let c: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            c["rootfs"]["diff_ids"],
            json!(["sha256:base", model.to_string()])
        );
        assert_eq!(c["config"]["User"], "1001");
        assert_eq!(c["config"]["Env"][0], "PATH=/bin");
        assert_eq!(c["config"]["Labels"], json!({"base": "yes", "k": "v"}));
        assert_eq!(c["history"][2]["comment"], "/models");
        assert_eq!(c["future_field"], 1);
        assert_eq!(c["created"], "1970-01-01T00:00:00Z");
    }
}
