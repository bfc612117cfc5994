//! The objects the server holds besides the written ones ([`super::Kind`]), built the way a cluster would
//! hold them (server-filled metadata, the fields a client reads), and the timestamps and
//! uids the server fills in.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

/// Now, in whole seconds: Kubernetes timestamps have no fraction.
pub(super) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// `YYYY-MM-DDTHH:MM:SSZ` (`metav1.Time` in JSON).
pub(super) fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + std::time::Duration::from_secs(secs)).to_string()
}

/// A UUID-shaped uid, unique within the server (objects get the resourceVersion they were
/// created at as serial), so a test can tell a re-created object from the old one.
pub(super) fn uid(serial: u64) -> String {
    format!("4b1d5e7a-0c2f-4e0b-9d3a-{serial:012x}")
}

/// The metadata the server fills in on create.
pub(super) fn server_metadata(name: &str, namespace: Option<&str>, rv: u64) -> Map<String, Value> {
    let mut metadata = Map::new();
    metadata.insert("name".into(), name.into());
    if let Some(namespace) = namespace {
        metadata.insert("namespace".into(), namespace.into());
    }
    metadata.insert("uid".into(), uid(rv).into());
    metadata.insert("resourceVersion".into(), rv.to_string().into());
    metadata.insert("creationTimestamp".into(), rfc3339(now()).into());
    metadata
}

/// A v1 Namespace, as the apiserver has it once the namespace controller has seen it.
pub(super) fn namespace(name: &str, rv: u64) -> Value {
    let mut metadata = server_metadata(name, None, rv);
    metadata.insert(
        "labels".into(),
        json!({"kubernetes.io/metadata.name": name}),
    );
    json!({
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": metadata,
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    })
}

/// A vLLM runtime as OpenShift AI installs it: a `ServingRuntime` in `namespace`, or a
/// `ClusterServingRuntime` without one. KServe picks it for `modelFormat: vLLM` by itself
/// (`autoSelect`).
pub(super) fn serving_runtime(namespace: Option<&str>, name: &str, rv: u64) -> Value {
    let mut metadata = server_metadata(name, namespace, rv);
    metadata.insert("generation".into(), 1.into());
    metadata.insert(
        "annotations".into(),
        json!({"openshift.io/display-name": "vLLM ServingRuntime for KServe"}),
    );
    let runtime = json!({
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": if namespace.is_some() { "ServingRuntime" } else { "ClusterServingRuntime" },
        "metadata": metadata,
        "spec": {
            "annotations": {"prometheus.io/path": "/metrics", "prometheus.io/port": "8080"},
            "multiModel": false,
            "supportedModelFormats": [{"name": "vLLM", "autoSelect": true}],
            "containers": [{
                "name": "kserve-container",
                "image": "quay.io/modh/vllm:rhoai-2.20-cuda",
                "command": ["python", "-m", "vllm.entrypoints.openai.api_server"],
                "args": ["--port=8080", "--model=/mnt/models", "--served-model-name={{.Name}}"],
                "env": [{"name": "HF_HOME", "value": "/tmp/hf_home"}],
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
            }],
        },
    });
    sorted(&runtime)
}

/// A pod or event a test describes (`kind`), completed like a stored one: `apiVersion`,
/// `kind`, the namespace, and the server-filled metadata it lacks.
pub(super) fn completed(namespace: &str, mut object: Value, kind: &str, rv: u64) -> Value {
    let Some(map) = object.as_object_mut() else {
        panic!("KubeServer: a {kind} is a JSON object, not {object}");
    };
    let name = map
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("KubeServer: the {kind} has no metadata.name"))
        .to_owned();
    map.entry("apiVersion").or_insert_with(|| "v1".into());
    map.entry("kind").or_insert_with(|| kind.into());
    let metadata = map["metadata"]
        .as_object_mut()
        .expect("metadata with a name is a map");
    if let Some(other) = metadata.get("namespace").and_then(Value::as_str) {
        assert_eq!(
            other, namespace,
            "KubeServer: the {kind} {name} says namespace {other}, added to {namespace}"
        );
    }
    for (key, value) in server_metadata(&name, Some(namespace), rv) {
        metadata.entry(key).or_insert(value);
    }
    object
}

/// A ConfigMap with `data`.
pub(super) fn config_map(namespace: &str, name: &str, data: Value, rv: u64) -> Value {
    let metadata = server_metadata(name, Some(namespace), rv);
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data})
}

/// `value` with every map's keys sorted, as Go's encoding/json writes the unstructured
/// objects of custom resources.
pub(super) fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400 + 3661), "2000-02-29T01:01:01Z");
        assert_eq!(rfc3339(1_767_225_599), "2025-12-31T23:59:59Z");
    }
}
