//! The group-shared permission scheme of the PVC (`docs/design.md`, "Permissions").
//!
//! Tekton tasks run as different UIDs that share one group (the pod's fsGroup, or GID 0 on
//! OpenShift). Everything a step creates is therefore group-writable, and directories carry the
//! setgid bit so that files created in them inherit the directory's group, not the creator's.

use std::fs::{self, File, Permissions};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix::sys::stat::{umask, Mode};

/// Mode of every directory a step creates: rwxrwsr-x.
pub const SHARED_DIR_MODE: u32 = 0o2775;
/// Mode of every file a step creates: rw-rw-r--.
pub const SHARED_FILE_MODE: u32 = 0o664;
/// The process umask that keeps group write on whatever a library creates on our behalf.
pub const SHARED_UMASK: u32 = 0o002;

/// Sets the process umask to 002. Called once at start-up by every binary.
pub fn set_shared_umask() {
    umask(Mode::from_bits_truncate(SHARED_UMASK));
}

/// Creates `path` and its missing parents as shared directories (2775).
///
/// Directories that already exist are left as they are: repairing them is fix-perms' job, and a
/// step running as another UID could not chmod them anyway.
pub fn create_shared_dir_all(path: &Path) -> io::Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_shared_dir_all(parent)?;
    }
    match fs::create_dir(path) {
        // mkdir() masks the mode with the umask and may drop setgid: set it explicitly.
        Ok(()) => fs::set_permissions(path, Permissions::from_mode(SHARED_DIR_MODE)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match path.is_dir() {
            true => Ok(()), // created by a concurrent step
            false => Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} exists and is not a directory", path.display()),
            )),
        },
        Err(e) => Err(e),
    }
}

/// Gives a file the shared file mode (0664), whatever the umask was when it was created.
pub fn set_shared_file_mode(file: &File) -> io::Result<()> {
    file.set_permissions(Permissions::from_mode(SHARED_FILE_MODE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn created_dirs_are_setgid_and_group_writable_at_every_level() {
        let tmp = tempfile::tempdir().unwrap();
        let leaf = tmp.path().join("a/b/c");
        create_shared_dir_all(&leaf).unwrap();
        for dir in ["a", "a/b", "a/b/c"] {
            let mode = fs::metadata(tmp.path().join(dir)).unwrap().mode() & 0o7777;
            assert_eq!(mode, SHARED_DIR_MODE, "{dir} has mode {mode:o}");
        }
        // Idempotent on an existing tree.
        create_shared_dir_all(&leaf).unwrap();
    }

    #[test]
    fn a_file_in_the_way_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("f"), b"x").unwrap();
        let err = create_shared_dir_all(&tmp.path().join("f/sub")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotADirectory);
        assert!(
            err.to_string().contains("/f exists and is not a directory"),
            "{err}"
        );
    }
}
