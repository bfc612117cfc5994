//! deploy --prewarm against the testkit's API server, the test thread playing the DaemonSet
//! controller and the kubelets of three nodes: each node's pod, its state, and the kubelet's
//! `Pulled` event with the pull time.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use modelcar_testkit::kube_server::Kind;
use modelcar_testkit::KubeServer;
use serde_json::{json, Value};

mod common;
use common::{json_out, stderr, Cluster};

const NS: &str = "llm";
const NAME: &str = "mistral-small-24b";
const DAEMON_SET: &str = "mistral-small-24b-prewarm";
const IMAGE: &str = "quay.io/org/mistral-small-24b@sha256:5f1e0c3d2b4a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0";

/// What one node's kubelet does with the image.
#[derive(Clone, Copy)]
enum Node {
    /// Pulls it in this many seconds.
    Pulls(&'static str),
    /// Has it already.
    Holds,
    /// Cannot pull it.
    BacksOff,
    /// Is still pulling.
    Pulling,
}

/// Plays the DaemonSet controller and the kubelets: once the DaemonSet exists, one pod per
/// node, each node doing what `nodes` says. Returns the DaemonSet as deploy created it.
fn run_nodes(
    server: &Arc<KubeServer>,
    nodes: Vec<(&'static str, Node)>,
) -> thread::JoinHandle<Value> {
    let server = Arc::clone(server);
    thread::spawn(move || {
        let ds = server.wait_for(Kind::DaemonSet, NS, DAEMON_SET, Duration::from_secs(20));
        let desired = nodes.len();
        server.write_status(
            Kind::DaemonSet,
            NS,
            DAEMON_SET,
            json!({"desiredNumberScheduled": desired, "numberReady": 0}),
        );
        thread::sleep(Duration::from_millis(300));
        for (node, kubelet) in nodes {
            add_node_pod(&server, node, kubelet);
        }
        ds
    })
}

fn add_node_pod(server: &KubeServer, node: &str, kubelet: Node) {
    let pod = format!("{DAEMON_SET}-{node}");
    let image = IMAGE;
    // The kubelet records `Pulled` before it starts the container.
    add_pulled_event(server, node, &pod, kubelet);
    let state = match kubelet {
        Node::Pulls(_) | Node::Holds => json!({"running": {"startedAt": "2026-12-07T01:00:00Z"}}),
        Node::BacksOff => json!({"waiting": {"reason": "ImagePullBackOff",
            "message": format!("Back-off pulling image \"{image}\": unauthorized: access to the requested resource is not authorized")}}),
        Node::Pulling => json!({"waiting": {"reason": "ContainerCreating"}}),
    };
    server.add_pod(
        NS,
        json!({
            "metadata": {"name": pod, "labels": {"modelcar.io/prewarm": NAME}},
            "spec": {"nodeName": node, "containers": [{"name": "hold", "image": image}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "hold", "image": image,
                "imageID": "", "ready": matches!(kubelet, Node::Pulls(_) | Node::Holds),
                "restartCount": 0, "state": state}]},
        }),
    );
}

/// The kubelet's `Pulled` event for `pod`, where `kubelet` pulled or held the image.
fn add_pulled_event(server: &KubeServer, node: &str, pod: &str, kubelet: Node) {
    let image = IMAGE;
    let message = match kubelet {
        Node::Pulls(time) => format!(
            "Successfully pulled image \"{image}\" in {time} ({time} including waiting). Image size: 51539607552 bytes."
        ),
        Node::Holds => format!("Container image \"{image}\" already present on machine"),
        _ => return,
    };
    server.add_event(
        NS,
        json!({
            "metadata": {"name": format!("{pod}.18a2b3c4d5e6f708")},
            "involvedObject": {"kind": "Pod", "namespace": NS, "name": pod,
                               "fieldPath": "spec.containers{hold}"},
            "reason": "Pulled", "type": "Normal", "message": message,
            "source": {"component": "kubelet", "host": node},
        }),
    );
}

fn prewarm_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        NAME,
        "--namespace",
        NS,
        "--storage-uri",
        "oci://quay.io/org/mistral-small-24b@sha256:5f1e0c3d2b4a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0",
        "--node-selector",
        "nvidia.com/gpu.product=NVIDIA-L40S",
        "--toleration",
        "nvidia.com/gpu:NoSchedule",
        "--service-account",
        "model-puller",
    ];
    args.extend_from_slice(extra);
    args
}

fn daemon_set_exists(cluster: &Cluster) -> bool {
    let found = cluster.server.object(Kind::DaemonSet, NS, DAEMON_SET);
    found.is_some()
}

fn cluster() -> Cluster {
    let cluster = Cluster::start(NS);
    cluster.server.add_serving_runtime(NS, "vllm-nvidia-gpu");
    cluster
}

#[test]
fn a_node_that_cannot_pull_is_named_and_nothing_is_deployed() {
    let cluster = cluster();
    let nodes = run_nodes(
        &cluster.server,
        vec![
            ("gpu-node-a", Node::Pulls("41.2s")),
            ("gpu-node-b", Node::Holds),
            ("gpu-node-c", Node::BacksOff),
        ],
    );
    let out = cluster.run(&prewarm_args(&["--prewarm", "--no-wait"]));
    let ds = nodes.join().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains("node gpu-node-c: ImagePullBackOff: Back-off pulling image"),
        "{text}"
    );
    assert!(
        text.contains("1 node(s) cannot pull the image (2 hold it)"),
        "{text}"
    );
    assert!(!text.contains("node gpu-node-a:"), "{text}");
    assert!(
        text.contains("2 of 3 nodes hold the image, slowest pull 41s"),
        "{text}"
    );

    // The DaemonSet was the predictor's placement, pinned to the digest, harmless.
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(
        pod["nodeSelector"],
        json!({"nvidia.com/gpu.product": "NVIDIA-L40S"})
    );
    assert_eq!(pod["tolerations"][0]["key"], "nvidia.com/gpu");
    assert_eq!(pod["serviceAccountName"], "model-puller");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let hold = &pod["containers"][0];
    assert_eq!(hold["image"], IMAGE);
    assert_eq!(hold["command"], json!(["sh", "-c", "sleep infinity"]));
    assert_eq!(
        hold["resources"]["requests"],
        json!({"cpu": "1m", "memory": "8Mi"})
    );
    assert_eq!(
        hold["securityContext"]["capabilities"]["drop"],
        json!(["ALL"])
    );

    assert!(!daemon_set_exists(&cluster), "removed");
    assert!(
        cluster.server.inference_service(NS, NAME).is_none(),
        "not deployed"
    );
}

#[test]
fn every_node_holds_the_image_with_its_pull_time_before_the_deploy() {
    let cluster = cluster();
    let nodes = run_nodes(
        &cluster.server,
        vec![
            ("gpu-node-a", Node::Pulls("41.2s")),
            ("gpu-node-b", Node::Holds),
            ("gpu-node-c", Node::Pulls("1m2.5s")),
        ],
    );
    let out = cluster.run(&prewarm_args(&["--prewarm", "--no-wait"]));
    nodes.join().unwrap();
    let report = json_out(&out);
    assert_eq!(
        report["prewarm"]["nodes"],
        json!([
            {"node": "gpu-node-a", "pull_seconds": 41.2},
            {"node": "gpu-node-b", "pull_seconds": 0.0},
            {"node": "gpu-node-c", "pull_seconds": 62.5},
        ])
    );
    assert!(
        stderr(&out).contains("3 of 3 nodes hold the image, slowest pull 62s"),
        "{}",
        stderr(&out)
    );
    assert!(!daemon_set_exists(&cluster), "removed");
    assert!(
        cluster.server.inference_service(NS, NAME).is_some(),
        "deployed after"
    );
    // The DaemonSet was applied (and removed) before the InferenceService was.
    let requests = cluster.server.requests();
    let at = |what: &str| requests.iter().position(|r| r.contains(what)).unwrap();
    assert!(
        at("DELETE /apis/apps/v1") < at("PATCH /apis/serving.kserve.io"),
        "{requests:#?}"
    );
}

#[test]
fn prewarm_only_keeps_the_daemon_set_when_asked_and_applies_nothing() {
    let cluster = cluster();
    let nodes = run_nodes(&cluster.server, vec![("gpu-node-a", Node::Holds)]);
    let out = cluster.run(&prewarm_args(&["--prewarm-only", "--keep-prewarm"]));
    nodes.join().unwrap();
    let report = json_out(&out);
    assert_eq!(report["kept"], true);
    assert!(daemon_set_exists(&cluster), "kept");
    assert!(cluster.server.inference_service(NS, NAME).is_none());
}

#[test]
fn no_matching_node_and_a_slow_node_are_errors_that_say_so() {
    let empty = cluster();
    let nodes = run_nodes(&empty.server, vec![]);
    let out = empty.run(&prewarm_args(&["--prewarm-only"]));
    nodes.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("runs on no node"), "{}", stderr(&out));

    let cluster = cluster();
    let nodes = run_nodes(
        &cluster.server,
        vec![("gpu-node-a", Node::Holds), ("gpu-node-b", Node::Pulling)],
    );
    let out = cluster.run(&prewarm_args(&[
        "--prewarm-only",
        "--prewarm-timeout",
        "3s",
    ]));
    nodes.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    assert!(
        text.contains("after 3s (--prewarm-timeout); still pulling: gpu-node-b"),
        "{text}"
    );
    assert!(!daemon_set_exists(&cluster), "removed");
}
