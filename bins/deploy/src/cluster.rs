//! Reaching the cluster: the client from a kubeconfig (or the pod's service account), and the
//! KServe resources deploy reads and writes, named by group, version and plural because KServe
//! ships no Rust types.

use std::path::PathBuf;

use kube::api::ApiResource;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::DeployError;

/// Where the cluster configuration comes from.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// A kubeconfig file; without it, `KUBECONFIG` or `~/.kube/config`, and in a pod its
    /// service account.
    pub kubeconfig: Option<PathBuf>,
    /// A context of that kubeconfig other than its current one.
    pub context: Option<String>,
}

/// A client for the cluster `options` name. In a pod the service-account token is re-read as
/// the kubelet rotates it, so a long wait does not outlive its credentials.
pub async fn connect(options: &ClusterOptions) -> Result<Client, DeployError> {
    let config = config(options).await?;
    let server = config.cluster_url.to_string();
    Client::try_from(config).map_err(|e| DeployError::Config(format!("{server}: {e}")))
}

async fn config(options: &ClusterOptions) -> Result<Config, DeployError> {
    let wanted = KubeConfigOptions {
        context: options.context.clone(),
        ..KubeConfigOptions::default()
    };
    match (&options.kubeconfig, &options.context) {
        (Some(path), _) => {
            let file = Kubeconfig::read_from(path).map_err(|e| {
                DeployError::Config(format!("cannot read --kubeconfig {}: {e}", path.display()))
            })?;
            Config::from_custom_kubeconfig(file, &wanted)
                .await
                .map_err(|e| DeployError::Config(format!("{}: {e}", path.display())))
        }
        (None, Some(_)) => Config::from_kubeconfig(&wanted)
            .await
            .map_err(|e| DeployError::Config(e.to_string())),
        (None, None) => Config::infer().await.map_err(|e| {
            DeployError::Config(format!(
                "{e} (give --kubeconfig or set KUBECONFIG, or run in a pod with a service account)"
            ))
        }),
    }
}

pub(crate) fn kserve(version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "serving.kserve.io".into(),
        version: version.into(),
        api_version: format!("serving.kserve.io/{version}"),
        kind: kind.into(),
        plural: plural.into(),
    }
}

pub fn serving_runtimes() -> ApiResource {
    kserve("v1alpha1", "ServingRuntime", "servingruntimes")
}

pub fn cluster_serving_runtimes() -> ApiResource {
    kserve(
        "v1alpha1",
        "ClusterServingRuntime",
        "clusterservingruntimes",
    )
}

/// The HTTP status of an API error, if the server answered.
pub fn api_status(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}
