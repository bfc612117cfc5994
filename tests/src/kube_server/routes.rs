//! The URL space served, authentication, and the read endpoints; writes are in
//! [`super::apply`], watches in [`super::watch`]. Paths are the apiserver's (`/api/v1/...`
//! for the core group, `/apis/<group>/<version>/...` for KServe and apps); a path not
//! served is the apiserver's 404, a method not served on a served path a 405.

use std::sync::Arc;

use serde_json::{json, Value};

use super::kinds::Kind;
use super::select::{Selector, CUSTOM_RESOURCE_FIELDS, EVENT_FIELDS, POD_FIELDS};
use super::status::{
    Failure, Resource, CLUSTER_SERVING_RUNTIMES, CONFIG_MAPS, EVENTS, KSERVE, NAMESPACES, PODS,
    SERVING_RUNTIMES,
};
use super::{apply, watch, Key, Shared};
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
        ["version"] if method == "GET" => Ok(version(shared)),
        ["api", "v1", "namespaces", ns] => {
            only_get(method, NAMESPACES, false)?;
            let state = shared.lock();
            found(state.namespaces.get(*ns), NAMESPACES, ns)
        }
        ["api", "v1", "namespaces", ns, "configmaps", name] => {
            only_get(method, CONFIG_MAPS, false)?;
            let state = shared.lock();
            state.check_allowed(CONFIG_MAPS, name, "get", ns)?;
            let key = (ns.to_string(), name.to_string());
            found(state.config_maps.get(&key), CONFIG_MAPS, name)
        }
        ["api", "v1", "namespaces", ns, "pods"] if method == "POST" => {
            dry_run_pod(request, shared, ns)
        }
        ["api", "v1", "namespaces", ns, "pods"] => {
            only_get(method, PODS, true)?;
            no_watch(request, PODS)?;
            list_core(request, shared, ns, PODS)
        }
        ["api", "v1", "namespaces", ns, "events"] => {
            only_get(method, EVENTS, true)?;
            no_watch(request, EVENTS)?;
            list_core(request, shared, ns, EVENTS)
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
        ["apis", group, version, "namespaces", ns, plural] => {
            let kind = Kind::at(group, version, plural).ok_or_else(Failure::no_route)?;
            only_get(method, kind.resource(), true)?;
            if matches!(request.param("watch"), Some("true" | "1")) {
                return Ok(watch::watch(request, shared, kind, ns));
            }
            list_written(request, shared, kind, ns)
        }
        ["apis", group, version, "namespaces", ns, plural, name] => {
            let kind = Kind::at(group, version, plural).ok_or_else(Failure::no_route)?;
            let key = (kind, ns.to_string(), name.to_string());
            match method {
                "GET" => {
                    let state = shared.lock();
                    let owned = state.objects.get(&key);
                    found(owned.map(apply::served).as_ref(), kind.resource(), name)
                }
                "PATCH" => Ok(apply::patch(request, shared, key)),
                "DELETE" => delete(shared, &key),
                _ => Err(Failure::method_not_allowed(
                    kind.resource(),
                    verb(method, false),
                )),
            }
        }
        _ => Err(Failure::no_route()),
    }
}

/// `DELETE` of a written object, at once (no finalizers, background propagation): a custom
/// resource's registry returns the object deleted, a DaemonSet's a `Success` Status.
fn delete(shared: &Shared, key: &Key) -> Result<Reply, Failure> {
    let (kind, name) = (key.0, key.2.as_str());
    let last = shared
        .change(|state| {
            let last = state.objects.get(key).map(apply::served);
            state.delete(key);
            last
        })
        .ok_or_else(|| Failure::not_found(kind.resource(), name))?;
    if kind != Kind::DaemonSet {
        return Ok(Reply::json(200, &last));
    }
    let resource = kind.resource();
    Ok(Reply::json(
        200,
        &json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": name, "group": resource.group, "kind": resource.plural,
                        "uid": last["metadata"]["uid"]},
        }),
    ))
}

/// `POST .../pods?dryRun=All`: the pod as it would be stored, nothing stored. With the
/// ImageVolume feature gate off the apiserver drops `volumes[].image`
/// (`dropDisabledImageVolumeField`), and a volume left without a source fails validation.
fn dry_run_pod(request: &Request, shared: &Shared, ns: &str) -> Result<Reply, Failure> {
    if request.param("dryRun") != Some("All") {
        return Err(Failure::bad_request(
            "KubeServer: only dry-run pod creation is served by the test server",
        ));
    }
    let mut pod: Value = serde_json::from_slice(&request.body)
        .map_err(|e| Failure::bad_request(format!("error decoding pod: {e}")))?;
    let state = shared.lock();
    let name = pod["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if !state.image_volumes {
        let volumes = pod["spec"]["volumes"].as_array_mut();
        for (i, volume) in volumes.into_iter().flatten().enumerate() {
            let Some(volume) = volume.as_object_mut() else {
                continue;
            };
            if volume.shift_remove("image").is_some() && volume.len() == 1 {
                return Err(Failure::invalid(
                    PODS,
                    "Pod",
                    &name,
                    &format!("spec.volumes[{i}]"),
                    "Required value: must specify a volume type",
                ));
            }
        }
    }
    let completed = super::objects::completed(ns, pod, "Pod", state.rv);
    Ok(Reply::json(201, &completed))
}

/// Watching pods or events is not served here: a client must not come to rely on it.
fn no_watch(request: &Request, resource: Resource) -> Result<(), Failure> {
    match request.param("watch") {
        Some("true" | "1") => Err(Failure::bad_request(format!(
            "KubeServer: watching {} is not served by the test server",
            resource.plural
        ))),
        _ => Ok(()),
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

/// `GET .../{plural}` (not a watch) of a written kind, by selector. An empty list when the
/// namespace does not exist, as on a cluster.
fn list_written(
    request: &Request,
    shared: &Shared,
    kind: Kind,
    ns: &str,
) -> Result<Reply, Failure> {
    let selector = Selector::from_request(request, CUSTOM_RESOURCE_FIELDS)?;
    let state = shared.lock();
    let items = state
        .objects
        .iter()
        .filter(|((k, n, _), _)| *k == kind && n == ns)
        .map(|(_, owned)| apply::served(owned))
        .filter(|object| selector.matches(object));
    let list_kind = format!("{}List", kind.name());
    Ok(list(kind.api_version(), &list_kind, state.rv, items))
}

/// `GET /api/v1/namespaces/{ns}/pods` or `.../events`, by selector. The items of a
/// built-in type's list carry no `apiVersion` and `kind`, as the apiserver writes them.
fn list_core(
    request: &Request,
    shared: &Shared,
    ns: &str,
    resource: Resource,
) -> Result<Reply, Failure> {
    let (fields, list_kind) = match resource.plural {
        "pods" => (POD_FIELDS, "PodList"),
        _ => (EVENT_FIELDS, "EventList"),
    };
    let selector = Selector::from_request(request, fields)?;
    let state = shared.lock();
    state.check_allowed(resource, "", "list", ns)?;
    let stored = match resource.plural {
        "pods" => &state.pods,
        _ => &state.events,
    };
    let items = stored
        .iter()
        .filter(|o| o["metadata"]["namespace"] == ns && selector.matches(o))
        .map(|o| {
            let mut o = o.clone();
            if let Some(map) = o.as_object_mut() {
                map.shift_remove("apiVersion");
                map.shift_remove("kind");
            }
            o
        });
    Ok(list("v1", list_kind, state.rv, items))
}

/// `GET /version`: the Kubernetes of OpenShift 4.20, or the one the test set.
fn version(shared: &Shared) -> Reply {
    let git_version = shared.lock().git_version.clone();
    let git_version = git_version.as_deref().unwrap_or("v1.33.5");
    let mut numbers = git_version.trim_start_matches('v').split('.');
    let major = numbers.next().unwrap_or_default();
    let minor = numbers.next().unwrap_or_default();
    Reply::json(
        200,
        &json!({
            "major": major,
            "minor": minor,
            "gitVersion": git_version,
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2025-09-09T00:00:00Z",
            "goVersion": "go1.24.6",
            "compiler": "gc",
            "platform": "linux/amd64",
        }),
    )
}
