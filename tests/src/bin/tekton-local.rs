//! Runs a bundled Pipeline on this machine as a PipelineRun would run it (the testkit's
//! LocalPipelineRun): the run's params, the Pipeline's defaults and wiring, each Task's steps
//! with the env the Task sets, the binaries of bin-dir standing for the images (or, with
//! `--run-in containers`, the images themselves on podman). Used by
//! scripts/pipeline-local.sh. Prints each task's results, `TASK.RESULT=VALUE`, on stdout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use modelcar_testkit::runtime::PodSecurity;
use modelcar_testkit::tekton::{load_pipeline, load_task, LocalPipelineRun, LocalTaskRun, Task};

const USAGE: &str = "usage: tekton-local --pipeline FILE --tasks DIR --bin-dir DIR --work DIR
    [--param NAME=VALUE]... [--workspace NAME=DIR]... [--mount POD_PATH=DIR]...
    [--secret-env NAME/KEY=ENV_VAR]... [--stop-after TASK] [--run-in host|containers]

--run-in containers runs each step in the image its Task names, on podman + runc, as
OpenShift's restricted SCC runs a pod (UID 1000650000, group 0, an fsGroup, no
capabilities); by default the binaries of --bin-dir stand for the images.";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tekton-local: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<(), String> {
    let mut flags: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let name = flag.strip_prefix("--").ok_or(USAGE)?;
        let value = it.next().ok_or(USAGE)?;
        flags.entry(name).or_default().push(value);
    }
    let one = |name: &str| -> Result<&str, String> {
        match flags.get(name).map(Vec::as_slice) {
            Some([v]) => Ok(v),
            _ => Err(format!("--{name} once\n{USAGE}")),
        }
    };
    let pairs = |name: &str| -> Result<Vec<(String, String)>, String> {
        let values = flags.get(name).cloned().unwrap_or_default();
        values
            .iter()
            .map(|v| {
                let (k, v) = v.split_once('=').ok_or(format!("--{name} {v}: no '='"))?;
                Ok((k.to_string(), v.to_string()))
            })
            .collect()
    };
    let pipeline = load_pipeline(Path::new(one("pipeline")?));
    let tasks: BTreeMap<String, Task> = std::fs::read_dir(one("tasks")?)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| load_task(&e.path()))
        .map(|t| (t.metadata.name.clone(), t))
        .collect();
    let containers = match flags.get("run-in").map(Vec::as_slice) {
        None | Some(["host"]) => None,
        Some(["containers"]) => Some(PodSecurity::default()),
        _ => {
            return Err(format!(
                "--run-in host or --run-in containers, once\n{USAGE}"
            ))
        }
    };
    // Each step's command names its binary's path in the image; bin-dir holds the same names.
    let bin_dir = match (&containers, flags.get("bin-dir")) {
        (Some(_), None) => PathBuf::new(),
        _ => PathBuf::from(one("bin-dir")?),
    };
    let binaries = tasks
        .values()
        .flat_map(|t| &t.spec.steps)
        .filter_map(|step| step.command.first())
        .filter_map(|command| {
            let name = Path::new(command).file_name()?;
            Some((command.clone(), bin_dir.join(name)))
        })
        .collect();
    let mut secrets = BTreeMap::new();
    // A secret's value comes from this process's environment, never from its arguments,
    // which every process on the machine can read.
    for (name_key, var) in pairs("secret-env")? {
        let (name, key) = name_key
            .split_once('/')
            .ok_or(format!("--secret-env {name_key}: NAME/KEY"))?;
        if let Ok(value) = std::env::var(&var) {
            secrets.insert((name.to_string(), key.to_string()), value);
        }
    }
    let run = LocalPipelineRun {
        params: pairs("param")?.into_iter().collect(),
        workspaces: pairs("workspace")?
            .into_iter()
            .map(|(k, v)| (k, PathBuf::from(v)))
            .collect(),
        pod: LocalTaskRun {
            secrets,
            mounts: pairs("mount")?
                .into_iter()
                .map(|(k, v)| (k, PathBuf::from(v)))
                .collect(),
            binaries,
            show_logs: true,
            containers,
            ..LocalTaskRun::default()
        },
        root: PathBuf::from(one("work")?),
        stop_after: flags
            .get("stop-after")
            .and_then(|v| v.first())
            .map(|s| s.to_string()),
    };
    for (task, results) in run.run(&pipeline, &tasks)? {
        eprintln!("tekton-local: {task} succeeded");
        for (name, value) in results {
            println!("{task}.{name}={value}");
        }
    }
    Ok(())
}
