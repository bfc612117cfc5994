//! The bundled Tekton Task for fetch-model (tekton/tasks/fetch-model.yaml) is Tekton v1, declares what it
//! references, and passes only env vars and flags this binary reads.

#[test]
fn the_tekton_task_fits_this_binary() {
    let task = modelcar_testkit::tekton::bundle_dir().join("tasks/fetch-model.yaml");
    modelcar_testkit::tekton::check_task_runs_binary(&task, env!("CARGO_BIN_EXE_fetch-model"));
}
