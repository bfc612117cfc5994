//! What each file of a model is to a ModelPack reader (model-spec `docs/spec.md`, "Layer
//! media types"): weights, the configuration that goes with them (config, tokenizer,
//! generation settings), documentation, or code. Decided from the file name, so the layers
//! carry `org.cncf.model.file.mediatype.untested: "true"` as the spec asks of a guess.

use std::path::Path;

/// A layer's role, in the spec's media type names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Weight,
    WeightConfig,
    Doc,
    Code,
}

/// File extensions of weights in the formats vLLM and the spec's `config.format` know.
const WEIGHT_EXTENSIONS: [&str; 8] = [
    "safetensors",
    "bin",
    "pt",
    "pth",
    "gguf",
    "onnx",
    "h5",
    "msgpack",
];

impl Role {
    /// The role of one file, by its path in the model.
    pub fn of_file(path: &str) -> Self {
        let name = Path::new(path)
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let extension = name.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
        let stem_is = |prefix: &str| name.starts_with(prefix);
        if WEIGHT_EXTENSIONS.contains(&extension) {
            Role::Weight
        } else if extension == "md" || stem_is("readme") || stem_is("license") || stem_is("notice")
        {
            Role::Doc
        } else if extension == "py" {
            Role::Code
        } else {
            // config.json, tokenizer files (including vocab.txt and merges.txt), chat templates,
            // the safetensors index: all read together with the weights.
            Role::WeightConfig
        }
    }

    /// The role of a layer holding `files` (the ModelCar's layer of small files holds many):
    /// theirs if they agree; weights if any is a weight; else configuration, which is what a
    /// reader needs from a layer of small files most.
    pub fn of_layer<'a>(files: impl IntoIterator<Item = &'a str>) -> Self {
        let roles: Vec<Role> = files.into_iter().map(Role::of_file).collect();
        match roles.first() {
            Some(first) if roles.iter().all(|r| r == first) => *first,
            _ if roles.contains(&Role::Weight) => Role::Weight,
            _ => Role::WeightConfig,
        }
    }

    /// The uncompressed-tar media type: the ModelCar's layers are plain tars, and the
    /// ModelPack manifest points at the very same blobs.
    pub fn tar_media_type(self) -> &'static str {
        match self {
            Role::Weight => "application/vnd.cncf.model.weight.v1.tar",
            Role::WeightConfig => "application/vnd.cncf.model.weight.config.v1.tar",
            Role::Doc => "application/vnd.cncf.model.doc.v1.tar",
            Role::Code => "application/vnd.cncf.model.code.v1.tar",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Role::{self, *};

    #[test]
    fn files_are_classified_by_name() {
        for (path, role) in [
            ("model-00001-of-00010.safetensors", Weight),
            ("original/consolidated.00.pth", Weight),
            ("model.safetensors.index.json", WeightConfig),
            ("config.json", WeightConfig),
            ("tokenizer.json", WeightConfig),
            ("merges.txt", WeightConfig),
            ("README.md", Doc),
            ("LICENSE", Doc),
            ("modeling_custom.py", Code),
        ] {
            assert_eq!(Role::of_file(path), role, "{path}");
        }
    }

    #[test]
    fn a_layer_of_mixed_small_files_is_configuration() {
        assert_eq!(Role::of_layer(["README.md", "LICENSE"]), Doc);
        assert_eq!(Role::of_layer(["config.json", "README.md"]), WeightConfig);
        assert_eq!(Role::of_layer(["a.safetensors", "config.json"]), Weight);
    }
}
