//! What can stop a deploy, each said so that the reader knows which flag, object or
//! credential to fix.

use modelcar_shared::causes::ErrorCauses;
use std::fmt::Write as _;
use std::time::Duration;

use crate::conditions::Condition;

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(
        "no --storage-uri, and {0} records no pushed image (image and image_digest): run \
         build-push with --workspace first, or give --storage-uri oci://..."
    )]
    NoImage(String),
    #[error("give --storage-uri oci://..., or --workspace to take it from the metadata file")]
    NoStorageUri,
    #[error("--storage-uri {0:?} is not an oci:// URI (a ModelCar image)")]
    NotOci(String),
    #[error(
        "--storage-uri {uri:?}: KServe knows no {scheme} (oci://, oci+native:// or \
         oci+fetch://; or --oci-mode modelcar, native or fetch)"
    )]
    UnknownOciScheme { uri: String, scheme: String },
    #[error("--storage-uri {uri:?} names the {named} mode, and --oci-mode says {flag}: give one")]
    OciModeConflict {
        uri: String,
        named: crate::OciMode,
        flag: crate::OciMode,
    },
    #[error(
        "the LLMInferenceService controller does not take oci+fetch:// (KServe: \"unsupported \
         schema in model URI\"): use --oci-mode modelcar or native, or --kind inferenceservice"
    )]
    LlmFetch,
    #[error(
        "KServe has OCI models off ({config_map}: storageInitializer has no ociModelMode and \
         enableModelcar is false), so it cannot mount the image in {asked} mode: set \
         \"enableModelcar\": true or \"ociModelMode\": \"{asked}\" there (OpenShift AI: the \
         DataScienceCluster's kserve settings)"
    )]
    OciDisabled {
        config_map: String,
        asked: crate::OciMode,
    },
    #[error(
        "--oci-mode native needs the ImageVolume feature, and this cluster (Kubernetes \
         {version}) {problem}; use --oci-mode modelcar or fetch"
    )]
    NoImageVolume { version: String, problem: String },
    #[error("DaemonSet {0} runs on no node: no node matches --node-selector and --toleration")]
    NoPrewarmNodes(String),
    #[error("{}", prewarm_failed(.daemon_set, *.held, .failed))]
    PrewarmFailed {
        daemon_set: String,
        held: usize,
        /// Node, reason, message.
        failed: Vec<(String, String, String)>,
    },
    #[error(
        "DaemonSet {daemon_set}: not every node held the image after {} (--prewarm-timeout); \
         still pulling: {}",
        humantime::format_duration(*.timeout),
        .pending.join(", ")
    )]
    PrewarmTimeout {
        daemon_set: String,
        timeout: Duration,
        pending: Vec<String>,
    },
    #[error("Kubernetes configuration: {0}")]
    Config(String),
    #[error("namespace {0:?} does not exist (--namespace)")]
    NoNamespace(String),
    #[error("{}", no_runtime(.runtime, .namespace, .available))]
    NoRuntime {
        runtime: String,
        namespace: String,
        available: Vec<String>,
    },
    #[error(
        "{what}: {message}\nanother client changed these fields; rerun with \
         --force-conflicts to take them over"
    )]
    Conflict {
        /// `InferenceService NAME`, `DaemonSet NAME`...
        what: String,
        message: String,
    },
    #[error("{0} was deleted while deploy waited for it")]
    Deleted(String),
    #[error("{}", not_ready(.what, *.timeout, .conditions, .pods))]
    NotReady {
        /// `InferenceService NAME` or `LLMInferenceService NAME`.
        what: String,
        timeout: Duration,
        conditions: Vec<Condition>,
        /// What the predictor's pods say, one line each.
        pods: Vec<String>,
    },
    #[error("cannot {action} {what}: {detail}")]
    Kube {
        action: &'static str,
        what: String,
        detail: String,
    },
    #[error(transparent)]
    Metadata(#[from] modelcar_shared::metadata::MetadataError),
    #[error(transparent)]
    Workspace(#[from] modelcar_shared::workspace::WorkspaceError),
}

impl DeployError {
    /// A failed API call: the server's own message when it answered, the whole cause chain
    /// when it could not be reached (kube's top-level text alone says only "client error").
    pub fn kube(action: &'static str, what: &str, error: kube::Error) -> Self {
        let detail = match &error {
            kube::Error::Api(status) if matches!(status.code, 401 | 403) => format!(
                "the cluster refused the credentials ({} {}): {}",
                status.code, status.reason, status.message
            ),
            kube::Error::Api(status) => format!("{} ({})", status.message, status.code),
            other => match modelcar_shared::tls::tls_problem(other) {
                Some(problem) => format!(
                    "TLS to the API server failed: {problem}; the kubeconfig's cluster must name \
                     the CA that issued it (certificate-authority or certificate-authority-data; \
                     in a pod, the service account's ca.crt is read)"
                ),
                None => other.causes().to_string(),
            },
        };
        DeployError::Kube {
            action,
            what: what.into(),
            detail,
        }
    }
}

fn no_runtime(runtime: &str, namespace: &str, available: &[String]) -> String {
    let have = match available {
        [] => "there are none; create one (OpenShift AI: Settings > Serving runtimes)".to_string(),
        names => format!("those there: {}", names.join(", ")),
    };
    format!(
        "ServingRuntime {runtime:?} is not in namespace {namespace:?} nor a ClusterServingRuntime \
         (--runtime); {have}"
    )
}

fn prewarm_failed(daemon_set: &str, held: usize, failed: &[(String, String, String)]) -> String {
    let mut text = format!(
        "DaemonSet {daemon_set}: {} node(s) cannot pull the image ({held} hold it):",
        failed.len()
    );
    for (node, reason, message) in failed {
        let _ = write!(text, "\n  node {node}: {reason}: {message}");
    }
    text.push_str(
        "\n  (a pull secret missing from --service-account, a registry the node cannot reach or \
         trust, or no disk left for the image)",
    );
    text
}

fn not_ready(what: &str, timeout: Duration, conditions: &[Condition], pods: &[String]) -> String {
    let mut text = format!(
        "{what} was not Ready after {} (--timeout)",
        humantime::format_duration(timeout)
    );
    match conditions {
        [] => text.push_str("\n  no conditions reported yet (is the KServe controller running?)"),
        _ => text.push_str("\n  last conditions:"),
    }
    for condition in conditions {
        let _ = write!(text, "\n    {condition}");
    }
    if !pods.is_empty() {
        text.push_str("\n  predictor:");
    }
    for line in pods {
        let _ = write!(text, "\n    {line}");
    }
    text
}
