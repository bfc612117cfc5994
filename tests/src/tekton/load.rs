//! Reading Tekton v1 Tasks and Pipelines from YAML, refusing any other apiVersion or kind.

use std::fs;
use std::path::Path;

use super::types::{Pipeline, Task};

const API_VERSION: &str = "tekton.dev/v1";

pub(super) fn check_header(
    api_version: &str,
    kind: &str,
    expected_kind: &str,
) -> Result<(), String> {
    if api_version != API_VERSION {
        return Err(format!(
            "apiVersion is {api_version:?}, expected {API_VERSION:?}"
        ));
    }
    if kind != expected_kind {
        return Err(format!("kind is {kind:?}, expected {expected_kind:?}"));
    }
    Ok(())
}

/// A Task from YAML; the error names the offending field and where it is.
pub fn parse_task(yaml: &str) -> Result<Task, String> {
    let task: Task = serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())?;
    check_header(&task.api_version, &task.kind, "Task")?;
    Ok(task)
}

/// A Pipeline from YAML; the error names the offending field and where it is.
pub fn parse_pipeline(yaml: &str) -> Result<Pipeline, String> {
    let pipeline: Pipeline = serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())?;
    check_header(&pipeline.api_version, &pipeline.kind, "Pipeline")?;
    Ok(pipeline)
}

fn load<T>(path: &Path, parse: fn(&str) -> Result<T, String>) -> T {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse(&text).unwrap_or_else(|e| panic!("{} is not a valid Tekton v1 file: {e}", path.display()))
}

/// The Task in `path`; panics with the path and the parse error on anything invalid.
pub fn load_task(path: &Path) -> Task {
    load(path, parse_task)
}

/// The Pipeline in `path`; panics with the path and the parse error on anything invalid.
pub fn load_pipeline(path: &Path) -> Pipeline {
    load(path, parse_pipeline)
}
