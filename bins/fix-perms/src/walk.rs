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

use crate::access::{Need, PodGroups};
use crate::entry::{apply, Target};
use crate::policy::{Change, Kind, Policy};

/// Counts shared by all walker threads.
#[derive(Debug, Default)]
pub struct Stats {
    pub scanned: AtomicU64,
    pub changed: AtomicU64,
    /// Entries left as they are: not this UID's to change, and usable as they are.
    pub skipped: AtomicU64,
    pub errors: AtomicU64,
}

/// Walks one tree and brings every entry in line with `policy`.
pub struct Walker<'a> {
    pub policy: Policy,
    pub dry_run: bool,
    pub stats: &'a Stats,
    /// The root being walked, to tell where an entry is (`lost+found`, `.modelcar`).
    pub root: &'a Path,
    pub pod: &'a PodGroups,
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
        self.fix(&Target::Dir(&fd), Kind::Dir, st, path, Need::Enter);
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
        let target = Target::Entry { parent, name };
        match Kind::from_mode(st.st_mode) {
            // The filesystem's (fsck puts recovered blocks there; on ext4 it is root's, 0700,
            // or 2770 after the kubelet's fsGroup pass), never the pipeline's: not walked.
            Kind::Dir if parent_path == self.root && name == c"lost+found" => {
                self.fix(&target, Kind::Dir, &st, &path, Need::Nothing)
            }
            Kind::Dir => match openat(parent, name, DIR_FLAGS, Mode::empty()) {
                // Stat again through the descriptor: the name may have been replaced meanwhile.
                Ok(fd) => match fstat(&fd) {
                    Ok(st) => self.visit_dir(fd, &st, &path),
                    Err(e) => self.error(&path, "stat", e),
                },
                Err(Errno::ENOENT) => {}
                Err(e) => self.error(&path, "open directory", e),
            },
            kind => {
                let below_root = path.strip_prefix(self.root).unwrap_or(&path);
                self.fix(&target, kind, &st, &path, Need::of(kind, below_root))
            }
        }
    }

    /// Brings one entry in line with the policy; what the tasks `need` of it decides whether
    /// an entry this UID may not change is an error.
    fn fix(&self, target: &Target<'_>, kind: Kind, st: &FileStat, path: &Path, need: Need) {
        self.stats.scanned.fetch_add(1, Relaxed);
        let perm = st.st_mode & 0o7777;
        let change = self.policy.change_for(kind, perm, st.st_gid);
        if change.is_empty() {
            return;
        }
        let what = describe(&change, perm, st.st_gid);
        let outcome = match self.dry_run {
            true if may_change(st) => Ok(()),
            true => Err(Errno::EPERM),
            false => apply(target, change),
        };
        match outcome {
            Ok(()) if self.dry_run => tracing::info!(path = %path.display(), "would change {what}"),
            Ok(()) => tracing::debug!(path = %path.display(), "changed {what}"),
            Err(e @ (Errno::EPERM | Errno::EACCES | Errno::EROFS)) => {
                return self.cannot_change(st, path, &what, need, e)
            }
            Err(e) => return self.error(path, "change", e),
        }
        self.stats.changed.fetch_add(1, Relaxed);
    }

    /// An entry this UID may not change: left as it is where the tasks can use it anyway,
    /// otherwise an error that names it.
    fn cannot_change(&self, st: &FileStat, path: &Path, what: &str, need: Need, errno: Errno) {
        let why = format!(
            "cannot change {what} ({}; owned by uid {})",
            errno.desc(),
            st.st_uid
        );
        if need.met_by(self.pod.access(st.st_mode & 0o7777, st.st_gid)) {
            self.stats.skipped.fetch_add(1, Relaxed);
            let fine = match need {
                Need::Nothing => "the pipeline does not use it".to_string(),
                need => format!("every task can already {need}"),
            };
            tracing::warn!(path = %path.display(), "left as it is: {why}, and {fine}");
        } else {
            self.stats.errors.fetch_add(1, Relaxed);
            tracing::error!(
                path = %path.display(),
                "{why}, and the pipeline's tasks cannot {need}: run fix-perms as its owner or root, or chmod it yourself"
            );
        }
    }

    fn error(&self, path: &Path, action: &str, errno: Errno) {
        self.stats.errors.fetch_add(1, Relaxed);
        tracing::warn!(path = %path.display(), "cannot {action}: {}", errno.desc());
    }
}

/// Whether this process may change an entry's mode and group: root, or its owner.
fn may_change(st: &FileStat) -> bool {
    let euid = nix::unistd::geteuid();
    euid.is_root() || euid.as_raw() == st.st_uid
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
