//! A blob in another registry (or repository) as a [`Producer`]: downloaded from the byte the
//! destinations need and checked against its descriptor's digest and size.

use super::chunks::ChunkWriter;
use super::download::produce_download;
use super::error::{DestError, SourceError, TransferError};
use super::producer::{DigestCheck, Producer};
use crate::digest::Digest;
use crate::oci::Descriptor;
use crate::progress::Progress;
use crate::registry::{RegistryClient, RegistryError};

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
        self.descriptor.digest.to_string()
    }

    fn checked_by_destination(&self) -> bool {
        self.check == DigestCheck::Destination
    }

    /// A destination refused the digest: the bytes the source registry served are wrong.
    fn blame(&self, error: TransferError) -> TransferError {
        match error {
            TransferError::Dest(DestError::Registry(RegistryError::DigestRefused {
                registry,
                ..
            })) => SourceError::DigestRefused {
                registry: self.client.reference().registry.clone(),
                digest: self.descriptor.digest.to_string(),
                destination: registry,
            }
            .into(),
            e => e,
        }
    }

    async fn produce(
        &self,
        writer: ChunkWriter,
        progress: &Progress,
    ) -> Result<Digest, TransferError> {
        let digest = &self.descriptor.digest;
        let (response, body_start) = self
            .client
            .get_blob(digest, writer.position())
            .await
            .map_err(DestError::from)?;
        let registry = &self.client.reference().registry;
        let expected = (digest, self.descriptor.size);
        Ok(produce_download(response, body_start, registry, expected, writer, progress).await?)
    }
}
