//! A Task's steps run on this machine the way a TaskRun's pod runs them, so a test exercises
//! the Task as written: the command the step names, its args and env after Tekton's
//! substitution (params from the run or their defaults, `$(workspaces.w.path)` the mount path
//! or "" for an optional workspace left unbound, `$(results.r.path)`), secrets from
//! `secretKeyRef` (an optional one may be missing), and nothing else in the environment.
//! Paths inside the pod (`/workspace/<w>`, `/tekton/results`, a service-account mount) are
//! mapped to directories here by [`LocalTaskRun::mounts`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::types::{ParamSpec, ParamValue, Step, Task};
use super::vars::{reference, substitute, Reference};

/// Where Tekton writes results in every step container.
pub const RESULTS_DIR: &str = "/tekton/results";

/// One TaskRun of a Task on this machine.
#[derive(Debug, Clone, Default)]
pub struct LocalTaskRun {
    /// Param values given by the run; the others take their defaults.
    pub params: BTreeMap<String, String>,
    /// The workspaces bound, each to a directory here.
    pub workspaces: BTreeMap<String, PathBuf>,
    /// `secretKeyRef`s: (secret, key) to value.
    pub secrets: BTreeMap<(String, String), String>,
    /// Other paths of the pod (a service-account mount), each to a directory here.
    pub mounts: Vec<(String, PathBuf)>,
    /// The image's binaries: the path a step's `command` names to the program here.
    pub binaries: BTreeMap<String, PathBuf>,
    /// Where results go (`/tekton/results` in the pod).
    pub results_dir: PathBuf,
    /// The step's HOME: a directory of its own, so no user configuration here leaks in.
    pub home: PathBuf,
    /// Steps write their logs to this process's stderr as they go (else they are kept in
    /// each [`StepOutcome`]).
    pub show_logs: bool,
    /// Run each step in its image, on podman, as a pod under this security context does
    /// (see [`super::local_containers`]), instead of the binaries here.
    pub containers: Option<crate::runtime::PodSecurity>,
}

/// A step's process after Tekton's substitution.
#[derive(Debug, Clone)]
pub(super) struct StepProcess {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The step's `image`, substituted.
    pub image: Option<String>,
}

/// What one step did.
#[derive(Debug)]
pub struct StepOutcome {
    pub step: String,
    pub output: Output,
}

impl LocalTaskRun {
    /// Runs every step of `task` in order, stopping at the first that fails (as Tekton does).
    pub fn run(&self, task: &Task) -> Result<Vec<StepOutcome>, String> {
        std::fs::create_dir_all(&self.results_dir).map_err(|e| e.to_string())?;
        if let Some(security) = &self.containers {
            return self.run_in_pod(task, security);
        }
        std::fs::create_dir_all(&self.home).map_err(|e| e.to_string())?;
        let mut outcomes = Vec::new();
        for (i, step) in task.spec.steps.iter().enumerate() {
            let name = step.name.clone().unwrap_or_else(|| format!("#{i}"));
            let mut command = self.command(task, step)?;
            if self.show_logs {
                command.stderr(std::process::Stdio::inherit());
            }
            let output = command
                .output()
                .map_err(|e| format!("step {name}: cannot start: {e}"))?;
            let failed = !output.status.success();
            outcomes.push(StepOutcome { step: name, output });
            if failed {
                break;
            }
        }
        Ok(outcomes)
    }

    /// The results the steps wrote, by name.
    pub fn results(&self) -> BTreeMap<String, String> {
        let entries = std::fs::read_dir(&self.results_dir).into_iter().flatten();
        entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let value = std::fs::read_to_string(e.path()).ok()?;
                Some((e.file_name().to_string_lossy().into_owned(), value))
            })
            .collect()
    }

    /// The process a step's container would run: its command, args and env, substituted.
    pub fn command(&self, task: &Task, step: &Step) -> Result<Command, String> {
        let process = self.process(task, step, false)?;
        let binary = self.binaries.get(&process.program).ok_or_else(|| {
            let step = step.name.as_deref().unwrap_or_default();
            let program = &process.program;
            format!(
                "Task {} step {step}: no binary here for {program}",
                task.metadata.name
            )
        })?;
        let mut command = Command::new(binary);
        command.args(&process.args);
        command.env_clear().env("HOME", &self.home);
        command.envs(process.env);
        Ok(command)
    }

    /// What `step` runs after Tekton's substitution: with the pod's own paths when `in_pod`,
    /// else with each mapped to the directory here that stands for it.
    pub(super) fn process(
        &self,
        task: &Task,
        step: &Step,
        in_pod: bool,
    ) -> Result<StepProcess, String> {
        let name = step.name.clone().unwrap_or_default();
        let at = |e: String| format!("Task {} step {name}: {e}", task.metadata.name);
        let value = |expr: &str| self.variable(task, expr);
        let resolve = |s: &str| {
            let v = substitute(s, value)?;
            Ok::<_, String>(if in_pod { v } else { self.host_path(task, &v) })
        };
        let (program, args) = step
            .command
            .split_first()
            .ok_or_else(|| at("names no command".into()))?;
        let args = args.iter().chain(&step.args);
        let args = args
            .map(|a| resolve(a).map_err(at))
            .collect::<Result<_, _>>()?;
        let mut env = Vec::new();
        for var in &step.env {
            let val = match (&var.value, &var.value_from) {
                (Some(v), _) => Some(resolve(v).map_err(at)?),
                (None, Some(from)) => self.secret_value(from, value).map_err(at)?,
                (None, None) => Some(String::new()),
            };
            if let Some(val) = val {
                env.push((var.name.clone(), val));
            }
        }
        let image = step
            .image
            .as_deref()
            .map(|i| substitute(i, value).map_err(at));
        Ok(StepProcess {
            program: program.clone(),
            args,
            env,
            image: image.transpose()?,
        })
    }

    fn secret_value(
        &self,
        from: &super::k8s::EnvVarSource,
        value: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<String>, String> {
        let Some(key_ref) = &from.secret_key_ref else {
            return Err("only secretKeyRef is run here".into());
        };
        let secret = substitute(&key_ref.name, &value)?;
        let key = substitute(&key_ref.key, &value)?;
        match self.secrets.get(&(secret.clone(), key.clone())) {
            Some(v) => Ok(Some(v.clone())),
            None if key_ref.optional == Some(true) => Ok(None),
            None => Err(format!(
                "secret {secret} key {key} is missing and not optional"
            )),
        }
    }

    /// What Tekton puts for `expr` in this run; `None` for what it does not know.
    fn variable(&self, task: &Task, expr: &str) -> Option<String> {
        match reference(expr)? {
            Reference::Param(name) => string_param(&self.params, &task.spec.params, name),
            Reference::Workspace { name, attr } => {
                let declared = task.spec.workspaces.iter().find(|w| w.name == name)?;
                let bound = self.workspaces.contains_key(name);
                match attr {
                    "bound" => Some(bound.to_string()),
                    "path" if !bound && declared.optional => Some(String::new()),
                    "path" if bound => Some(workspace_mount_path(declared)),
                    _ => None,
                }
            }
            Reference::Result { name, attr: "path" } => Some(format!("{RESULTS_DIR}/{name}")),
            _ => None,
        }
    }

    /// `value` with a leading path of the pod replaced by the directory here that stands for it.
    fn host_path(&self, task: &Task, value: &str) -> String {
        let workspaces = task.spec.workspaces.iter().filter_map(|w| {
            let dir = self.workspaces.get(&w.name)?;
            Some((workspace_mount_path(w), dir.clone()))
        });
        let results = std::iter::once((RESULTS_DIR.to_string(), self.results_dir.clone()));
        let mounts = self.mounts.iter().cloned();
        for (in_pod, here) in workspaces.chain(results).chain(mounts) {
            if let Some(rest) = value.strip_prefix(&in_pod) {
                if rest.is_empty() || rest.starts_with('/') {
                    return format!("{}{rest}", here.display());
                }
            }
        }
        value.to_string()
    }
}

/// A string param's value in a run: the one `given`, else the default its spec declares.
pub(super) fn string_param(
    given: &BTreeMap<String, String>,
    specs: &[ParamSpec],
    name: &str,
) -> Option<String> {
    given.get(name).cloned().or_else(|| {
        let spec = specs.iter().find(|p| p.name == name)?;
        match spec.default.as_ref()? {
            ParamValue::String(s) => Some(s.clone()),
            _ => None,
        }
    })
}

/// Where Tekton mounts a workspace: its `mountPath`, else `/workspace/<name>`.
pub(super) fn workspace_mount_path(declared: &super::types::WorkspaceDeclaration) -> String {
    declared
        .mount_path
        .clone()
        .unwrap_or_else(|| format!("/workspace/{}", declared.name))
}

impl LocalTaskRun {
    /// A run of a Task whose steps run `binary` (the program at `path`), with its results and
    /// HOME under `root`; params, workspaces and secrets are the test's to add.
    pub fn of_binary(binary: &str, path: &Path, root: &Path) -> Self {
        Self {
            // Where every image of containerfiles/ puts its binary.
            binaries: BTreeMap::from([(format!("/usr/local/bin/{binary}"), path.to_path_buf())]),
            results_dir: root.join("tekton-results"),
            home: root.join("home"),
            ..Self::default()
        }
    }

    pub fn param(mut self, name: &str, value: &str) -> Self {
        self.params.insert(name.into(), value.into());
        self
    }

    pub fn workspace(mut self, name: &str, dir: &Path) -> Self {
        self.workspaces.insert(name.into(), dir.to_path_buf());
        self
    }

    /// Runs the Task's steps; panics unless every step succeeded. The results written.
    pub fn succeeds(&self, task: &Task) -> BTreeMap<String, String> {
        let outcomes = self.run(task).unwrap_or_else(|e| panic!("{e}"));
        for outcome in &outcomes {
            assert!(
                outcome.output.status.success(),
                "Task {} step {} failed:\n{}",
                task.metadata.name,
                outcome.step,
                String::from_utf8_lossy(&outcome.output.stderr)
            );
        }
        self.results()
    }

    /// Runs the Task's steps; panics unless one failed. Its stderr.
    pub fn fails(&self, task: &Task) -> String {
        let outcomes = self.run(task).unwrap_or_else(|e| panic!("{e}"));
        let failed = outcomes.iter().find(|o| !o.output.status.success());
        let failed = failed.unwrap_or_else(|| panic!("Task {} succeeded", task.metadata.name));
        String::from_utf8_lossy(&failed.output.stderr).into_owned()
    }

    /// Runs the Task's steps against a server whose CA `ca` only the ca-bundle workspace
    /// would hold; asserts a step was refused at once for it, naming the CA and `--ca-file`,
    /// not retried as a network failure.
    pub fn refused_for_an_untrusted_ca(&self, task: &Task, ca: &crate::tls::TestCa) {
        let started = std::time::Instant::now();
        let err = self.fails(task);
        let issuer = format!("CN={}", ca.name());
        let needles = [
            "issued by a CA this run does not trust",
            &issuer,
            "--ca-file",
        ];
        crate::tls::assert_said_at_once(started, &err, &needles);
    }
}

/// `dir` laid out as the kubelet lays out a ConfigMap or Secret volume: each key a symlink
/// into `..data`, itself a symlink to a timestamped directory holding the files.
pub fn config_map_volume(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    let stamped = dir.join("..2026_12_06_00_00_00.000000001");
    std::fs::create_dir_all(&stamped).expect("volume dir");
    for (key, value) in files {
        std::fs::write(stamped.join(key), value).expect("volume file");
        std::os::unix::fs::symlink(format!("..data/{key}"), dir.join(key)).expect("key link");
    }
    std::os::unix::fs::symlink(stamped.file_name().expect("name"), dir.join("..data"))
        .expect("..data link");
    dir.to_path_buf()
}
