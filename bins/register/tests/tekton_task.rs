//! The bundled Tekton Task for register (tekton/tasks/register.yaml) is Tekton v1, declares what it
//! references, and passes only env vars and flags this binary reads.

#[test]
fn the_tekton_task_fits_this_binary() {
    let task = modelcar_testkit::tekton::bundle_dir().join("tasks/register.yaml");
    modelcar_testkit::tekton::check_task_runs_binary(&task, env!("CARGO_BIN_EXE_register"));
}
