//! Producers: what fills a layer's chunk stream. A tar layer is read from the model files; a
//! base-image layer is read from another registry's response body. Either way the bytes are
//! hashed as they pass, and nothing is staged on disk.

use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;

use modelcar_shared::progress::Progress;

use crate::chunks::{ChunkWriter, PIECE};
use crate::tar_layout::{Segment, TarLayout};

static ZEROS: [u8; PIECE] = [0; PIECE];

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} changed while it was being read: it had {expected} bytes when planned, now it ends at {found}")]
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
    #[error("blob {expected} arrived with digest {actual}: corrupted in transit or at the source registry")]
    DigestMismatch { expected: String, actual: String },
    /// The consumer stopped taking bytes: its own error is the one to report.
    #[error("the upload stopped")]
    Abandoned,
}

/// Streams a tar layout into `writer`; returns the layer digest.
pub async fn produce_tar(
    layout: &TarLayout,
    mut writer: ChunkWriter,
    progress: &Progress,
) -> Result<String, SourceError> {
    for segment in &layout.segments {
        match segment {
            Segment::Bytes(bytes) => send(&mut writer, bytes.clone(), progress).await?,
            Segment::Zeros(n) => {
                let mut left = *n as usize;
                while left > 0 {
                    let take = left.min(PIECE);
                    send(&mut writer, Bytes::from_static(&ZEROS[..take]), progress).await?;
                    left -= take;
                }
            }
            Segment::File { path, size } => {
                if let Err(e) = stream_file(path, *size, &mut writer, progress).await {
                    writer.fail(std::io::Error::other(e.to_string())).await;
                    return Err(e);
                }
            }
        }
    }
    Ok(writer.finish())
}

async fn stream_file(
    path: &Path,
    size: u64,
    writer: &mut ChunkWriter,
    progress: &Progress,
) -> Result<(), SourceError> {
    let read_error = |source| SourceError::Read {
        path: path.into(),
        source,
    };
    let mut file = tokio::fs::File::open(path).await.map_err(read_error)?;
    file.set_max_buf_size(PIECE);
    let mut left = size;
    while left > 0 {
        let mut buf = BytesMut::with_capacity((left as usize).min(PIECE));
        let n = file.read_buf(&mut buf).await.map_err(read_error)?;
        if n == 0 {
            return Err(SourceError::Changed {
                path: path.into(),
                expected: size,
                found: size - left,
            });
        }
        left -= n as u64;
        send(writer, buf.freeze(), progress).await?;
    }
    Ok(())
}

/// Streams a blob download into `writer`, checking it against `expected` digest.
pub async fn produce_download(
    response: reqwest::Response,
    expected: &str,
    mut writer: ChunkWriter,
    progress: &Progress,
) -> Result<String, SourceError> {
    let mut body = response.bytes_stream();
    while let Some(piece) = body.next().await {
        match piece {
            Ok(bytes) => send(&mut writer, bytes, progress).await?,
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
            expected: expected.into(),
            actual,
        });
    }
    Ok(actual)
}

async fn send(
    writer: &mut ChunkWriter,
    bytes: Bytes,
    progress: &Progress,
) -> Result<(), SourceError> {
    let n = bytes.len() as u64;
    writer
        .write(bytes)
        .await
        .map_err(|_| SourceError::Abandoned)?;
    progress.add(n);
    Ok(())
}
