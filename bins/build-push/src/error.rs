//! Why a build-push run failed.

use modelcar_shared::metadata::MetadataError;
use modelcar_shared::transfer::{DestError, TransferError};

use crate::base::BaseError;
use crate::plan::PlanError;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Hub(#[from] modelcar_shared::hub::HubError),
    #[error(transparent)]
    Base(#[from] BaseError),
    #[error(transparent)]
    Dest(#[from] DestError),
    #[error("layer {title}")]
    Layer {
        title: String,
        source: TransferError,
    },
    #[error("base layer {digest}")]
    BaseLayer {
        digest: String,
        source: TransferError,
    },
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error(transparent)]
    Workspace(#[from] modelcar_shared::workspace::WorkspaceError),
    #[error("cannot lay out the tar stream of {title}")]
    Tar {
        title: String,
        source: std::io::Error,
    },
}
