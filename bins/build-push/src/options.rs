//! What one build-push run is asked to do: the model source, the destinations, the base and
//! how to reach each, the layer rules, the labels, and where results are recorded.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use modelcar_shared::hub::HubOptions;
use modelcar_shared::oci::Platform;
use modelcar_shared::registry::ConnectOptions;
use modelcar_shared::selection::Rules;
use modelcar_shared::transfer::{DestSpec, UploadLog, UploadMethod};
use modelcar_shared::Workspace;

use crate::hub_source::HubSpec;

/// What the image is made from.
pub enum ModelSource {
    /// A model directory (fetch-model's, or any).
    Dir(PathBuf),
    /// `hf://ORG/REPO[@REV]`: streamed from the Hub, the files chosen as fetch-model chooses.
    Hub(Box<HubInput>),
}

pub struct HubInput {
    pub spec: HubSpec,
    pub options: HubOptions,
    pub rules: Rules,
}

pub struct Options {
    pub source: ModelSource,
    /// Where to push; each layer is read once and sent to all of them.
    pub dests: Vec<DestSpec>,
    pub base: String,
    pub platform: Platform,
    pub prefix: String,
    pub layer_threshold: u64,
    /// Layers the whole image may have, the base's included.
    pub max_layers: usize,
    /// `--max-layer-size`: the most bytes a layer may hold (default: the destinations'
    /// documented limits: `limits::layer_size_limit`).
    pub max_layer_size: Option<u64>,
    pub upload_method: UploadMethod,
    pub jobs: usize,
    pub user: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub source_date_epoch: u64,
    /// How to reach the destination registry.
    pub connect: ConnectOptions,
    /// How to reach the base image's registry.
    pub base_connect: ConnectOptions,
    /// Where the result is recorded (metadata file) and the digest cache kept.
    pub workspace: Option<Workspace>,
    /// The digest cache file; `None` disables it.
    pub cache_path: Option<PathBuf>,
    /// Where open uploads are logged, so that a rerun resumes them at the byte.
    pub uploads: UploadLog,
    pub progress_every: Duration,
    /// `--modelpack[=TAG]`: also push a CNCF ModelPack artifact over the same layer blobs.
    pub modelpack: Option<ModelPackTag>,
}

/// Where `--modelpack[=TAG]` tags the ModelPack artifact, in each destination's repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelPackTag {
    /// `<tag>-modelpack`, beside the image's tag (the bare flag).
    Suffixed,
    /// `--modelpack=TAG`.
    Named(String),
}

impl ModelPackTag {
    /// The flag's value, as a shell or a Tekton param gives it: the bare flag, `true` or an
    /// empty value push one beside the image; `false` pushes none; anything else is the tag.
    pub fn from_flag(value: &str) -> Option<Self> {
        match value {
            "false" => None,
            "" | "true" => Some(Self::Suffixed),
            tag => Some(Self::Named(tag.to_string())),
        }
    }

    /// The artifact's tag beside an image tagged `image_tag`.
    pub fn tag_beside(&self, image_tag: &str) -> String {
        match self {
            Self::Suffixed => format!("{image_tag}-modelpack"),
            Self::Named(tag) => tag.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ModelPackTag;

    #[test]
    fn modelpack_flag_values() {
        assert_eq!(ModelPackTag::from_flag("false"), None);
        for bare in ["", "true"] {
            let tag = ModelPackTag::from_flag(bare).unwrap();
            assert_eq!(tag.tag_beside("v1"), "v1-modelpack");
        }
        let named = ModelPackTag::from_flag("pack-1").unwrap();
        assert_eq!(named.tag_beside("v1"), "pack-1");
    }
}
