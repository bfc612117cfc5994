//! The security context OpenShift's `restricted-v2` SCC gives every container of a pod: the
//! first UID of the namespace's range (an arbitrary one with no passwd entry, here
//! 1000650000), group 0, the pod's fsGroup as a supplementary group, every capability
//! dropped, no privilege escalation; a read-only root where the container asks for it.

/// The UID OpenShift gave the first namespace of the cluster the issue was reported from.
pub const ARBITRARY_UID: u32 = 1_000_650_000;

#[derive(Debug, Clone)]
pub struct PodSecurity {
    pub run_as_user: u32,
    pub run_as_group: u32,
    /// `fsGroup`: a supplementary group of every container, owning the pod's volumes.
    pub fs_group: Option<u32>,
}

impl Default for PodSecurity {
    /// `restricted-v2`'s.
    fn default() -> Self {
        Self {
            run_as_user: ARBITRARY_UID,
            run_as_group: 0,
            fs_group: Some(ARBITRARY_UID),
        }
    }
}

impl PodSecurity {
    /// The `podman run` flags for a container under this context.
    pub fn podman_flags(&self, read_only_root: bool) -> Vec<String> {
        let mut flags = vec![
            format!("--user={}:{}", self.run_as_user, self.run_as_group),
            "--cap-drop=all".into(),
            "--security-opt=no-new-privileges".into(),
        ];
        if let Some(group) = self.fs_group {
            flags.push(format!("--group-add={group}"));
        }
        if read_only_root {
            // The kubelet mounts no tmpfs on /tmp for a read-only root; podman would.
            flags.extend(["--read-only".into(), "--read-only-tmpfs=false".into()]);
        }
        flags
    }
}
