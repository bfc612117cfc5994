//! Reading a blob from a registry into a chunk stream, checked against its digest.

use std::path::PathBuf;

use futures_util::StreamExt;

use super::chunks::ChunkWriter;
use crate::progress::Progress;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}: {source}")]
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
    #[error("download of blob {digest} broke off: {source}")]
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
    /// The consumer stopped taking bytes: its own error is the one to report.
    #[error("the upload stopped")]
    Abandoned,
}

/// Streams a blob download into `writer`, checking it against `expected`; returns the digest.
pub async fn produce_download(
    response: reqwest::Response,
    registry: &str,
    expected: &str,
    mut writer: ChunkWriter,
    progress: &Progress,
) -> Result<String, SourceError> {
    let mut body = response.bytes_stream();
    while let Some(piece) = body.next().await {
        match piece {
            Ok(bytes) => {
                let sent = writer
                    .write(bytes)
                    .await
                    .map_err(|_| SourceError::Abandoned)?;
                progress.add(sent);
            }
            Err(source) => {
                writer.fail(std::io::Error::other(source.to_string())).await;
                return Err(SourceError::Download {
                    digest: expected.into(),
                    source,
                });
            }
        }
    }
    let actual = writer.finish();
    if actual != expected {
        return Err(SourceError::DigestMismatch {
            registry: registry.into(),
            expected: expected.into(),
            actual,
        });
    }
    Ok(actual)
}
