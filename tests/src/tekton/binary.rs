//! A Task checked against the binary it runs: its YAML is Tekton v1 and its references are
//! declared (see the parent module), every env var a step sets is one the binary reads (its
//! `--help` names it), every `--flag` in the args is one it takes, and the step runs as the
//! restricted SCC requires, with `computeResources` set. Each step names as its `command` the
//! ENTRYPOINT of the binary's image (containerfiles/), as a real controller needs (see
//! [`super::controller`]).

use std::path::Path;
use std::process::Command;

use super::checks::{flags_in_help, task_reference_problems, unknown_flags};
use super::controller::controller_problems;
use super::load::load_task;

/// Panics with every problem found in the Task at `task` for the binary at `binary`.
pub fn check_task_runs_binary(task: &Path, binary: &str) {
    let parsed = load_task(task);
    let help = help_of(binary);
    let mut problems = task_reference_problems(&parsed);
    problems.extend(controller_problems(&parsed));
    let entrypoint = image_entrypoint(binary);
    for flag in unknown_flags(&parsed, &flags_in_help(&help)) {
        problems.push(format!("--{flag} is not a flag of {binary}"));
    }
    for step in &parsed.spec.steps {
        let name = step.name.clone().unwrap_or_default();
        if !step.command.is_empty() && step.command != entrypoint {
            problems.push(format!(
                "step {name}: command {:?} is not the image's ENTRYPOINT {entrypoint:?}",
                step.command
            ));
        }
        for env in &step.env {
            if !help.contains(&env.name) {
                problems.push(format!(
                    "step {name}: {} is read by nothing in {binary} --help",
                    env.name
                ));
            }
        }
        let secure = step.security_context.as_ref().is_some_and(|s| {
            s.run_as_non_root == Some(true)
                && s.allow_privilege_escalation == Some(false)
                && s.read_only_root_filesystem == Some(true)
                && s.privileged != Some(true)
                && s.capabilities
                    .as_ref()
                    .is_some_and(|c| c.drop.iter().any(|d| d == "ALL"))
        });
        if !secure {
            problems.push(format!(
                "step {name}: securityContext must run as non-root, without privilege escalation, dropping ALL capabilities, on a read-only root (restricted SCC)"
            ));
        }
        let limited = step
            .compute_resources
            .as_ref()
            .is_some_and(|r| r.requests.contains_key("memory") && r.limits.contains_key("memory"));
        if !limited {
            problems.push(format!(
                "step {name}: computeResources needs memory requests and limits"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{}:\n  {}",
        task.display(),
        problems.join("\n  ")
    );
}

/// The `ENTRYPOINT ["..."]` of `containerfiles/<name>.Containerfile`, the image the Task runs.
fn image_entrypoint(binary: &str) -> Vec<String> {
    let name = Path::new(binary)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_else(|| panic!("{binary} has no file name"));
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../containerfiles")
        .join(format!("{name}.Containerfile"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("ENTRYPOINT "))
        .unwrap_or_else(|| panic!("{} has no ENTRYPOINT", path.display()));
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "{}: ENTRYPOINT is not the exec (JSON) form: {e}",
            path.display()
        )
    })
}

fn help_of(binary: &str) -> String {
    let out = Command::new(binary)
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {binary} --help: {e}"));
    assert!(out.status.success(), "{binary} --help failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
