//! The publish metadata file (`docs/design.md`, "The metadata file"): what each step learned, for the next step.
//!
//! One JSON object, `"schema": 1`. Steps add or update keys, never remove them; keys this
//! version does not know (written by a newer modelcar, or by hand) are kept as they are.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::atomic_file::{write_atomic, FileLock};

/// The schema version this code reads and writes.
pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    #[serde(default = "current_schema")]
    pub schema: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hf_repo: Option<String>,
    /// The resolved commit sha, never a branch name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hf_revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileRecord>,
    /// The pushed reference, e.g. `quay.io/org/model:tag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_at_utc: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<MirrorRecord>,
    /// The CNCF ModelPack artifact pushed beside the image, sharing its layer blobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modelpack: Option<ArtifactRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_model_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_artifact_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed: Option<Deployment>,
    /// Keys this version does not know, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    pub name: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactRecord {
    /// The reference, e.g. `quay.io/org/model:tag-modelpack`.
    pub image: String,
    pub digest: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MirrorRecord {
    pub image: String,
    pub digest: String,
    pub mirrored_at_utc: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub namespace: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_at_utc: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn current_schema() -> u32 {
    SCHEMA
}

impl Default for Metadata {
    fn default() -> Self {
        Self {
            schema: SCHEMA,
            hf_repo: None,
            hf_revision: None,
            model_dir: None,
            files: Vec::new(),
            image: None,
            image_digest: None,
            image_tag: None,
            pushed_at_utc: None,
            mirrors: Vec::new(),
            modelpack: None,
            registered_model_id: None,
            model_version_id: None,
            model_artifact_id: None,
            deployed: None,
            extra: Map::new(),
        }
    }
}

impl Metadata {
    /// Records a mirror, replacing an earlier record of the same image so reruns do not pile up.
    pub fn record_mirror(&mut self, mirror: MirrorRecord) {
        match self.mirrors.iter_mut().find(|m| m.image == mirror.image) {
            Some(existing) => *existing = mirror,
            None => self.mirrors.push(mirror),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("cannot {action} metadata file {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(
        "metadata file {path} is not valid JSON metadata; it is never reset \
         automatically: repair it, or remove it to start over"
    )]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "metadata file {path} has schema {found}, newer than the {SCHEMA} this modelcar \
         understands: use a newer modelcar"
    )]
    NewerSchema { path: PathBuf, found: u32 },
}

/// The metadata file at a path, read and updated safely across processes.
#[derive(Debug, Clone)]
pub struct MetadataFile {
    path: PathBuf,
}

impl MetadataFile {
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file; a missing file is empty metadata, a corrupt one is an error.
    pub fn read(&self) -> Result<Metadata, MetadataError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Metadata::default()),
            Err(source) => return Err(self.io_error("read", source)),
        };
        let meta: Metadata =
            serde_json::from_slice(&bytes).map_err(|source| MetadataError::Corrupt {
                path: self.path.clone(),
                source,
            })?;
        if meta.schema > SCHEMA {
            return Err(MetadataError::NewerSchema {
                path: self.path.clone(),
                found: meta.schema,
            });
        }
        Ok(meta)
    }

    /// Applies `change` under an exclusive lock and writes the result atomically, so concurrent
    /// updates from several processes are serialized and none is lost.
    pub fn update<T>(&self, change: impl FnOnce(&mut Metadata) -> T) -> Result<T, MetadataError> {
        let lock_path = FileLock::path_for(&self.path);
        let _lock = FileLock::exclusive(&lock_path).map_err(|e| self.io_error("lock", e))?;
        let mut meta = self.read()?;
        let out = change(&mut meta);
        meta.schema = SCHEMA;
        let mut bytes = serde_json::to_vec_pretty(&meta).expect("metadata always serializes");
        bytes.push(b'\n');
        write_atomic(&self.path, &bytes).map_err(|e| self.io_error("write", e))?;
        Ok(out)
    }

    fn io_error(&self, action: &'static str, source: io::Error) -> MetadataError {
        MetadataError::Io {
            action,
            path: self.path.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn file_in(dir: &Path) -> MetadataFile {
        MetadataFile::at(dir.join("metadata.json"))
    }

    #[test]
    fn missing_file_reads_as_empty_schema_1() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(file_in(tmp.path()).read().unwrap(), Metadata::default());
    }

    #[test]
    fn update_round_trips_typed_fields() {
        let tmp = tempfile::tempdir().unwrap();
        let file = file_in(tmp.path());
        file.update(|m| {
            m.image = Some("reg/x:1".into());
            m.record_mirror(MirrorRecord {
                image: "b/x".into(),
                digest: "sha256:1".into(),
                mirrored_at_utc: "t1".into(),
                extra: Map::new(),
            });
        })
        .unwrap();
        file.update(|m| {
            m.record_mirror(MirrorRecord {
                image: "b/x".into(),
                digest: "sha256:2".into(),
                mirrored_at_utc: "t2".into(),
                extra: Map::new(),
            })
        })
        .unwrap();
        let m = file.read().unwrap();
        assert_eq!(m.image.as_deref(), Some("reg/x:1"));
        assert_eq!(m.mirrors.len(), 1, "a rerun must replace, not append");
        assert_eq!(m.mirrors[0].digest, "sha256:2");
    }

    #[test]
    fn unknown_keys_survive_an_update_at_every_level() {
        let tmp = tempfile::tempdir().unwrap();
        let file = file_in(tmp.path());
        fs::write(
            file.path(),
            r#"{"schema":1,"future":{"a":[1,2]},"mirrors":[{"image":"i","digest":"d","mirrored_at_utc":"t","note":"n"}]}"#,
        )
        .unwrap();
        file.update(|m| m.image_tag = Some("v1".into())).unwrap();
        let v: Value = serde_json::from_slice(&fs::read(file.path()).unwrap()).unwrap();
        assert_eq!(v["future"]["a"][1], 2);
        assert_eq!(v["mirrors"][0]["note"], "n");
        assert_eq!(v["image_tag"], "v1");
    }

    #[test]
    fn corrupt_or_truncated_file_is_an_error_naming_the_path_and_is_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let file = file_in(tmp.path());
        for content in ["", "{\"schema\":1,\"image\":\"x", "[]", "not json"] {
            fs::write(file.path(), content).unwrap();
            let err = file.update(|m| m.image = Some("y".into())).unwrap_err();
            assert!(
                matches!(err, MetadataError::Corrupt { .. }),
                "{content:?}: {err}"
            );
            assert!(err.to_string().contains("metadata.json"), "{err}");
            assert_eq!(
                fs::read_to_string(file.path()).unwrap(),
                content,
                "file was reset"
            );
        }
    }

    #[test]
    fn newer_schema_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let file = file_in(tmp.path());
        fs::write(file.path(), r#"{"schema":2}"#).unwrap();
        assert!(matches!(
            file.read().unwrap_err(),
            MetadataError::NewerSchema { found: 2, .. }
        ));
    }
}
