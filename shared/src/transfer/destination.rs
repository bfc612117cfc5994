//! Where an image goes: a registry repository, or an OCI image layout on disk
//! (`oci:DIR[:TAG]`). Both take blobs as chunk streams and commit them under their digest
//! only once every byte has been hashed.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::atomic_file::write_atomic;
use crate::oci::{Descriptor, ImageIndex, ANNOTATION_REF_NAME, OCI_INDEX};
use crate::registry::{ConnectOptions, Reference, RegistryClient, RegistryError, UploadSession};

use super::chunks::{body_of, Chunk};

/// The DEST argument, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestSpec {
    Registry(Reference),
    Layout { dir: PathBuf, tag: String },
}

impl DestSpec {
    pub fn parse(s: &str) -> Result<Self, crate::registry::ReferenceError> {
        match s.strip_prefix("oci:") {
            Some(rest) => {
                // The tag follows the last ':' unless that ':' is part of the directory path.
                let (dir, tag) = match rest.rsplit_once(':') {
                    Some((dir, tag)) if !tag.contains('/') && !tag.is_empty() => (dir, tag),
                    _ => (rest, "latest"),
                };
                Ok(Self::Layout {
                    dir: dir.into(),
                    tag: tag.into(),
                })
            }
            None => Reference::parse(s).map(Self::Registry),
        }
    }

    /// How results name the image: `registry/repo:tag`, or `oci:DIR:TAG`.
    pub fn display(&self) -> String {
        match self {
            Self::Registry(r) => r.to_string(),
            Self::Layout { dir, tag } => format!("oci:{}:{tag}", dir.display()),
        }
    }

    pub fn tag(&self) -> String {
        match self {
            Self::Registry(r) => r.tag.clone().unwrap_or_else(|| "latest".into()),
            Self::Layout { tag, .. } => tag.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DestError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("cannot write {path}: {source}")]
    Layout {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl DestError {
    /// Whether a fresh attempt at the same blob may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Registry(e) => e.is_transient(),
            Self::Layout { .. } => false,
        }
    }
}

pub enum Destination {
    Registry(RegistryClient),
    Layout(OciLayout),
}

/// A blob whose bytes have all been received but which is not yet committed.
pub enum Pending {
    Upload(UploadSession),
    File(tempfile::NamedTempFile),
}

impl Destination {
    pub fn open(
        spec: &DestSpec,
        mount_from: &[String],
        connect: &ConnectOptions,
    ) -> Result<Self, DestError> {
        match spec {
            DestSpec::Registry(reference) => Ok(Self::Registry(RegistryClient::for_push(
                reference, mount_from, connect,
            )?)),
            DestSpec::Layout { dir, .. } => Ok(Self::Layout(OciLayout::create(dir)?)),
        }
    }

    pub async fn has_blob(&self, digest: &str) -> Result<bool, DestError> {
        match self {
            Self::Registry(client) => Ok(client.blob_size(digest).await?.is_some()),
            Self::Layout(layout) => Ok(layout.blob_path(digest).is_file()),
        }
    }

    /// Opens a place for a new blob: an upload session, or a temp file beside the blobs.
    pub async fn start(&self) -> Result<Pending, DestError> {
        match self {
            Self::Registry(client) => Ok(Pending::Upload(client.start_upload().await?)),
            Self::Layout(layout) => layout.start_file().map(Pending::File),
        }
    }

    /// Receives a blob's chunks into `pending` until the producer is done.
    pub async fn receive(
        &self,
        pending: &mut Pending,
        mut chunks: mpsc::Receiver<Chunk>,
    ) -> Result<(), DestError> {
        match (self, pending) {
            (Self::Registry(client), Pending::Upload(session)) => {
                while let Some(chunk) = chunks.recv().await {
                    let len = chunk.len;
                    client.upload_chunk(session, body_of(chunk), len).await?;
                }
                Ok(())
            }
            (Self::Layout(layout), Pending::File(file)) => layout.write_chunks(file, chunks).await,
            _ => unreachable!("a pending blob is received where it was started"),
        }
    }

    /// How many bytes of `pending` the destination holds after a failure, so the blob can go
    /// on from there. `None`: start it again (the registry forgot the session; a file on disk
    /// is simply rewritten).
    pub async fn resume_offset(&self, pending: &mut Pending) -> Result<Option<u64>, DestError> {
        match (self, pending) {
            (Self::Registry(client), Pending::Upload(session)) => {
                Ok(client.upload_offset(session).await?)
            }
            _ => Ok(None),
        }
    }

    /// Makes a received blob available under `digest` (which the caller computed).
    pub async fn commit(&self, pending: Pending, digest: &str) -> Result<(), DestError> {
        match (self, pending) {
            (Self::Registry(client), Pending::Upload(session)) => {
                Ok(client.finish_upload(&session, digest).await?)
            }
            (Self::Layout(layout), Pending::File(file)) => layout.commit(file, digest),
            _ => unreachable!("a pending blob is committed where it was received"),
        }
    }

    pub async fn put_blob(&self, digest: &str, bytes: Bytes) -> Result<(), DestError> {
        if self.has_blob(digest).await? {
            return Ok(());
        }
        match self {
            Self::Registry(client) => Ok(client.upload_bytes(bytes, digest).await?),
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
            Self::Registry(client) => {
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

/// An OCI image layout directory (image-spec `image-layout.md`).
pub struct OciLayout {
    dir: PathBuf,
}

impl OciLayout {
    fn create(dir: &Path) -> Result<Self, DestError> {
        let layout = Self { dir: dir.into() };
        let blobs = dir.join("blobs/sha256");
        crate::perms::create_shared_dir_all(&blobs).map_err(|source| DestError::Layout {
            path: blobs,
            source,
        })?;
        let marker = dir.join("oci-layout");
        if !marker.is_file() {
            layout.write_file(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        Ok(layout)
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.dir.join("blobs/sha256").join(hex)
    }

    fn write_file(&self, path: &Path, bytes: &[u8]) -> Result<(), DestError> {
        write_atomic(path, bytes).map_err(|source| DestError::Layout {
            path: path.into(),
            source,
        })
    }

    /// A temp file beside the blobs: renamed into place on commit, removed if anything fails,
    /// so the layout never holds a partial blob.
    fn start_file(&self) -> Result<tempfile::NamedTempFile, DestError> {
        let dir = self.dir.join("blobs/sha256");
        tempfile::Builder::new()
            .prefix(".partial-")
            .tempfile_in(&dir)
            .map_err(|source| DestError::Layout { path: dir, source })
    }

    async fn write_chunks(
        &self,
        temp: &tempfile::NamedTempFile,
        mut chunks: mpsc::Receiver<Chunk>,
    ) -> Result<(), DestError> {
        let error = |source| DestError::Layout {
            path: temp.path().to_path_buf(),
            source,
        };
        let mut file = tokio::fs::File::from_std(temp.as_file().try_clone().map_err(error)?);
        while let Some(mut chunk) = chunks.recv().await {
            while let Some(piece) = chunk.pieces.recv().await {
                file.write_all(&piece.map_err(error)?)
                    .await
                    .map_err(error)?;
            }
        }
        file.flush().await.map_err(error)?;
        file.sync_all().await.map_err(error)
    }

    fn commit(&self, temp: tempfile::NamedTempFile, digest: &str) -> Result<(), DestError> {
        let path = self.blob_path(digest);
        crate::perms::set_shared_file_mode(temp.as_file()).map_err(|source| DestError::Layout {
            path: path.clone(),
            source,
        })?;
        temp.persist(&path).map_err(|e| DestError::Layout {
            path,
            source: e.error,
        })?;
        Ok(())
    }

    /// Points `tag` at `manifest` in index.json, replacing what the tag named before.
    fn set_tag(&self, tag: &str, manifest: &Descriptor) -> Result<(), DestError> {
        let path = self.dir.join("index.json");
        let layout_error = |source| DestError::Layout {
            path: path.clone(),
            source,
        };
        let mut index = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<ImageIndex>(&bytes).map_err(|e| {
                layout_error(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ImageIndex {
                schema_version: 2,
                media_type: Some(OCI_INDEX.into()),
                manifests: Vec::new(),
                annotations: Default::default(),
                extra: Default::default(),
            },
            Err(e) => return Err(layout_error(e)),
        };
        index
            .manifests
            .retain(|m| m.annotations.get(ANNOTATION_REF_NAME).map(String::as_str) != Some(tag));
        let mut entry = manifest.clone();
        entry
            .annotations
            .insert(ANNOTATION_REF_NAME.into(), tag.into());
        index.manifests.push(entry);
        let bytes = serde_json::to_vec(&index).expect("an index always serializes");
        self.write_file(&path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dest_forms() {
        assert_eq!(
            DestSpec::parse("oci:./out:v1").unwrap(),
            DestSpec::Layout {
                dir: "./out".into(),
                tag: "v1".into()
            }
        );
        assert_eq!(
            DestSpec::parse("oci:/tmp/a:b/c").unwrap(),
            DestSpec::Layout {
                dir: "/tmp/a:b/c".into(),
                tag: "latest".into()
            }
        );
        let DestSpec::Registry(r) = DestSpec::parse("docker://127.0.0.1:5000/m:t").unwrap() else {
            panic!()
        };
        assert_eq!(r.tag.as_deref(), Some("t"));
        assert!(DestSpec::parse("127.0.0.1:5000/Bad").is_err());
    }
}
