use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use deploy::{
    storage_uri, ApplyOptions, ClusterOptions, DeployOutcome, DeployRequest, DryRun, OciMode,
    ServeSpec, Toleration,
};
use modelcar_shared::causes::ErrorCauses;
use modelcar_shared::cli::{parse_key_value, CommonArgs, UsageError};
use modelcar_shared::Workspace;

/// Serve a ModelCar with a KServe InferenceService (vLLM).
///
/// The InferenceService (serving.kserve.io/v1beta1) names the ServingRuntime and the model
/// format, points storageUri at the image by digest, passes vLLM its tensor-parallel size,
/// context length and memory share, requests the GPUs, and places the predictor with a node
/// selector and tolerations.
///
/// deploy first checks that the namespace and the ServingRuntime exist, then applies the
/// InferenceService with server-side apply (a rerun updates it and keeps fields other clients
/// set), then waits for Ready with a watch, logging each condition change. On timeout it
/// prints the last conditions and what the predictor's pods say (ImagePullBackOff,
/// Unschedulable, OOMKilled) and exits 1. Credentials: --kubeconfig, KUBECONFIG or
/// ~/.kube/config, or the pod's service account.
#[derive(Debug, Parser)]
#[command(name = "deploy", version)]
struct Args {
    /// The InferenceService's name.
    #[arg(value_name = "NAME", env = "MODELCAR_DEPLOY_NAME")]
    name: String,

    /// Namespace (default: the kubeconfig context's, in a pod its own; "default" with --dry-run).
    #[arg(long, env = "MODELCAR_NAMESPACE")]
    namespace: Option<String>,

    /// oci://IMAGE@DIGEST, or oci+native:// or oci+fetch:// (default: the image build-push
    /// recorded in the workspace metadata).
    #[arg(long, env = "MODELCAR_STORAGE_URI", value_name = "URI")]
    storage_uri: Option<String>,

    /// How KServe mounts the image, written as the storageUri's scheme: modelcar (oci://, a
    /// sidecar reached through a shared PID namespace; KServe's default, any runtime),
    /// native (oci+native://, a read-only ImageVolume: Kubernetes 1.33+ with the ImageVolume
    /// feature gate, on by default from 1.35) or fetch (oci+fetch://, an init container
    /// copies /models into an emptyDir: any cluster, a copy per pod). Default: the mode an
    /// oci+MODE:// --storage-uri names, else modelcar.
    #[arg(long, env = "MODELCAR_OCI_MODE", value_enum, value_name = "MODE")]
    oci_mode: Option<OciMode>,

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

    /// Extra vLLM arguments, split at spaces; repeatable (e.g. --arg=--enable-chunked-prefill).
    #[arg(
        long = "arg",
        env = "MODELCAR_VLLM_ARGS",
        value_name = "ARG",
        allow_hyphen_values = true,
        value_delimiter = ' '
    )]
    vllm_args: Vec<String>,

    /// CPU for the predictor (requests = limits), e.g. 8.
    #[arg(long, env = "MODELCAR_CPU")]
    cpu: Option<String>,

    /// Memory for the predictor (requests = limits), e.g. 96Gi.
    #[arg(long, env = "MODELCAR_MEMORY")]
    memory: Option<String>,

    /// Run on nodes with this label; repeatable.
    #[arg(long, env = "MODELCAR_NODE_SELECTOR", value_name = "KEY=VALUE", value_parser = parse_key_value, value_delimiter = ',')]
    node_selector: Vec<(String, String)>,

    /// Tolerate a taint: KEY[=VALUE]:EFFECT; repeatable.
    #[arg(long, env = "MODELCAR_TOLERATIONS", value_name = "KEY[=VALUE]:EFFECT", value_parser = Toleration::parse, value_delimiter = ',')]
    toleration: Vec<Toleration>,

    /// The predictor's service account (e.g. one with a pull secret for the registry).
    #[arg(long, env = "MODELCAR_SERVICE_ACCOUNT")]
    service_account: Option<String>,

    /// A label on the InferenceService; repeatable.
    #[arg(long, env = "MODELCAR_LABELS", value_name = "KEY=VALUE", value_parser = parse_key_value, value_delimiter = ',')]
    label: Vec<(String, String)>,

    /// An annotation on the InferenceService (e.g. serving.kserve.io/deploymentMode=RawDeployment); repeatable.
    #[arg(long, env = "MODELCAR_ANNOTATIONS", value_name = "KEY=VALUE", value_parser = parse_key_value, value_delimiter = ',')]
    annotation: Vec<(String, String)>,

    /// Print the manifest as YAML (as JSON with --output json) and touch nothing (no cluster
    /// needed).
    #[arg(long, env = "MODELCAR_DRY_RUN")]
    dry_run: bool,

    /// How long to wait for Ready, e.g. 15m or 1h30m.
    #[arg(long, env = "MODELCAR_TIMEOUT", default_value = "15m", value_parser = humantime::parse_duration)]
    timeout: Duration,

    /// Wait for Ready (the default; undoes an earlier --no-wait).
    #[arg(long, overrides_with = "no_wait")]
    wait: bool,

    /// Return as soon as the InferenceService is applied.
    #[arg(long, env = "MODELCAR_NO_WAIT", overrides_with = "wait")]
    no_wait: bool,

    /// The field manager of the server-side apply: the owner of the fields deploy sets.
    #[arg(
        long,
        env = "MODELCAR_FIELD_MANAGER",
        default_value = "modelcar-deploy"
    )]
    field_manager: String,

    /// Take over fields another client changed instead of stopping at the conflict.
    #[arg(long, env = "MODELCAR_FORCE_CONFLICTS")]
    force_conflicts: bool,

    /// Kubeconfig file (default: KUBECONFIG, ~/.kube/config, or the pod's service account).
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use instead of the current one.
    #[arg(long, env = "MODELCAR_KUBE_CONTEXT")]
    context: Option<String>,

    /// Workspace (PVC) whose metadata file names the image to serve.
    #[arg(long, env = "MODELCAR_WORKSPACE", value_name = "WS")]
    workspace: Option<PathBuf>,

    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args: Args = modelcar_shared::cli::parse();
    args.common.run_async(
        "run again with the same arguments: the apply updates what is there",
        run(&args),
    )
}

async fn run(args: &Args) -> anyhow::Result<DeployOutcome> {
    if args.dry_run {
        let namespace = args.namespace.as_deref().unwrap_or("default");
        return Ok(DeployOutcome::DryRun(DryRun::of(&spec(args, namespace)?)));
    }
    let workspace = args.workspace.as_ref().map(Workspace::open).transpose()?;
    let cluster = ClusterOptions {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
    };
    let client = deploy::connect(&cluster).await?;
    let namespace = args.namespace.as_deref();
    let request = DeployRequest {
        spec: spec(args, namespace.unwrap_or(client.default_namespace()))?,
        apply: ApplyOptions {
            field_manager: args.field_manager.clone(),
            force_conflicts: args.force_conflicts,
        },
        wait: (!args.no_wait).then_some(args.timeout),
    };
    let report = deploy::deploy(&client, &request, workspace.as_ref()).await?;
    Ok(DeployOutcome::Applied(report))
}

fn spec(args: &Args, namespace: &str) -> anyhow::Result<ServeSpec> {
    let workspace = args.workspace.as_ref().map(Workspace::open).transpose()?;
    let storage_uri = storage_uri(
        args.storage_uri.as_deref(),
        workspace.as_ref(),
        args.oci_mode,
    )
    .map_err(|e| UsageError(e.causes().to_string()))?;
    Ok(ServeSpec {
        name: args.name.clone(),
        namespace: namespace.to_string(),
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
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_consistent() {
        <super::Args as clap::CommandFactory>::command().debug_assert();
    }
}
