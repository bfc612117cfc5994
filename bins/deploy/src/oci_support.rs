//! Whether KServe on this cluster can mount the image the way the storage URI asks, checked
//! before anything is applied where the cluster can tell:
//! - KServe's `inferenceservice-config` ConfigMap, key `storageInitializer`: OCI models are
//!   off unless `ociModelMode` is set or `enableModelcar`/`enableOciModelSupport` is true,
//!   and a bare `oci://` is mounted in `ociModelMode` (kserve/kserve `pkg/types/config.go`
//!   `ResolveOciModelMode`; the pod webhook's `InjectModelcar` is only registered when that
//!   mode is set). A service account bound to its namespace usually cannot read it: then
//!   nothing is concluded.
//! - For `native`, the Kubernetes version as KServe reads it (`pkg/utils/imagevolume.go`:
//!   before 1.31 no ImageVolume, 1.31-1.32 no subPath on it, which KServe mounts with,
//!   1.33-1.34 behind the ImageVolume feature gate, on from 1.35), and on 1.33-1.34 a
//!   dry-run create of a pod with an image volume: with the gate off the API server drops
//!   the volume's source and refuses the pod.

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, PostParams};
use kube::Client;
use modelcar_shared::causes::ErrorCauses;
use serde::Deserialize;
use serde_json::json;

use crate::cluster::api_status;
use crate::{parse_oci_uri, DeployError, OciMode};

/// KServe's configuration ConfigMap and the namespaces it is installed in: upstream KServe,
/// OpenShift AI, Open Data Hub.
pub const CONFIG_MAP: &str = "inferenceservice-config";
pub const KSERVE_NAMESPACES: [&str; 3] = ["kserve", "redhat-ods-applications", "opendatahub"];

/// `storageInitializer` in the ConfigMap: the fields that decide the OCI mode.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StorageInitializer {
    #[serde(default)]
    enable_modelcar: bool,
    #[serde(default)]
    enable_oci_model_support: bool,
    #[serde(default)]
    oci_model_mode: String,
}

impl StorageInitializer {
    /// `ResolveOciModelMode`: the explicit mode, else modelcar if either switch is on, else
    /// off (`None`). `Err` holds a mode KServe does not know.
    fn resolved(&self) -> Result<Option<OciMode>, String> {
        match self.oci_model_mode.as_str() {
            "" if self.enable_modelcar || self.enable_oci_model_support => {
                Ok(Some(OciMode::Modelcar))
            }
            "" => Ok(None),
            mode => OciMode::named(mode)
                .map(Some)
                .ok_or_else(|| mode.to_string()),
        }
    }
}

/// KServe's OCI setting as read from the cluster.
struct ClusterOciMode {
    /// `NAMESPACE/inferenceservice-config`, for messages.
    source: String,
    mode: Option<OciMode>,
}

/// Checks that KServe can mount `storage_uri` in `namespace`; `llm` for an
/// LLMInferenceService, whose controller takes `oci+native://` without the config switch.
pub async fn check(
    client: &Client,
    namespace: &str,
    storage_uri: &str,
    llm: bool,
) -> Result<(), DeployError> {
    let Ok((named, image)) = parse_oci_uri(storage_uri) else {
        return Ok(());
    };
    let cluster = read_cluster_mode(client).await;
    let effective = match (named, &cluster) {
        (Some(OciMode::Native), _) if llm => OciMode::Native,
        (named, Some(ClusterOciMode { source, mode: None })) => {
            return Err(DeployError::OciDisabled {
                config_map: source.clone(),
                asked: named.unwrap_or_default(),
            })
        }
        (Some(named), _) => named,
        (
            None,
            Some(ClusterOciMode {
                source,
                mode: Some(mode),
            }),
        ) => {
            if *mode != OciMode::Modelcar {
                tracing::info!("KServe mounts a bare oci:// as {mode} here ({source})");
            }
            *mode
        }
        (None, None) => OciMode::Modelcar,
    };
    if effective == OciMode::Native {
        check_image_volumes(client, namespace, image).await?;
    }
    Ok(())
}

/// The first `inferenceservice-config` readable in KServe's namespaces; `None` when none
/// can be read (not installed there, or not allowed).
async fn read_cluster_mode(client: &Client) -> Option<ClusterOciMode> {
    for namespace in KSERVE_NAMESPACES {
        let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        let source = format!("{namespace}/{CONFIG_MAP}");
        let map = match maps.get_opt(CONFIG_MAP).await {
            Ok(Some(map)) => map,
            Ok(None) => continue,
            Err(e) => {
                tracing::debug!("cannot read {source}: {}", e.causes());
                continue;
            }
        };
        let text = map.data.as_ref()?.get("storageInitializer")?.clone();
        let settings: StorageInitializer = match serde_json::from_str(&text) {
            Ok(settings) => settings,
            Err(e) => {
                tracing::warn!("{source}: storageInitializer is not JSON ({e}); not checked");
                return None;
            }
        };
        return match settings.resolved() {
            Ok(mode) => Some(ClusterOciMode { source, mode }),
            Err(unknown) => {
                tracing::warn!("{source}: KServe knows no ociModelMode {unknown:?}; not checked");
                None
            }
        };
    }
    tracing::debug!("KServe's {CONFIG_MAP} is not readable here; its OCI mode is not checked");
    None
}

/// KServe's ImageVolume thresholds, then the feature gate where the version leaves it open.
async fn check_image_volumes(
    client: &Client,
    namespace: &str,
    image: &str,
) -> Result<(), DeployError> {
    let info = match client.apiserver_version().await {
        Ok(info) => info,
        Err(e) => {
            tracing::warn!(
                "cannot read the Kubernetes version ({}); ImageVolume support not checked",
                e.causes()
            );
            return Ok(());
        }
    };
    let version = info.git_version.clone();
    let Ok(minor) = info.minor.trim_end_matches('+').parse::<u32>() else {
        tracing::warn!("Kubernetes {version}: cannot read its minor version; not checked");
        return Ok(());
    };
    let problem = match minor {
        0..=30 => "has no ImageVolume (Kubernetes 1.31 added it)",
        31 | 32 => {
            "has ImageVolume only as alpha, without the subPath KServe mounts /models with \
             (Kubernetes 1.33+)"
        }
        33 | 34 => match image_volume_gate(client, namespace, image).await {
            Some(true) | None => return Ok(()),
            Some(false) => {
                "has the ImageVolume feature gate off (it is beta and off by default before \
                 1.35: --feature-gates=ImageVolume=true on the API server and the kubelets)"
            }
        },
        _ => return Ok(()),
    };
    Err(DeployError::NoImageVolume {
        version,
        problem: problem.into(),
    })
}

/// A dry-run create in `namespace` of a pod with an image volume: `Some(false)` when the
/// API server dropped the volume (gate off), `None` when it cannot be told (e.g. no right
/// to create pods).
async fn image_volume_gate(client: &Client, namespace: &str, image: &str) -> Option<bool> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let probe: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "modelcar-imagevolume-probe"},
        "spec": {
            "containers": [{"name": "probe", "image": image}],
            "volumes": [{"name": "model", "image": {"reference": image, "pullPolicy": "IfNotPresent"}}],
        },
    }))
    .ok()?;
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    match pods.create(&params, &probe).await {
        Ok(pod) => {
            let volumes = pod.spec.and_then(|s| s.volumes).unwrap_or_default();
            Some(volumes.iter().any(|v| v.image.is_some()))
        }
        Err(e) if api_status(&e) == Some(422) && e.to_string().contains("volumes") => Some(false),
        Err(e) => {
            tracing::warn!(
                "cannot tell whether the ImageVolume feature gate is on: {}",
                e.causes()
            );
            None
        }
    }
}
