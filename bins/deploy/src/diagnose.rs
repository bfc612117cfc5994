//! Why a predictor is not Ready, read from its pods: the InferenceService's conditions often
//! say only "not ready", while the pod says ImagePullBackOff, Unschedulable (no node with free
//! GPUs) or OOMKilled, which is what the person at the terminal needs to act on.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::api::{Api, ListParams};
use kube::Client;
use modelcar_shared::causes::ErrorCauses;

/// Container states that are part of a normal start, not a problem.
const STARTING: [&str; 2] = ["ContainerCreating", "PodInitializing"];

/// One line per problem found in the predictor's pods; a line saying why, when none can be
/// read (never an error: this only explains a failure already being reported).
pub async fn predictor_problems(client: &Client, namespace: &str, selector: &str) -> Vec<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    match pods.list(&ListParams::default().labels(selector)).await {
        Ok(list) if list.items.is_empty() => {
            vec![format!("no predictor pod exists yet (label {selector})")]
        }
        Ok(list) => list.items.iter().flat_map(pod_problems).collect(),
        Err(e) => vec![format!("cannot read the predictor's pods: {}", e.causes())],
    }
}

pub fn pod_problems(pod: &Pod) -> Vec<String> {
    let name = pod.metadata.name.as_deref().unwrap_or("pod");
    let Some(status) = &pod.status else {
        return vec![format!("pod {name}: no status yet")];
    };
    let unscheduled = status
        .conditions
        .iter()
        .flatten()
        .filter(|c| c.type_ == "PodScheduled" && c.status == "False")
        .map(|c| {
            let reason = c.reason.as_deref().unwrap_or("not scheduled");
            let message = c.message.as_deref().unwrap_or_default();
            format!("pod {name}: {reason}: {message}")
        });
    let containers = status
        .init_container_statuses
        .iter()
        .chain(status.container_statuses.iter())
        .flatten()
        .flat_map(|c| container_problems(name, c));
    let problems: Vec<String> = unscheduled.chain(containers).collect();
    match problems.is_empty() {
        true => vec![format!(
            "pod {name}: phase {}",
            status.phase.as_deref().unwrap_or("unknown")
        )],
        false => problems,
    }
}

fn container_problems(pod: &str, container: &ContainerStatus) -> Vec<String> {
    let mut problems = Vec::new();
    let waiting = container.state.as_ref().and_then(|s| s.waiting.as_ref());
    if let Some(w) = waiting.filter(|w| w.reason.as_deref().is_some_and(|r| !STARTING.contains(&r)))
    {
        problems.push(format!(
            "pod {pod}, container {}: {}: {}",
            container.name,
            w.reason.as_deref().unwrap_or_default(),
            w.message.as_deref().unwrap_or_default()
        ));
    }
    let last_end = container
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref());
    if let Some(t) = last_end {
        problems.push(format!(
            "pod {pod}, container {}: last run ended {} (exit code {}), restarted {} times",
            container.name,
            t.reason.as_deref().unwrap_or("without a reason"),
            t.exit_code,
            container.restart_count
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "m-predictor-0"}, "status": status}))
            .unwrap()
    }

    #[test]
    fn the_usual_reasons_are_named() {
        let pulling = pod(json!({"phase": "Pending", "containerStatuses": [{
            "name": "kserve-container", "image": "i", "imageID": "", "ready": false,
            "restartCount": 0,
            "state": {"waiting": {"reason": "ImagePullBackOff",
                                  "message": "Back-off pulling image \"quay.io/x\""}}}]}));
        assert_eq!(
            pod_problems(&pulling),
            ["pod m-predictor-0, container kserve-container: ImagePullBackOff: Back-off pulling image \"quay.io/x\""]
        );
        let no_gpu = pod(json!({"phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}]}));
        assert_eq!(
            pod_problems(&no_gpu),
            ["pod m-predictor-0: Unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu."]
        );
        let oom = pod(json!({"phase": "Running", "containerStatuses": [{
            "name": "kserve-container", "image": "i", "imageID": "", "ready": false,
            "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]}));
        let problems = pod_problems(&oom);
        assert_eq!(problems.len(), 2);
        assert!(problems[1].contains("OOMKilled (exit code 137), restarted 3 times"));
        let starting = pod(json!({"phase": "Pending", "containerStatuses": [{
            "name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ContainerCreating"}}}]}));
        assert_eq!(
            pod_problems(&starting),
            ["pod m-predictor-0: phase Pending"]
        );
    }
}
