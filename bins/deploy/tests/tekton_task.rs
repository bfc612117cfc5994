//! The bundled Tekton Tasks that run deploy (tekton/tasks/deploy.yaml, and prewarm.yaml with
//! --prewarm-only) are Tekton v1, declare what they reference, and pass only env vars and
//! flags this binary reads.

#[test]
fn the_tekton_tasks_fit_this_binary() {
    for task in ["tasks/deploy.yaml", "tasks/prewarm.yaml"] {
        let task = modelcar_testkit::tekton::bundle_dir().join(task);
        modelcar_testkit::tekton::check_task_runs_binary(&task, env!("CARGO_BIN_EXE_deploy"));
    }
}
