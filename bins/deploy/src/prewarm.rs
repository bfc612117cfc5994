//! `--prewarm`: have every node the model's pods may land on pull the ModelCar before the
//! first replica is scheduled, so that a cold start waits for the model to load, not for a
//! 48 GB pull (kserve/kserve #5852: 77 minutes cold, 12 s warm). A DaemonSet with the
//! predictor's node selector, tolerations and service account (its pull secrets) runs the
//! image by digest with its own `sh -c 'sleep infinity'`, tiny requests and no privileges;
//! deploy waits until each node's pod runs, reports each node's pull time from the
//! kubelet's events, names the nodes that cannot pull, and removes the DaemonSet (the images
//! stay on the nodes until the kubelet's image GC needs the space).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use kube::api::{Api, ApiResource, DeleteParams, ListParams};
use kube::Client;
use modelcar_shared::causes::ErrorCauses;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::manifest::{metadata, placement};
use crate::prewarm_pods::{node_state, pull_time, NodeState};
use crate::{apply, parse_oci_uri, ApplyOptions, DeployError, ServeSpec};

/// The label that ties the DaemonSet to its pods.
const LABEL: &str = "modelcar.io/prewarm";
/// The UID KServe runs a modelcar as by default (`uidModelcar`), where the namespace does
/// not assign one (OpenShift does, from `openshift.io/sa.scc.uid-range`).
const UID: i64 = 1010;
/// How often the DaemonSet and its pods are read while waiting.
const POLL: Duration = Duration::from_secs(1);

/// How a prewarm is run.
#[derive(Debug, Clone)]
pub struct PrewarmOptions {
    pub timeout: Duration,
    /// Leave the DaemonSet (new nodes then pull the image as they join).
    pub keep: bool,
}

/// One node that holds the image.
#[derive(Debug, Clone, Serialize)]
pub struct NodePull {
    pub node: String,
    /// Seconds the kubelet took to pull (0 when the image was already there), if it said.
    pub pull_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PrewarmReport {
    pub daemon_set: String,
    pub image: String,
    pub nodes: Vec<NodePull>,
    pub kept: bool,
}

/// The DaemonSet's name for the model `name`.
pub fn daemon_set_name(name: &str) -> String {
    format!("{name}-prewarm")
}

/// The DaemonSet that pulls the image of `spec` onto its nodes; `run_as` is the UID, when
/// the namespace does not assign one.
pub fn daemon_set(spec: &ServeSpec, image: &str, run_as: Option<i64>) -> Value {
    let mut meta = metadata(spec);
    let name = daemon_set_name(&spec.name);
    meta.insert("name".into(), json!(name));
    meta.remove("annotations");
    let labels = json!({ LABEL: spec.name });
    let mut pod = placement(spec);
    pod.insert("automountServiceAccountToken".into(), json!(false));
    pod.insert("terminationGracePeriodSeconds".into(), json!(0));
    let mut pod_security =
        json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}});
    if let Some(uid) = run_as {
        pod_security["runAsUser"] = json!(uid);
    }
    pod.insert("securityContext".into(), pod_security);
    pod.insert(
        "containers".into(),
        json!([{
            "name": "hold",
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "command": ["sh", "-c", "sleep infinity"],
            "resources": {"requests": {"cpu": "1m", "memory": "8Mi"}, "limits": {"memory": "16Mi"}},
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "readOnlyRootFilesystem": true,
                "capabilities": {"drop": ["ALL"]},
            },
        }]),
    );
    json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": meta,
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    })
}

/// Creates (or updates) the DaemonSet, waits for every node, removes it unless asked not to.
pub async fn prewarm(
    client: &Client,
    spec: &ServeSpec,
    apply_options: &ApplyOptions,
    options: &PrewarmOptions,
) -> Result<PrewarmReport, DeployError> {
    let image = match parse_oci_uri(&spec.storage_uri) {
        Ok((_, image)) => image.to_string(),
        Err(_) => return Err(DeployError::NotOci(spec.storage_uri.clone())),
    };
    if !image.contains("@sha256:") {
        tracing::warn!("{image} has no digest: the nodes pull what the tag names now");
    }
    let run_as = match assigns_uids(client, &spec.namespace).await {
        true => None,
        false => Some(UID),
    };
    let name = daemon_set_name(&spec.name);
    let manifest = daemon_set(spec, &image, run_as);
    let resource = ApiResource::erase::<DaemonSet>(&());
    let dynamic = Api::namespaced_with(client.clone(), &spec.namespace, &resource);
    apply::apply(&dynamic, &name, &manifest, apply_options).await?;
    let api: Api<DaemonSet> = Api::namespaced(client.clone(), &spec.namespace);
    tracing::info!("DaemonSet {name}: pulling {image} onto every node the model may run on");
    let waited = tokio::time::timeout(options.timeout, wait(client, spec, &name)).await;
    // Read before the removal takes the pods away.
    let pending = match waited {
        Err(_) => pending_nodes(client, spec).await,
        Ok(_) => Vec::new(),
    };
    if !options.keep {
        remove(&api, &name).await;
    }
    let nodes = match waited {
        Ok(outcome) => outcome?,
        Err(_elapsed) => {
            return Err(DeployError::PrewarmTimeout {
                daemon_set: name,
                timeout: options.timeout,
                pending,
            });
        }
    };
    Ok(PrewarmReport {
        daemon_set: name,
        image,
        nodes,
        kept: options.keep,
    })
}

/// OpenShift gives each namespace a UID range its pods run in: a fixed UID would be refused.
async fn assigns_uids(client: &Client, namespace: &str) -> bool {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    match namespaces.get_opt(namespace).await {
        Ok(Some(ns)) => ns
            .metadata
            .annotations
            .is_some_and(|a| a.contains_key("openshift.io/sa.scc.uid-range")),
        _ => false,
    }
}

/// Until every node the DaemonSet wants holds the image; an error naming the nodes that
/// cannot pull once all others do. Each node's pull time is read as soon as it holds the
/// image, so that the progress can say which pull was the slowest so far.
async fn wait(client: &Client, spec: &ServeSpec, name: &str) -> Result<Vec<NodePull>, DeployError> {
    let api: Api<DaemonSet> = Api::namespaced(client.clone(), &spec.namespace);
    let mut pulls = PullTimes::new(client, &spec.namespace);
    let started = Instant::now();
    let mut said = String::new();
    loop {
        let desired = desired_nodes(&api, name).await?;
        let nodes = read_nodes(client, spec).await?;
        let held: Vec<(&String, &String)> = nodes
            .iter()
            .filter(|(_, (_, state))| *state == NodeState::Holds)
            .map(|(node, (pod, _))| (node, pod))
            .collect();
        let failed: Vec<(String, String, String)> = nodes
            .iter()
            .filter_map(|(node, (_, state))| match state {
                NodeState::Failed { reason, message } => {
                    Some((node.clone(), reason.clone(), message.clone()))
                }
                _ => None,
            })
            .collect();
        pulls.read_new(&held).await;
        if let Some(desired) = desired {
            let progress = pulls.progress(held.len(), desired);
            if progress != said {
                tracing::info!("{progress} ({}s)", started.elapsed().as_secs());
                said = progress;
            }
            if desired == 0 {
                return Err(DeployError::NoPrewarmNodes(name.into()));
            }
            if held.len() + failed.len() >= desired as usize && !failed.is_empty() {
                return Err(DeployError::PrewarmFailed {
                    daemon_set: name.into(),
                    held: held.len(),
                    failed,
                });
            }
            if held.len() >= desired as usize {
                return Ok(pulls.of(&held).await);
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `status.desiredNumberScheduled` once the DaemonSet controller has seen this generation.
async fn desired_nodes(api: &Api<DaemonSet>, name: &str) -> Result<Option<i32>, DeployError> {
    let ds = api
        .get(name)
        .await
        .map_err(|e| DeployError::kube("read", &format!("DaemonSet {name}"), e))?;
    let status = ds.status.as_ref();
    let seen = status.and_then(|s| s.observed_generation) >= ds.metadata.generation;
    Ok(status.filter(|_| seen).map(|s| s.desired_number_scheduled))
}

/// Each node's pod and its state, from the DaemonSet's pods.
async fn read_nodes(
    client: &Client,
    spec: &ServeSpec,
) -> Result<BTreeMap<String, (String, NodeState)>, DeployError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &spec.namespace);
    let selector = format!("{LABEL}={}", spec.name);
    let list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| DeployError::kube("list the pods of", &selector, e))?;
    Ok(list
        .items
        .iter()
        .map(|pod| {
            let (node, state) = node_state(pod);
            (node, (pod.metadata.name.clone().unwrap_or_default(), state))
        })
        .filter(|(node, _)| !node.is_empty())
        .collect())
}

async fn pending_nodes(client: &Client, spec: &ServeSpec) -> Vec<String> {
    match read_nodes(client, spec).await {
        Ok(nodes) => nodes
            .into_iter()
            .filter(|(_, (_, state))| *state != NodeState::Holds)
            .map(|(node, _)| node)
            .collect(),
        Err(e) => vec![format!("(cannot read the pods: {})", e.causes())],
    }
}

/// Each node's pull time, from its pod's `Pulled` event (events may be gone or unreadable:
/// then the time is unknown, never an error). Each node's events are read once while
/// waiting, and once more at the end where they did not say: a kept DaemonSet's old events
/// have expired, and asking again every poll would not bring them back.
struct PullTimes {
    events: Api<Event>,
    /// Every node asked about, with what its events said.
    by_node: BTreeMap<String, Option<f64>>,
}

impl PullTimes {
    fn new(client: &Client, namespace: &str) -> Self {
        PullTimes {
            events: Api::namespaced(client.clone(), namespace),
            by_node: BTreeMap::new(),
        }
    }

    /// Reads the pull time of each node in `held` (each node with its pod) not asked about yet.
    async fn read_new(&mut self, held: &[(&String, &String)]) {
        for (node, pod) in held {
            if !self.by_node.contains_key(*node) {
                let seconds = self.read(node, pod).await;
                self.by_node.insert(node.to_string(), seconds);
            }
        }
    }

    async fn read(&self, node: &str, pod: &str) -> Option<f64> {
        let seconds = pulled_seconds(&self.events, pod).await;
        if let Some(s) = seconds {
            tracing::info!("{node}: pulled in {s:.1}s");
        }
        seconds
    }

    /// "3 of 4 nodes hold the image, slowest pull 41s".
    fn progress(&self, held: usize, desired: i32) -> String {
        let known = self.by_node.values().flatten().copied();
        format!(
            "{held} of {desired} nodes hold the image{}",
            slowest_pull(known)
        )
    }

    /// The pull time of each node in `held`; where its events did not say yet, they are read
    /// once more (the kubelet's event may reach the API server after the container started).
    async fn of(&self, held: &[(&String, &String)]) -> Vec<NodePull> {
        let mut pulls = Vec::new();
        for (node, pod) in held {
            let seconds = match self.by_node.get(*node).copied().flatten() {
                Some(seconds) => Some(seconds),
                None => self.read(node, pod).await,
            };
            pulls.push(NodePull {
                node: node.to_string(),
                pull_seconds: seconds,
            });
        }
        pulls
    }
}

/// ", slowest pull 41s" of some pull times; nothing when there are none.
pub(crate) fn slowest_pull(seconds: impl IntoIterator<Item = f64>) -> String {
    match seconds.into_iter().reduce(f64::max) {
        Some(slowest) => format!(", slowest pull {slowest:.0}s"),
        None => String::new(),
    }
}

async fn pulled_seconds(events: &Api<Event>, pod: &str) -> Option<f64> {
    let fields = format!("involvedObject.name={pod},reason=Pulled");
    let list = events
        .list(&ListParams::default().fields(&fields))
        .await
        .ok()?;
    list.items
        .iter()
        .filter_map(|e| pull_time(e.message.as_deref()?))
        .map(|d| d.as_secs_f64())
        .reduce(f64::max)
}

/// Deletes the DaemonSet; a failure is only warned about (the images are pulled already).
async fn remove(api: &Api<DaemonSet>, name: &str) {
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => tracing::info!("DaemonSet {name} removed"),
        Err(e) => tracing::warn!(
            "cannot remove DaemonSet {name} ({}); delete it by hand",
            e.causes()
        ),
    }
}
