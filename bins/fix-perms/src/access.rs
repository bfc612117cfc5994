//! What the pipeline's tasks need of an entry, and whether they have it already without
//! owning it. A restricted pod (OpenShift's restricted-v2, any non-root Task) can change only
//! what its UID owns: an entry it cannot change is left alone, with a warning, when every
//! task can already use it, and is an error only when a task would fail on it.

use std::path::Path;

use modelcar_shared::workspace::STATE_DIR_NAME;

use crate::policy::Kind;

const R: u32 = 0o4;
const W: u32 = 0o2;
const X: u32 = 0o1;

/// The groups every task of the pipeline runs in: this process's, which the pod gives all its
/// containers alike (the fsGroup, and in OpenShift the root group).
#[derive(Debug, Clone)]
pub struct PodGroups(Vec<u32>);

impl PodGroups {
    pub fn of_this_process() -> Self {
        let mut groups: Vec<u32> = nix::unistd::getgroups()
            .unwrap_or_default()
            .into_iter()
            .map(|g| g.as_raw())
            .collect();
        groups.push(nix::unistd::getegid().as_raw());
        Self(groups)
    }

    #[cfg(test)]
    pub fn of(groups: &[u32]) -> Self {
        Self(groups.to_vec())
    }

    /// The rwx bits a task that does not own the entry gets: the group's when the entry's
    /// group is one of the pod's, the others' otherwise.
    pub fn access(&self, perm: u32, gid: u32) -> u32 {
        match self.0.contains(&gid) {
            true => (perm >> 3) & 0o7,
            false => perm & 0o7,
        }
    }
}

/// What the tasks do with an entry: enter, list and create in every directory (fetch-model
/// renames verified files into the model directory), read every file, and read and write
/// modelcar's state files (metadata, caches, locks) under `<ws>/.modelcar`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Nothing,
    Read,
    ReadWrite,
    Enter,
}

impl Need {
    pub fn of(kind: Kind, path_below_root: &Path) -> Self {
        match kind {
            Kind::Dir => Need::Enter,
            Kind::File | Kind::Special if path_below_root.starts_with(STATE_DIR_NAME) => {
                Need::ReadWrite
            }
            Kind::File => Need::Read,
            Kind::Special | Kind::Symlink | Kind::Device => Need::Nothing,
        }
    }

    fn bits(self) -> u32 {
        match self {
            Need::Nothing => 0,
            Need::Read => R,
            Need::ReadWrite => R | W,
            Need::Enter => R | W | X,
        }
    }

    /// Whether `access` (rwx bits) is enough.
    pub fn met_by(self, access: u32) -> bool {
        access & self.bits() == self.bits()
    }
}

impl std::fmt::Display for Need {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Need::Nothing => "nothing",
            Need::Read => "read it",
            Need::ReadWrite => "read and write it",
            Need::Enter => "list it and create files in it",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FS_GROUP: u32 = 1500;

    #[test]
    fn a_task_gets_the_group_bits_of_its_groups_and_the_others_bits_otherwise() {
        let pod = PodGroups::of(&[FS_GROUP, 0]);
        assert_eq!(pod.access(0o2770, FS_GROUP), 0o7);
        assert_eq!(pod.access(0o0664, 0), 0o6, "OpenShift's root group");
        assert_eq!(pod.access(0o0640, 1003), 0o0);
        assert_eq!(pod.access(0o0644, 1003), 0o4);
    }

    #[test]
    fn directories_need_write_and_state_files_need_read_write() {
        let pod = PodGroups::of(&[FS_GROUP]);
        let need = |kind, path: &str| Need::of(kind, Path::new(path));
        assert!(need(Kind::Dir, "lost+found").met_by(pod.access(0o2770, FS_GROUP)));
        assert!(
            !need(Kind::Dir, "").met_by(pod.access(0o0755, 0)),
            "a root-owned 0755 root"
        );
        assert!(need(Kind::Dir, "").met_by(pod.access(0o0777, 0)));
        assert!(need(Kind::File, "models/m/a.bin").met_by(pod.access(0o0644, 1003)));
        assert!(!need(Kind::File, "models/m/a.bin").met_by(pod.access(0o0640, 1003)));
        let state = need(Kind::File, ".modelcar/metadata.json");
        assert_eq!(state, Need::ReadWrite);
        assert!(!state.met_by(pod.access(0o0644, 1003)));
        assert!(state.met_by(pod.access(0o0664, FS_GROUP)));
        assert!(need(Kind::Symlink, "models/m/link").met_by(0));
    }
}
