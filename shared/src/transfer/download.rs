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
    #[error(
        "{path} was replaced after the layers were planned (it is now a symlink or another \
         file): refused, so that no other file's bytes go into the layer; run again to plan anew"
    )]
    Replaced { path: PathBuf },
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

/// Streams a blob download whose body starts at byte `body_start` of the blob into `writer`,
/// checking it against `expected` when the writer hashes, and its length against `size`
/// always; returns the digest. Bytes before the
/// writer's position (a registry that ignored a range request sends them) are dropped, not
/// hashed twice.
pub async fn produce_download(
    response: reqwest::Response,
    body_start: u64,
    registry: &str,
    (expected, size): (&str, u64),
    mut writer: ChunkWriter,
    progress: &Progress,
) -> Result<String, SourceError> {
    let mut skip = writer.position().saturating_sub(body_start);
    let mut body = response.bytes_stream();
    while let Some(piece) = body.next().await {
        match piece {
            Ok(mut bytes) => {
                if skip > 0 {
                    let dropped = skip.min(bytes.len() as u64);
                    let _ = bytes.split_to(dropped as usize);
                    skip -= dropped;
                }
                if writer.position() + bytes.len() as u64 > size {
                    let error = SourceError::TooLong {
                        registry: registry.into(),
                        digest: expected.into(),
                        size,
                    };
                    writer.fail(std::io::Error::other(error.to_string())).await;
                    return Err(error);
                }
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
    // Not hashed here: the destination checks the bytes against `expected` on commit.
    let Some(actual) = writer.finish() else {
        return Ok(expected.into());
    };
    if actual != expected {
        return Err(SourceError::DigestMismatch {
            registry: registry.into(),
            expected: expected.into(),
            actual,
        });
    }
    Ok(actual)
}
