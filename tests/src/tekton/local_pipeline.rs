//! A Pipeline run on this machine the way a PipelineRun runs it: the run's params (or the
//! Pipeline's defaults) substituted into each pipeline task's params, `$(tasks.t.results.r)`
//! from the tasks that ran, each Task param the pipeline task does not give at its default, an
//! optional Pipeline workspace left unbound leaving the Task's unbound, and each Task's steps
//! run by [`LocalTaskRun`]. Tasks run in the order listed, each after those it runs after.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::local_run::{string_param, LocalTaskRun};
use super::types::{ParamValue, Pipeline, PipelineTask, Task};
use super::vars::{reference, substitute, Reference};

/// One PipelineRun on this machine.
#[derive(Debug, Clone, Default)]
pub struct LocalPipelineRun {
    pub params: BTreeMap<String, String>,
    /// The Pipeline's workspaces bound, each to a directory here.
    pub workspaces: BTreeMap<String, PathBuf>,
    /// What every task's pod shares: secrets, mounts, binaries (see [`LocalTaskRun`]).
    pub pod: LocalTaskRun,
    /// Each task's results and HOME go under `root/<task>/`.
    pub root: PathBuf,
    /// Stop once this task has run.
    pub stop_after: Option<String>,
}

/// Each task that ran, with its results, in the order they ran.
pub type TaskResults = Vec<(String, BTreeMap<String, String>)>;

impl LocalPipelineRun {
    /// Runs `pipeline` with the Tasks it names (`tasks`, by name); `Err` names the task that
    /// failed or could not start.
    pub fn run(
        &self,
        pipeline: &Pipeline,
        tasks: &BTreeMap<String, Task>,
    ) -> Result<TaskResults, String> {
        let mut done: TaskResults = Vec::new();
        for pt in &pipeline.spec.tasks {
            if let Some(first) = pt
                .run_after
                .iter()
                .find(|a| !done.iter().any(|(n, _)| n == *a))
            {
                return Err(format!("{} runs after {first}, listed later", pt.name));
            }
            let task = task_of(pt, tasks)?;
            let run = self.task_run(pipeline, pt, &done)?;
            let outcomes = run.run(task).map_err(|e| format!("{}: {e}", pt.name))?;
            if let Some(failed) = outcomes.iter().find(|o| !o.output.status.success()) {
                return Err(format!(
                    "{} failed in step {} ({})",
                    pt.name, failed.step, failed.output.status
                ));
            }
            done.push((pt.name.clone(), run.results()));
            if self.stop_after.as_deref() == Some(pt.name.as_str()) {
                break;
            }
        }
        Ok(done)
    }

    /// The TaskRun the controller would make for `pt` now that `done` have run.
    fn task_run(
        &self,
        pipeline: &Pipeline,
        pt: &PipelineTask,
        done: &TaskResults,
    ) -> Result<LocalTaskRun, String> {
        let value = |expr: &str| self.variable(pipeline, done, expr);
        let mut run = self.pod.clone();
        run.results_dir = self.root.join(&pt.name).join("results");
        run.home = self.root.join(&pt.name).join("home");
        run.params.clear();
        run.workspaces.clear();
        for param in &pt.params {
            let ParamValue::String(text) = &param.value else {
                return Err(format!("{}: param {} is not a string", pt.name, param.name));
            };
            let resolved = substitute(text, value).map_err(|e| format!("{}: {e}", pt.name))?;
            run.params.insert(param.name.clone(), resolved);
        }
        for binding in &pt.workspaces {
            let bound = binding.workspace.as_deref().unwrap_or(&binding.name);
            if let Some(dir) = self.workspaces.get(bound) {
                run.workspaces.insert(binding.name.clone(), dir.clone());
            }
        }
        Ok(run)
    }

    fn variable(&self, pipeline: &Pipeline, done: &TaskResults, expr: &str) -> Option<String> {
        match reference(expr)? {
            Reference::Param(name) => string_param(&self.params, &pipeline.spec.params, name),
            Reference::TaskResult { task, result } => {
                let (_, results) = done.iter().find(|(n, _)| n == task)?;
                results.get(result).cloned()
            }
            _ => None,
        }
    }
}

fn task_of<'a>(pt: &PipelineTask, tasks: &'a BTreeMap<String, Task>) -> Result<&'a Task, String> {
    let name = pt.task_ref.as_ref().and_then(|r| r.name.as_ref());
    name.and_then(|n| tasks.get(n))
        .ok_or_else(|| format!("{}: taskRef {name:?} is not among the Tasks given", pt.name))
}
