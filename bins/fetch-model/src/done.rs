//! Which files of the model directory are already right, so a rerun neither fetches nor
//! re-reads them: each file put in place is recorded with its size, mtime and hashes, and a
//! file on disk still matching its record (and the Hub's listing) is taken as done. A file
//! changed since (an edit, a truncation) no longer matches and is checked again by hashing.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use modelcar_shared::hub::RepoEntry;
use modelcar_shared::state_file;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneRecord {
    pub size: u64,
    pub mtime_ns: i128,
    /// What the Hub listed (LFS sha256, or git blob id): a new revision changes it.
    pub hub_id: String,
    pub sha256: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct DoneFile {
    #[serde(default)]
    files: BTreeMap<String, DoneRecord>,
}

pub struct DoneFiles {
    path: PathBuf,
    files: BTreeMap<String, DoneRecord>,
}

impl DoneFiles {
    pub fn load(path: PathBuf) -> Self {
        let file: DoneFile = state_file::load(&path);
        Self {
            path,
            files: file.files,
        }
    }

    /// The sha256 of `entry` if the file at `on_disk` is the one recorded for it.
    pub fn sha256_if_done(&self, entry: &RepoEntry, on_disk: &Path) -> Option<String> {
        let record = self.files.get(&entry.path)?;
        let current = stamp(on_disk)?;
        (record.size == entry.size
            && current == (record.size, record.mtime_ns)
            && record.hub_id == hub_id(entry))
        .then(|| record.sha256.clone())
    }

    /// Records a file just put in place at `on_disk`.
    pub fn record(&self, entry: &RepoEntry, on_disk: &Path, sha256: &str) -> std::io::Result<()> {
        let Some((size, mtime_ns)) = stamp(on_disk) else {
            return Ok(());
        };
        let record = DoneRecord {
            size,
            mtime_ns,
            hub_id: hub_id(entry),
            sha256: sha256.into(),
        };
        state_file::update(&self.path, |file: &mut DoneFile| {
            file.files.insert(entry.path.clone(), record);
        })
    }
}

fn hub_id(entry: &RepoEntry) -> String {
    entry
        .lfs_sha256
        .clone()
        .unwrap_or_else(|| entry.oid.clone())
}

fn stamp(path: &Path) -> Option<(u64, i128)> {
    let meta = std::fs::metadata(path).ok()?;
    let mtime_ns = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
    Some((meta.len(), mtime_ns))
}
