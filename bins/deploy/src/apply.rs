//! Server-side apply of the InferenceService or LLMInferenceService. The API server merges what deploy sends with
//! what is there, under deploy's field manager: a rerun updates the fields deploy owns and
//! keeps every field another manager set (a label from `oc label`, an annotation from the
//! dashboard), and a field another manager changed is a conflict, not silently overwritten.

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde::Serialize;
use serde_json::Value;

use crate::cluster::api_status;
use crate::DeployError;

/// What the apply did to the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Created,
    Updated,
    Unchanged,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Change::Created => "created",
            Change::Updated => "updated",
            Change::Unchanged => "unchanged",
        })
    }
}

#[derive(Debug, Clone)]
pub struct Applied {
    pub change: Change,
    /// The object as the server returned it after the apply.
    pub object: DynamicObject,
}

/// How the apply is made.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// The field manager that owns what deploy sets.
    pub field_manager: String,
    /// Take over fields another manager set to other values (`--force-conflicts`).
    pub force_conflicts: bool,
}

pub async fn apply(
    api: &Api<DynamicObject>,
    name: &str,
    manifest: &Value,
    options: &ApplyOptions,
) -> Result<Applied, DeployError> {
    let what = format!("{} {name}", manifest["kind"].as_str().unwrap_or("object"));
    let before = api
        .get_opt(name)
        .await
        .map_err(|e| DeployError::kube("read", &what, e))?
        .and_then(|o| o.metadata.resource_version);
    let mut params = PatchParams::apply(&options.field_manager);
    params.force = options.force_conflicts;
    let object = api
        .patch(name, &params, &Patch::Apply(manifest))
        .await
        .map_err(|e| match (api_status(&e), e) {
            (Some(409), kube::Error::Api(status)) => DeployError::Conflict {
                what: what.clone(),
                message: status.message,
            },
            (_, e) => DeployError::kube("apply", &what, e),
        })?;
    let change = match before {
        None => Change::Created,
        Some(rv) if Some(&rv) == object.metadata.resource_version.as_ref() => Change::Unchanged,
        Some(_) => Change::Updated,
    };
    Ok(Applied { change, object })
}
