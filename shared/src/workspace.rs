//! The PVC layout (`docs/design.md`, "Workspace layout"): every path a step reads or writes under `<ws>`.

use std::io;
use std::path::{Path, PathBuf};

use crate::metadata::MetadataFile;
use crate::perms::create_shared_dir_all;

/// The environment variable behind every binary's `--workspace` flag.
pub const WORKSPACE_ENV: &str = "MODELCAR_WORKSPACE";

/// The name of modelcar's own state directory in the workspace, `<ws>/.modelcar`.
pub const STATE_DIR_NAME: &str = ".modelcar";

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error(
        "workspace {path} does not exist or is not a directory (--workspace / {WORKSPACE_ENV})"
    )]
    NotADirectory { path: PathBuf },
    #[error("invalid model name {name:?}: it must be one path component, not empty, '.' or '..'")]
    BadModelName { name: String },
    #[error("cannot create directory {path}")]
    CreateDir { path: PathBuf, source: io::Error },
}

/// A workspace root (the Tekton `source` workspace, a PVC) and the paths inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    root: PathBuf,
}

impl Workspace {
    /// Opens an existing workspace directory. It is never created: a typo in `--workspace`
    /// must not silently put a model on the node's own disk.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, WorkspaceError> {
        let root = root.into();
        if !root.is_dir() {
            return Err(WorkspaceError::NotADirectory { path: root });
        }
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<ws>/models`: one directory per model.
    pub fn models_dir(&self) -> PathBuf {
        self.root.join("models")
    }

    /// `<ws>/models/<name>`: the model files, exactly as in the Hub repo.
    pub fn model_dir(&self, name: &str) -> Result<PathBuf, WorkspaceError> {
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            return Err(WorkspaceError::BadModelName { name: name.into() });
        }
        Ok(self.models_dir().join(name))
    }

    /// `<ws>/.modelcar`: modelcar's own state.
    pub fn state_dir(&self) -> PathBuf {
        self.root.join(STATE_DIR_NAME)
    }

    /// `<ws>/.modelcar/metadata.json`: the publish metadata (`docs/design.md`, "The metadata file").
    pub fn metadata_path(&self) -> PathBuf {
        self.state_dir().join("metadata.json")
    }

    /// `<ws>/.modelcar/blobs.json`: file (path, size, mtime, inode) -> layer digest.
    pub fn blob_cache_path(&self) -> PathBuf {
        self.state_dir().join("blobs.json")
    }

    /// `<ws>/.modelcar/uploads.json`: open registry upload sessions, for byte-level resume.
    pub fn uploads_path(&self) -> PathBuf {
        self.state_dir().join("uploads.json")
    }

    /// `<ws>/.modelcar/hf-cache`: partial downloads, so a rerun resumes.
    pub fn hf_cache_dir(&self) -> PathBuf {
        self.state_dir().join("hf-cache")
    }

    /// The metadata file, with its state directory created (group-writable, setgid).
    pub fn metadata(&self) -> Result<MetadataFile, WorkspaceError> {
        self.create_dir(&self.state_dir())?;
        Ok(MetadataFile::at(self.metadata_path()))
    }

    /// Creates `path` (inside the workspace) and its parents as shared directories.
    pub fn create_dir(&self, path: &Path) -> Result<(), WorkspaceError> {
        create_shared_dir_all(path).map_err(|source| WorkspaceError::CreateDir {
            path: path.to_owned(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_design_table() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace::open(tmp.path()).unwrap();
        let r = tmp.path();
        assert_eq!(ws.model_dir("m").unwrap(), r.join("models/m"));
        assert_eq!(ws.metadata_path(), r.join(".modelcar/metadata.json"));
        assert_eq!(ws.blob_cache_path(), r.join(".modelcar/blobs.json"));
        assert_eq!(ws.hf_cache_dir(), r.join(".modelcar/hf-cache"));
    }

    #[test]
    fn missing_workspace_is_an_error_that_names_it() {
        let err = Workspace::open("/nonexistent/ws").unwrap_err().to_string();
        assert!(err.contains("/nonexistent/ws"), "{err}");
    }

    #[test]
    fn model_names_cannot_escape_models_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace::open(tmp.path()).unwrap();
        for bad in ["", ".", "..", "a/b", "../x"] {
            assert!(ws.model_dir(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn metadata_creates_the_state_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace::open(tmp.path()).unwrap();
        let file = ws.metadata().unwrap();
        assert!(ws.state_dir().is_dir());
        assert_eq!(file.path(), ws.metadata_path());
    }
}
