//! Tekton `tekton.dev/v1` PipelineRun, field for field as in tektoncd/pipeline
//! `pkg/apis/pipeline/v1/pipelinerun_types.go` and `pkg/apis/pipeline/pod/template.go`, with
//! unknown fields refused; and the checks that an example run fits the Pipeline it names.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::k8s::{
    ConfigMapVolumeSource, CsiVolumeSource, EmptyDirVolumeSource, LocalObjectReference,
    PersistentVolumeClaimVolumeSource, ProjectedVolumeSource, SecretVolumeSource,
};
use super::types::{Param, Pipeline};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineRun {
    pub api_version: String,
    pub kind: String,
    pub metadata: RunMetadata,
    pub spec: PipelineRunSpec,
}

/// A run is usually created with `generateName`, so `name` is optional here.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct RunMetadata {
    pub name: Option<String>,
    pub generate_name: Option<String>,
    pub namespace: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineRunSpec {
    pub pipeline_ref: Option<RunPipelineRef>,
    pub pipeline_spec: Option<serde_yaml_ng::Value>,
    pub params: Vec<Param>,
    pub status: Option<String>,
    pub timeouts: Option<TimeoutFields>,
    pub task_run_template: Option<TaskRunTemplate>,
    pub workspaces: Vec<WorkspaceBinding>,
    pub task_run_specs: Vec<serde_yaml_ng::Value>,
    pub managed_by: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct RunPipelineRef {
    pub name: Option<String>,
    pub api_version: Option<String>,
    pub resolver: Option<String>,
    pub params: Vec<Param>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct TimeoutFields {
    pub pipeline: Option<String>,
    pub tasks: Option<String>,
    pub finally: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskRunTemplate {
    pub pod_template: Option<PodTemplate>,
    pub service_account_name: Option<String>,
}

/// Tekton's `pod.Template`: the pod fields a run may set for every task's pod.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct PodTemplate {
    pub node_selector: BTreeMap<String, String>,
    pub env: Vec<serde_yaml_ng::Value>,
    pub tolerations: Vec<serde_yaml_ng::Value>,
    pub affinity: Option<serde_yaml_ng::Value>,
    pub security_context: Option<PodSecurityContext>,
    pub volumes: Vec<serde_yaml_ng::Value>,
    pub runtime_class_name: Option<String>,
    pub automount_service_account_token: Option<bool>,
    pub dns_policy: Option<String>,
    pub dns_config: Option<serde_yaml_ng::Value>,
    pub enable_service_links: Option<bool>,
    pub priority_class_name: Option<String>,
    pub scheduler_name: Option<String>,
    pub image_pull_secrets: Vec<LocalObjectReference>,
    pub host_aliases: Vec<serde_yaml_ng::Value>,
    pub host_network: Option<bool>,
    pub topology_spread_constraints: Vec<serde_yaml_ng::Value>,
}

/// `core/v1` PodSecurityContext.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct PodSecurityContext {
    pub se_linux_options: Option<serde_yaml_ng::Value>,
    pub windows_options: Option<serde_yaml_ng::Value>,
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    pub run_as_non_root: Option<bool>,
    pub supplemental_groups: Vec<i64>,
    pub supplemental_groups_policy: Option<String>,
    pub fs_group: Option<i64>,
    pub sysctls: Vec<serde_yaml_ng::Value>,
    pub fs_group_change_policy: Option<String>,
    pub seccomp_profile: Option<serde_yaml_ng::Value>,
    pub app_armor_profile: Option<serde_yaml_ng::Value>,
    pub se_linux_change_policy: Option<String>,
}

/// Exactly one source besides `name` and `subPath`; [`pipeline_run_problems`] checks that.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkspaceBinding {
    pub name: String,
    pub sub_path: Option<String>,
    pub volume_claim_template: Option<serde_yaml_ng::Value>,
    pub persistent_volume_claim: Option<PersistentVolumeClaimVolumeSource>,
    pub empty_dir: Option<EmptyDirVolumeSource>,
    pub config_map: Option<ConfigMapVolumeSource>,
    pub secret: Option<SecretVolumeSource>,
    pub projected: Option<ProjectedVolumeSource>,
    pub csi: Option<CsiVolumeSource>,
}

impl WorkspaceBinding {
    fn source_count(&self) -> usize {
        [
            self.volume_claim_template.is_some(),
            self.persistent_volume_claim.is_some(),
            self.empty_dir.is_some(),
            self.config_map.is_some(),
            self.secret.is_some(),
            self.projected.is_some(),
            self.csi.is_some(),
        ]
        .into_iter()
        .filter(|set| *set)
        .count()
    }
}

/// A PipelineRun from YAML; the error names the offending field and where it is.
pub fn parse_pipeline_run(yaml: &str) -> Result<PipelineRun, String> {
    let run: PipelineRun = serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())?;
    super::load::check_header(&run.api_version, &run.kind, "PipelineRun")?;
    Ok(run)
}

/// What would make `run` fail to start or run with the wrong inputs: it names a Pipeline of
/// `pipelines` (by name); it gives only params that Pipeline declares and every one without a
/// default; it binds every required workspace, each to exactly one source, and only declared
/// ones; a claim it names is one of `claims` (the PVCs created beside it). Empty means none.
pub fn pipeline_run_problems(
    run: &PipelineRun,
    pipelines: &BTreeMap<String, Pipeline>,
    claims: &BTreeSet<String>,
) -> Vec<String> {
    let name = run.spec.pipeline_ref.as_ref().and_then(|r| r.name.clone());
    let Some(pipeline) = name.as_ref().and_then(|n| pipelines.get(n)) else {
        return vec![format!("pipelineRef names {name:?}, which is not bundled")];
    };
    let spec = &pipeline.spec;
    let mut problems = Vec::new();
    let given: BTreeSet<&str> = run.spec.params.iter().map(|p| p.name.as_str()).collect();
    for param in &run.spec.params {
        if !spec.params.iter().any(|p| p.name == param.name) {
            problems.push(format!(
                "param {} is not a param of the Pipeline",
                param.name
            ));
        }
    }
    for param in spec.params.iter().filter(|p| p.default.is_none()) {
        if !given.contains(param.name.as_str()) {
            problems.push(format!("param {} is required and not given", param.name));
        }
    }
    for binding in &run.spec.workspaces {
        if !spec.workspaces.iter().any(|w| w.name == binding.name) {
            problems.push(format!("workspace {} is not the Pipeline's", binding.name));
        }
        if binding.source_count() != 1 {
            problems.push(format!(
                "workspace {} needs exactly one source",
                binding.name
            ));
        }
        if let Some(pvc) = &binding.persistent_volume_claim {
            if !claims.contains(&pvc.claim_name) {
                problems.push(format!(
                    "workspace {} names PVC {}, which is not created beside the run",
                    binding.name, pvc.claim_name
                ));
            }
        }
    }
    for workspace in spec.workspaces.iter().filter(|w| !w.optional) {
        if !run.spec.workspaces.iter().any(|b| b.name == workspace.name) {
            problems.push(format!("workspace {} is not bound", workspace.name));
        }
    }
    problems
}
