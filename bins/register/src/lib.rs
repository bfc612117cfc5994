//! register: records a ModelCar image in the Kubeflow / OpenShift AI Model Registry
//! (RegisteredModel -> ModelVersion -> ModelArtifact), idempotently, with the provenance the
//! pipeline gathered in the metadata file, and writes the IDs back to it.

pub mod api;
mod register;

use std::collections::BTreeMap;

use serde::Serialize;

use modelcar_shared::cli::Report;
use modelcar_shared::metadata::Metadata;
use modelcar_shared::Workspace;

pub use api::Token;
pub use register::{RegisterError, Registered, Request};

pub struct Options {
    pub url: String,
    /// `v1` or `v1alpha3`; `None`: the newest the service answers.
    pub api_version: Option<String>,
    pub token: Token,
    pub trust: modelcar_shared::trust::Trust,
    pub model_name: Option<String>,
    pub version_name: Option<String>,
    /// For the default version name `<variant>-<MMDD>`, e.g. `full-fp16-1124`.
    pub variant: Option<String>,
    pub uri: Option<String>,
    /// Default URI by tag (`oci://image:tag`) instead of by digest.
    pub uri_tag: bool,
    pub model_format_name: Option<String>,
    pub model_format_version: Option<String>,
    pub description: Option<String>,
    pub author: Option<String>,
    pub properties: BTreeMap<String, String>,
    pub update: bool,
    pub workspace: Option<Workspace>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Something the user must give, named with the flag that gives it.
    #[error("{0}")]
    MissingInput(String),
    #[error(transparent)]
    Register(#[from] RegisterError),
    #[error(transparent)]
    Api(#[from] api::ApiError),
    #[error(transparent)]
    Metadata(#[from] modelcar_shared::metadata::MetadataError),
    #[error(transparent)]
    Workspace(#[from] modelcar_shared::workspace::WorkspaceError),
}

#[derive(Debug, Clone, Serialize)]
pub struct RegisterReport {
    pub model_name: String,
    pub version_name: String,
    pub uri: String,
    #[serde(flatten)]
    pub registered: Registered,
}

impl Report for RegisterReport {
    fn human(&self) -> String {
        let what = match (self.registered.created.is_empty(), self.registered.updated) {
            (true, false) => "nothing new: already registered".to_string(),
            (true, true) => "updated the model artifact".to_string(),
            (false, _) => format!("created {}", self.registered.created.join(", ")),
        };
        format!(
            "{} version {} -> {}\n{what}; registered_model_id={} model_version_id={} model_artifact_id={}",
            self.model_name,
            self.version_name,
            self.uri,
            self.registered.registered_model_id,
            self.registered.model_version_id,
            self.registered.model_artifact_id
        )
    }

    fn results(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "REGISTERED_MODEL_ID",
                self.registered.registered_model_id.clone(),
            ),
            ("MODEL_VERSION_ID", self.registered.model_version_id.clone()),
            (
                "MODEL_ARTIFACT_ID",
                self.registered.model_artifact_id.clone(),
            ),
        ]
    }
}

pub async fn run(opts: Options) -> Result<RegisterReport, RunError> {
    let metadata = match &opts.workspace {
        Some(ws) => ws.metadata()?.read()?,
        None => Metadata::default(),
    };
    let request = request(&opts, &metadata)?;
    let api = api::Api::connect(
        &opts.url,
        opts.api_version.as_deref(),
        opts.token.clone(),
        &opts.trust,
    )
    .await?;
    let registered = register::register(&api, &request).await?;
    if let Some(ws) = &opts.workspace {
        ws.metadata()?.update(|m| {
            m.registered_model_id = Some(registered.registered_model_id.clone());
            m.model_version_id = Some(registered.model_version_id.clone());
            m.model_artifact_id = Some(registered.model_artifact_id.clone());
        })?;
    }
    Ok(RegisterReport {
        model_name: request.model_name,
        version_name: request.version_name,
        uri: request.uri,
        registered,
    })
}

/// The request, every value from its flag or else from the metadata file.
fn request(opts: &Options, meta: &Metadata) -> Result<Request, RunError> {
    let missing = |what: &str| RunError::MissingInput(what.into());
    let model_name = opts
        .model_name
        .clone()
        .or_else(|| {
            meta.hf_repo
                .as_ref()
                .and_then(|r| r.rsplit('/').next())
                .map(str::to_string)
        })
        .ok_or_else(|| {
            missing("give --model-name (or --workspace with hf_repo in its metadata file)")
        })?;
    let version_name = match (&opts.version_name, &opts.variant) {
        (Some(name), _) => name.clone(),
        (None, Some(variant)) => format!("{variant}-{}", month_day(meta.pushed_at_utc.as_deref())),
        (None, None) => {
            return Err(missing(
                "give --version-name, or --variant for a name like full-fp16-1124",
            ))
        }
    };
    let uri = match (&opts.uri, &meta.image, &meta.image_digest, &meta.image_tag) {
        (Some(uri), ..) => uri.clone(),
        (None, Some(image), _, Some(tag)) if opts.uri_tag => format!("oci://{image}:{tag}"),
        (None, Some(image), Some(digest), _) if !opts.uri_tag => format!("oci://{image}@{digest}"),
        _ => return Err(missing("give --uri, or --workspace with image and image_digest (image_tag for --uri-tag) in its metadata file")),
    };
    let mut properties = provenance(meta);
    properties.extend(opts.properties.clone());
    Ok(Request {
        model_name,
        version_name,
        uri,
        model_format_name: opts.model_format_name.clone(),
        model_format_version: opts.model_format_version.clone(),
        description: opts.description.clone(),
        author: opts.author.clone(),
        properties,
        update: opts.update,
    })
}

/// What the pipeline learned, as artifact properties.
fn provenance(meta: &Metadata) -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            p.insert(k.to_string(), v);
        }
    };
    put("hf_repo", meta.hf_repo.clone());
    put("hf_revision", meta.hf_revision.clone());
    put("image", meta.image.clone());
    put("image_digest", meta.image_digest.clone());
    put("image_tag", meta.image_tag.clone());
    let mirrors: Vec<String> = meta
        .mirrors
        .iter()
        .map(|m| format!("{}@{}", m.image, m.digest))
        .collect();
    put("mirrors", (!mirrors.is_empty()).then(|| mirrors.join(",")));
    let size: u64 = meta.files.iter().map(|f| f.size).sum();
    put("model_size_bytes", (size > 0).then(|| size.to_string()));
    p
}

/// `MMDD` of an RFC 3339 timestamp (the push time, so reruns on later days keep the name),
/// or of today.
fn month_day(timestamp: Option<&str>) -> String {
    let stamp = timestamp.map(str::to_string).unwrap_or_else(|| {
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
    });
    // 2026-11-24T...: characters 5..7 are the month, 8..10 the day.
    match (stamp.get(5..7), stamp.get(8..10)) {
        (Some(m), Some(d)) => format!("{m}{d}"),
        _ => "0000".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_name_uses_the_push_date() {
        assert_eq!(month_day(Some("2026-11-24T23:41:01Z")), "1124");
        assert_eq!(month_day(None).len(), 4);
    }
}
