//! What a prewarm DaemonSet's pods say about their nodes: the image is held (the container
//! runs), the node cannot pull it (ErrImagePull, ImagePullBackOff, and the other reasons the
//! kubelet gives up with), or it is still on its way; and how long the pull took, from the
//! kubelet's `Pulled` event ("Successfully pulled image "x" in 41.2s (41.2s including
//! waiting)...", `pkg/kubelet/images/image_manager.go`).

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

/// Waiting reasons after which the pod will not run without someone fixing something.
const PULL_FAILURES: [&str; 6] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// One node's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeState {
    /// The container runs: the node holds the image.
    Holds,
    /// The kubelet gave up: the reason and its message.
    Failed {
        reason: String,
        message: String,
    },
    Pending,
}

/// The node a pod is on (empty until scheduled) and its state.
pub fn node_state(pod: &Pod) -> (String, NodeState) {
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default();
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref());
    let Some(status) = statuses.and_then(|s| s.first()) else {
        return (node, NodeState::Pending);
    };
    let state = status.state.as_ref();
    if state.is_some_and(|s| s.running.is_some()) {
        return (node, NodeState::Holds);
    }
    let waiting = state.and_then(|s| s.waiting.as_ref());
    match waiting.and_then(|w| w.reason.as_deref()) {
        Some(reason) if PULL_FAILURES.contains(&reason) => {
            let message = waiting.and_then(|w| w.message.clone()).unwrap_or_default();
            let reason = reason.to_string();
            (node, NodeState::Failed { reason, message })
        }
        _ => (node, NodeState::Pending),
    }
}

/// The pull time a kubelet `Pulled` event reports; `Some(ZERO)` when the image was already
/// on the node; `None` for another message.
pub fn pull_time(message: &str) -> Option<Duration> {
    if message.contains("already present on machine") {
        return Some(Duration::ZERO);
    }
    let rest = message.split_once("\" in ")?.1;
    let text = rest.split_whitespace().next()?;
    go_duration(text)
}

/// A Go `time.Duration` string (`41.2s`, `1m2.5s`, `350ms`, `1h0m3s`).
fn go_duration(text: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += number * seconds;
        rest = &rest[unit_end..];
    }
    Some(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pull_times_as_the_kubelet_writes_them() {
        let pulled = "Successfully pulled image \"quay.io/o/m@sha256:00\" in 41.2s (41.2s \
                      including waiting). Image size: 4812 bytes.";
        assert_eq!(pull_time(pulled), Some(Duration::from_millis(41200)));
        let long = "Successfully pulled image \"q/m\" in 1m2.5s (1m9s including waiting)";
        assert_eq!(pull_time(long), Some(Duration::from_millis(62500)));
        let fast = "Successfully pulled image \"q/m\" in 350ms (350ms including waiting)";
        assert_eq!(pull_time(fast), Some(Duration::from_millis(350)));
        let present = "Container image \"q/m@sha256:00\" already present on machine";
        assert_eq!(pull_time(present), Some(Duration::ZERO));
        assert_eq!(pull_time("Pulling image \"q/m\""), None);
    }

    fn pod(node: &str, state: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"nodeName": node, "containers": [{"name": "hold"}]},
            "status": {"containerStatuses": [{"name": "hold", "image": "i", "imageID": "",
                       "ready": false, "restartCount": 0, "state": state}]},
        }))
        .unwrap()
    }

    #[test]
    fn node_states() {
        let running = pod("n1", json!({"running": {}}));
        assert_eq!(node_state(&running), ("n1".into(), NodeState::Holds));
        let backoff = pod(
            "n2",
            json!({"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling"}}),
        );
        let failed = NodeState::Failed {
            reason: "ImagePullBackOff".into(),
            message: "Back-off pulling".into(),
        };
        assert_eq!(node_state(&backoff), ("n2".into(), failed));
        let creating = pod("n3", json!({"waiting": {"reason": "ContainerCreating"}}));
        assert_eq!(node_state(&creating), ("n3".into(), NodeState::Pending));
    }
}
