//! The KServe `serving.kserve.io/v1beta1` InferenceService that serves a ModelCar with vLLM:
//! `spec.predictor.model` names the ServingRuntime, the model format and the `oci://` storage
//! URI, carries vLLM's arguments and the GPU resources (`nvidia.com/gpu` in requests and
//! limits alike, as the device plugin requires), and the predictor is placed with a node
//! selector and tolerations.

use serde_json::{json, Map, Value};

use crate::spec::{ServeSpec, Toleration};

/// The InferenceService for `spec`.
pub fn inference_service(spec: &ServeSpec) -> Value {
    let mut predictor = Map::new();
    predictor.insert("model".into(), model(spec));
    if let Some(replicas) = spec.replicas {
        predictor.insert("minReplicas".into(), json!(replicas));
        predictor.insert("maxReplicas".into(), json!(replicas));
    }
    predictor.extend(placement(spec));
    json!({
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": metadata(spec),
        "spec": { "predictor": predictor },
    })
}

/// Name, namespace, the labels (with deploy's own) and annotations.
pub(crate) fn metadata(spec: &ServeSpec) -> Map<String, Value> {
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(spec.name));
    metadata.insert("namespace".into(), json!(spec.namespace));
    let mut labels = spec.labels.clone();
    labels.insert("app.kubernetes.io/managed-by".into(), "modelcar".into());
    metadata.insert("labels".into(), json!(labels));
    if !spec.annotations.is_empty() {
        metadata.insert("annotations".into(), json!(spec.annotations));
    }
    metadata
}

/// Where the pods may run and as whom: node selector, tolerations, service account (the
/// PodSpec fields of both kinds, and of the prewarm DaemonSet's pods).
pub(crate) fn placement(spec: &ServeSpec) -> Map<String, Value> {
    let mut fields = Map::new();
    if !spec.node_selector.is_empty() {
        fields.insert("nodeSelector".into(), json!(spec.node_selector));
    }
    if !spec.tolerations.is_empty() {
        let tolerations: Vec<Value> = spec.tolerations.iter().map(Toleration::to_json).collect();
        fields.insert("tolerations".into(), Value::Array(tolerations));
    }
    if let Some(sa) = &spec.service_account {
        fields.insert("serviceAccountName".into(), json!(sa));
    }
    fields
}

fn model(spec: &ServeSpec) -> Value {
    json!({
        "modelFormat": { "name": spec.model_format },
        "runtime": spec.runtime,
        "storageUri": spec.storage_uri,
        "args": vllm_args(spec),
        "resources": resources(spec),
    })
}

/// vLLM's own flags first, then what `--arg` added (which vLLM lets override).
fn vllm_args(spec: &ServeSpec) -> Vec<String> {
    let mut args = vec![format!("--tensor-parallel-size={}", tensor_parallel(spec))];
    args.extend(vllm_flags(spec));
    args
}

/// `--tensor-parallel`, else one rank per GPU.
pub(crate) fn tensor_parallel(spec: &ServeSpec) -> u32 {
    spec.tensor_parallel.unwrap_or(spec.gpus.max(1))
}

/// The vLLM flags besides the tensor-parallel size.
pub(crate) fn vllm_flags(spec: &ServeSpec) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(len) = spec.max_model_len {
        args.push(format!("--max-model-len={len}"));
    }
    if let Some(share) = spec.gpu_memory_utilization {
        args.push(format!("--gpu-memory-utilization={share}"));
    }
    args.extend(spec.args.iter().cloned());
    args
}

/// Requests equal limits: a GPU cannot be overcommitted, and the predictor's memory is not
/// to be squeezed when the node fills up.
pub(crate) fn resources(spec: &ServeSpec) -> Value {
    let mut amounts = Map::new();
    if let Some(cpu) = &spec.cpu {
        amounts.insert("cpu".into(), json!(cpu));
    }
    if let Some(memory) = &spec.memory {
        amounts.insert("memory".into(), json!(memory));
    }
    if spec.gpus > 0 {
        amounts.insert("nvidia.com/gpu".into(), json!(spec.gpus.to_string()));
    }
    json!({ "requests": amounts, "limits": amounts })
}
