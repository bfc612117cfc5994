use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use deploy::{
    parse_oci_uri, storage_uri, ApplyOptions, ClusterOptions, DeployOutcome, DeployRequest, DryRun,
    LlmRouter, OciMode, PrewarmOptions, ServeSpec, ServedKind, Toleration,
};
use modelcar_shared::causes::ErrorCauses;
use modelcar_shared::cli::{parse_key_value, CommonArgs, UsageError};
use modelcar_shared::Workspace;

/// Serve a ModelCar with a KServe InferenceService or LLMInferenceService (vLLM).
///
/// The InferenceService (serving.kserve.io/v1beta1, the default) names the ServingRuntime
/// and the model format; the LLMInferenceService (v1alpha2, --kind llminferenceservice) builds
/// on KServe's llm-d presets. Either points at the image by digest, passes vLLM its
/// tensor-parallel size, context length and memory share, requests the GPUs, and places the
/// pods with a node selector and tolerations.
///
/// deploy first checks that the namespace and the ServingRuntime exist and that KServe can
/// mount the image in the --oci-mode asked (its inferenceservice-config, the ImageVolume
/// feature); with --prewarm it has every node the pods may land on pull the image first;
/// then applies the object with server-side apply (a rerun updates it and keeps fields other
/// clients set), then waits for Ready with a watch, logging each condition change. On
/// timeout it prints the last conditions and what the pods say (ImagePullBackOff,
/// Unschedulable, OOMKilled) and exits 1. Credentials: --kubeconfig, KUBECONFIG or
/// ~/.kube/config, or the pod's service account.
#[derive(Debug, Parser)]
#[command(name = "deploy", version)]
struct Args {
    /// The InferenceService's (or LLMInferenceService's) name.
    #[arg(value_name = "NAME", env = "MODELCAR_DEPLOY_NAME")]
    name: String,

    /// What to serve it with: inferenceservice (a ServingRuntime; any KServe) or
    /// llminferenceservice (KServe's llm-d presets; KServe 0.15+ with the LLMInferenceService
    /// CRD).
    #[arg(
        long,
        env = "MODELCAR_KIND",
        value_enum,
        default_value_t,
        value_name = "KIND"
    )]
    kind: ServedKind,

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

    /// InferenceService: the ServingRuntime to serve with [default: vllm-nvidia-gpu].
    #[arg(long, env = "MODELCAR_RUNTIME")]
    runtime: Option<String>,

    /// InferenceService: the model format the ServingRuntime declares [default: vLLM].
    #[arg(long, env = "MODELCAR_MODEL_FORMAT")]
    model_format: Option<String>,

    /// LLMInferenceService: the vLLM image, instead of the preset's.
    #[arg(long, env = "MODELCAR_RUNTIME_IMAGE", value_name = "IMAGE")]
    runtime_image: Option<String>,

    /// LLMInferenceService: an LLMInferenceServiceConfig to build on (spec.baseRefs);
    /// repeatable.
    #[arg(
        long,
        env = "MODELCAR_LLM_CONFIGS",
        value_name = "NAME",
        value_delimiter = ','
    )]
    llm_config: Vec<String>,

    /// LLMInferenceService: how requests reach the replicas: route (an HTTPRoute on
    /// KServe's Gateway), scheduler (and llm-d's scheduler picks the replica) or none.
    #[arg(
        long,
        env = "MODELCAR_ROUTER",
        value_enum,
        default_value_t,
        value_name = "ROUTER"
    )]
    router: LlmRouter,

    /// Pods serving the model (InferenceService: min and max replicas).
    #[arg(long, env = "MODELCAR_REPLICAS")]
    replicas: Option<u32>,

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

    /// Before applying, have every node the pods may run on (same node selector and
    /// tolerations) pull the image, through a DaemonSet removed afterwards: a new replica
    /// then starts without pulling. Exits 1 naming the nodes that cannot pull.
    #[arg(long, env = "MODELCAR_PREWARM")]
    prewarm: bool,

    /// Only prewarm the nodes; apply nothing (a pipeline step before deploy).
    #[arg(long, env = "MODELCAR_PREWARM_ONLY", conflicts_with = "dry_run")]
    prewarm_only: bool,

    /// How long every node may take to pull the image, e.g. 45m.
    #[arg(long, env = "MODELCAR_PREWARM_TIMEOUT", default_value = "30m", value_parser = humantime::parse_duration)]
    prewarm_timeout: Duration,

    /// Leave the prewarm DaemonSet running, so that nodes that join later pull the image too.
    #[arg(long, env = "MODELCAR_KEEP_PREWARM")]
    keep_prewarm: bool,

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
    let prewarm = PrewarmOptions {
        timeout: args.prewarm_timeout,
        keep: args.keep_prewarm,
    };
    let request = DeployRequest {
        spec: spec(args, namespace.unwrap_or(client.default_namespace()))?,
        apply: ApplyOptions {
            field_manager: args.field_manager.clone(),
            force_conflicts: args.force_conflicts,
        },
        wait: (!args.no_wait).then_some(args.timeout),
        prewarm: args.prewarm.then_some(prewarm.clone()),
    };
    if args.prewarm_only {
        let report = deploy::prewarm_only(&client, &request.spec, &request.apply, &prewarm).await?;
        return Ok(DeployOutcome::Prewarmed(report));
    }
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
    check_kind_flags(args, &storage_uri)?;
    Ok(ServeSpec {
        kind: args.kind,
        name: args.name.clone(),
        namespace: namespace.to_string(),
        storage_uri,
        runtime: args.runtime.clone().unwrap_or("vllm-nvidia-gpu".into()),
        model_format: args.model_format.clone().unwrap_or("vLLM".into()),
        runtime_image: args.runtime_image.clone(),
        llm_configs: args.llm_config.clone(),
        router: args.router,
        replicas: args.replicas,
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

/// Flags of the other kind are refused rather than silently dropped from the manifest.
fn check_kind_flags(args: &Args, storage_uri: &str) -> Result<(), UsageError> {
    let (flags, kind): (&[(&str, bool)], _) = match args.kind {
        ServedKind::InferenceService => (
            &[
                ("--runtime-image", args.runtime_image.is_some()),
                ("--llm-config", !args.llm_config.is_empty()),
            ],
            "an InferenceService takes its server from --runtime",
        ),
        ServedKind::LlmInferenceService => (
            &[
                ("--runtime", args.runtime.is_some()),
                ("--model-format", args.model_format.is_some()),
            ],
            "an LLMInferenceService has no ServingRuntime: give --runtime-image or --llm-config",
        ),
    };
    if let Some((flag, _)) = flags.iter().find(|(_, given)| *given) {
        return Err(UsageError(format!("{flag} does not apply: {kind}")));
    }
    let llm = args.kind == ServedKind::LlmInferenceService;
    if llm && matches!(parse_oci_uri(storage_uri), Ok((Some(OciMode::Fetch), _))) {
        return Err(UsageError(deploy::DeployError::LlmFetch.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_consistent() {
        <super::Args as clap::CommandFactory>::command().debug_assert();
    }
}
