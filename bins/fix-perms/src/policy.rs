//! What a tree entry should look like (`docs/design.md`, "Permissions"), as a pure function of what it is.

use modelcar_shared::perms::SHARED_DIR_MODE;
use nix::libc::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFSOCK};

/// The kinds of entry the policy tells apart, from `st_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    /// FIFOs and sockets: shared like files.
    Special,
    /// Character and block devices: never touched.
    Device,
}

impl Kind {
    pub fn from_mode(st_mode: u32) -> Self {
        match st_mode & S_IFMT {
            S_IFDIR => Kind::Dir,
            S_IFLNK => Kind::Symlink,
            S_IFCHR | S_IFBLK => Kind::Device,
            S_IFIFO | S_IFSOCK => Kind::Special,
            _ => Kind::File,
        }
    }
}

/// What to change on one entry; `None` where it is already right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Change {
    pub mode: Option<u32>,
    pub gid: Option<u32>,
}

impl Change {
    pub fn is_empty(&self) -> bool {
        self.mode.is_none() && self.gid.is_none()
    }
}

/// The target state: the group every entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub gid: u32,
}

impl Policy {
    /// The change that brings an entry of `kind`, permission bits `perm` (`st_mode & 0o7777`)
    /// and group `gid` in line with the policy.
    pub fn change_for(&self, kind: Kind, perm: u32, gid: u32) -> Change {
        let wanted_mode = match kind {
            Kind::Dir => Some(SHARED_DIR_MODE),
            // g+rw, keep the x bits; set-id bits go: a group-writable set-id file would let any
            // group member plant code that runs as its owner.
            Kind::File | Kind::Special => Some((perm | 0o060) & !0o6000),
            // A symlink's own mode means nothing on Linux; devices are none of our business.
            Kind::Symlink | Kind::Device => None,
        };
        let wanted_gid = (kind != Kind::Device).then_some(self.gid);
        Change {
            mode: wanted_mode.filter(|&m| m != perm),
            gid: wanted_gid.filter(|&g| g != gid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Policy = Policy { gid: 1000 };

    #[test]
    fn dirs_become_2775_whatever_they_were() {
        for perm in [0o700, 0o755, 0o777, 0o1777, 0o2755] {
            let c = P.change_for(Kind::Dir, perm, 1000);
            assert_eq!(c.mode, Some(0o2775), "{perm:o}");
        }
        assert!(P.change_for(Kind::Dir, 0o2775, 1000).is_empty());
    }

    #[test]
    fn files_gain_group_rw_and_keep_x_bits() {
        assert_eq!(P.change_for(Kind::File, 0o600, 1000).mode, Some(0o660));
        assert_eq!(P.change_for(Kind::File, 0o755, 1000).mode, Some(0o775));
        assert_eq!(P.change_for(Kind::File, 0o4755, 1000).mode, Some(0o775));
        assert!(P.change_for(Kind::File, 0o664, 1000).is_empty());
        assert!(P.change_for(Kind::File, 0o770, 1000).is_empty());
    }

    #[test]
    fn symlinks_only_change_group_and_devices_never_change() {
        let c = P.change_for(Kind::Symlink, 0o777, 0);
        assert_eq!(
            c,
            Change {
                mode: None,
                gid: Some(1000)
            }
        );
        assert!(P.change_for(Kind::Device, 0o600, 0).is_empty());
    }

    #[test]
    fn kind_from_st_mode() {
        assert_eq!(Kind::from_mode(0o040755), Kind::Dir);
        assert_eq!(Kind::from_mode(0o100644), Kind::File);
        assert_eq!(Kind::from_mode(0o120777), Kind::Symlink);
        assert_eq!(Kind::from_mode(0o010644), Kind::Special);
        assert_eq!(Kind::from_mode(0o020600), Kind::Device);
    }
}
