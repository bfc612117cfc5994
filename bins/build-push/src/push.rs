//! Sending one blob to a destination: skipped when it is there already, mounted when it is in
//! another repository of the same registry, otherwise streamed from its source and committed
//! under the digest computed on the way. A transient failure restarts the blob (byte-level
//! resume is issue #12); a file that cannot be read fails at once.

use std::time::Duration;

use modelcar_shared::oci::Descriptor;
use modelcar_shared::progress::Progress;
use modelcar_shared::registry::RegistryClient;

use crate::chunks::ChunkWriter;
use crate::destination::{DestError, Destination};
use crate::source::{produce_download, produce_tar, SourceError};
use crate::tar_layout::TarLayout;

const BLOB_ATTEMPTS: u32 = 4;

/// Where a blob's bytes come from.
pub enum BlobSource<'a> {
    /// A model layer, read from the files.
    Tar(&'a TarLayout),
    /// A base-image layer, read from the base's registry.
    Remote {
        client: &'a RegistryClient,
        descriptor: &'a Descriptor,
    },
}

impl BlobSource<'_> {
    fn size(&self) -> u64 {
        match self {
            BlobSource::Tar(layout) => layout.size,
            BlobSource::Remote { descriptor, .. } => descriptor.size,
        }
    }

    async fn produce(&self, writer: ChunkWriter, progress: &Progress) -> Result<String, PushError> {
        match self {
            BlobSource::Tar(layout) => Ok(produce_tar(layout, writer, progress).await?),
            BlobSource::Remote { client, descriptor } => {
                let response = client
                    .get_blob(&descriptor.digest)
                    .await
                    .map_err(|e| PushError::Dest(e.into()))?;
                Ok(produce_download(response, &descriptor.digest, writer, progress).await?)
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Dest(#[from] DestError),
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// What happened to one blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub digest: String,
    pub size: u64,
    /// Whether its bytes were sent (false: already there, or mounted).
    pub sent: bool,
}

/// Pushes a model layer; `known` is its digest from the cache, if any.
pub async fn push_layer(
    dest: &Destination,
    layout: &TarLayout,
    known: Option<&str>,
    chunk_size: u64,
    progress: &Progress,
) -> Result<Pushed, PushError> {
    if let Some(digest) = known {
        if dest.has_blob(digest).await? {
            progress.adjust_total(-(layout.size as i64));
            return Ok(Pushed {
                digest: digest.into(),
                size: layout.size,
                sent: false,
            });
        }
    }
    let pushed = stream_blob(dest, &BlobSource::Tar(layout), chunk_size, progress).await?;
    if let Some(known) = known.filter(|k| *k != pushed.digest) {
        tracing::warn!("a cached digest was stale ({known}, now {}): the file changed without a change of size, mtime or inode", pushed.digest);
    }
    Ok(pushed)
}

/// Copies a base-image layer: skipped if present, mounted within one registry, else streamed.
pub async fn copy_base_layer(
    dest: &Destination,
    base: &RegistryClient,
    descriptor: &Descriptor,
    chunk_size: u64,
    progress: &Progress,
) -> Result<Pushed, PushError> {
    let skipped = Pushed {
        digest: descriptor.digest.clone(),
        size: descriptor.size,
        sent: false,
    };
    if dest.has_blob(&descriptor.digest).await? {
        progress.adjust_total(-(descriptor.size as i64));
        return Ok(skipped);
    }
    if let Destination::Registry(client) = dest {
        if client.same_registry(base.reference()) {
            let from = &base.reference().repository;
            // Ok(Some(_)) means the registry opened an upload instead; the stream below uses its own.
            if client
                .mount_blob(&descriptor.digest, from)
                .await
                .map_err(DestError::from)?
                .is_none()
            {
                tracing::debug!(digest = %descriptor.digest, "mounted from {from}");
                progress.adjust_total(-(descriptor.size as i64));
                return Ok(skipped);
            }
        }
    }
    stream_blob(
        dest,
        &BlobSource::Remote {
            client: base,
            descriptor,
        },
        chunk_size,
        progress,
    )
    .await
}

async fn stream_blob(
    dest: &Destination,
    source: &BlobSource<'_>,
    chunk_size: u64,
    progress: &Progress,
) -> Result<Pushed, PushError> {
    let size = source.size();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (writer, chunks) = ChunkWriter::new(size, chunk_size);
        let (produced, received) =
            tokio::join!(source.produce(writer, progress), dest.receive(chunks));
        let failure = match (produced, received) {
            (Ok(digest), Ok(pending)) => {
                dest.commit(pending, &digest).await?;
                return Ok(Pushed {
                    digest,
                    size,
                    sent: true,
                });
            }
            // The reader failed on its own: a file problem, not worth retrying.
            (Err(PushError::Source(e)), _) if !matches!(e, SourceError::Abandoned) => {
                return Err(e.into())
            }
            (_, Err(e)) | (Err(PushError::Dest(e)), Ok(_)) => e,
            (Err(e), Ok(_)) => return Err(e),
        };
        if !failure.is_retryable() || attempt == BLOB_ATTEMPTS {
            return Err(failure.into());
        }
        let pause = Duration::from_secs(1 << attempt);
        tracing::warn!("{failure}; sending this blob again from its start in {pause:?} (attempt {} of {BLOB_ATTEMPTS})", attempt + 1);
        progress.adjust_total(size as i64);
        tokio::time::sleep(pause).await;
    }
}
