//! Best-effort JSON state files: the digest cache and the open-uploads log. They hold no data of
//! their own, only shortcuts, so an unreadable one counts as empty (with a warning) rather than
//! stopping a push; updates are merged under a lock with what other processes wrote meanwhile.

use std::io;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::atomic_file::{write_atomic, FileLock};
use crate::Workspace;

/// Where the state file `name` lives: `<ws>/.modelcar/<name>`, or without a workspace
/// `$XDG_CACHE_HOME/modelcar/<name>` (`~/.cache/modelcar/<name>`); its directory is created.
/// `None` when there is neither a workspace nor a home directory.
pub fn location(workspace: Option<&Workspace>, name: &str) -> io::Result<Option<PathBuf>> {
    let path = match workspace {
        Some(ws) => ws.state_dir().join(name),
        None => {
            let env = |k| {
                std::env::var_os(k)
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            };
            match env("XDG_CACHE_HOME").or_else(|| env("HOME").map(|h| h.join(".cache"))) {
                Some(dir) => dir.join("modelcar").join(name),
                None => return Ok(None),
            }
        }
    };
    ensure_parent(&path)?;
    Ok(Some(path))
}

/// Creates the directory `path` goes in (group-shared, like every workspace directory).
pub fn ensure_parent(path: &Path) -> io::Result<()> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => crate::perms::create_shared_dir_all(dir)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display()))),
        None => Ok(()),
    }
}

/// The file's content; the default when it is missing, and also (with a warning) when it
/// cannot be read or parsed.
pub fn load<T: DeserializeOwned + Default>(path: &Path) -> T {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(path = %path.display(), "ignoring an unreadable state file: {e}");
            T::default()
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => T::default(),
        Err(e) => {
            tracing::warn!(path = %path.display(), "cannot read a state file: {e}");
            T::default()
        }
    }
}

/// Applies `change` to the file's current content under its lock and writes it back atomically.
pub fn update<T, F>(path: &Path, change: F) -> io::Result<()>
where
    T: DeserializeOwned + Serialize + Default,
    F: FnOnce(&mut T),
{
    let _lock = FileLock::exclusive(&FileLock::path_for(path))?;
    let mut content: T = load(path);
    change(&mut content);
    let bytes = serde_json::to_vec_pretty(&content).map_err(io::Error::other)?;
    write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn updates_merge_and_garbage_reads_as_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("state.json");
        update(&path, |m: &mut BTreeMap<String, u32>| {
            m.insert("a".into(), 1);
        })
        .unwrap();
        update(&path, |m: &mut BTreeMap<String, u32>| {
            m.insert("b".into(), 2);
        })
        .unwrap();
        let both: BTreeMap<String, u32> = load(&path);
        assert_eq!(both.len(), 2);
        std::fs::write(&path, "garbage").unwrap();
        assert!(load::<BTreeMap<String, u32>>(&path).is_empty());
    }

    #[test]
    fn location_is_in_the_workspace_state_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace::open(tmp.path()).unwrap();
        let path = location(Some(&ws), "uploads.json").unwrap().unwrap();
        assert_eq!(path, ws.uploads_path());
        assert!(path.parent().unwrap().is_dir());
    }
}
