//! A strict reader of the project's Tekton `tekton.dev/v1` Tasks and Pipelines, so their tests
//! catch what the Tekton webhook would refuse (a field v1 does not have, such as a step's
//! `resources` where v1 says `computeResources`) and what would only fail in a run (a
//! `$(params.x)` nobody declares, a binding to a missing workspace, a flag the binary lacks).

mod binary;
mod checks;
mod controller;
mod k8s;
mod load;
mod local_containers;
mod local_pipeline;
mod local_run;
mod run;
mod types;
mod vars;

use std::path::{Path, PathBuf};

pub use binary::check_task_runs_binary;
pub use checks::{
    flags_in_help, pipeline_reference_problems, task_reference_problems, unknown_flags,
};
pub use controller::{controller_problems, optional_workspace_problems, SERVICE_ACCOUNT_DIR};
pub use k8s::*;
pub use load::{load_pipeline, load_task, parse_pipeline, parse_task};
pub use local_pipeline::{LocalPipelineRun, TaskResults};
pub use local_run::{config_map_volume, LocalTaskRun, StepOutcome, RESULTS_DIR};
pub use run::*;
pub use types::*;

/// The repository's own `tekton/` directory, as written.
pub fn source_bundle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tekton")
}

/// The Tekton bundle the tests check: `MODELCAR_TEKTON_DIR` when set (the bundle
/// `scripts/build-images.sh --push` renders, checked by `scripts/test-bundle.sh`), else the
/// repository's `tekton/`.
pub fn bundle_dir() -> PathBuf {
    std::env::var_os("MODELCAR_TEKTON_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(source_bundle_dir)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    const TASK: &str = r#"
apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: modelcar-pull
  labels:
    app.kubernetes.io/version: "0.1"
spec:
  description: Pulls a model into the workspace.
  params:
    - name: model
      type: string
    - name: chunk-size
      default: "64Mi"
    - name: extra
      type: array
      default: []
  workspaces:
    - name: model
      mountPath: /model
  results:
    - name: digest
      description: digest of what was pulled
  volumes:
    - name: token
      projected:
        sources:
          - serviceAccountToken:
              audience: registry
              expirationSeconds: 3600
              path: token
  steps:
    - name: pull
      image: quay.io/example/modelcar:latest
      command: [modelcar-pull]
      args:
        - --model
        - $(params.model)
        - --chunk-size=$(params["chunk-size"])
        - --out
        - $(workspaces.model.path)
        - --digest-file
        - $(results.digest.path)
        - $(params.extra[*])
      env:
        - name: HF_TOKEN
          valueFrom:
            secretKeyRef: {name: hf, key: token, optional: true}
        - name: POD
          valueFrom:
            fieldRef: {fieldPath: metadata.name}
      volumeMounts:
        - name: token
          mountPath: /var/run/token
          readOnly: true
      computeResources:
        requests: {cpu: 500m, memory: 1Gi}
        limits: {cpu: 2, memory: 2Gi}
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities: {drop: [ALL]}
        seccompProfile: {type: RuntimeDefault}
    - name: report
      image: quay.io/example/modelcar:latest
      workingDir: $(workspaces.model.path)
      script: |
        #!/bin/sh
        echo "$(date) pulled $(cat $(results.digest.path))"
"#;

    const PIPELINE: &str = r#"
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: modelcar
spec:
  params:
    - name: model
  workspaces:
    - name: shared
  tasks:
    - name: pull
      taskRef: {name: modelcar-pull}
      params:
        - {name: model, value: $(params.model)}
      workspaces:
        - {name: model, workspace: shared}
    - name: again
      runAfter: [pull]
      taskRef: {name: modelcar-pull}
      params:
        - {name: model, value: "$(tasks.pull.results.digest)"}
        - {name: extra, value: [a, b]}
      workspaces:
        - {name: model, workspace: shared}
  results:
    - name: digest
      value: $(tasks.pull.results.digest)
"#;

    fn task() -> Task {
        parse_task(TASK).unwrap_or_else(|e| panic!("{e}"))
    }

    fn given_tasks() -> BTreeMap<String, Task> {
        BTreeMap::from([("modelcar-pull".to_string(), task())])
    }

    fn assert_reported(problems: &[String], needle: &str) {
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "no problem mentions {needle:?}: {problems:#?}"
        );
    }

    #[test]
    fn a_valid_task_parses_and_references_only_what_it_declares() {
        let task = task();
        let step = &task.spec.steps[0];
        let resources = step.compute_resources.as_ref().expect("computeResources");
        assert_eq!(resources.limits["cpu"], "2");
        assert_eq!(resources.requests["memory"], "1Gi");
        let security = step.security_context.as_ref().expect("securityContext");
        assert_eq!(security.run_as_non_root, Some(true));
        assert_eq!(security.capabilities.as_ref().expect("caps").drop, ["ALL"]);
        assert_eq!(task.spec.results[0].name, "digest");
        assert_eq!(task.spec.params[2].default, Some(ParamValue::Array(vec![])));
        assert_eq!(task_reference_problems(&task), Vec::<String>::new());
    }

    #[test]
    fn step_resources_is_refused_by_name() {
        let yaml = TASK.replace("computeResources:", "resources:");
        let err = parse_task(&yaml).expect_err("v1 steps have no `resources`");
        assert!(err.contains("unknown field `resources`"), "{err}");
    }

    #[test]
    fn unknown_fields_in_embedded_kubernetes_types_are_refused() {
        let yaml = TASK.replace("runAsNonRoot:", "runAsNonroot:");
        let err = parse_task(&yaml).expect_err("misspelt securityContext field");
        assert!(err.contains("runAsNonroot"), "{err}");
    }

    #[test]
    fn only_tekton_v1_tasks_are_accepted() {
        let beta = TASK.replace("tekton.dev/v1", "tekton.dev/v1beta1");
        assert!(parse_task(&beta)
            .expect_err("v1beta1")
            .contains("apiVersion"));
        assert!(parse_pipeline(TASK).is_err(), "a Task is not a Pipeline");
    }

    #[test]
    fn undeclared_params_and_workspaces_are_reported() {
        let yaml = TASK
            .replace("- $(params.model)", "- $(params.nope)")
            .replace(
                "workingDir: $(workspaces.model.path)",
                "workingDir: $(workspaces.nope.path)",
            );
        let problems = task_reference_problems(&parse_task(&yaml).expect("parses"));
        assert_reported(&problems, "$(params.nope)");
        assert_reported(&problems, "$(workspaces.nope.path)");
        assert_eq!(problems.len(), 2, "{problems:#?}");
    }

    #[test]
    fn a_valid_pipeline_has_no_reference_problems() {
        let pipeline = parse_pipeline(PIPELINE).unwrap_or_else(|e| panic!("{e}"));
        let problems = pipeline_reference_problems(&pipeline, &given_tasks());
        assert_eq!(problems, Vec::<String>::new());
    }

    #[test]
    fn pipeline_reference_mistakes_are_reported() {
        let yaml = PIPELINE
            .replace(
                "$(tasks.pull.results.digest)\"",
                "$(tasks.pull.results.nope)\"",
            )
            .replace("{name: extra, value: [a, b]}", "{name: bogus, value: x}")
            .replace(
                "{name: model, workspace: shared}\n  results",
                "{name: model, workspace: nope}\n  results",
            )
            .replace("runAfter: [pull]", "runAfter: [ghost]");
        let pipeline = parse_pipeline(&yaml).unwrap_or_else(|e| panic!("{e}"));
        let problems = pipeline_reference_problems(&pipeline, &given_tasks());
        assert_reported(&problems, "$(tasks.pull.results.nope)");
        assert_reported(&problems, "\"bogus\" is not declared");
        assert_reported(&problems, "\"nope\", which the Pipeline does not declare");
        assert_reported(&problems, "runAfter \"ghost\"");
        assert_eq!(problems.len(), 4, "{problems:#?}");
    }

    #[test]
    fn missing_required_params_and_unknown_tasks_are_reported() {
        let yaml = PIPELINE
            .replace("        - {name: model, value: $(params.model)}\n", "")
            .replace(
                "taskRef: {name: modelcar-pull}\n      params:\n        - {name: model, value: \"",
                "taskRef: {name: other}\n      params:\n        - {name: model, value: \"",
            );
        let pipeline = parse_pipeline(&yaml).unwrap_or_else(|e| panic!("{e}"));
        let problems = pipeline_reference_problems(&pipeline, &given_tasks());
        assert_reported(
            &problems,
            "pipeline task pull: Task param \"model\" has no default",
        );
        assert_reported(&problems, "Task \"other\", which was not given");
    }

    #[test]
    fn a_step_without_command_is_reported_as_the_controller_would_fail_it() {
        assert_eq!(controller_problems(&task()), Vec::<String>::new());
        let yaml = TASK.replace("      command: [modelcar-pull]\n", "");
        let problems = controller_problems(&parse_task(&yaml).expect("parses"));
        assert_reported(&problems, "step pull names no command");
        assert_eq!(problems.len(), 1, "a script step needs none: {problems:#?}");
    }

    #[test]
    fn a_default_naming_a_file_only_openshift_mounts_is_reported() {
        let with_default = |default: &str| {
            let yaml = TASK.replace(
                "    - name: chunk-size\n      default: \"64Mi\"",
                &format!("    - name: chunk-size\n      default: {default}"),
            );
            controller_problems(&parse_task(&yaml).expect("parses"))
        };
        let problems = with_default("/var/run/secrets/kubernetes.io/serviceaccount/service-ca.crt");
        assert_reported(&problems, "param chunk-size defaults to");
        assert_reported(&problems, "service-ca.crt");
        for everywhere in ["token", "ca.crt", "namespace"] {
            let path = format!("{SERVICE_ACCOUNT_DIR}{everywhere}");
            assert_eq!(with_default(&path), Vec::<String>::new(), "{path}");
        }
        let yaml = TASK.replace(
            "fieldRef: {fieldPath: metadata.name}",
            "fieldRef: {fieldPath: metadata.name}\n        - name: CA\n          value: /var/run/secrets/kubernetes.io/serviceaccount/service-ca.crt",
        );
        let problems = controller_problems(&parse_task(&yaml).expect("parses"));
        assert_reported(&problems, "env CA names");
    }

    #[test]
    fn an_optional_pipeline_workspace_needs_optional_task_workspaces() {
        let yaml = PIPELINE.replace(
            "  workspaces:\n    - name: shared\n",
            "  workspaces:\n    - name: shared\n      optional: true\n",
        );
        let pipeline = parse_pipeline(&yaml).unwrap_or_else(|e| panic!("{e}"));
        let problems = optional_workspace_problems(&pipeline, &given_tasks());
        assert_reported(
            &problems,
            "binds optional workspace \"shared\" to Task workspace \"model\"",
        );
        let optional_task = TASK.replace(
            "      mountPath: /model\n",
            "      mountPath: /model\n      optional: true\n",
        );
        let tasks = BTreeMap::from([(
            "modelcar-pull".to_string(),
            parse_task(&optional_task).expect("parses"),
        )]);
        assert_eq!(
            optional_workspace_problems(&pipeline, &tasks),
            Vec::<String>::new()
        );
    }

    const HELP: &str = "\
Pulls a model

Usage: modelcar-pull [OPTIONS] --model <MODEL>

Options:
  -m, --model <MODEL>        Model to pull (not --revision of git)
      --chunk-size <BYTES>   Size of a chunk [default: 64Mi] [aliases: --chunk]
      --out <DIR>
          Where to write; passed on as podman --root
      --digest-file <PATH>   Where the digest goes
  -h, --help                 Print help
  -V, --version              Print version
";

    #[test]
    fn flags_in_help_reads_only_the_option_column() {
        let flags = flags_in_help(HELP);
        let expected = [
            "chunk",
            "chunk-size",
            "digest-file",
            "help",
            "model",
            "out",
            "version",
        ];
        assert_eq!(
            flags,
            expected
                .into_iter()
                .map(String::from)
                .collect::<BTreeSet<_>>()
        );
    }

    #[test]
    fn unknown_flags_are_those_the_help_lacks() {
        let mut flags = flags_in_help(HELP);
        assert_eq!(unknown_flags(&task(), &flags), Vec::<String>::new());
        flags.remove("chunk-size");
        flags.remove("out");
        assert_eq!(unknown_flags(&task(), &flags), ["chunk-size", "out"]);
    }
}
