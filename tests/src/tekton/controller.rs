//! What a real Tekton controller and a real cluster do with a Task that the field checks miss
//! (tried on Tekton Pipelines v0.68.1 on Kubernetes 1.28 and on OpenShift):
//! - a step without `command` makes the controller look the image's ENTRYPOINT up in the
//!   image's registry, from the controller's own pod, before the TaskRun's pod exists
//!   (tektoncd/pipeline `pkg/pod/entrypoint_lookup.go`, `resolveEntrypoints`); a registry the
//!   controller cannot reach or authenticate to fails every TaskRun;
//! - a default naming a file under the service-account mount that only one distribution puts
//!   there (OpenShift's `service-ca.crt`) fails on every other cluster;
//! - an optional Pipeline workspace bound to a Task workspace that is not optional is refused
//!   when the run leaves it unbound (`pkg/reconciler/pipelinerun`, "ValidateOptionalWorkspaces").

use super::types::{ParamValue, Pipeline, Task};

/// The directory Kubernetes mounts the service account's token into.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount/";

/// What every Kubernetes distribution mounts there (the projected token volume of
/// `BoundServiceAccountTokenVolume`): the token, the API server's CA and the namespace.
const EVERYWHERE: [&str; 3] = ["token", "ca.crt", "namespace"];

/// Problems a real controller or a non-OpenShift cluster would hit with `task`. Empty means none.
pub fn controller_problems(task: &Task) -> Vec<String> {
    let name = &task.metadata.name;
    let mut problems = Vec::new();
    for (i, step) in task.spec.steps.iter().enumerate() {
        let step_name = step.name.clone().unwrap_or_else(|| format!("#{i}"));
        if step.command.is_empty() && step.script.is_none() && step.r#ref.is_none() {
            problems.push(format!(
                "Task {name}: step {step_name} names no command, so the Tekton controller looks \
                 its image's ENTRYPOINT up in the image's registry before the pod exists, and \
                 fails the TaskRun where the controller cannot reach that registry"
            ));
        }
        for env in &step.env {
            if let Some(file) = env.value.as_deref().and_then(distribution_specific_file) {
                problems.push(format!(
                    "Task {name}: step {step_name} env {} names {file}, which only some \
                     distributions mount",
                    env.name
                ));
            }
        }
    }
    for param in &task.spec.params {
        let strings = param.default.iter().flat_map(ParamValue::strings);
        for file in strings.filter_map(distribution_specific_file) {
            problems.push(format!(
                "Task {name}: param {} defaults to {file}, which only some distributions mount \
                 (OpenShift's service-ca.crt is not on plain Kubernetes, EKS, GKE or AKS); let \
                 the binary look for it and tolerate its absence instead",
                param.name
            ));
        }
    }
    problems
}

/// `value` when it names a file in the service-account mount that not every cluster has.
fn distribution_specific_file(value: &str) -> Option<&str> {
    let file = value.strip_prefix(SERVICE_ACCOUNT_DIR)?;
    (!EVERYWHERE.contains(&file)).then_some(value)
}

/// An optional Pipeline workspace may be left unbound by a run, so every Task workspace it is
/// bound to must be optional too; the controller refuses the PipelineRun otherwise.
pub fn optional_workspace_problems(
    pipeline: &Pipeline,
    tasks: &std::collections::BTreeMap<String, Task>,
) -> Vec<String> {
    let spec = &pipeline.spec;
    let optional = |ws: &str| spec.workspaces.iter().any(|w| w.name == ws && w.optional);
    let mut problems = Vec::new();
    for pt in spec.tasks.iter().chain(&spec.finally) {
        let Some(task) = pt
            .task_ref
            .as_ref()
            .and_then(|r| r.name.as_ref())
            .and_then(|n| tasks.get(n))
        else {
            continue;
        };
        for binding in &pt.workspaces {
            let bound = binding.workspace.as_deref().unwrap_or(&binding.name);
            let declared = task.spec.workspaces.iter().find(|w| w.name == binding.name);
            if optional(bound) && declared.is_some_and(|w| !w.optional) {
                problems.push(format!(
                    "Pipeline {}: pipeline task {} binds optional workspace {bound:?} to Task \
                     workspace {:?}, which is not optional",
                    pipeline.metadata.name, pt.name, binding.name
                ));
            }
        }
    }
    problems
}
