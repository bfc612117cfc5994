//! fetch-model's failures, each naming the file, repo or flag at fault.

use std::path::PathBuf;

use modelcar_shared::hub::HubError;
use modelcar_shared::progress::human_bytes;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error(transparent)]
    Selection(#[from] modelcar_shared::selection::SelectionError),
    #[error(transparent)]
    Workspace(#[from] modelcar_shared::workspace::WorkspaceError),
    #[error(transparent)]
    Metadata(#[from] modelcar_shared::metadata::MetadataError),
    #[error(
        "not enough space on the filesystem of {}: the download needs {} more{}, and {} is free",
        dir.display(), human_bytes(*need), reserve_note(*reserve), human_bytes(*free)
    )]
    NoSpace {
        dir: PathBuf,
        need: u64,
        reserve: u64,
        free: u64,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} arrived with {what} {actual}, but the Hub lists {expected}; it was deleted, \
         not kept (fetched twice, wrong both times: the Hub or a proxy in between serves \
         something else)"
    )]
    Corrupt {
        path: String,
        what: &'static str,
        expected: String,
        actual: String,
    },
    #[error("the Hub lists a file {path:?} whose path would leave the model directory: refused")]
    UnsafePath { path: String },
    #[error("{path}: the Hub sent {got} bytes, but lists {size}")]
    WrongSize { path: String, got: u64, size: u64 },
    #[error(
        "the download of {path} broke off ({attempts} attempt(s), the last: {last}); what \
         arrived is kept: run again to go on from where it stopped"
    )]
    GaveUp {
        path: String,
        attempts: u32,
        last: String,
    },
}

fn reserve_note(reserve: u64) -> String {
    match reserve {
        0 => String::new(),
        n => format!(" plus --min-free {}", human_bytes(n)),
    }
}
