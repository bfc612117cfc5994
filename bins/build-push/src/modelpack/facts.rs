//! What a model tells about itself, for the ModelPack config: family, architecture,
//! precision and quantization from Hugging Face's `config.json`, the weight format from the
//! file names, and the parameter count from the safetensors headers (each shard starts with a
//! JSON table of its tensors' shapes, so no weight byte is read).

use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelFacts {
    /// `model_type`, e.g. `mistral`.
    pub family: Option<String>,
    /// `transformer` when the config has attention heads.
    pub architecture: Option<String>,
    /// `torch_dtype`, e.g. `bfloat16`.
    pub precision: Option<String>,
    /// `quantization_config.quant_method`, e.g. `compressed-tensors`, `gptq`, `awq`.
    pub quantization: Option<String>,
    /// `safetensors`, `gguf`, `onnx` or `pt`.
    pub format: Option<String>,
    /// Parameters, summed over the safetensors headers; `None` when unknown, or when the
    /// weights are quantized and packed (a packed tensor's shape is not its parameter count).
    pub parameters: Option<u64>,
}

impl ModelFacts {
    /// Reads `config.json` (its bytes) into the fields it holds.
    pub fn read_config(&mut self, config: &[u8]) {
        let Ok(config) = serde_json::from_slice::<Value>(config) else {
            return;
        };
        let text = |v: &Value| v.as_str().map(str::to_owned);
        self.family = config.get("model_type").and_then(text);
        self.precision = config.get("torch_dtype").and_then(text);
        self.quantization = config
            .pointer("/quantization_config/quant_method")
            .and_then(text);
        let attention = ["num_attention_heads", "n_head", "n_heads"];
        if attention.iter().any(|k| config.get(*k).is_some()) {
            self.architecture = Some("transformer".into());
        }
    }

    /// The weight format named by the weight files' extensions.
    pub fn read_format<'a>(&mut self, weight_files: impl IntoIterator<Item = &'a str>) {
        let mut seen = None;
        for path in weight_files {
            let format = match path.rsplit_once('.').map(|(_, e)| e) {
                Some("safetensors") => "safetensors",
                Some("gguf") => "gguf",
                Some("onnx") => "onnx",
                Some("bin" | "pt" | "pth") => "pt",
                _ => continue,
            };
            // safetensors first: vLLM takes it over the others when both are there.
            if seen.is_none() || format == "safetensors" {
                seen = Some(format);
            }
        }
        self.format = seen.map(str::to_owned);
    }

    /// `paramSize` as the spec writes it: at most one decimal and a scale, e.g. `23.6B`.
    pub fn param_size(&self) -> Option<String> {
        let count = self.parameters.filter(|_| self.quantization.is_none())? as f64;
        let (value, scale) = [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")]
            .into_iter()
            .find(|(unit, _)| count >= *unit)
            .map_or((count, ""), |(unit, scale)| (count / unit, scale));
        let rounded = format!("{value:.1}");
        Some(format!("{}{scale}", rounded.trim_end_matches(".0")))
    }
}

/// The length of a safetensors header, from the file's first 8 bytes (little-endian u64).
pub fn safetensors_header_len(prefix: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(prefix.get(..8)?.try_into().ok()?))
}

/// The number of parameters in a safetensors header (the JSON after the length).
pub fn safetensors_parameters(header: &[u8]) -> Option<u64> {
    let table: serde_json::Map<String, Value> = serde_json::from_slice(header).ok()?;
    table
        .iter()
        .filter(|(name, _)| *name != "__metadata__")
        .map(|(_, tensor)| {
            tensor
                .get("shape")?
                .as_array()?
                .iter()
                .map(Value::as_u64)
                .product::<Option<u64>>()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_json_gives_family_precision_and_quantization() {
        let mut facts = ModelFacts::default();
        facts.read_config(
            br#"{"model_type":"mistral","torch_dtype":"bfloat16","num_attention_heads":32,
                 "quantization_config":{"quant_method":"compressed-tensors"}}"#,
        );
        assert_eq!(facts.family.as_deref(), Some("mistral"));
        assert_eq!(facts.architecture.as_deref(), Some("transformer"));
        assert_eq!(facts.precision.as_deref(), Some("bfloat16"));
        assert_eq!(facts.quantization.as_deref(), Some("compressed-tensors"));
        facts.read_format(["model-00001-of-00002.safetensors", "consolidated.00.pth"]);
        assert_eq!(facts.format.as_deref(), Some("safetensors"));
    }

    #[test]
    fn parameters_come_from_the_headers() {
        let header = br#"{"__metadata__":{"format":"pt"},
            "a":{"dtype":"BF16","shape":[5120,32768],"data_offsets":[0,1]},
            "b":{"dtype":"BF16","shape":[5120],"data_offsets":[1,2]}}"#;
        assert_eq!(safetensors_parameters(header), Some(5120 * 32768 + 5120));
        let mut prefix = 1234u64.to_le_bytes().to_vec();
        prefix.push(b'{');
        assert_eq!(safetensors_header_len(&prefix), Some(1234));
        let facts = ModelFacts {
            parameters: Some(23_572_403_200),
            ..Default::default()
        };
        assert_eq!(facts.param_size().as_deref(), Some("23.6B"));
        let small = ModelFacts {
            parameters: Some(7_000_000),
            ..Default::default()
        };
        assert_eq!(small.param_size().as_deref(), Some("7M"));
        let packed = ModelFacts {
            parameters: Some(7_000_000),
            quantization: Some("gptq".into()),
            ..Default::default()
        };
        assert_eq!(packed.param_size(), None);
    }
}
