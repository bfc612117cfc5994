//! Find-or-create, in order: the RegisteredModel by name, the ModelVersion by name under it,
//! then its ModelArtifact with the image URI, model format and provenance properties. Run
//! twice with the same input it creates nothing and reports the same IDs.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::api::{Api, ApiError};

/// The artifact kind a ModelCar is recorded as.
const MODEL_ARTIFACT: &str = "model-artifact";

#[derive(Debug, Clone)]
pub struct Request {
    pub model_name: String,
    pub version_name: String,
    pub uri: String,
    pub model_format_name: Option<String>,
    pub model_format_version: Option<String>,
    pub description: Option<String>,
    pub author: Option<String>,
    /// Custom properties of the artifact (provenance and `--property`), as strings.
    pub properties: BTreeMap<String, String>,
    /// Replace the URI of an existing version's artifact instead of refusing.
    pub update: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Registered {
    pub registered_model_id: String,
    pub model_version_id: String,
    pub model_artifact_id: String,
    /// What this run created: any of `registered_model`, `model_version`, `model_artifact`.
    pub created: Vec<&'static str>,
    /// Whether an existing artifact was changed.
    pub updated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(
        "version {version:?} of model {model:?} already records {existing}, not {wanted}: pass \
         --update to point it at the new image, or choose another --version-name"
    )]
    UriConflict {
        model: String,
        version: String,
        existing: String,
        wanted: String,
    },
    #[error("the Model Registry answered {what} without an \"id\"")]
    NoId { what: &'static str },
}

pub async fn register(api: &Api, req: &Request) -> Result<Registered, RegisterError> {
    let mut created = Vec::new();
    let model = match api
        .find(&format!(
            "/registered_model?{}",
            query(&[("name", &req.model_name)])
        ))
        .await?
    {
        Some(model) => model,
        None => {
            created.push("registered_model");
            api.post("/registered_models", &registered_model_body(req))
                .await?
        }
    };
    let model_id = id_of(&model, "the registered model")?;
    let find_version = query(&[("name", &req.version_name), ("parentResourceId", &model_id)]);
    let version = match api.find(&format!("/model_version?{find_version}")).await? {
        Some(version) => version,
        None => {
            created.push("model_version");
            api.post("/model_versions", &model_version_body(req, &model_id))
                .await?
        }
    };
    let version_id = id_of(&version, "the model version")?;
    let (artifact_id, updated) = match existing_artifact(api, &version_id).await? {
        None => {
            created.push("model_artifact");
            let body = Value::Object(artifact_body(req, true));
            let artifact = api
                .post(&format!("/model_versions/{version_id}/artifacts"), &body)
                .await?;
            (id_of(&artifact, "the model artifact")?, false)
        }
        Some(artifact) => (
            id_of(&artifact, "the model artifact")?,
            update_artifact(api, req, &artifact).await?,
        ),
    };
    Ok(Registered {
        registered_model_id: model_id,
        model_version_id: version_id,
        model_artifact_id: artifact_id,
        created,
        updated,
    })
}

/// The version's model artifact, if it has one.
async fn existing_artifact(api: &Api, version_id: &str) -> Result<Option<Value>, RegisterError> {
    let list = api
        .get(&format!("/model_versions/{version_id}/artifacts"))
        .await?;
    let items = list
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Ok(items
        .into_iter()
        .find(|a| a.get("artifactType").and_then(Value::as_str) == Some(MODEL_ARTIFACT)))
}

/// Brings an existing artifact in line with the request; true if anything changed.
async fn update_artifact(
    api: &Api,
    req: &Request,
    artifact: &Value,
) -> Result<bool, RegisterError> {
    let existing_uri = artifact
        .get("uri")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if existing_uri != req.uri && !req.update {
        return Err(RegisterError::UriConflict {
            model: req.model_name.clone(),
            version: req.version_name.clone(),
            existing: existing_uri.into(),
            wanted: req.uri.clone(),
        });
    }
    let wanted = artifact_body(req, false);
    let unchanged = wanted.iter().all(|(k, v)| artifact.get(k) == Some(v));
    if unchanged {
        return Ok(false);
    }
    let id = id_of(artifact, "the model artifact")?;
    api.patch(&format!("/model_artifacts/{id}"), &Value::Object(wanted))
        .await?;
    Ok(true)
}

fn registered_model_body(req: &Request) -> Value {
    let mut body = Map::new();
    body.insert("name".into(), req.model_name.clone().into());
    insert_some(&mut body, "description", &req.description);
    insert_some(&mut body, "owner", &req.author);
    Value::Object(body)
}

fn model_version_body(req: &Request, model_id: &str) -> Value {
    let mut body = Map::new();
    body.insert("name".into(), req.version_name.clone().into());
    body.insert("registeredModelId".into(), model_id.into());
    insert_some(&mut body, "description", &req.description);
    insert_some(&mut body, "author", &req.author);
    Value::Object(body)
}

/// The artifact's fields; `create` adds those only a create body has (type and name).
fn artifact_body(req: &Request, create: bool) -> Map<String, Value> {
    let mut body = Map::new();
    if create {
        body.insert("artifactType".into(), MODEL_ARTIFACT.into());
        // Named after the model, as the official Python client names (and finds) it.
        body.insert("name".into(), req.model_name.clone().into());
    }
    body.insert("uri".into(), req.uri.clone().into());
    insert_some(&mut body, "modelFormatName", &req.model_format_name);
    insert_some(&mut body, "modelFormatVersion", &req.model_format_version);
    body.insert(
        "customProperties".into(),
        custom_properties(&req.properties),
    );
    body
}

/// `MetadataStringValue` entries, as the spec's `customProperties` map holds them.
fn custom_properties(properties: &BTreeMap<String, String>) -> Value {
    let map: Map<String, Value> = properties
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                json!({"string_value": v, "metadataType": "MetadataStringValue"}),
            )
        })
        .collect();
    Value::Object(map)
}

fn insert_some(body: &mut Map<String, Value>, key: &str, value: &Option<String>) {
    if let Some(v) = value {
        body.insert(key.into(), v.clone().into());
    }
}

fn id_of(object: &Value, what: &'static str) -> Result<String, RegisterError> {
    object
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or(RegisterError::NoId { what })
}

/// `a=1&b=x%20y`
fn query(pairs: &[(&str, &str)]) -> String {
    let mut url = reqwest::Url::parse("http://query.invalid/").expect("a valid URL");
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_properties_are_metadata_string_values() {
        let props = BTreeMap::from([("hf_repo".to_string(), "org/m".to_string())]);
        let v = custom_properties(&props);
        assert_eq!(v["hf_repo"]["string_value"], "org/m");
        assert_eq!(v["hf_repo"]["metadataType"], "MetadataStringValue");
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            query(&[("name", "a b/c"), ("id", "1")]),
            "name=a+b%2Fc&id=1"
        );
    }
}
