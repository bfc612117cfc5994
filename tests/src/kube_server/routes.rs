//! The URL space served, authentication, and the read endpoints; writes are in
//! [`super::apply`], watches in [`super::watch`]. Paths are the apiserver's (`/api/v1/...`
//! for the core group, `/apis/serving.kserve.io/<version>/...` for KServe); a path not
//! served is the apiserver's 404, a method not served on a served path a 405.

use std::sync::Arc;

use serde_json::{json, Value};

use super::select::{Selector, CUSTOM_RESOURCE_FIELDS, POD_FIELDS};
use super::status::{
    Failure, Resource, CLUSTER_SERVING_RUNTIMES, INFERENCE_SERVICES, KSERVE, NAMESPACES, PODS,
    SERVING_RUNTIMES,
};
use super::{apply, watch, Shared};
use crate::http_server::{Reply, Request};

/// Logs the request, then: authentication, the route.
pub(super) fn handle(request: &Request, shared: &Arc<Shared>) -> Reply {
    shared.log(request);
    let expected = format!("Bearer {}", shared.token);
    if request.header("authorization") != Some(expected.as_str()) {
        return Failure::unauthorized().reply();
    }
    let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
    match route(request, &segments, shared) {
        Ok(reply) => reply,
        Err(failure) => failure.reply(),
    }
}

fn route(request: &Request, segments: &[&str], shared: &Arc<Shared>) -> Result<Reply, Failure> {
    let method = request.method.as_str();
    match segments {
        ["version"] if method == "GET" => Ok(version()),
        ["api", "v1", "namespaces", ns] => {
            only_get(method, NAMESPACES, false)?;
            let state = shared.lock();
            found(state.namespaces.get(*ns), NAMESPACES, ns)
        }
        ["api", "v1", "namespaces", ns, "pods"] => {
            only_get(method, PODS, true)?;
            list_pods(request, shared, ns)
        }
        ["apis", KSERVE, "v1alpha1", "namespaces", ns, "servingruntimes"] => {
            only_get(method, SERVING_RUNTIMES, true)?;
            let state = shared.lock();
            let items = state
                .serving_runtimes
                .iter()
                .filter(|((n, _), _)| n == ns)
                .map(|(_, runtime)| runtime.clone());
            Ok(list(
                "serving.kserve.io/v1alpha1",
                "ServingRuntimeList",
                state.rv,
                items,
            ))
        }
        ["apis", KSERVE, "v1alpha1", "namespaces", ns, "servingruntimes", name] => {
            only_get(method, SERVING_RUNTIMES, false)?;
            let state = shared.lock();
            let runtime = state
                .serving_runtimes
                .get(&(ns.to_string(), name.to_string()));
            found(runtime, SERVING_RUNTIMES, name)
        }
        ["apis", KSERVE, "v1alpha1", "clusterservingruntimes"] => {
            only_get(method, CLUSTER_SERVING_RUNTIMES, true)?;
            let state = shared.lock();
            let items = state.cluster_serving_runtimes.values().cloned();
            let kind = "ClusterServingRuntimeList";
            Ok(list("serving.kserve.io/v1alpha1", kind, state.rv, items))
        }
        ["apis", KSERVE, "v1alpha1", "clusterservingruntimes", name] => {
            only_get(method, CLUSTER_SERVING_RUNTIMES, false)?;
            let state = shared.lock();
            let runtime = state.cluster_serving_runtimes.get(*name);
            found(runtime, CLUSTER_SERVING_RUNTIMES, name)
        }
        ["apis", KSERVE, "v1beta1", "namespaces", ns, "inferenceservices"] => {
            only_get(method, INFERENCE_SERVICES, true)?;
            if matches!(request.param("watch"), Some("true" | "1")) {
                return Ok(watch::watch(request, shared, ns));
            }
            list_inference_services(request, shared, ns)
        }
        ["apis", KSERVE, "v1beta1", "namespaces", ns, "inferenceservices", name] => match method {
            "GET" => {
                let state = shared.lock();
                let owned = state
                    .inference_services
                    .get(&(ns.to_string(), name.to_string()));
                found(owned.map(apply::served).as_ref(), INFERENCE_SERVICES, name)
            }
            "PATCH" => Ok(apply::patch(request, shared, ns, name)),
            _ => Err(Failure::method_not_allowed(
                INFERENCE_SERVICES,
                verb(method, false),
            )),
        },
        _ => Err(Failure::no_route()),
    }
}

/// The path serves only GET: anything else is a 405 naming the verb refused.
fn only_get(method: &str, resource: Resource, collection: bool) -> Result<(), Failure> {
    if method == "GET" {
        Ok(())
    } else {
        Err(Failure::method_not_allowed(
            resource,
            verb(method, collection),
        ))
    }
}

/// The Kubernetes verb of a request (`create`, `deletecollection`...).
fn verb(method: &str, collection: bool) -> &'static str {
    match (method, collection) {
        ("GET", false) => "get",
        ("GET", true) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", false) => "delete",
        ("DELETE", true) => "deletecollection",
        _ => "this method",
    }
}

fn found(object: Option<&Value>, resource: Resource, name: &str) -> Result<Reply, Failure> {
    object
        .map(|o| Reply::json(200, o))
        .ok_or_else(|| Failure::not_found(resource, name))
}

/// A list: its resourceVersion is the current one, to watch on from.
fn list(api_version: &str, kind: &str, rv: u64, items: impl Iterator<Item = Value>) -> Reply {
    let items: Vec<Value> = items.collect();
    Reply::json(
        200,
        &json!({
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {"resourceVersion": rv.to_string()},
            "items": items,
        }),
    )
}

/// `GET .../inferenceservices` (not a watch), by selector. An empty list when the namespace
/// does not exist, as on a cluster.
fn list_inference_services(request: &Request, shared: &Shared, ns: &str) -> Result<Reply, Failure> {
    let selector = Selector::from_request(request, CUSTOM_RESOURCE_FIELDS)?;
    let state = shared.lock();
    let items = state
        .inference_services
        .iter()
        .filter(|((n, _), _)| n == ns)
        .map(|(_, owned)| apply::served(owned))
        .filter(|object| selector.matches(object));
    let kind = "InferenceServiceList";
    Ok(list("serving.kserve.io/v1beta1", kind, state.rv, items))
}

/// `GET /api/v1/namespaces/{ns}/pods`, by selector. The items of a built-in type's list
/// carry no `apiVersion` and `kind`, as the apiserver writes them.
fn list_pods(request: &Request, shared: &Shared, ns: &str) -> Result<Reply, Failure> {
    if request
        .param("watch")
        .is_some_and(|w| w == "true" || w == "1")
    {
        return Err(Failure::bad_request(
            "KubeServer: watching pods is not served by the test server",
        ));
    }
    let selector = Selector::from_request(request, POD_FIELDS)?;
    let state = shared.lock();
    let items = state
        .pods
        .iter()
        .filter(|pod| pod["metadata"]["namespace"] == ns && selector.matches(pod))
        .map(|pod| {
            let mut pod = pod.clone();
            if let Some(map) = pod.as_object_mut() {
                map.shift_remove("apiVersion");
                map.shift_remove("kind");
            }
            pod
        });
    let reply = list("v1", "PodList", state.rv, items);
    Ok(reply)
}

/// `GET /version`: the Kubernetes of OpenShift 4.20.
fn version() -> Reply {
    Reply::json(
        200,
        &json!({
            "major": "1",
            "minor": "33",
            "gitVersion": "v1.33.5",
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2025-09-09T00:00:00Z",
            "goVersion": "go1.24.6",
            "compiler": "gc",
            "platform": "linux/amd64",
        }),
    )
}
