//! What deploy prints when it is done, and the `URL` Tekton result.

use modelcar_shared::cli::Report;
use serde::Serialize;

use crate::apply::Change;
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
        format!(
            "{} {}/{} {}: {state}\nserving {}",
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

/// What a deploy run did: applied the object, or only showed it.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum DeployOutcome {
    Applied(DeployReport),
    DryRun(DryRun),
}

impl Report for DeployOutcome {
    fn human(&self) -> String {
        match self {
            Self::Applied(report) => report.human(),
            Self::DryRun(dry_run) => dry_run.human(),
        }
    }

    fn results(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Applied(report) => report.results(),
            Self::DryRun(dry_run) => dry_run.results(),
        }
    }
}
