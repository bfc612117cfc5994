//! deploy: serve a ModelCar with a KServe InferenceService or LLMInferenceService (vLLM).
//! Checks what the cluster must have (the namespace, the ServingRuntime, KServe's OCI mode),
//! optionally has every node that may run it pull the image first (prewarm), applies the
//! object with server-side apply, waits for Ready with a watch, and records where it serves
//! in the workspace metadata.

pub mod apply;
pub mod cluster;
pub mod conditions;
pub mod diagnose;
mod error;
pub mod kind;
pub mod llm_manifest;
pub mod manifest;
pub mod oci_mode;
pub mod oci_support;
pub mod preflight;
pub mod prewarm;
mod prewarm_pods;
mod report;
pub mod spec;
pub mod wait;

pub use apply::{ApplyOptions, Change};
pub use cluster::{connect, ClusterOptions};
pub use error::DeployError;
pub use llm_manifest::llm_inference_service;
pub use manifest::inference_service;
pub use oci_mode::{parse_oci_uri, OciMode};
pub use prewarm::{PrewarmOptions, PrewarmReport};
pub use report::{DeployOutcome, DeployReport, DryRun};
pub use spec::{LlmRouter, ServeSpec, ServedKind, Toleration};

use std::time::Duration;

use kube::api::{Api, DynamicObject};
use kube::Client;
use modelcar_shared::metadata::Deployment;
use modelcar_shared::Workspace;

/// Everything one run of deploy does.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    pub spec: ServeSpec,
    pub apply: ApplyOptions,
    /// How long to wait for Ready; `None` returns once applied (`--no-wait`).
    pub wait: Option<Duration>,
    /// Pull the image onto the nodes first (`--prewarm`).
    pub prewarm: Option<PrewarmOptions>,
}

/// `--prewarm-only`: the checks, then the prewarm, and nothing applied.
pub async fn prewarm_only(
    client: &Client,
    spec: &ServeSpec,
    apply: &ApplyOptions,
    options: &PrewarmOptions,
) -> Result<PrewarmReport, DeployError> {
    preflight::check_image_mount(client, spec).await?;
    prewarm::prewarm(client, spec, apply, options).await
}

pub async fn deploy(
    client: &Client,
    request: &DeployRequest,
    workspace: Option<&Workspace>,
) -> Result<DeployReport, DeployError> {
    let spec = &request.spec;
    preflight::check(client, spec).await?;
    let prewarmed = match &request.prewarm {
        Some(options) => Some(prewarm::prewarm(client, spec, &request.apply, options).await?),
        None => None,
    };
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &spec.namespace, &spec.kind.api_resource());
    let manifest = spec.kind.manifest(spec);
    let applied = apply::apply(&api, &spec.name, &manifest, &request.apply).await?;
    tracing::info!(
        "{} {}/{}: {}",
        spec.kind,
        spec.namespace,
        spec.name,
        applied.change
    );
    let ready = match request.wait {
        None => None,
        Some(timeout) => {
            let mut waited = wait::until_ready(&api, &applied.object, timeout).await;
            // The watch only knows the object; its pods say why it is not Ready.
            if let Err(DeployError::NotReady { pods, .. }) = &mut waited {
                let selector = spec.kind.pod_selector(&spec.name);
                *pods = diagnose::predictor_problems(client, &spec.namespace, &selector).await;
            }
            Some(waited?)
        }
    };
    let mut report = DeployReport::new(spec, applied.change, ready);
    report.prewarm = prewarmed;
    if let Some(ws) = workspace {
        ws.metadata()?.update(|m| {
            m.deployed = Some(Deployment {
                namespace: spec.namespace.clone(),
                name: spec.name.clone(),
                url: report.url.clone(),
                ready_at_utc: report.ready_at_utc.clone(),
                extra: Default::default(),
            })
        })?;
    }
    Ok(report)
}

/// `--storage-uri`, or the image build-push recorded, by digest (`oci://image@digest`),
/// written with the scheme of `mode` (`--oci-mode`), else of the mode the URI names, else
/// modelcar's.
pub fn storage_uri(
    flag: Option<&str>,
    workspace: Option<&Workspace>,
    mode: Option<OciMode>,
) -> Result<String, DeployError> {
    let uri = match (flag, workspace) {
        (Some(uri), _) => uri.to_string(),
        (None, Some(ws)) => {
            let meta = ws.metadata()?.read()?;
            let (Some(image), Some(digest)) = (meta.image, meta.image_digest) else {
                return Err(DeployError::NoImage(
                    ws.metadata_path().display().to_string(),
                ));
            };
            format!("oci://{image}@{digest}")
        }
        (None, None) => return Err(DeployError::NoStorageUri),
    };
    let (named, image) = match parse_oci_uri(&uri) {
        Ok(parsed) => parsed,
        Err(None) => return Err(DeployError::NotOci(uri)),
        Err(Some(scheme)) => return Err(DeployError::UnknownOciScheme { uri, scheme }),
    };
    match (mode, named) {
        (Some(flag), Some(named)) if flag != named => Err(DeployError::OciModeConflict {
            uri: uri.clone(),
            named,
            flag,
        }),
        _ => Ok(mode.or(named).unwrap_or_default().uri(image)),
    }
}
