//! What deploy prints when it is done, and the `URL` Tekton result.

use modelcar_shared::cli::Report;
use serde::Serialize;

use crate::apply::Change;
use crate::prewarm::{slowest_pull, PrewarmReport};
use crate::wait::Ready;
use crate::ServeSpec;

#[derive(Debug, Clone, Serialize)]
pub struct DeployReport {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub storage_uri: String,
    /// What the apply did: created, updated or unchanged.
    pub change: Change,
    /// Whether it was seen Ready (`false` with `--no-wait`).
    pub ready: bool,
    pub url: Option<String>,
    pub ready_at_utc: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prewarm: Option<PrewarmReport>,
}

impl DeployReport {
    pub fn new(spec: &ServeSpec, change: Change, ready: Option<Ready>) -> Self {
        Self {
            kind: spec.kind.name(),
            namespace: spec.namespace.clone(),
            name: spec.name.clone(),
            storage_uri: spec.storage_uri.clone(),
            change,
            ready: ready.is_some(),
            url: ready.as_ref().and_then(|r| r.url.clone()),
            ready_at_utc: ready.map(|r| r.ready_at_utc),
            prewarm: None,
        }
    }
}

impl Report for DeployReport {
    fn human(&self) -> String {
        let state = match (self.ready, &self.url) {
            (true, Some(url)) => format!("Ready at {url}"),
            (true, None) => "Ready".to_string(),
            (false, _) => "applied, not waited for (--no-wait)".to_string(),
        };
        let prewarmed = match &self.prewarm {
            Some(prewarm) => format!("{}\n", prewarm.human()),
            None => String::new(),
        };
        format!(
            "{prewarmed}{} {}/{} {}: {state}\nserving {}",
            self.kind, self.namespace, self.name, self.change, self.storage_uri
        )
    }

    /// `URL` is written even when empty: a Tekton result a Task declares must exist.
    fn results(&self) -> Vec<(&'static str, String)> {
        vec![("URL", self.url.clone().unwrap_or_default())]
    }
}

/// `--dry-run`: the object that would be applied, printed as YAML (as JSON with
/// `--output json`), and nothing sent to the cluster.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct DryRun {
    manifest: serde_json::Value,
}

impl DryRun {
    pub fn of(spec: &ServeSpec) -> Self {
        Self {
            manifest: spec.kind.manifest(spec),
        }
    }
}

impl Report for DryRun {
    fn human(&self) -> String {
        let yaml = serde_yaml_ng::to_string(&self.manifest).expect("a JSON value is always YAML");
        yaml.trim_end().to_string()
    }
}

impl Report for PrewarmReport {
    fn human(&self) -> String {
        let slowest = slowest_pull(self.nodes.iter().filter_map(|n| n.pull_seconds));
        let mut text = format!("{} node(s) hold {}{slowest}", self.nodes.len(), self.image);
        for node in &self.nodes {
            let time = match node.pull_seconds {
                Some(0.0) => "already there".to_string(),
                Some(s) => format!("pulled in {s:.1}s"),
                None => "pull time unknown".to_string(),
            };
            text.push_str(&format!("\n  {}: {time}", node.node));
        }
        if self.kept {
            text.push_str(&format!(
                "\nDaemonSet {} kept (--keep-prewarm)",
                self.daemon_set
            ));
        }
        text
    }
}

/// What a deploy run did: applied the object, only showed it, or only prewarmed the nodes.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum DeployOutcome {
    Applied(DeployReport),
    DryRun(DryRun),
    Prewarmed(PrewarmReport),
}

impl Report for DeployOutcome {
    fn human(&self) -> String {
        match self {
            Self::Applied(report) => report.human(),
            Self::DryRun(dry_run) => dry_run.human(),
            Self::Prewarmed(prewarm) => prewarm.human(),
        }
    }

    fn results(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Applied(report) => report.results(),
            Self::DryRun(dry_run) => dry_run.results(),
            Self::Prewarmed(prewarm) => prewarm.results(),
        }
    }
}
