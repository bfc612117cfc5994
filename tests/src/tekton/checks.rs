//! Reference checks the Tekton webhook would make only at apply time (or a run would make only
//! when it fails): every `$(...)` names something declared, every binding and `runAfter` names
//! something that exists.

use std::collections::{BTreeMap, BTreeSet};

use super::k8s::{EnvFromSource, EnvVar, Volume, VolumeMount};
use super::types::{
    Param, ParamSpec, Pipeline, PipelineSpec, PipelineTask, Sidecar, Step, StepTemplate, Task,
    TaskSpec, WhenExpression,
};
use super::vars::{expressions, reference, Reference};

fn push<'a>(out: &mut Vec<&'a str>, values: impl IntoIterator<Item = &'a String>) {
    out.extend(values.into_iter().map(String::as_str));
}

fn env_strings<'a>(env: &'a [EnvVar], env_from: &'a [EnvFromSource], out: &mut Vec<&'a str>) {
    for var in env {
        push(out, &var.value);
        let from = var.value_from.iter();
        for key_ref in from.flat_map(|f| f.secret_key_ref.iter().chain(&f.config_map_key_ref)) {
            push(out, [&key_ref.name, &key_ref.key]);
        }
    }
    for source in env_from {
        push(out, &source.prefix);
        push(
            out,
            source
                .config_map_ref
                .iter()
                .chain(&source.secret_ref)
                .map(|r| &r.name),
        );
    }
}

fn mount_strings<'a>(mounts: &'a [VolumeMount], out: &mut Vec<&'a str>) {
    for mount in mounts {
        push(out, [&mount.name, &mount.mount_path]);
        push(out, &mount.sub_path);
    }
}

fn param_strings<'a>(params: &'a [Param], out: &mut Vec<&'a str>) {
    out.extend(params.iter().flat_map(|p| p.value.strings()));
}

fn when_strings<'a>(when: &'a [WhenExpression], out: &mut Vec<&'a str>) {
    for w in when {
        push(out, w.input.iter().chain(&w.values).chain(&w.cel));
    }
}

fn step_strings<'a>(step: &'a Step, out: &mut Vec<&'a str>) {
    push(
        out,
        step.name.iter().chain(&step.image).chain(&step.working_dir),
    );
    push(
        out,
        step.command.iter().chain(&step.args).chain(&step.script),
    );
    env_strings(&step.env, &step.env_from, out);
    mount_strings(&step.volume_mounts, out);
    param_strings(&step.params, out);
    when_strings(&step.when, out);
    let outputs = step.stdout_config.iter().chain(&step.stderr_config);
    push(out, outputs.flat_map(|o| &o.path));
}

fn template_strings<'a>(template: &'a StepTemplate, out: &mut Vec<&'a str>) {
    push(out, template.image.iter().chain(&template.working_dir));
    push(out, template.command.iter().chain(&template.args));
    env_strings(&template.env, &template.env_from, out);
    mount_strings(&template.volume_mounts, out);
}

fn sidecar_strings<'a>(sidecar: &'a Sidecar, out: &mut Vec<&'a str>) {
    push(
        out,
        sidecar
            .name
            .iter()
            .chain(&sidecar.image)
            .chain(&sidecar.working_dir),
    );
    push(
        out,
        sidecar
            .command
            .iter()
            .chain(&sidecar.args)
            .chain(&sidecar.script),
    );
    env_strings(&sidecar.env, &sidecar.env_from, out);
    mount_strings(&sidecar.volume_mounts, out);
}

fn volume_strings<'a>(volume: &'a Volume, out: &mut Vec<&'a str>) {
    push(out, [&volume.name]);
    push(out, volume.secret.iter().flat_map(|s| &s.secret_name));
    push(out, volume.config_map.iter().flat_map(|c| &c.name));
    push(
        out,
        volume.persistent_volume_claim.iter().map(|p| &p.claim_name),
    );
    for source in volume.projected.iter().flat_map(|p| &p.sources) {
        push(
            out,
            source
                .secret
                .iter()
                .chain(&source.config_map)
                .flat_map(|k| &k.name),
        );
        push(
            out,
            source
                .service_account_token
                .iter()
                .flat_map(|t| &t.audience),
        );
    }
}

/// Every string of a Task where Tekton substitutes variables.
fn task_strings(spec: &TaskSpec) -> Vec<&str> {
    let mut out = Vec::new();
    spec.steps.iter().for_each(|s| step_strings(s, &mut out));
    spec.step_template
        .iter()
        .for_each(|t| template_strings(t, &mut out));
    spec.sidecars
        .iter()
        .for_each(|s| sidecar_strings(s, &mut out));
    spec.volumes
        .iter()
        .for_each(|v| volume_strings(v, &mut out));
    out
}

fn declares(params: &[ParamSpec], name: &str) -> bool {
    params.iter().any(|p| p.name == name)
}

const WORKSPACE_ATTRS: [&str; 4] = ["path", "bound", "claim", "volume"];

fn task_expression_problem(spec: &TaskSpec, expr: &str) -> Option<String> {
    let declared = match reference(expr)? {
        Reference::Param(name) => declares(&spec.params, name),
        Reference::Workspace { name, attr } => {
            WORKSPACE_ATTRS.contains(&attr) && spec.workspaces.iter().any(|w| w.name == name)
        }
        Reference::Result { name, attr } => {
            attr == "path" && spec.results.iter().any(|r| r.name == name)
        }
        Reference::TaskResult { .. } | Reference::TaskState(_) => false,
    };
    (!declared).then(|| format!("$({expr}) names nothing this Task declares"))
}

/// Step and sidecar `workspaces`, and `volumeMounts`, name declared workspaces and volumes;
/// each volume has exactly one source.
fn task_usage_problems(spec: &TaskSpec) -> Vec<String> {
    let mut problems = Vec::new();
    let usages = spec.steps.iter().flat_map(|s| &s.workspaces);
    for usage in usages.chain(spec.sidecars.iter().flat_map(|s| &s.workspaces)) {
        if !spec.workspaces.iter().any(|w| w.name == usage.name) {
            problems.push(format!(
                "workspace {:?} is used but not declared",
                usage.name
            ));
        }
    }
    let mounts = spec.steps.iter().flat_map(|s| &s.volume_mounts);
    let mounts = mounts.chain(spec.sidecars.iter().flat_map(|s| &s.volume_mounts));
    for mount in mounts.chain(spec.step_template.iter().flat_map(|t| &t.volume_mounts)) {
        if !spec.volumes.iter().any(|v| v.name == mount.name) {
            problems.push(format!(
                "volumeMount {:?} names no volume of the Task",
                mount.name
            ));
        }
    }
    for volume in spec.volumes.iter().filter(|v| v.source_count() != 1) {
        problems.push(format!("volume {:?} needs exactly one source", volume.name));
    }
    problems
}

/// Every `$(params.x)`, `$(params["x"])`, `$(workspaces.w.path|bound|claim|volume)` and
/// `$(results.r.path)` in the Task (steps, step template, sidecars, volumes) is declared, and so
/// is every workspace a step uses and every volume it mounts. Empty means none.
pub fn task_reference_problems(task: &Task) -> Vec<String> {
    let spec = &task.spec;
    let mut problems: Vec<String> = task_strings(spec)
        .into_iter()
        .flat_map(expressions)
        .filter_map(|expr| task_expression_problem(spec, expr))
        .collect();
    problems.extend(task_usage_problems(spec));
    dedup(&mut problems);
    let name = &task.metadata.name;
    problems
        .into_iter()
        .map(|p| format!("Task {name}: {p}"))
        .collect()
}

/// Keeps the first of each problem, in order: one typo used ten times is one problem.
fn dedup(problems: &mut Vec<String>) {
    let mut seen = BTreeSet::new();
    problems.retain(|p| seen.insert(p.clone()));
}

/// A Pipeline with the TaskSpec behind each of its pipeline tasks (`None`: not resolvable).
struct PipelineView<'a> {
    spec: &'a PipelineSpec,
    tasks: BTreeMap<&'a str, Option<TaskSpec>>,
}

impl<'a> PipelineView<'a> {
    fn new(spec: &'a PipelineSpec, given: &BTreeMap<String, Task>) -> Self {
        let all = spec.tasks.iter().chain(&spec.finally);
        let tasks = all
            .map(|pt| (pt.name.as_str(), resolve(pt, given)))
            .collect();
        PipelineView { spec, tasks }
    }

    fn expression_problem(&self, expr: &str) -> Option<String> {
        let declared = match reference(expr)? {
            Reference::Param(name) => declares(&self.spec.params, name),
            Reference::Workspace { name, attr } => {
                attr == "bound" && self.spec.workspaces.iter().any(|w| w.name == name)
            }
            Reference::Result { .. } => false,
            Reference::TaskState(task) => self.tasks.contains_key(task),
            Reference::TaskResult { task, result } => match self.tasks.get(task) {
                Some(Some(spec)) => spec.results.iter().any(|r| r.name == result),
                // Unresolvable: already reported once for the pipeline task itself.
                Some(None) => true,
                None => false,
            },
        };
        (!declared).then(|| format!("$({expr}) names nothing this Pipeline declares"))
    }

    fn strings_problems(&self, strings: Vec<&str>) -> Vec<String> {
        let exprs = strings.into_iter().flat_map(expressions);
        exprs.filter_map(|e| self.expression_problem(e)).collect()
    }
}

fn resolve(pt: &PipelineTask, given: &BTreeMap<String, Task>) -> Option<TaskSpec> {
    if let Some(embedded) = &pt.task_spec {
        return Some(embedded.task_spec());
    }
    let name = pt.task_ref.as_ref()?.name.as_ref()?;
    given.get(name).map(|t| t.spec.clone())
}

fn pipeline_task_strings(pt: &PipelineTask) -> Vec<&str> {
    let mut out = Vec::new();
    param_strings(&pt.params, &mut out);
    when_strings(&pt.when, &mut out);
    if let Some(matrix) = &pt.matrix {
        param_strings(&matrix.params, &mut out);
        matrix
            .include
            .iter()
            .for_each(|i| param_strings(&i.params, &mut out));
    }
    pt.task_ref
        .iter()
        .for_each(|r| param_strings(&r.params, &mut out));
    push(&mut out, pt.workspaces.iter().flat_map(|w| &w.sub_path));
    out
}

/// Every param given is declared by the Task; every Task param without a default is given.
fn param_problems(pt: &PipelineTask, task: &TaskSpec) -> Vec<String> {
    let matrix = pt.matrix.iter();
    let matrix_params = matrix.flat_map(|m| {
        m.params
            .iter()
            .chain(m.include.iter().flat_map(|i| &i.params))
    });
    let given: Vec<&Param> = pt.params.iter().chain(matrix_params).collect();
    let mut problems: Vec<String> = given
        .iter()
        .filter(|p| !declares(&task.params, &p.name))
        .map(|p| format!("param {:?} is not declared by its Task", p.name))
        .collect();
    let required = task.params.iter().filter(|p| p.default.is_none());
    for missing in required.filter(|p| !given.iter().any(|g| g.name == p.name)) {
        problems.push(format!(
            "Task param {:?} has no default and is not given",
            missing.name
        ));
    }
    problems
}

/// Every binding names a Task workspace and a Pipeline workspace; every Task workspace that is
/// not optional is bound.
fn workspace_problems(pt: &PipelineTask, task: &TaskSpec, pipeline: &PipelineSpec) -> Vec<String> {
    let mut problems = Vec::new();
    for binding in &pt.workspaces {
        if !task.workspaces.iter().any(|w| w.name == binding.name) {
            problems.push(format!(
                "workspace {:?} is not declared by its Task",
                binding.name
            ));
        }
        let bound = binding.workspace.as_deref().unwrap_or(&binding.name);
        if !pipeline.workspaces.iter().any(|w| w.name == bound) {
            problems.push(format!(
                "binds workspace {bound:?}, which the Pipeline does not declare"
            ));
        }
    }
    let required = task.workspaces.iter().filter(|w| !w.optional);
    for unbound in required.filter(|w| !pt.workspaces.iter().any(|b| b.name == w.name)) {
        problems.push(format!("Task workspace {:?} is not bound", unbound.name));
    }
    problems
}

fn pipeline_task_problems(view: &PipelineView, pt: &PipelineTask) -> Vec<String> {
    let mut problems = view.strings_problems(pipeline_task_strings(pt));
    for after in pt
        .run_after
        .iter()
        .filter(|a| !view.spec.tasks.iter().any(|t| &t.name == *a))
    {
        problems.push(format!("runAfter {after:?} names no task of the Pipeline"));
    }
    let is_pipeline = pt.pipeline_ref.is_some() || pt.pipeline_spec.is_some();
    match view.tasks.get(pt.name.as_str()) {
        Some(Some(task)) => {
            problems.extend(param_problems(pt, task));
            problems.extend(workspace_problems(pt, task, view.spec));
        }
        _ if is_pipeline => {}
        _ => problems.push(unresolved(pt)),
    }
    problems
        .into_iter()
        .map(|p| format!("pipeline task {}: {p}", pt.name))
        .collect()
}

fn unresolved(pt: &PipelineTask) -> String {
    match pt.task_ref.as_ref().and_then(|r| r.name.as_ref()) {
        Some(name) => format!("taskRef names Task {name:?}, which was not given"),
        None => "has neither taskRef.name nor taskSpec".to_string(),
    }
}

/// For `pipeline` and the Tasks it names in `taskRef.name` (`tasks`: name -> Task): params given
/// are declared by the Task and required ones are given; workspace bindings name a Pipeline and
/// a Task workspace; `$(params.x)` are Pipeline params; `$(tasks.t.results.r)` name a pipeline
/// task whose Task declares `r`; `runAfter` names exist. Empty means none.
pub fn pipeline_reference_problems(
    pipeline: &Pipeline,
    tasks: &BTreeMap<String, Task>,
) -> Vec<String> {
    let view = PipelineView::new(&pipeline.spec, tasks);
    let spec = &pipeline.spec;
    let all = spec.tasks.iter().chain(&spec.finally);
    let mut problems: Vec<String> = all
        .flat_map(|pt| pipeline_task_problems(&view, pt))
        .collect();
    let results = spec
        .results
        .iter()
        .flat_map(|r| r.value.strings())
        .collect();
    problems.extend(
        view.strings_problems(results)
            .into_iter()
            .map(|p| format!("results: {p}")),
    );
    dedup(&mut problems);
    let name = &pipeline.metadata.name;
    problems
        .into_iter()
        .map(|p| format!("Pipeline {name}: {p}"))
        .collect()
}

/// The long flags in `text`: `--name` up to the first character a flag name cannot hold.
fn long_flags(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter_map(|token| token.strip_prefix("--"))
        .map(|rest| rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')))
        .filter_map(|mut parts| parts.next().filter(|n| !n.is_empty()).map(str::to_string))
}

/// The `--long-flag` names (without `--`) that a binary's `--help` offers. Only the option
/// column of a help line (before the two spaces that start its description) and clap's
/// `[aliases: ...]` count: flags named in descriptions may belong to other tools.
pub fn flags_in_help(help: &str) -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    for line in help.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('-') {
            flags.extend(long_flags(trimmed.split("  ").next().unwrap_or_default()));
        }
        if let Some(start) = line.find("[aliases: ").or_else(|| line.find("[alias: ")) {
            let aliases = &line[start..];
            flags.extend(long_flags(
                &aliases[..aliases.find(']').unwrap_or(aliases.len())],
            ));
        }
    }
    flags
}

/// The flags (without `--`) that a step's args pass, as `--flag` or `--flag=value`, and that
/// `flags` lacks, each once. Args after a bare `--` go to another program, so they are skipped.
pub fn unknown_flags(task: &Task, flags: &BTreeSet<String>) -> Vec<String> {
    let mut unknown: Vec<String> = Vec::new();
    for step in &task.spec.steps {
        let args = step.args.iter().take_while(|a| *a != "--");
        for name in args
            .filter_map(|a| a.strip_prefix("--"))
            .map(|f| f.split('=').next().unwrap_or(f))
        {
            if !flags.contains(name) && !unknown.iter().any(|u| u == name) {
                unknown.push(name.to_string());
            }
        }
    }
    unknown
}
