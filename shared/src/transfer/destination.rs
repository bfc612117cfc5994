//! Where an image goes, opened (see `dest_spec` for how it is named): a registry repository,
//! or an OCI image layout on disk. Both take blobs as chunk streams and commit them under
//! their digest only once every byte has been hashed.

use bytes::Bytes;
use tokio::sync::mpsc;

use super::dest_spec::DestSpec;
use crate::oci::Descriptor;
use crate::registry::{ConnectOptions, Reference, RegistryClient, UploadSession};

use super::chunks::{body_of, Chunk};
use super::error::DestError;
use super::method::{UploadMethod, UploadPlan};
use super::oci_layout::OciLayout;
use super::uploads::UploadKey;

pub enum Destination {
    /// A registry repository, and how blobs are uploaded to it this run.
    Registry(RegistryClient, UploadPlan),
    Layout(OciLayout),
}

/// A blob being received, not yet committed.
pub enum Pending {
    Upload(UploadSession),
    File(tempfile::NamedTempFile),
    /// A file blob moved into place: nothing is pending any more.
    Committed,
}

impl Pending {
    /// The smallest chunk the destination takes (0: any).
    pub fn min_chunk(&self) -> u64 {
        match self {
            Self::Upload(session) => session.min_chunk,
            Self::File(_) | Self::Committed => 0,
        }
    }

    /// The first byte the next request sends (where a failed request started).
    pub fn offset(&self) -> u64 {
        match self {
            Self::Upload(session) => session.offset,
            Self::File(_) | Self::Committed => 0,
        }
    }

    /// The next request sends from `offset` (what the registry takes, whatever it said).
    pub fn set_offset(&mut self, offset: u64) {
        if let Self::Upload(session) = self {
            session.offset = offset;
        }
    }

    /// The registry's URL for this upload, where there is one.
    pub fn location(&self) -> Option<&str> {
        match self {
            Self::Upload(session) => Some(session.location.as_str()),
            Self::File(_) | Self::Committed => None,
        }
    }
}

impl Destination {
    pub async fn open(
        spec: &DestSpec,
        mount_from: &[String],
        connect: &ConnectOptions,
        method: UploadMethod,
    ) -> Result<Self, DestError> {
        match spec {
            DestSpec::Registry(reference) => Ok(Self::registry(
                RegistryClient::for_push(reference, mount_from, connect).await?,
                method,
            )),
            DestSpec::Layout { dir, .. } => Ok(Self::Layout(OciLayout::create(dir)?)),
        }
    }

    /// A registry destination whose uploads start with `method`.
    pub fn registry(client: RegistryClient, method: UploadMethod) -> Self {
        Self::Registry(client, UploadPlan::new(method))
    }

    /// Whether the destination hashes what it receives and refuses a blob whose digest is not
    /// the one it is committed under (a registry does; a layout on disk takes ours).
    pub fn checks_digests(&self) -> bool {
        matches!(self, Self::Registry(..))
    }

    pub async fn has_blob(&self, digest: &str) -> Result<bool, DestError> {
        match self {
            Self::Registry(client, _) => Ok(client.blob_size(digest).await?.is_some()),
            Self::Layout(layout) => Ok(layout.blob_path(digest).is_file()),
        }
    }

    /// Opens a place for a new blob: an upload session, or a temp file beside the blobs.
    pub async fn start(&self) -> Result<Pending, DestError> {
        match self {
            Self::Registry(client, _) => Ok(Pending::Upload(client.start_upload().await?)),
            Self::Layout(layout) => layout.start_file().map(Pending::File),
        }
    }

    /// The uploads-log key of blob `blob` sent here; `None` for a layout on disk, whose
    /// partial files are not kept.
    pub fn upload_key(&self, blob: &str) -> Option<UploadKey> {
        match self {
            Self::Registry(client, _) => Some(UploadKey {
                registry: client.reference().registry.clone(),
                repository: client.reference().repository.clone(),
                blob: blob.into(),
            }),
            Self::Layout(_) => None,
        }
    }

    /// The upload an earlier run left at `location`; `None` if that is not where this
    /// registry places its uploads ([`RegistryClient::places_uploads_at`]).
    pub async fn reopen(&self, location: &str) -> Option<Pending> {
        let Self::Registry(client, _) = self else {
            return None;
        };
        let url: reqwest::Url = location.parse().ok()?;
        if !client.places_uploads_at(&url).await {
            tracing::warn!(registry = %client.reference().registry, location, "ignoring an upload record that points where the registry does not place its uploads");
            return None;
        }
        Some(Pending::Upload(UploadSession {
            location: url,
            offset: 0,
            min_chunk: 0,
        }))
    }

    /// Receives a blob's chunks into `pending` until the producer is done. `chunked`: every
    /// request says its range (else only one going on from an offset does). `moved` hears of
    /// each new URL the registry gives the upload.
    pub async fn receive(
        &self,
        pending: &mut Pending,
        mut chunks: mpsc::Receiver<Chunk>,
        chunked: bool,
        moved: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(), DestError> {
        match (self, pending) {
            (Self::Registry(client, _), Pending::Upload(session)) => {
                while let Some(chunk) = chunks.recv().await {
                    let (len, ranged) = (chunk.len, chunked || chunk.offset > 0);
                    client
                        .upload_chunk(session, body_of(chunk), len, ranged)
                        .await?;
                    moved(session.location.as_str());
                }
                Ok(())
            }
            (Self::Layout(layout), Pending::File(file)) => layout.write_chunks(file, chunks).await,
            _ => unreachable!("a pending blob is received where it was started"),
        }
    }

    /// The method the next upload starts with (a layout on disk takes no requests: it is
    /// written as one stream).
    pub fn method(&self) -> UploadMethod {
        match self {
            Self::Registry(_, plan) => plan.method(),
            Self::Layout(_) => UploadMethod::Streamed,
        }
    }

    /// The registry does not take the method asked for (`why`): one request per blob from now
    /// on.
    pub fn fall_back(&self, why: &str) -> UploadMethod {
        match self {
            Self::Registry(client, plan) => plan.fall_back(&client.reference().registry, why),
            Self::Layout(_) => UploadMethod::Streamed,
        }
    }

    /// How many bytes of `pending` the destination holds after a failure, so the blob can go
    /// on from there. `None`: start it again (the registry forgot the session; a file on disk
    /// is simply rewritten).
    pub async fn resume_offset(&self, pending: &mut Pending) -> Result<Option<u64>, DestError> {
        match (self, pending) {
            (Self::Registry(client, _), Pending::Upload(session)) => {
                Ok(client.upload_offset(session).await?)
            }
            _ => Ok(None),
        }
    }

    /// Makes a received blob available under `digest` (which the caller computed). A failed
    /// registry commit leaves `pending` as it was, to ask the registry about it.
    pub async fn commit(&self, pending: &mut Pending, digest: &str) -> Result<(), DestError> {
        match (self, pending) {
            (Self::Registry(client, _), Pending::Upload(session)) => {
                Ok(client.finish_upload(session, digest).await?)
            }
            (Self::Layout(layout), pending @ Pending::File(_)) => {
                let Pending::File(file) = std::mem::replace(pending, Pending::Committed) else {
                    unreachable!("matched as a file")
                };
                layout.commit(file, digest)
            }
            _ => unreachable!("a pending blob is committed where it was received, once"),
        }
    }

    /// Takes a blob linked from `from` (another repository of the same registry) without
    /// its bytes; `false` where that cannot be done, and it must be sent.
    pub async fn mount(&self, digest: &str, from: &Reference) -> Result<bool, DestError> {
        let Self::Registry(client, _) = self else {
            return Ok(false);
        };
        if !client.same_registry(from) {
            return Ok(false);
        }
        // Some(_): the registry opened an upload instead; a stream opens its own.
        let mounted = client.mount_blob(digest, &from.repository).await?.is_none();
        if mounted {
            tracing::debug!(digest, "mounted from {}", from.repository);
        }
        Ok(mounted)
    }

    /// Stores a few bytes under `digest` in one request.
    pub async fn put_bytes(&self, digest: &str, bytes: Bytes) -> Result<(), DestError> {
        match self {
            Self::Registry(client, _) => Ok(client.upload_bytes(bytes, digest).await?),
            Self::Layout(layout) => layout.write_file(&layout.blob_path(digest), &bytes),
        }
    }

    /// Stores the manifest and points `tag` at it.
    pub async fn put_manifest(
        &self,
        tag: &str,
        manifest: &Descriptor,
        bytes: Bytes,
    ) -> Result<(), DestError> {
        match self {
            Self::Registry(client, _) => {
                client
                    .put_manifest(tag, &manifest.media_type, bytes)
                    .await?;
                Ok(())
            }
            Self::Layout(layout) => {
                layout.write_file(&layout.blob_path(&manifest.digest), &bytes)?;
                layout.set_tag(tag, manifest)
            }
        }
    }
}
