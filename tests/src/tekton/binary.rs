//! A Task checked against the binary it runs: its YAML is Tekton v1 and its references are
//! declared (see the parent module), every env var a step sets is one the binary reads (its
//! `--help` names it), every `--flag` in the args is one it takes, and the step runs as the
//! restricted SCC requires, with `computeResources` set.

use std::path::Path;
use std::process::Command;

use super::checks::{flags_in_help, task_reference_problems, unknown_flags};
use super::load::load_task;

/// Panics with every problem found in the Task at `task` for the binary at `binary`.
pub fn check_task_runs_binary(task: &Path, binary: &str) {
    let parsed = load_task(task);
    let help = help_of(binary);
    let mut problems = task_reference_problems(&parsed);
    for flag in unknown_flags(&parsed, &flags_in_help(&help)) {
        problems.push(format!("--{flag} is not a flag of {binary}"));
    }
    for step in &parsed.spec.steps {
        let name = step.name.clone().unwrap_or_default();
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
                && s.privileged != Some(true)
                && s.capabilities
                    .as_ref()
                    .is_some_and(|c| c.drop.iter().any(|d| d == "ALL"))
        });
        if !secure {
            problems.push(format!(
                "step {name}: securityContext must run as non-root, without privilege escalation, dropping ALL capabilities (restricted SCC)"
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

fn help_of(binary: &str) -> String {
    let out = Command::new(binary)
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {binary} --help: {e}"));
    assert!(out.status.success(), "{binary} --help failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
