//! Which KServe resource serves the model: the InferenceService (`serving.kserve.io/v1beta1`,
//! a ServingRuntime picks the server) or the LLMInferenceService (`v1alpha2`, the storage
//! version of its CRD: KServe's resource for vLLM via llm-d, configured by presets). Each
//! names its API, its manifest, and the labels of the pods it runs.

use std::fmt;

use kube::api::ApiResource;
use serde_json::Value;

use crate::spec::{ServeSpec, ServedKind};
use crate::{cluster, llm_manifest, manifest};

impl ServedKind {
    /// The kind as the API names it.
    pub fn name(self) -> &'static str {
        match self {
            ServedKind::InferenceService => "InferenceService",
            ServedKind::LlmInferenceService => "LLMInferenceService",
        }
    }

    pub fn api_resource(self) -> ApiResource {
        let (version, plural) = match self {
            ServedKind::InferenceService => ("v1beta1", "inferenceservices"),
            ServedKind::LlmInferenceService => ("v1alpha2", "llminferenceservices"),
        };
        cluster::kserve(version, self.name(), plural)
    }

    /// The object deploy applies for `spec`.
    pub fn manifest(self, spec: &ServeSpec) -> Value {
        match self {
            ServedKind::InferenceService => manifest::inference_service(spec),
            ServedKind::LlmInferenceService => llm_manifest::llm_inference_service(spec),
        }
    }

    /// The label selector of the pods that serve `name`: KServe's
    /// `serving.kserve.io/inferenceservice` label, or the LLMInferenceService workload's
    /// (`singleNodeLabels` in `pkg/controller/v1alpha2/llmisvc/workload_single_node.go`).
    pub fn pod_selector(self, name: &str) -> String {
        match self {
            ServedKind::InferenceService => format!("serving.kserve.io/inferenceservice={name}"),
            ServedKind::LlmInferenceService => format!(
                "app.kubernetes.io/name={name},app.kubernetes.io/part-of=llminferenceservice"
            ),
        }
    }
}

impl fmt::Display for ServedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
