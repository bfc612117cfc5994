use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use deploy::{manifest_yaml, storage_uri, ServeSpec, Toleration};
use modelcar_shared::cli::{exit_code, parse_key_value, CommonArgs, UsageError};
use modelcar_shared::Workspace;

/// Serve a ModelCar with a KServe InferenceService (vLLM).
///
/// The InferenceService (serving.kserve.io/v1beta1) names the ServingRuntime and the model
/// format, points storageUri at the image by digest, passes vLLM its tensor-parallel size,
/// context length and memory share, requests the GPUs, and places the predictor with a node
/// selector and tolerations. For now deploy prints the manifest (--dry-run); applying it to
/// the cluster and waiting for Ready come next.
#[derive(Debug, Parser)]
#[command(name = "deploy", version)]
struct Args {
    /// The InferenceService's name.
    #[arg(value_name = "NAME", env = "MODELCAR_DEPLOY_NAME")]
    name: String,

    #[arg(long, env = "MODELCAR_NAMESPACE", default_value = "default")]
    namespace: String,

    /// oci://IMAGE@DIGEST (default: the image build-push recorded in the workspace metadata).
    #[arg(long, env = "MODELCAR_STORAGE_URI", value_name = "URI")]
    storage_uri: Option<String>,

    /// The ServingRuntime to serve with.
    #[arg(long, env = "MODELCAR_RUNTIME", default_value = "vllm-nvidia-gpu")]
    runtime: String,

    #[arg(long, env = "MODELCAR_MODEL_FORMAT", default_value = "vLLM")]
    model_format: String,

    /// GPUs for the predictor (nvidia.com/gpu in requests and limits).
    #[arg(long, env = "MODELCAR_GPUS", default_value_t = 1)]
    gpus: u32,

    /// vLLM's --tensor-parallel-size (default: the number of GPUs).
    #[arg(long, env = "MODELCAR_TENSOR_PARALLEL")]
    tensor_parallel: Option<u32>,

    /// vLLM's --max-model-len.
    #[arg(long, env = "MODELCAR_MAX_MODEL_LEN")]
    max_model_len: Option<u64>,

    /// vLLM's --gpu-memory-utilization (0 to 1).
    #[arg(long, env = "MODELCAR_GPU_MEMORY_UTILIZATION")]
    gpu_memory_utilization: Option<f64>,

    /// An extra vLLM argument; repeatable (e.g. --arg=--enable-chunked-prefill).
    #[arg(
        long = "arg",
        env = "MODELCAR_VLLM_ARGS",
        value_name = "ARG",
        allow_hyphen_values = true
    )]
    vllm_args: Vec<String>,

    /// CPU for the predictor (requests = limits), e.g. 8.
    #[arg(long, env = "MODELCAR_CPU")]
    cpu: Option<String>,

    /// Memory for the predictor (requests = limits), e.g. 96Gi.
    #[arg(long, env = "MODELCAR_MEMORY")]
    memory: Option<String>,

    /// Run on nodes with this label; repeatable.
    #[arg(long, env = "MODELCAR_NODE_SELECTOR", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    node_selector: Vec<(String, String)>,

    /// Tolerate a taint: KEY[=VALUE]:EFFECT; repeatable.
    #[arg(long, env = "MODELCAR_TOLERATIONS", value_name = "KEY[=VALUE]:EFFECT", value_parser = Toleration::parse)]
    toleration: Vec<Toleration>,

    /// The predictor's service account (e.g. one with a pull secret for the registry).
    #[arg(long, env = "MODELCAR_SERVICE_ACCOUNT")]
    service_account: Option<String>,

    /// A label on the InferenceService; repeatable.
    #[arg(long, env = "MODELCAR_LABELS", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    label: Vec<(String, String)>,

    /// An annotation on the InferenceService (e.g. serving.kserve.io/deploymentMode=RawDeployment); repeatable.
    #[arg(long, env = "MODELCAR_ANNOTATIONS", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    annotation: Vec<(String, String)>,

    /// Print the manifest as YAML and touch nothing.
    #[arg(long, env = "MODELCAR_DRY_RUN")]
    dry_run: bool,

    /// Workspace (PVC) whose metadata file names the image to serve.
    #[arg(long, env = "MODELCAR_WORKSPACE", value_name = "WS")]
    workspace: Option<PathBuf>,

    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args: Args = modelcar_shared::cli::parse();
    args.common.init();
    exit_code(run(&args))
}

fn run(args: &Args) -> anyhow::Result<()> {
    let workspace = args.workspace.as_ref().map(Workspace::open).transpose()?;
    let storage_uri = storage_uri(args.storage_uri.as_deref(), workspace.as_ref())
        .map_err(|e| UsageError(e.to_string()))?;
    let spec = ServeSpec {
        name: args.name.clone(),
        namespace: args.namespace.clone(),
        storage_uri,
        runtime: args.runtime.clone(),
        model_format: args.model_format.clone(),
        gpus: args.gpus,
        tensor_parallel: args.tensor_parallel,
        max_model_len: args.max_model_len,
        gpu_memory_utilization: args.gpu_memory_utilization,
        args: args.vllm_args.clone(),
        cpu: args.cpu.clone(),
        memory: args.memory.clone(),
        node_selector: args
            .node_selector
            .iter()
            .cloned()
            .collect::<BTreeMap<_, _>>(),
        tolerations: args.toleration.clone(),
        service_account: args.service_account.clone(),
        labels: args.label.iter().cloned().collect(),
        annotations: args.annotation.iter().cloned().collect(),
    };
    if !args.dry_run {
        anyhow::bail!(
            "applying the InferenceService to a cluster is not built yet (issue #8): run with \
             --dry-run and apply its output (`deploy ... --dry-run | oc apply -f -`)"
        );
    }
    print!("{}", manifest_yaml(&spec));
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_consistent() {
        <super::Args as clap::CommandFactory>::command().debug_assert();
    }
}
