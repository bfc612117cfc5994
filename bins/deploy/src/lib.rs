//! deploy: the KServe InferenceService that serves a ModelCar with vLLM. This part builds the
//! manifest (and prints it for `--dry-run`); applying it with server-side apply and waiting
//! for Ready are the rest of issue #8.

pub mod manifest;

pub use manifest::{inference_service, ServeSpec, Toleration};

use modelcar_shared::Workspace;

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(
        "no --storage-uri, and {0} records no pushed image (image and image_digest): run \
         build-push with --workspace first, or give --storage-uri oci://..."
    )]
    NoImage(String),
    #[error("give --storage-uri oci://..., or --workspace to take it from the metadata file")]
    NoStorageUri,
    #[error("--storage-uri {0:?} is not an oci:// URI (a ModelCar image)")]
    NotOci(String),
    #[error(transparent)]
    Metadata(#[from] modelcar_shared::metadata::MetadataError),
    #[error(transparent)]
    Layout(#[from] modelcar_shared::layout::LayoutError),
}

/// `--storage-uri`, or the image build-push recorded, by digest (`oci://image@digest`).
pub fn storage_uri(
    flag: Option<&str>,
    workspace: Option<&Workspace>,
) -> Result<String, DeployError> {
    let uri = match (flag, workspace) {
        (Some(uri), _) => uri.to_string(),
        (None, Some(ws)) => {
            let meta = ws.metadata()?.read()?;
            let (Some(image), Some(digest)) = (meta.image, meta.image_digest) else {
                return Err(DeployError::NoImage(
                    ws.metadata_path().display().to_string(),
                ));
            };
            format!("oci://{image}@{digest}")
        }
        (None, None) => return Err(DeployError::NoStorageUri),
    };
    match uri.starts_with("oci://") {
        true => Ok(uri),
        false => Err(DeployError::NotOci(uri)),
    }
}

/// The manifest as YAML, as `--dry-run` prints it.
pub fn manifest_yaml(spec: &ServeSpec) -> String {
    serde_yaml_ng::to_string(&inference_service(spec)).expect("a JSON value is always YAML")
}
