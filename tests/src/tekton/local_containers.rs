//! A TaskRun's pod on a real runtime: each step in its own image (the Task's `image` param,
//! by digest from the bundle `scripts/build-images.sh` renders), pulled and started by podman
//! and runc under the pod's security context (OpenShift's restricted SCC: an arbitrary UID,
//! group 0, the fsGroup, no capabilities, no privilege escalation; a read-only root where the
//! step's `securityContext` asks for it), the steps one after the other as Tekton's
//! entrypoint orders them. Each bound workspace is its directory here, given to the fsGroup
//! as the kubelet gives a PVC (group-owned, group-writable, setgid directories); the results
//! directory and every other mount are volumes at their paths in the pod.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use nix::unistd::{chown, Gid};

use super::local_run::{workspace_mount_path, LocalTaskRun, StepOutcome, RESULTS_DIR};
use super::types::Task;
use crate::runtime::{podman, Container, Mount, Pod, PodSecurity};

impl LocalTaskRun {
    /// Runs `task`'s steps in their images on podman, stopping at the first that fails.
    pub(super) fn run_in_pod(
        &self,
        task: &Task,
        security: &PodSecurity,
    ) -> Result<Vec<StepOutcome>, String> {
        let mut volumes = vec![("tekton-results".to_string(), self.results_dir.clone())];
        let mut mounts = vec![mount("tekton-results", RESULTS_DIR, false)];
        std::fs::set_permissions(&self.results_dir, PermissionsExt::from_mode(0o777))
            .map_err(|e| format!("{}: {e}", self.results_dir.display()))?;
        for declared in &task.spec.workspaces {
            let Some(dir) = self.workspaces.get(&declared.name) else {
                continue;
            };
            if let Some(group) = security.fs_group {
                give_to_group(dir, group)?;
            }
            let volume = format!("ws-{}", declared.name);
            let read_only = declared.read_only;
            mounts.push(mount(&volume, &workspace_mount_path(declared), read_only));
            volumes.push((volume, dir.clone()));
        }
        for (i, (in_pod, dir)) in self.mounts.iter().enumerate() {
            let volume = format!("mount-{i}");
            mounts.push(mount(&volume, in_pod, true));
            volumes.push((volume, dir.clone()));
        }
        let pod = Pod {
            host_dirs: volumes,
            security: security.clone(),
            ..Pod::default()
        };
        let running = pod.start(podman()).map_err(|e| e.to_string())?;
        let mut outcomes = Vec::new();
        for (i, step) in task.spec.steps.iter().enumerate() {
            let name = step.name.clone().unwrap_or_else(|| format!("step-{i}"));
            let process = self.process(task, step, true)?;
            let image = process
                .image
                .ok_or_else(|| format!("step {name} names no image"))?;
            let read_only_root = step
                .security_context
                .as_ref()
                .and_then(|s| s.read_only_root_filesystem)
                .unwrap_or(false);
            let container = Container {
                name: name.clone(),
                image,
                command: vec![process.program],
                args: process.args,
                env: process.env,
                mounts: mounts.clone(),
                read_only_root,
            };
            let output = running.run_to_end(&container, self.show_logs);
            let failed = !output.status.success();
            outcomes.push(StepOutcome { step: name, output });
            if failed {
                break;
            }
        }
        Ok(outcomes)
    }
}

fn mount(volume: &str, path: &str, read_only: bool) -> Mount {
    Mount {
        volume: volume.into(),
        path: path.into(),
        read_only,
    }
}

/// What the kubelet does to a volume for a pod's fsGroup: every file and directory under
/// `dir` group-owned by `group` and group-readable and -writable, directories setgid so what
/// the pod creates stays the group's.
fn give_to_group(dir: &Path, group: u32) -> Result<(), String> {
    let at = |p: &Path, e: &dyn std::fmt::Display| format!("{}: {e}", p.display());
    let meta = std::fs::symlink_metadata(dir).map_err(|e| at(dir, &e))?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    chown(dir, None, Some(Gid::from_raw(group))).map_err(|e| at(dir, &e))?;
    let mode = meta.mode() & 0o7777;
    let wanted = match meta.is_dir() {
        true => mode | 0o2070,
        false => mode | 0o060,
    };
    std::fs::set_permissions(dir, PermissionsExt::from_mode(wanted)).map_err(|e| at(dir, &e))?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir).map_err(|e| at(dir, &e))? {
            give_to_group(&entry.map_err(|e| at(dir, &e))?.path(), group)?;
        }
    }
    Ok(())
}
