//! The bundled Pipelines (tekton/pipelines) against the bundled Tasks (tekton/tasks): each
//! parses into Tekton v1's field set with unknown fields refused, names only Tasks that exist,
//! gives each Task only params it declares and every param it requires, binds declared
//! workspaces, and references only declared params and results. Each Task is checked against
//! its binary in that binary's own tests/tekton_task.rs.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use modelcar_testkit::oci_tools::skopeo_inspect;
use modelcar_testkit::run_tool;
use modelcar_testkit::tekton::{
    bundle_dir as tekton_dir, load_pipeline, load_task, optional_workspace_problems,
    parse_pipeline_run, pipeline_reference_problems, pipeline_run_problems, source_bundle_dir,
    ParamValue, Pipeline, Task,
};

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// Every bundled Task by its `metadata.name`.
fn tasks() -> BTreeMap<String, Task> {
    tasks_in(&tekton_dir())
}

fn tasks_in(bundle: &Path) -> BTreeMap<String, Task> {
    yaml_files(&bundle.join("tasks"))
        .iter()
        .map(|path| {
            let task = load_task(path);
            (task.metadata.name.clone(), task)
        })
        .collect()
}

/// The binary a Task runs: its own, and deploy for prewarm (`deploy --prewarm-only`).
fn binary_of(task: &str) -> &str {
    match task.trim_start_matches("modelcar-") {
        "prewarm" => "deploy",
        binary => binary,
    }
}

#[test]
fn every_task_of_every_binary_is_bundled() {
    let names: Vec<String> = tasks().into_keys().collect();
    // One Task per binary, and prewarm, deploy's second step in the pipeline.
    let tasks = [
        "build-push",
        "deploy",
        "fetch-model",
        "fix-perms",
        "mirror",
        "prewarm",
        "register",
    ];
    let expected: Vec<String> = tasks.iter().map(|b| format!("modelcar-{b}")).collect();
    assert_eq!(names, expected);
}

#[test]
fn the_pipelines_reference_only_what_is_declared() {
    let tasks = tasks();
    let pipelines = yaml_files(&tekton_dir().join("pipelines"));
    assert_eq!(
        pipelines.len(),
        2,
        "modelcar.yaml and modelcar-from-hub.yaml"
    );
    for path in pipelines {
        let pipeline = load_pipeline(&path);
        let mut problems = pipeline_reference_problems(&pipeline, &tasks);
        problems.extend(optional_workspace_problems(&pipeline, &tasks));
        assert!(
            problems.is_empty(),
            "{}:\n  {}",
            path.display(),
            problems.join("\n  ")
        );
    }
}

/// The pipeline's task names, in the order they are listed.
fn task_names(pipeline: &Pipeline) -> Vec<&str> {
    pipeline
        .spec
        .tasks
        .iter()
        .map(|t| t.name.as_str())
        .collect()
}

#[test]
fn the_pvc_pipeline_runs_its_steps_in_order() {
    let pipeline = load_pipeline(&tekton_dir().join("pipelines/modelcar.yaml"));
    let order = task_names(&pipeline);
    assert_eq!(
        order,
        [
            "fetch-model",
            "fix-perms",
            "build-push",
            "mirror",
            "register",
            "prewarm",
            "deploy"
        ]
    );
    for pair in pipeline.spec.tasks.windows(2) {
        assert_eq!(
            pair[1].run_after,
            [pair[0].name.clone()],
            "{} runs after {}",
            pair[1].name,
            pair[0].name
        );
    }
    assert!(
        pipeline.spec.tasks.iter().all(|t| t.timeout.is_some()),
        "every task has a timeout"
    );
}

#[test]
fn the_hub_pipeline_has_no_model_download() {
    let pipeline = load_pipeline(&tekton_dir().join("pipelines/modelcar-from-hub.yaml"));
    let order = task_names(&pipeline);
    assert_eq!(
        order,
        ["build-push", "mirror", "register", "prewarm", "deploy"]
    );
    let build = &pipeline.spec.tasks[0];
    let model_dir = build
        .params
        .iter()
        .find(|p| p.name == "model-dir")
        .expect("build-push gets model-dir");
    assert!(
        format!("{:?}", model_dir.value).contains("hf://$(params.repo)@$(params.revision)"),
        "{model_dir:?}"
    );
}

/// What users set per site reaches every task that uses it: the Hub endpoint (a mirror of the
/// Hub) goes to fetch-model and build-push, the CA bundle to every Task that declares one.
#[test]
fn the_pipelines_pass_the_hub_endpoint_and_the_ca_bundle_on() {
    let tasks = tasks();
    for path in yaml_files(&tekton_dir().join("pipelines")) {
        let pipeline = load_pipeline(&path);
        let spec = &pipeline.spec;
        assert!(
            spec.params.iter().any(|p| p.name == "hf-endpoint"),
            "{}: no hf-endpoint param",
            path.display()
        );
        let ca = spec.workspaces.iter().find(|w| w.name == "ca-bundle");
        assert!(
            ca.is_some_and(|w| w.optional),
            "{}: an optional ca-bundle workspace",
            path.display()
        );
        for pt in &spec.tasks {
            let task_name = pt.task_ref.as_ref().and_then(|r| r.name.clone()).unwrap();
            let task = &tasks[&task_name];
            let passes = |param: &str| {
                pt.params.iter().any(|p| {
                    p.name == param && p.value == ParamValue::String(format!("$(params.{param})"))
                })
            };
            if task.spec.params.iter().any(|p| p.name == "hf-endpoint") {
                assert!(
                    passes("hf-endpoint"),
                    "{}: {} gets hf-endpoint",
                    path.display(),
                    pt.name
                );
            }
            if task.spec.workspaces.iter().any(|w| w.name == "ca-bundle") {
                let bound = pt
                    .workspaces
                    .iter()
                    .any(|b| b.name == "ca-bundle" && b.workspace.as_deref() == Some("ca-bundle"));
                assert!(
                    bound,
                    "{}: {} gets the ca-bundle workspace",
                    path.display(),
                    pt.name
                );
            }
        }
    }
}

/// The documents of a multi-document YAML file, each as it reads.
fn documents(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap();
    text.split("\n---\n").map(str::to_owned).collect()
}

fn kind_of(document: &str) -> String {
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(document).unwrap();
    value["kind"].as_str().unwrap_or_default().to_owned()
}

/// The examples: each PipelineRun fits the Pipeline it names (params, workspaces, the PVC
/// created beside it, the service account of rbac.yaml), and the PVC for the model is sized
/// at about 1.1x the model, as its comment says.
#[test]
fn the_example_runs_fit_their_pipelines() {
    let pipelines: BTreeMap<String, _> = yaml_files(&tekton_dir().join("pipelines"))
        .iter()
        .map(|p| {
            let pipeline = load_pipeline(p);
            (pipeline.metadata.name.clone(), pipeline)
        })
        .collect();
    let examples = tekton_dir().join("examples");
    let rbac = fs::read_to_string(examples.join("rbac.yaml")).unwrap();
    let mut runs = 0;
    for path in yaml_files(&examples) {
        let docs = documents(&path);
        let claims: BTreeSet<String> = docs
            .iter()
            .filter(|d| kind_of(d) == "PersistentVolumeClaim")
            .map(|d| {
                let pvc: serde_yaml_ng::Value = serde_yaml_ng::from_str(d).unwrap();
                pvc["metadata"]["name"].as_str().unwrap().to_owned()
            })
            .collect();
        for doc in docs.iter().filter(|d| kind_of(d) == "PipelineRun") {
            let run = parse_pipeline_run(doc)
                .unwrap_or_else(|e| panic!("{}: not a Tekton v1 PipelineRun: {e}", path.display()));
            let problems = pipeline_run_problems(&run, &pipelines, &claims);
            assert!(
                problems.is_empty(),
                "{}:\n  {}",
                path.display(),
                problems.join("\n  ")
            );
            let account = run
                .spec
                .task_run_template
                .as_ref()
                .and_then(|t| t.service_account_name.clone())
                .expect("runs as a named service account");
            assert!(
                rbac.contains(&format!("name: {account}")),
                "{account} is in rbac.yaml"
            );
            runs += 1;
        }
    }
    assert_eq!(
        runs, 4,
        "w4a16, fp16, fp16 from the Hub, and w4a16 on plain Kubernetes"
    );
}

#[test]
fn the_deploy_role_grants_what_deploy_calls() {
    let rbac = tekton_dir().join("examples/rbac.yaml");
    let role = documents(&rbac)
        .into_iter()
        .find(|d| kind_of(d) == "Role")
        .expect("rbac.yaml has the Role");
    let role: serde_yaml_ng::Value = serde_yaml_ng::from_str(&role).unwrap();
    let grants = |resource: &str, verb: &str| {
        role["rules"].as_sequence().unwrap().iter().any(|rule| {
            let has = |key: &str, want: &str| {
                rule[key]
                    .as_sequence()
                    .is_some_and(|s| s.iter().any(|v| v.as_str() == Some(want)))
            };
            has("resources", resource) && has("verbs", verb)
        })
    };
    // What deploy does: preflight GET/LIST of ServingRuntimes, GET + apply (PATCH) + watch
    // of the InferenceService, and LIST of the predictor's pods on timeout.
    for (resource, verb) in [
        ("servingruntimes", "get"),
        ("servingruntimes", "list"),
        ("inferenceservices", "get"),
        ("inferenceservices", "patch"),
        ("inferenceservices", "create"),
        ("inferenceservices", "watch"),
        ("pods", "list"),
    ] {
        assert!(
            grants(resource, verb),
            "the Role must grant {verb} on {resource}"
        );
    }
}

/// The default of a Task's `image` param: the image its one step runs.
fn image_default(task: &Task) -> String {
    let param = task.spec.params.iter().find(|p| p.name == "image");
    match param.and_then(|p| p.default.clone()) {
        Some(ParamValue::String(image)) => image,
        other => panic!(
            "{}: the image param's default is {other:?}",
            task.metadata.name
        ),
    }
}

/// scripts/build-images.sh --push renders the bundle by replacing exactly these defaults, so
/// each Task in tekton/ must carry its binary's image at the workspace's version.
#[test]
fn every_task_defaults_to_its_binarys_image_at_this_version() {
    for (name, task) in tasks_in(&source_bundle_dir()) {
        let binary = binary_of(&name);
        assert_eq!(
            image_default(&task),
            format!("quay.io/modelcar/{binary}:{}", env!("CARGO_PKG_VERSION")),
            "tekton/tasks/{binary}.yaml"
        );
    }
}

/// The bundle `scripts/build-images.sh --push REGISTRY/ORG` writes (`MODELCAR_TEKTON_DIR`):
/// each Task runs the image just pushed as REGISTRY/ORG/<binary>:<version>, by the digest
/// that tag has in the registry (REGISTRY/ORG/<binary>@sha256:...: containers/image, which
/// CRI-O pulls with, refuses a tag and a digest both), whose entrypoint is that binary; and kustomize reads the bundle
/// (`kubectl apply -k DIR`) as the six Tasks and the Pipelines. The other tests of this file
/// and each binary's tekton_task.rs check the same rendered files.
#[test]
#[ignore = "needs the six images pushed and the bundle rendered: run by scripts/test-bundle.sh"]
fn the_rendered_bundle_runs_the_pushed_images() {
    let prefix = std::env::var("MODELCAR_BUNDLE_IMAGES")
        .expect("MODELCAR_BUNDLE_IMAGES=REGISTRY/ORG, as given to build-images.sh --push");
    let tasks = tasks();
    assert_eq!(tasks.len(), 7, "seven Tasks in {}", tekton_dir().display());
    for (name, task) in &tasks {
        let binary = binary_of(name);
        let image = image_default(task);
        let tagged = format!("{prefix}/{binary}:{}", env!("CARGO_PKG_VERSION"));
        let digest = image
            .strip_prefix(&format!("{prefix}/{binary}@"))
            .unwrap_or_else(|| panic!("{name} runs {image}, not {prefix}/{binary}@sha256:..."));
        let inspected = skopeo_inspect(&format!("docker://{tagged}"));
        assert_eq!(inspected["Digest"], digest, "{tagged} in the registry");
        let config = run_tool(
            "skopeo",
            &[
                "inspect",
                "--config",
                "--tls-verify=false",
                &format!("docker://{image}"),
            ],
        );
        let config: serde_json::Value = serde_json::from_str(&config).unwrap();
        assert_eq!(
            config["config"]["Entrypoint"],
            serde_json::json!([format!("/usr/local/bin/{binary}")]),
            "{image} runs {binary}"
        );
    }
    let dir = tekton_dir();
    let built = run_tool("kubectl", &["kustomize", &dir.to_string_lossy()]);
    let kinds: Vec<String> = built.split("\n---\n").map(kind_of).collect();
    let pipelines = yaml_files(&dir.join("pipelines")).len();
    assert_eq!(kinds.iter().filter(|k| *k == "Task").count(), tasks.len());
    assert_eq!(kinds.iter().filter(|k| *k == "Pipeline").count(), pipelines);
    assert_eq!(
        kinds.len(),
        tasks.len() + pipelines,
        "nothing else: {kinds:?}"
    );
}
