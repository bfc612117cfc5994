//! An OCI image layout directory as a destination (image-spec `image-layout.md`): blobs land in
//! temp files beside the others and are renamed into place only under their verified digest.

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::chunks::Chunk;
use super::error::DestError;
use crate::atomic_file::write_atomic;
use crate::oci::{Descriptor, ImageIndex, ANNOTATION_REF_NAME, OCI_INDEX};

/// An OCI image layout directory (image-spec `image-layout.md`).
pub struct OciLayout {
    dir: PathBuf,
}

impl OciLayout {
    pub(super) fn create(dir: &Path) -> Result<Self, DestError> {
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

    pub(super) fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.dir.join("blobs/sha256").join(hex)
    }

    pub(super) fn write_file(&self, path: &Path, bytes: &[u8]) -> Result<(), DestError> {
        write_atomic(path, bytes).map_err(|source| DestError::Layout {
            path: path.into(),
            source,
        })
    }

    /// A temp file beside the blobs: renamed into place on commit, removed if anything fails,
    /// so the layout never holds a partial blob.
    pub(super) fn start_file(&self) -> Result<tempfile::NamedTempFile, DestError> {
        let dir = self.dir.join("blobs/sha256");
        tempfile::Builder::new()
            .prefix(".partial-")
            .tempfile_in(&dir)
            .map_err(|source| DestError::Layout { path: dir, source })
    }

    pub(super) async fn write_chunks(
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

    pub(super) fn commit(
        &self,
        temp: tempfile::NamedTempFile,
        digest: &str,
    ) -> Result<(), DestError> {
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
    pub(super) fn set_tag(&self, tag: &str, manifest: &Descriptor) -> Result<(), DestError> {
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
