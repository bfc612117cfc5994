//! Crash-safe state files on a shared PVC: atomic replacement and an advisory lock.
//!
//! A reader must never see a half-written file, and two Tekton tasks that finish at the same
//! moment must not lose each other's update. Writes go to a temp file in the same directory,
//! are fsynced, then renamed over the target; read-modify-write cycles hold an exclusive
//! `flock` on a sibling lock file (never on the data file, which rename replaces).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::perms::set_shared_file_mode;

/// Replaces `path` with `bytes` atomically: readers see the old content or the new, never a mix.
/// On failure the temp file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent_dir(path);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    set_shared_file_mode(tmp.as_file())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename is durable only once the directory entry is.
    File::open(dir)?.sync_all()
}

/// An exclusive advisory lock, released when dropped.
#[derive(Debug)]
pub struct FileLock {
    _lock: Flock<File>,
}

impl FileLock {
    /// Blocks until the exclusive lock on `lock_path` is held, creating the file if needed.
    pub fn exclusive(lock_path: &Path) -> io::Result<Self> {
        let file = open_lock_file(lock_path)?;
        let lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| errno)?;
        Ok(Self { _lock: lock })
    }

    /// The exclusive lock on `lock_path` if no one else holds it now; `None` if someone does.
    pub fn try_exclusive(lock_path: &Path) -> io::Result<Option<Self>> {
        let file = open_lock_file(lock_path)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Some(Self { _lock: lock })),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, errno)) => Err(errno.into()),
        }
    }

    /// The lock file that guards `data_path`: the same name with `.lock` appended.
    pub fn path_for(data_path: &Path) -> PathBuf {
        let mut name = data_path.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }
}

/// Opens (or creates) a lock file, never through a symlink: on a group-writable PVC a link
/// planted there must not make a task create or open a file elsewhere.
fn open_lock_file(lock_path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(lock_path)
    {
        Ok(file) => {
            // Another UID must be able to open it too; only the creator may chmod, so ignore EPERM.
            let _ = set_shared_file_mode(&file);
            Ok(file)
        }
        // Created by another UID without group write: flock works on a read-only descriptor.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(lock_path),
        Err(e) => Err(e),
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn replaces_content_and_leaves_no_temp_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("state.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o664);
        let names: Vec<_> = fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "a temp file was left behind");
    }

    #[test]
    fn a_lock_file_is_never_opened_through_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let elsewhere = tmp.path().join("elsewhere");
        let lock = tmp.path().join("state.json.lock");
        std::os::unix::fs::symlink(&elsewhere, &lock).unwrap();
        assert!(FileLock::exclusive(&lock).is_err());
        assert!(!elsewhere.exists(), "the link's target was created");
    }

    #[test]
    fn a_held_lock_is_reported_not_waited_for() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.lock");
        let held = FileLock::try_exclusive(&path).unwrap();
        assert!(held.is_some());
        assert!(FileLock::try_exclusive(&path).unwrap().is_none());
        drop(held);
        assert!(FileLock::try_exclusive(&path).unwrap().is_some());
    }

    #[test]
    fn failed_write_leaves_target_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("missing-dir/state.json");
        assert!(write_atomic(&path, b"x").is_err());
        assert!(!path.exists());
    }

    #[test]
    fn lock_path_is_a_sibling() {
        let p = FileLock::path_for(Path::new("/ws/.modelcar/metadata.json"));
        assert_eq!(p, Path::new("/ws/.modelcar/metadata.json.lock"));
    }
}
