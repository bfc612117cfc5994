//! What deploy is asked to serve, and how: the inputs every manifest is made from (the
//! kind, the image, vLLM's settings, the GPUs and the placement), apart from the manifests
//! themselves.

use std::collections::BTreeMap;

use clap::ValueEnum;
use serde_json::{json, Map, Value};

/// Which KServe resource serves the model ([`crate::kind`] has what each one is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ServedKind {
    /// serving.kserve.io/v1beta1 InferenceService.
    #[default]
    #[value(name = "inferenceservice", alias = "isvc")]
    InferenceService,
    /// serving.kserve.io/v1alpha2 LLMInferenceService.
    #[value(name = "llminferenceservice", alias = "llmisvc")]
    LlmInferenceService,
}

/// How requests reach the replicas (`spec.router`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LlmRouter {
    /// An HTTPRoute on KServe's Gateway (Gateway API), spread by the Service.
    #[default]
    Route,
    /// As route, plus llm-d's scheduler (the inference extension) picking the replica.
    Scheduler,
    /// No router: only the workload and its Service.
    None,
}

/// Everything the manifest is made of.
#[derive(Debug, Clone, Default)]
pub struct ServeSpec {
    pub kind: ServedKind,
    pub name: String,
    pub namespace: String,
    pub storage_uri: String,
    /// InferenceService: the ServingRuntime and the model format it declares.
    pub runtime: String,
    pub model_format: String,
    /// LLMInferenceService: the server image, when not the preset's, the
    /// LLMInferenceServiceConfigs it builds on (`baseRefs`), and its router.
    pub runtime_image: Option<String>,
    pub llm_configs: Vec<String>,
    pub router: LlmRouter,
    /// Pods serving the model (InferenceService: min = max replicas).
    pub replicas: Option<u32>,
    pub gpus: u32,
    pub tensor_parallel: Option<u32>,
    pub max_model_len: Option<u64>,
    pub gpu_memory_utilization: Option<f64>,
    /// Extra vLLM arguments, after the ones above.
    pub args: Vec<String>,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub node_selector: BTreeMap<String, String>,
    pub tolerations: Vec<Toleration>,
    pub service_account: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// `KEY[=VALUE]:EFFECT`, as `--toleration` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toleration {
    pub key: String,
    pub value: Option<String>,
    pub effect: String,
}

impl Toleration {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (kv, effect) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("{s:?} is not KEY[=VALUE]:EFFECT"))?;
        if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            return Err(format!(
                "{s:?}: the effect must be NoSchedule, PreferNoSchedule or NoExecute"
            ));
        }
        let (key, value) = match kv.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (kv, None),
        };
        if key.is_empty() {
            return Err(format!("{s:?} has no key"));
        }
        Ok(Self {
            key: key.into(),
            value,
            effect: effect.into(),
        })
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut t = Map::new();
        t.insert("key".into(), json!(self.key));
        match &self.value {
            Some(v) => {
                t.insert("operator".into(), json!("Equal"));
                t.insert("value".into(), json!(v));
            }
            None => {
                t.insert("operator".into(), json!("Exists"));
            }
        }
        t.insert("effect".into(), json!(self.effect));
        Value::Object(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerations_parse_with_and_without_a_value() {
        assert_eq!(
            Toleration::parse("nvidia.com/gpu:NoSchedule")
                .unwrap()
                .to_json(),
            json!({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"})
        );
        assert_eq!(
            Toleration::parse("dedicated=llm:NoExecute")
                .unwrap()
                .to_json(),
            json!({"key": "dedicated", "operator": "Equal", "value": "llm", "effect": "NoExecute"})
        );
        assert!(Toleration::parse("x:Sometimes").is_err());
        assert!(Toleration::parse("novalue").is_err());
    }
}
