//! What can go wrong in a mirror run, naming the image or blob at fault.

use modelcar_shared::registry::RegistryError;
use modelcar_shared::transfer::TransferError;

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("cannot read source {image}")]
    Source {
        image: String,
        source: RegistryError,
    },
    #[error("source {image} served a manifest whose digest is {actual}: refusing to copy it")]
    ManifestDigest { image: String, actual: String },
    #[error("source {image} is an index with no manifest for --platform {platform} (it has: {available})")]
    NoPlatform {
        image: String,
        platform: String,
        available: String,
    },
    #[error("source {image}: {detail}")]
    Unsupported { image: String, detail: String },
    #[error("cannot write to {image}")]
    Dest {
        image: String,
        source: RegistryError,
    },
    #[error("copying blob {digest} to {image} (the destination tag was not written)")]
    Blob {
        image: String,
        digest: String,
        source: Box<TransferError>,
    },
    #[error(
        "{image} stored the manifest as {actual}, not {expected}: the copy is not byte for byte"
    )]
    DigestChanged {
        image: String,
        expected: String,
        actual: String,
    },
    #[error(transparent)]
    Metadata(#[from] modelcar_shared::metadata::MetadataError),
    #[error(transparent)]
    Workspace(#[from] modelcar_shared::workspace::WorkspaceError),
}
