//! Changing one entry's group and mode without ever following a symlink.
//!
//! Directories are changed through their own open descriptor (opened with `O_NOFOLLOW`), every
//! other entry by name relative to its parent's descriptor with `AT_SYMLINK_NOFOLLOW`: a path
//! is never resolved again after the walk looked at it, so a symlink swapped in mid-walk cannot
//! redirect a change outside the tree.

use std::ffi::CStr;
use std::os::fd::OwnedFd;

use nix::fcntl::AtFlags;
use nix::sys::stat::{fchmod, fchmodat, FchmodatFlags, Mode};
use nix::unistd::{fchown, fchownat, Gid};

use crate::policy::Change;

/// Where a change is applied.
pub enum Target<'a> {
    /// An open directory.
    Dir(&'a OwnedFd),
    /// The entry `name` in the directory `parent`, never followed if it is a symlink.
    Entry { parent: &'a OwnedFd, name: &'a CStr },
}

/// Applies `change`, group first: chown() clears set-id bits, so the mode must come after it.
pub fn apply(target: &Target<'_>, change: Change) -> nix::Result<()> {
    if let Some(gid) = change.gid {
        let gid = Some(Gid::from_raw(gid));
        match *target {
            Target::Dir(fd) => fchown(fd, None, gid)?,
            Target::Entry { parent, name } => {
                fchownat(parent, name, None, gid, AtFlags::AT_SYMLINK_NOFOLLOW)?
            }
        }
    }
    if let Some(mode) = change.mode {
        let mode = Mode::from_bits_truncate(mode);
        match *target {
            Target::Dir(fd) => fchmod(fd, mode)?,
            Target::Entry { parent, name } => {
                fchmodat(parent, name, mode, FchmodatFlags::NoFollowSymlink)?
            }
        }
    }
    Ok(())
}
