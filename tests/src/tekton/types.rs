//! Tekton `tekton.dev/v1` Task and Pipeline, field for field as in tektoncd/pipeline
//! `pkg/apis/pipeline/v1/*_types.go` (JSON names kept). Every struct denies unknown fields, so
//! a field Tekton v1 does not have (such as a step's `resources`) fails the parse, as the
//! Tekton webhook would refuse it.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml_ng::Value;

use super::k8s::{
    scalar_string, ContainerPort, EnvFromSource, EnvVar, Lifecycle, Probe, ResourceRequirements,
    SecurityContext, Volume, VolumeDevice, VolumeMount,
};

/// `metadata`: only what a checked-in Task or Pipeline should carry.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    pub name: String,
    pub namespace: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Task {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: TaskSpec,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pipeline {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: PipelineSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskSpec {
    pub params: Vec<ParamSpec>,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub steps: Vec<Step>,
    pub volumes: Vec<Volume>,
    pub step_template: Option<StepTemplate>,
    pub sidecars: Vec<Sidecar>,
    pub workspaces: Vec<WorkspaceDeclaration>,
    pub results: Vec<TaskResult>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    String,
    Array,
    Object,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParamSpec {
    pub name: String,
    pub r#type: Option<ParamType>,
    pub description: Option<String>,
    #[serde(default)]
    pub properties: BTreeMap<String, PropertySpec>,
    pub default: Option<ParamValue>,
    #[serde(default)]
    pub r#enum: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PropertySpec {
    pub r#type: Option<ParamType>,
}

/// Go's `ParamValue` (also `ResultValue`): a string, a list of strings or a string map. As in
/// its `UnmarshalJSON`, a YAML number or boolean is taken as its text.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Value")]
pub enum ParamValue {
    String(String),
    Array(Vec<String>),
    Object(BTreeMap<String, String>),
}

impl ParamValue {
    /// Every string in the value, where `$(...)` references may sit.
    pub fn strings(&self) -> Vec<&str> {
        match self {
            ParamValue::String(s) => vec![s],
            ParamValue::Array(a) => a.iter().map(String::as_str).collect(),
            ParamValue::Object(o) => o.values().map(String::as_str).collect(),
        }
    }
}

impl TryFrom<Value> for ParamValue {
    type Error = String;

    fn try_from(value: Value) -> Result<Self, String> {
        let text = |v: &Value| {
            scalar_string(v).ok_or_else(|| format!("expected a string in a param value, got {v:?}"))
        };
        match &value {
            Value::Sequence(items) => items
                .iter()
                .map(text)
                .collect::<Result<_, _>>()
                .map(ParamValue::Array),
            Value::Mapping(map) => map
                .iter()
                .map(|(k, v)| Ok((text(k)?, text(v)?)))
                .collect::<Result<_, String>>()
                .map(ParamValue::Object),
            other => text(other).map(ParamValue::String),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Param {
    pub name: String,
    pub value: ParamValue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OnError {
    StopAndFail,
    Continue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum PullPolicy {
    Always,
    Never,
    IfNotPresent,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Step {
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub image: Option<String>,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub working_dir: Option<String>,
    pub env_from: Vec<EnvFromSource>,
    pub env: Vec<EnvVar>,
    pub compute_resources: Option<ResourceRequirements>,
    pub volume_mounts: Vec<VolumeMount>,
    pub volume_devices: Vec<VolumeDevice>,
    pub image_pull_policy: Option<PullPolicy>,
    pub security_context: Option<SecurityContext>,
    pub script: Option<String>,
    /// A Go duration such as "1h30m".
    pub timeout: Option<String>,
    pub workspaces: Vec<WorkspaceUsage>,
    pub on_error: Option<OnError>,
    pub stdout_config: Option<StepOutputConfig>,
    pub stderr_config: Option<StepOutputConfig>,
    pub r#ref: Option<Ref>,
    pub params: Vec<Param>,
    pub results: Vec<StepResult>,
    pub when: Vec<WhenExpression>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct StepTemplate {
    pub image: Option<String>,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub working_dir: Option<String>,
    pub env_from: Vec<EnvFromSource>,
    pub env: Vec<EnvVar>,
    pub compute_resources: Option<ResourceRequirements>,
    pub volume_mounts: Vec<VolumeMount>,
    pub volume_devices: Vec<VolumeDevice>,
    pub image_pull_policy: Option<PullPolicy>,
    pub security_context: Option<SecurityContext>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Sidecar {
    pub name: Option<String>,
    pub image: Option<String>,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub working_dir: Option<String>,
    pub ports: Vec<ContainerPort>,
    pub env_from: Vec<EnvFromSource>,
    pub env: Vec<EnvVar>,
    pub compute_resources: Option<ResourceRequirements>,
    pub volume_mounts: Vec<VolumeMount>,
    pub volume_devices: Vec<VolumeDevice>,
    pub liveness_probe: Option<Probe>,
    pub readiness_probe: Option<Probe>,
    pub startup_probe: Option<Probe>,
    pub lifecycle: Option<Lifecycle>,
    pub termination_message_path: Option<String>,
    pub termination_message_policy: Option<String>,
    pub image_pull_policy: Option<PullPolicy>,
    pub security_context: Option<SecurityContext>,
    pub stdin: Option<bool>,
    pub stdin_once: Option<bool>,
    pub tty: Option<bool>,
    pub script: Option<String>,
    pub workspaces: Vec<WorkspaceUsage>,
    pub restart_policy: Option<String>,
}

/// A step's or sidecar's isolated use of a Task workspace.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkspaceUsage {
    pub name: String,
    pub mount_path: String,
}

/// A step's `ref` to a StepAction, by name or through a resolver.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ref {
    pub name: Option<String>,
    pub resolver: Option<String>,
    #[serde(default)]
    pub params: Vec<Param>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StepOutputConfig {
    pub path: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskResult {
    pub name: String,
    pub r#type: Option<ParamType>,
    #[serde(default)]
    pub properties: BTreeMap<String, PropertySpec>,
    pub description: Option<String>,
    pub value: Option<ParamValue>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StepResult {
    pub name: String,
    pub r#type: Option<ParamType>,
    #[serde(default)]
    pub properties: BTreeMap<String, PropertySpec>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkspaceDeclaration {
    pub name: String,
    pub description: Option<String>,
    pub mount_path: Option<String>,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub optional: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WhenOperator {
    In,
    NotIn,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct WhenExpression {
    pub input: Option<String>,
    pub operator: Option<WhenOperator>,
    pub values: Vec<String>,
    pub cel: Option<String>,
}

/// Timeouts are not here: they belong to the PipelineRun.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineSpec {
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub tasks: Vec<PipelineTask>,
    pub params: Vec<ParamSpec>,
    pub workspaces: Vec<PipelineWorkspaceDeclaration>,
    pub results: Vec<PipelineResult>,
    pub finally: Vec<PipelineTask>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineWorkspaceDeclaration {
    pub name: String,
    pub description: Option<String>,
    #[serde(default)]
    pub optional: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineResult {
    pub name: String,
    pub r#type: Option<ParamType>,
    pub description: Option<String>,
    pub value: ParamValue,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineTask {
    pub name: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub task_ref: Option<TaskRef>,
    pub task_spec: Option<EmbeddedTask>,
    #[serde(default)]
    pub when: Vec<WhenExpression>,
    pub retries: Option<u32>,
    #[serde(default)]
    pub run_after: Vec<String>,
    #[serde(default)]
    pub params: Vec<Param>,
    pub matrix: Option<Matrix>,
    #[serde(default)]
    pub workspaces: Vec<WorkspacePipelineTaskBinding>,
    pub timeout: Option<String>,
    pub pipeline_ref: Option<PipelineRef>,
    pub pipeline_spec: Option<Box<PipelineSpec>>,
    pub on_error: Option<OnError>,
}

/// `TaskRef` with Go's inlined `ResolverRef` (`resolver`, `params`) spelled out: serde's
/// `flatten` cannot be combined with `deny_unknown_fields`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskRef {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub api_version: Option<String>,
    pub resolver: Option<String>,
    #[serde(default)]
    pub params: Vec<Param>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineRef {
    pub name: Option<String>,
    pub api_version: Option<String>,
    pub resolver: Option<String>,
    #[serde(default)]
    pub params: Vec<Param>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Matrix {
    pub params: Vec<Param>,
    pub include: Vec<IncludeParams>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct IncludeParams {
    pub name: Option<String>,
    pub params: Vec<Param>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkspacePipelineTaskBinding {
    pub name: String,
    /// The pipeline workspace bound; Tekton takes `name` when this is absent.
    pub workspace: Option<String>,
    pub sub_path: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineTaskMetadata {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// A pipeline task's inline `taskSpec`: Go's `EmbeddedTask`, whose inlined `TaskSpec` fields
/// are repeated here (no `flatten`, see [`TaskRef`]). `apiVersion`, `kind` and `spec` are for
/// custom tasks.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct EmbeddedTask {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub spec: Option<Value>,
    pub metadata: Option<PipelineTaskMetadata>,
    pub params: Vec<ParamSpec>,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub steps: Vec<Step>,
    pub volumes: Vec<Volume>,
    pub step_template: Option<StepTemplate>,
    pub sidecars: Vec<Sidecar>,
    pub workspaces: Vec<WorkspaceDeclaration>,
    pub results: Vec<TaskResult>,
}

impl EmbeddedTask {
    /// The inlined `TaskSpec`.
    pub fn task_spec(&self) -> TaskSpec {
        TaskSpec {
            params: self.params.clone(),
            display_name: self.display_name.clone(),
            description: self.description.clone(),
            steps: self.steps.clone(),
            volumes: self.volumes.clone(),
            step_template: self.step_template.clone(),
            sidecars: self.sidecars.clone(),
            workspaces: self.workspaces.clone(),
            results: self.results.clone(),
        }
    }
}
