//! Sending one blob to a destination: skipped when it is there already, mounted when it is in
//! another repository of the same registry, otherwise streamed from its producer and committed
//! under the digest computed on the way. A transient failure restarts the blob (byte-level
//! resume is issue #12); a source that cannot be read fails at once.

use std::future::Future;
use std::time::Duration;

use super::chunks::ChunkWriter;
use super::destination::{DestError, Destination};
use super::download::{produce_download, SourceError};
use crate::oci::Descriptor;
use crate::progress::Progress;
use crate::registry::{RegistryClient, RegistryError};

const BLOB_ATTEMPTS: u32 = 4;

/// Where a blob's bytes come from: it fills a chunk stream and returns the digest it computed.
pub trait Producer {
    fn size(&self) -> u64;
    fn produce(
        &self,
        writer: ChunkWriter,
        progress: &Progress,
    ) -> impl Future<Output = Result<String, TransferError>>;
}

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(transparent)]
    Dest(#[from] DestError),
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// What happened to one blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub digest: String,
    pub size: u64,
    /// Whether its bytes were sent (false: already there, or mounted).
    pub sent: bool,
}

/// A blob in another registry (or repository), read with its descriptor's digest checked.
pub struct RemoteBlob<'a> {
    pub client: &'a RegistryClient,
    pub descriptor: &'a Descriptor,
}

impl Producer for RemoteBlob<'_> {
    fn size(&self) -> u64 {
        self.descriptor.size
    }

    async fn produce(
        &self,
        writer: ChunkWriter,
        progress: &Progress,
    ) -> Result<String, TransferError> {
        let digest = &self.descriptor.digest;
        let response = self
            .client
            .get_blob(digest)
            .await
            .map_err(DestError::from)?;
        let registry = &self.client.reference().registry;
        Ok(produce_download(response, registry, digest, writer, progress).await?)
    }
}

/// Copies a blob from `source`: skipped if present, mounted within one registry, else streamed.
pub async fn copy_blob(
    dest: &Destination,
    source: &RegistryClient,
    descriptor: &Descriptor,
    chunk_size: u64,
    progress: &Progress,
) -> Result<Sent, TransferError> {
    let skipped = Sent {
        digest: descriptor.digest.clone(),
        size: descriptor.size,
        sent: false,
    };
    if dest.has_blob(&descriptor.digest).await? {
        progress.adjust_total(-(descriptor.size as i64));
        return Ok(skipped);
    }
    if let Destination::Registry(client) = dest {
        if client.same_registry(source.reference()) {
            let from = &source.reference().repository;
            // Ok(Some(_)): the registry opened an upload instead; the stream below opens its own.
            let mounted = client
                .mount_blob(&descriptor.digest, from)
                .await
                .map_err(DestError::from)?;
            if mounted.is_none() {
                tracing::debug!(digest = %descriptor.digest, "mounted from {from}");
                progress.adjust_total(-(descriptor.size as i64));
                return Ok(skipped);
            }
        }
    }
    let producer = RemoteBlob {
        client: source,
        descriptor,
    };
    stream_blob(dest, &producer, chunk_size, progress).await
}

/// Streams `producer` into `dest`. After a transient failure (a dropped connection, a 5xx, a
/// token rejected mid-chunk) it asks the destination how far it got and goes on from there;
/// the producer runs from byte 0 again so the digest covers every byte, but what the
/// destination holds is not sent twice.
pub async fn stream_blob<P: Producer>(
    dest: &Destination,
    producer: &P,
    chunk_size: u64,
    progress: &Progress,
) -> Result<Sent, TransferError> {
    let size = producer.size();
    let mut pending = dest.start().await?;
    let mut send_from = 0;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (writer, chunks) = ChunkWriter::resuming(size, chunk_size, send_from);
        let (produced, received) = tokio::join!(
            producer.produce(writer, progress),
            dest.receive(&mut pending, chunks)
        );
        let failure = match (produced, received) {
            (Ok(digest), Ok(())) => {
                dest.commit(pending, &digest).await?;
                return Ok(Sent {
                    digest,
                    size,
                    sent: true,
                });
            }
            // The producer failed on its own (unreadable file, corrupt source): final.
            (Err(TransferError::Source(e)), _) if !matches!(e, SourceError::Abandoned) => {
                return Err(e.into())
            }
            (_, Err(e)) | (Err(TransferError::Dest(e)), Ok(())) => e,
            (Err(e), Ok(())) => return Err(e),
        };
        if !failure.is_retryable() || attempt == BLOB_ATTEMPTS {
            return Err(failure.into());
        }
        // A rejected token is replaced at once; only a struggling registry is given time.
        let pause = match &failure {
            DestError::Registry(RegistryError::TokenRejectedMidUpload { .. }) => Duration::ZERO,
            _ => Duration::from_secs(1 << attempt),
        };
        tracing::warn!(
            "{failure}; trying again in {pause:?} (attempt {} of {BLOB_ATTEMPTS})",
            attempt + 1
        );
        tokio::time::sleep(pause).await;
        match dest.resume_offset(&mut pending).await? {
            Some(offset) if offset <= size => {
                tracing::info!(
                    "the destination holds {offset} of {size} bytes: going on from there"
                );
                send_from = offset;
            }
            _ => {
                tracing::warn!(
                    "the destination no longer has this upload: sending the blob again from byte 0"
                );
                pending = dest.start().await?;
                send_from = 0;
            }
        }
    }
}
