//! The producer of a model layer: its tar stream, read from the model files into a chunk
//! stream (header bytes, file contents, padding), hashed as it passes, staged nowhere.

use std::path::Path;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;

use modelcar_shared::progress::Progress;
use modelcar_shared::transfer::chunks::{ChunkWriter, PIECE};
use modelcar_shared::transfer::SourceError;

use crate::tar_layout::{Segment, TarLayout};

static ZEROS: [u8; PIECE] = [0; PIECE];

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

async fn send(
    writer: &mut ChunkWriter,
    bytes: Bytes,
    progress: &Progress,
) -> Result<(), SourceError> {
    let sent = writer
        .write(bytes)
        .await
        .map_err(|_| SourceError::Abandoned)?;
    progress.add(sent);
    Ok(())
}
