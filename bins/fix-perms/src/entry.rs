//! Changing one entry's group and mode without ever following a symlink.
//!
//! Directories are changed through their own open descriptor (opened with `O_NOFOLLOW`), every
//! other entry by name relative to its parent's descriptor with `AT_SYMLINK_NOFOLLOW`: a path
//! is never resolved again after the walk looked at it, so a symlink swapped in mid-walk cannot
//! redirect a change outside the tree.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::libc;
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
            Target::Entry { parent, name } => chmod_nofollow(parent, name, mode)?,
        }
    }
    Ok(())
}

/// `fchmodat2`'s number: new syscalls share one number on every architecture.
const SYS_FCHMODAT2: libc::c_long = 452;

/// Whether `fchmodat2` is worth trying: cleared on the first sign that the kernel (before 6.6)
/// or a seccomp profile does not offer it.
static FCHMODAT2_USABLE: AtomicBool = AtomicBool::new(true);

/// chmod of `name` in `parent`, refusing to follow a symlink. Linux 6.6+ does that in one
/// `fchmodat2` call; before, the C library emulates it with an O_PATH open, an fstat and a chmod
/// through /proc/self/fd, which makes the whole run several times slower.
fn chmod_nofollow(parent: &OwnedFd, name: &CStr, mode: Mode) -> nix::Result<()> {
    if FCHMODAT2_USABLE.load(Relaxed) {
        // SAFETY: `name` is NUL-terminated and outlives the call; `parent` is an open descriptor.
        let res = unsafe {
            libc::syscall(
                SYS_FCHMODAT2,
                parent.as_raw_fd(),
                name.as_ptr(),
                mode.bits(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        match Errno::result(res) {
            Ok(_) => return Ok(()),
            Err(Errno::ENOSYS) => FCHMODAT2_USABLE.store(false, Relaxed),
            // Seccomp profiles may answer EPERM for syscalls they do not know: if the fallback
            // succeeds where fchmodat2 was refused, stop trying it.
            Err(Errno::EPERM) => {
                fchmodat(parent, name, mode, FchmodatFlags::NoFollowSymlink)?;
                FCHMODAT2_USABLE.store(false, Relaxed);
                return Ok(());
            }
            Err(e) => return Err(e),
        }
    }
    fchmodat(parent, name, mode, FchmodatFlags::NoFollowSymlink)
}
