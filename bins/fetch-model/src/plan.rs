//! What a run has to do: the selected files, split into those already in place (recorded, or
//! hashed and found right) and those to fetch (with whatever an earlier run left of them),
//! and whether the rest fits on the volume.

use std::path::{Path, PathBuf};

use modelcar_shared::hub::{self, FileHasher, Hashes, RepoEntry};
use modelcar_shared::metadata::FileRecord;
use modelcar_shared::perms::create_shared_dir_all;
use modelcar_shared::selection::{Rules, Skipped};

use crate::done::DoneFiles;
use crate::error::FetchError;
use crate::Target;

pub struct Todo {
    pub entry: RepoEntry,
    pub dest: PathBuf,
    pub partial: PathBuf,
    /// Bytes an earlier run left in the partial file.
    pub have: u64,
}

pub struct Plan {
    pub model_dir: PathBuf,
    pub done_files: DoneFiles,
    pub done: Vec<FileRecord>,
    pub todo: Vec<Todo>,
    pub skipped: Vec<Skipped>,
}

impl Plan {
    pub async fn make(
        target: &Target,
        entries: Vec<RepoEntry>,
        rules: &Rules,
    ) -> Result<Self, FetchError> {
        let (model_dir, partial_dir) = directories(target)?;
        let (taken, skipped) = hub::select(entries, rules);
        let done_files = DoneFiles::load(partial_dir.join("done.json"));
        let mut plan = Plan {
            model_dir,
            done_files,
            done: Vec::new(),
            todo: Vec::new(),
            skipped,
        };
        for entry in taken {
            let relative = safe_relative(&entry.path)?;
            let dest = plan.model_dir.join(&relative);
            match plan.sha256_in_place(&entry, &dest).await {
                Some(sha256) => plan.done.push(FileRecord {
                    name: entry.path.clone(),
                    size: entry.size,
                    sha256: Some(sha256),
                    extra: Default::default(),
                }),
                None => {
                    let partial = partial_dir.join(&relative);
                    let have = std::fs::metadata(&partial).map_or(0, |m| m.len().min(entry.size));
                    plan.todo.push(Todo {
                        entry,
                        dest,
                        partial,
                        have,
                    });
                }
            }
        }
        Ok(plan)
    }

    pub fn bytes_to_fetch(&self) -> u64 {
        self.todo.iter().map(|t| t.entry.size - t.have).sum()
    }

    /// Refuses to start a download that cannot fit, before a byte of it is written.
    pub fn check_space(&self, min_free: u64) -> Result<(), FetchError> {
        let need = self.bytes_to_fetch();
        let stats = nix::sys::statvfs::statvfs(&self.model_dir).map_err(|e| FetchError::Write {
            path: self.model_dir.clone(),
            source: e.into(),
        })?;
        let free = stats.blocks_available() as u64 * stats.fragment_size() as u64;
        match need.saturating_add(min_free) > free {
            true => Err(FetchError::NoSpace {
                dir: self.model_dir.clone(),
                need,
                reserve: min_free,
                free,
            }),
            false => Ok(()),
        }
    }

    /// The sha256 of the file at `dest` if it is `entry` already: recorded as put there by an
    /// earlier run and unchanged since, or else read and found to hash right.
    async fn sha256_in_place(&self, entry: &RepoEntry, dest: &Path) -> Option<String> {
        if let Some(sha256) = self.done_files.sha256_if_done(entry, dest) {
            return Some(sha256);
        }
        if std::fs::metadata(dest).ok()?.len() != entry.size {
            return None;
        }
        let (entry, path) = (entry.clone(), dest.to_path_buf());
        let hashed =
            tokio::task::spawn_blocking(move || hash_file(&entry, &path).map(|h| (entry, path, h)))
                .await
                .ok()??;
        let (entry, path, hashes) = hashed;
        match hashes.check(&entry) {
            Ok(()) => {
                let _ = self.done_files.record(&entry, &path, &hashes.sha256);
                Some(hashes.sha256)
            }
            Err(bad) => {
                tracing::warn!(
                    "{} in the model directory has {} {}, the Hub lists {}: fetching it again",
                    entry.path,
                    bad.what,
                    bad.actual,
                    bad.expected
                );
                None
            }
        }
    }
}

pub(crate) fn hash_file(entry: &RepoEntry, path: &Path) -> Option<Hashes> {
    let mut hasher = FileHasher::new(entry);
    hasher
        .update_from(&mut std::fs::File::open(path).ok()?)
        .ok()?;
    Some(hasher.finish())
}

/// The model directory and, on the same volume (so a finished file is renamed, not copied),
/// the directory of partial files and records.
fn directories(target: &Target) -> Result<(PathBuf, PathBuf), FetchError> {
    let (model_dir, partial_dir) = match target {
        Target::Workspace { ws, name } => (ws.model_dir(name)?, ws.hf_cache_dir().join(name)),
        Target::Dir(dir) => {
            let name = dir.file_name().unwrap_or_default().to_string_lossy();
            let parent = dir
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            (dir.clone(), parent.join(format!(".{name}.fetch-model")))
        }
    };
    for dir in [&model_dir, &partial_dir] {
        create_shared_dir_all(dir).map_err(|source| FetchError::Write {
            path: dir.clone(),
            source,
        })?;
    }
    Ok((model_dir, partial_dir))
}

/// A repo path as a relative path that stays inside the model directory.
fn safe_relative(path: &str) -> Result<PathBuf, FetchError> {
    match hub::is_safe_path(path) {
        true => Ok(PathBuf::from(path)),
        false => Err(FetchError::UnsafePath { path: path.into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_paths_cannot_leave_the_model_directory() {
        assert!(safe_relative("a/b.safetensors").is_ok());
        for bad in ["", "../x", "a/../../x", "/etc/passwd", "./a"] {
            assert!(safe_relative(bad).is_err(), "{bad}");
        }
    }
}
