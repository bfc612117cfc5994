//! The parallel tree walk: every directory is read through a descriptor opened relative to its
//! parent, and its entries are handed to rayon, so wide and deep trees both use every thread.

use std::ffi::{CStr, CString, OsStr};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode};
use rayon::prelude::*;

use crate::entry::{apply, Target};
use crate::policy::{Change, Kind, Policy};

/// Counts shared by all walker threads.
#[derive(Debug, Default)]
pub struct Stats {
    pub scanned: AtomicU64,
    pub changed: AtomicU64,
    pub errors: AtomicU64,
}

/// Walks one tree and brings every entry in line with `policy`.
pub struct Walker<'a> {
    pub policy: Policy,
    pub dry_run: bool,
    pub stats: &'a Stats,
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

impl Walker<'_> {
    /// Walks the tree below the open directory `root`, `root` included.
    pub fn walk(&self, root: OwnedFd, root_path: &Path) {
        match fstat(&root) {
            Ok(st) => self.visit_dir(root, &st, root_path),
            Err(e) => self.error(root_path, "stat", e),
        }
    }

    fn visit_dir(&self, fd: OwnedFd, st: &FileStat, path: &Path) {
        self.fix(&Target::Dir(&fd), Kind::Dir, st, path);
        let names = match list_names(&fd) {
            Ok(names) => names,
            Err(e) => return self.error(path, "read directory", e),
        };
        names
            .par_iter()
            .for_each(|name| self.visit_entry(&fd, path, name));
    }

    fn visit_entry(&self, parent: &OwnedFd, parent_path: &Path, name: &CStr) {
        let path = parent_path.join(OsStr::from_bytes(name.to_bytes()));
        let st = match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return, // removed since the directory was read
            Err(e) => return self.error(&path, "stat", e),
        };
        match Kind::from_mode(st.st_mode) {
            Kind::Dir => match openat(parent, name, DIR_FLAGS, Mode::empty()) {
                // Stat again through the descriptor: the name may have been replaced meanwhile.
                Ok(fd) => match fstat(&fd) {
                    Ok(st) => self.visit_dir(fd, &st, &path),
                    Err(e) => self.error(&path, "stat", e),
                },
                Err(Errno::ENOENT) => {}
                Err(e) => self.error(&path, "open directory", e),
            },
            kind => self.fix(&Target::Entry { parent, name }, kind, &st, &path),
        }
    }

    fn fix(&self, target: &Target<'_>, kind: Kind, st: &FileStat, path: &Path) {
        self.stats.scanned.fetch_add(1, Relaxed);
        let perm = st.st_mode & 0o7777;
        let change = self.policy.change_for(kind, perm, st.st_gid);
        if change.is_empty() {
            return;
        }
        let what = describe(&change, perm, st.st_gid);
        if self.dry_run {
            tracing::info!(path = %path.display(), "would change {what}");
        } else if let Err(e) = apply(target, change) {
            return self.error(path, "change", e);
        } else {
            tracing::debug!(path = %path.display(), "changed {what}");
        }
        self.stats.changed.fetch_add(1, Relaxed);
    }

    fn error(&self, path: &Path, action: &str, errno: Errno) {
        self.stats.errors.fetch_add(1, Relaxed);
        tracing::warn!(path = %path.display(), "cannot {action}: {}", errno.desc());
    }
}

fn list_names(dir: &OwnedFd) -> nix::Result<Vec<CString>> {
    // A second descriptor for reading, so `dir` stays usable for the *at() calls meanwhile.
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut reader = Dir::openat(dir, c".", flags, Mode::empty())?;
    let mut names = Vec::new();
    for entry in reader.iter() {
        let name = entry?.file_name().to_owned();
        if name.as_c_str() != c"." && name.as_c_str() != c".." {
            names.push(name);
        }
    }
    Ok(names)
}

fn describe(change: &Change, perm: u32, gid: u32) -> String {
    let mode = change.mode.map(|m| format!("mode {perm:04o} -> {m:04o}"));
    let group = change.gid.map(|g| format!("group {gid} -> {g}"));
    [mode, group]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ")
}
