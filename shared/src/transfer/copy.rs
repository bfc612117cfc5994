//! Copying one blob between registries: skipped when the destination has it already, mounted
//! when it is in another repository of the same registry, otherwise streamed (see
//! [`stream_blob`]) and checked against its digest, by the destination registry as it commits
//! the blob, and here too when asked ([`DigestCheck`]).

use std::future::Future;

use super::chunks::ChunkWriter;
use super::destination::{DestError, Destination};
use super::download::{produce_download, SourceError};
use super::method::UploadMethod;
use super::stream::stream_blob;
use super::uploads::UploadLog;
use crate::oci::Descriptor;
use crate::progress::Progress;
use crate::registry::{RegistryClient, RegistryError};

/// Where a blob's bytes come from: it fills a chunk stream, starting at the writer's
/// position, and returns the digest it computed.
pub trait Producer {
    fn size(&self) -> u64;
    /// What the bytes are, stable across runs, for the uploads log.
    fn id(&self) -> String;
    /// Whether a destination registry may be left to check the bytes: their digest is known
    /// before they are read, so the registry can hash what it receives and refuse a mismatch
    /// on commit, and they need not be hashed here.
    fn checked_by_destination(&self) -> bool {
        false
    }
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

/// Who checks a copied blob against its digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestCheck {
    /// The destination registry, which hashes what it receives as it arrives and refuses a
    /// mismatch on commit (the distribution spec's DIGEST_INVALID), so nothing wrong is ever
    /// stored: hashing every byte a second time here would only cost CPU. mirror's default.
    Destination,
    /// Here as well, as the bytes stream: for a destination whose check one does not trust.
    /// A destination that is not a registry (an OCI layout) is always checked here.
    Local,
}

/// A blob in another registry (or repository), checked against its descriptor's digest.
pub struct RemoteBlob<'a> {
    pub client: &'a RegistryClient,
    pub descriptor: &'a Descriptor,
    pub check: DigestCheck,
}

impl Producer for RemoteBlob<'_> {
    fn size(&self) -> u64 {
        self.descriptor.size
    }

    fn id(&self) -> String {
        self.descriptor.digest.clone()
    }

    fn checked_by_destination(&self) -> bool {
        self.check == DigestCheck::Destination
    }

    async fn produce(
        &self,
        writer: ChunkWriter,
        progress: &Progress,
    ) -> Result<String, TransferError> {
        let digest = &self.descriptor.digest;
        let (response, body_start) = self
            .client
            .get_blob(digest, writer.position())
            .await
            .map_err(DestError::from)?;
        let registry = &self.client.reference().registry;
        let expected = (digest.as_str(), self.descriptor.size);
        Ok(produce_download(response, body_start, registry, expected, writer, progress).await?)
    }
}

/// Copies a blob from `source`: skipped if present, mounted within one registry, else streamed.
pub async fn copy_blob(
    dest: &Destination,
    source: &RegistryClient,
    descriptor: &Descriptor,
    check: DigestCheck,
    method: UploadMethod,
    uploads: &UploadLog,
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
        check,
    };
    let streamed = stream_blob(dest, &producer, method, uploads, progress).await;
    streamed.map_err(|e| match e {
        TransferError::Dest(DestError::Registry(RegistryError::DigestRefused {
            registry, ..
        })) => SourceError::DigestRefused {
            registry: source.reference().registry.clone(),
            digest: descriptor.digest.clone(),
            destination: registry,
        }
        .into(),
        e => e,
    })
}
