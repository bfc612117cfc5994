//! What can go wrong moving a blob: at its source ([`SourceError`]), at a destination
//! ([`DestError`]), and the two together ([`TransferError`]). A leaf: every transfer module
//! names these, and they name none of them.

use std::path::PathBuf;

use crate::registry::RegistryError;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} changed while it was being read: it had {expected} bytes when planned, now it \
         ends at {found}"
    )]
    Changed {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error(
        "{path} was replaced after the layers were planned (it is now a symlink or another \
         file): refused, so that no other file's bytes go into the layer; run again to plan anew"
    )]
    Replaced { path: PathBuf },
    #[error("download of blob {digest} broke off")]
    Download {
        digest: String,
        source: reqwest::Error,
    },
    #[error(
        "blob {expected} from {registry} arrived with digest {actual}: it is corrupt at the \
         source registry or was damaged in transit; nothing was committed"
    )]
    DigestMismatch {
        registry: String,
        expected: String,
        actual: String,
    },
    #[error(
        "blob {digest} from {registry} does not match its digest: {destination} hashed the bytes \
         it received and refused them; it is corrupt at the source registry or was damaged in \
         transit; nothing was committed"
    )]
    DigestRefused {
        registry: String,
        digest: String,
        destination: String,
    },
    #[error(
        "blob {digest} from {registry} goes on past its {size} bytes (the size its descriptor \
         gives): refused; the source registry serves other bytes than its manifest names"
    )]
    TooLong {
        registry: String,
        digest: String,
        size: u64,
    },
    #[error("{path} from the Hub: {detail}; its layer was not completed")]
    HubFile { path: String, detail: String },
    /// The consumer stopped taking bytes: its own error is the one to report.
    #[error("the upload stopped")]
    Abandoned,
}

#[derive(Debug, thiserror::Error)]
pub enum DestError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("cannot write {path}")]
    Layout {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl DestError {
    /// Whether a fresh attempt at the same blob may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Registry(e) => e.is_transient(),
            Self::Layout { .. } => false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(transparent)]
    Dest(#[from] DestError),
    #[error(transparent)]
    Source(#[from] SourceError),
}
