//! The KServe `serving.kserve.io/v1alpha2` LLMInferenceService that serves a ModelCar with
//! vLLM (kserve/kserve `pkg/apis/serving/v1alpha2/llm_inference_service_types.go`):
//! `spec.model.uri` is the `oci://` image and `spec.model.name` the name vLLM serves it
//! under; `spec.parallelism.tensor` becomes `--tensor-parallel-size` in the preset's
//! `vllm serve` command (`config/llmisvcconfig/config-llm-template.yaml`), and the other vLLM
//! flags go in `VLLM_ADDITIONAL_ARGS`, which that command appends. The server container is
//! `main`, the name the presets merge into; its image comes from the preset unless
//! `--runtime-image` names one.

use serde_json::{json, Map, Value};

use crate::manifest::{metadata, placement, resources, tensor_parallel, vllm_flags};
use crate::spec::{LlmRouter, ServeSpec};

/// The container the LLMInferenceService presets merge their server settings into.
pub const MAIN_CONTAINER: &str = "main";

/// The LLMInferenceService for `spec`.
pub fn llm_inference_service(spec: &ServeSpec) -> Value {
    let mut body = Map::new();
    body.insert(
        "model".into(),
        json!({"uri": spec.storage_uri, "name": spec.name}),
    );
    if let Some(replicas) = spec.replicas {
        body.insert("replicas".into(), json!(replicas));
    }
    body.insert(
        "parallelism".into(),
        json!({"tensor": tensor_parallel(spec)}),
    );
    if !spec.llm_configs.is_empty() {
        let refs: Vec<Value> = spec
            .llm_configs
            .iter()
            .map(|n| json!({"name": n}))
            .collect();
        body.insert("baseRefs".into(), Value::Array(refs));
    }
    let mut template = Map::new();
    template.insert("containers".into(), json!([main_container(spec)]));
    template.extend(placement(spec));
    body.insert("template".into(), Value::Object(template));
    match spec.router {
        LlmRouter::Route => body.insert("router".into(), json!({"route": {}})),
        LlmRouter::Scheduler => body.insert("router".into(), json!({"route": {}, "scheduler": {}})),
        LlmRouter::None => None,
    };
    json!({
        "apiVersion": "serving.kserve.io/v1alpha2",
        "kind": "LLMInferenceService",
        "metadata": metadata(spec),
        "spec": body,
    })
}

/// `main`: the image if given, vLLM's flags, the GPUs and memory.
fn main_container(spec: &ServeSpec) -> Value {
    let mut container = Map::new();
    container.insert("name".into(), json!(MAIN_CONTAINER));
    if let Some(image) = &spec.runtime_image {
        container.insert("image".into(), json!(image));
    }
    let flags = vllm_flags(spec);
    if !flags.is_empty() {
        // The preset's command `eval`s this string: flags only, separated by spaces.
        let env = json!([{"name": "VLLM_ADDITIONAL_ARGS", "value": flags.join(" ")}]);
        container.insert("env".into(), env);
    }
    container.insert("resources".into(), resources(spec));
    Value::Object(container)
}
