//! The open-uploads log (`<ws>/.modelcar/uploads.json`): for each blob upload in progress, the
//! registry's upload URL and the sha256 state at the last byte the registry confirmed. A rerun
//! after a kill asks the registry how far that upload got and goes on from there instead of
//! from byte 0. Like the digest cache it holds only shortcuts: losing it costs a re-upload.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::checkpoint::Checkpoint;
use crate::causes::ErrorCauses;
use crate::state_file;
use crate::workspace::Workspace;

/// Which upload: a blob (by what it is made of) going to one repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadKey {
    pub registry: String,
    pub repository: String,
    /// What the bytes are: a source digest (mirror), or a hash of the layer's inputs
    /// (build-push), since its digest is only known at the end.
    pub blob: String,
}

/// An upload in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    #[serde(flatten)]
    pub key: UploadKey,
    pub size: u64,
    /// The upload URL the registry last gave.
    pub location: String,
    /// The last byte offset the registry confirmed, and the sha256 state over the bytes
    /// before it (empty for a blob that is not hashed here: see `DigestCheck`).
    pub offset: u64,
    pub sha256_state: String,
    /// Older points, newest first: the registry may hold fewer bytes than the newest point
    /// (what was in flight when the run was killed), and the hash must start at or before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<SavedPoint>,
}

/// A hash state at a byte offset, as the file keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedPoint {
    pub offset: u64,
    pub sha256_state: String,
}

impl UploadRecord {
    /// Every sound point the record holds, newest first.
    pub fn checkpoints(&self) -> Vec<Checkpoint> {
        let newest = std::iter::once((self.offset, &self.sha256_state));
        let earlier = self.earlier.iter().map(|p| (p.offset, &p.sha256_state));
        newest
            .chain(earlier)
            .filter_map(|(offset, state)| Checkpoint::decode(offset, state))
            .collect()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct UploadsFile {
    #[serde(default)]
    uploads: Vec<UploadRecord>,
}

/// The log, or none (then nothing survives the process, and in-run resume still works).
#[derive(Debug, Clone, Default)]
pub struct UploadLog {
    path: Option<PathBuf>,
}

impl UploadLog {
    pub fn at(path: PathBuf) -> Self {
        Self { path: Some(path) }
    }

    pub fn disabled() -> Self {
        Self { path: None }
    }

    /// `<ws>/.modelcar/uploads.json`, or `~/.cache/modelcar/uploads.json` without a workspace.
    /// Where that cannot be created the log is off (with a warning): it only saves time.
    pub fn default_for(workspace: Option<&Workspace>) -> Self {
        match state_file::location(workspace, "uploads.json") {
            Ok(Some(path)) => Self::at(path),
            Ok(None) => Self::disabled(),
            Err(e) => {
                tracing::warn!(
                    "{}: an interrupted upload will start again from byte 0",
                    e.causes()
                );
                Self::disabled()
            }
        }
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn find(&self, key: &UploadKey) -> Option<UploadRecord> {
        let path = self.path.as_deref()?;
        let file: UploadsFile = state_file::load(path);
        file.uploads.into_iter().find(|r| &r.key == key)
    }

    /// Records (or replaces) the state of an upload. A failure to write is only a warning: the
    /// upload itself goes on, a rerun just has less to start from.
    pub fn save(&self, record: UploadRecord) {
        self.change(|uploads| {
            uploads.retain(|r| r.key != record.key);
            uploads.push(record);
        });
    }

    /// Drops an upload that finished, or that the registry no longer has.
    pub fn forget(&self, key: &UploadKey) {
        self.change(|uploads| uploads.retain(|r| &r.key != key));
    }

    fn change(&self, f: impl FnOnce(&mut Vec<UploadRecord>)) {
        let Some(path) = &self.path else { return };
        if let Err(e) = state_file::update(path, |file: &mut UploadsFile| f(&mut file.uploads)) {
            tracing::warn!(path = %path.display(), "cannot update the uploads log: {}", e.causes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(blob: &str) -> UploadKey {
        UploadKey {
            registry: "r".into(),
            repository: "ns/m".into(),
            blob: blob.into(),
        }
    }

    #[test]
    fn records_are_saved_replaced_and_forgotten() {
        let tmp = tempfile::tempdir().unwrap();
        let log = UploadLog::at(tmp.path().join("uploads.json"));
        let mut at = Checkpoint::start();
        at.update(b"hello");
        let record = UploadRecord {
            key: key("a"),
            size: 10,
            location: "http://r/v2/ns/m/blobs/uploads/1".into(),
            offset: 5,
            sha256_state: at.encode_state(),
            earlier: Vec::new(),
        };
        log.save(record.clone());
        log.save(UploadRecord {
            key: key("b"),
            ..record.clone()
        });
        assert_eq!(log.find(&key("a")), Some(record.clone()));
        assert_eq!(log.find(&key("a")).unwrap().checkpoints()[0].offset(), 5);
        log.save(UploadRecord {
            offset: 0,
            sha256_state: Checkpoint::start().encode_state(),
            ..record
        });
        assert_eq!(log.find(&key("a")).unwrap().offset, 0);
        log.forget(&key("a"));
        assert!(log.find(&key("a")).is_none());
        assert!(log.find(&key("b")).is_some());
        assert!(UploadLog::disabled().find(&key("b")).is_none());
    }
}
