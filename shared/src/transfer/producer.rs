//! What a blob's bytes come from ([`Producer`]), who checks them ([`DigestCheck`]) and what
//! became of a blob at one destination ([`BlobOutcome`]). A leaf of the transfer modules.

use std::future::Future;

use bytes::Bytes;

use super::chunks::ChunkWriter;
use super::error::{SourceError, TransferError};
use crate::digest::Digest;
use crate::progress::Progress;

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
    /// The bytes themselves when they are few and already in memory (a config): sent in one
    /// request each, never streamed or resumed, and not counted in the progress.
    fn in_memory(&self) -> Option<&Bytes> {
        None
    }
    /// What a failure to send the blob says about this source: a copied blob whose digest the
    /// destination refused is the source's fault, and the error should name the source.
    fn blame(&self, error: TransferError) -> TransferError {
        error
    }
    fn produce(
        &self,
        writer: ChunkWriter,
        progress: &Progress,
    ) -> impl Future<Output = Result<Digest, TransferError>>;
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

/// What became of one blob at one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobOutcome {
    pub digest: Digest,
    pub size: u64,
    /// Whether its bytes were uploaded (false: already there, or mounted).
    pub uploaded: bool,
}

impl BlobOutcome {
    /// A blob the destination had, or took by mount, without a byte sent.
    pub fn present(digest: &Digest, size: u64) -> Self {
        Self {
            digest: digest.clone(),
            size,
            uploaded: false,
        }
    }

    pub fn uploaded(digest: &Digest, size: u64) -> Self {
        Self {
            digest: digest.clone(),
            size,
            uploaded: true,
        }
    }
}

/// A few bytes already in memory (a config), under their digest.
pub struct InMemoryBlob {
    pub digest: Digest,
    pub bytes: Bytes,
}

impl Producer for InMemoryBlob {
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn id(&self) -> String {
        self.digest.to_string()
    }

    fn in_memory(&self) -> Option<&Bytes> {
        Some(&self.bytes)
    }

    async fn produce(
        &self,
        mut writer: ChunkWriter,
        _progress: &Progress,
    ) -> Result<Digest, TransferError> {
        let rest = self.bytes.slice(writer.position() as usize..);
        writer
            .write(rest)
            .await
            .map_err(|_| SourceError::Abandoned)?;
        Ok(writer.finish().unwrap_or_else(|| self.digest.clone()))
    }
}
