//! Reading a blob from a registry into a chunk stream, checked against its digest.

use futures_util::StreamExt;

use super::chunks::ChunkWriter;
use super::error::SourceError;
use crate::digest::Digest;
use crate::progress::Progress;

/// Streams a blob download whose body starts at byte `body_start` of the blob into `writer`,
/// checking it against `expected` when the writer hashes, and its length against `size`
/// always; returns the digest. Bytes before the
/// writer's position (a registry that ignored a range request sends them) are dropped, not
/// hashed twice.
pub async fn produce_download(
    response: reqwest::Response,
    body_start: u64,
    registry: &str,
    (expected, size): (&Digest, u64),
    mut writer: ChunkWriter,
    progress: &Progress,
) -> Result<Digest, SourceError> {
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
                        digest: expected.to_string(),
                        size,
                    };
                    writer.fail(std::io::Error::other(error.to_string())).await;
                    return Err(error);
                }
                writer.write_counted(bytes, progress).await?;
            }
            Err(source) => {
                writer.fail(std::io::Error::other(source.to_string())).await;
                return Err(SourceError::Download {
                    digest: expected.to_string(),
                    source,
                });
            }
        }
    }
    // Not hashed here: the destination checks the bytes against `expected` on commit.
    let Some(actual) = writer.finish() else {
        return Ok(expected.clone());
    };
    if actual != *expected {
        return Err(SourceError::DigestMismatch {
            registry: registry.into(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(actual)
}
