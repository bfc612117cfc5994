//! Checks before anything is written: the namespace exists, the ServingRuntime an
//! InferenceService names can be found, and KServe can mount the image in the mode asked
//! ([`crate::oci_support`]), so a typo fails at once with the names that would work, not
//! after a 15-minute wait for a predictor that never starts.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, ListParams};
use kube::Client;

use crate::cluster::{api_status, cluster_serving_runtimes, serving_runtimes};
use crate::{oci_support, DeployError, ServeSpec, ServedKind};

/// Everything, before an apply.
pub async fn check(client: &Client, spec: &ServeSpec) -> Result<(), DeployError> {
    check_image_mount(client, spec).await?;
    if spec.kind == ServedKind::InferenceService {
        check_runtime(client, &spec.namespace, &spec.runtime).await?;
    }
    Ok(())
}

/// The namespace, and that KServe can mount the image as asked: before a prewarm alone.
pub async fn check_image_mount(client: &Client, spec: &ServeSpec) -> Result<(), DeployError> {
    let namespace = &spec.namespace;
    check_namespace(client, namespace).await?;
    let llm = spec.kind == ServedKind::LlmInferenceService;
    oci_support::check(client, namespace, &spec.storage_uri, llm).await
}

async fn check_namespace(client: &Client, namespace: &str) -> Result<(), DeployError> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    match namespaces.get_opt(namespace).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(DeployError::NoNamespace(namespace.into())),
        // A service account limited to its namespace may not read Namespace objects (they are
        // cluster-scoped); the runtime check below still fails if the namespace is wrong.
        Err(e) if api_status(&e) == Some(403) => {
            tracing::debug!(namespace, "cannot read the namespace object: {e}");
            Ok(())
        }
        Err(e) => Err(DeployError::kube("read namespace", namespace, e)),
    }
}

/// KServe resolves `runtime` to a ServingRuntime in the namespace first, then to a
/// ClusterServingRuntime of that name; so does this check.
async fn check_runtime(client: &Client, namespace: &str, runtime: &str) -> Result<(), DeployError> {
    let local: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &serving_runtimes());
    let what = format!("{namespace}/{runtime}");
    if local
        .get_opt(runtime)
        .await
        .map_err(|e| DeployError::kube("read ServingRuntime", &what, e))?
        .is_some()
    {
        return Ok(());
    }
    if cluster_runtime_exists(client, runtime).await {
        return Ok(());
    }
    let available = local
        .list(&ListParams::default())
        .await
        .map_err(|e| DeployError::kube("list ServingRuntimes in", namespace, e))?
        .items
        .into_iter()
        .filter_map(|r| r.metadata.name)
        .collect();
    Err(DeployError::NoRuntime {
        runtime: runtime.into(),
        namespace: namespace.into(),
        available,
    })
}

/// Whether a ClusterServingRuntime of that name exists; `false` also when it cannot be read
/// (most namespaced service accounts may not, and many clusters have none).
async fn cluster_runtime_exists(client: &Client, runtime: &str) -> bool {
    let cluster: Api<DynamicObject> = Api::all_with(client.clone(), &cluster_serving_runtimes());
    match cluster.get_opt(runtime).await {
        Ok(found) => found.is_some(),
        Err(e) => {
            tracing::debug!(runtime, "cannot read ClusterServingRuntimes: {e}");
            false
        }
    }
}
