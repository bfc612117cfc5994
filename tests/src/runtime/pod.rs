//! A pod run on podman as the kubelet runs it: one podman pod (network, IPC and UTS shared, the PID
//! namespace too with `shareProcessNamespace`), each emptyDir a directory here (mode 0777, as
//! the kubelet makes it), the init containers one after the other to completion, then the
//! containers, every one under the pod's security context. A container's `command` replaces
//! the image's ENTRYPOINT and its `args` the CMD, after the kubelet's `$(VAR)` expansion; with
//! no `command` the args go to the image's ENTRYPOINT. The pod is on the host's network: the
//! registries and servers the tests start listen on this machine's loopback.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::expansion::expand;
use super::podman::Podman;
use super::security::PodSecurity;

/// A volume mount: the pod volume `volume` at `path` in the container.
#[derive(Debug, Clone)]
pub struct Mount {
    pub volume: String,
    pub path: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Container {
    pub name: String,
    pub image: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub mounts: Vec<Mount>,
    /// `securityContext.readOnlyRootFilesystem`.
    pub read_only_root: bool,
}

/// A pod spec, as much of it as the pods run here use.
#[derive(Debug, Clone, Default)]
pub struct Pod {
    pub init_containers: Vec<Container>,
    pub containers: Vec<Container>,
    pub share_process_namespace: bool,
    /// The emptyDir volumes, by name.
    pub empty_dirs: Vec<String>,
    /// Other volumes, each a directory here (a PVC, a Secret), by name.
    pub host_dirs: Vec<(String, PathBuf)>,
    pub security: PodSecurity,
}

/// An init container that did not complete: the pod never starts, as on a node.
#[derive(Debug)]
pub struct InitFailed {
    pub container: String,
    pub output: Output,
}

impl std::fmt::Display for InitFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "init container {} exited with {}: {}{}",
            self.container,
            self.output.status,
            String::from_utf8_lossy(&self.output.stdout),
            String::from_utf8_lossy(&self.output.stderr)
        )
    }
}

/// A started pod; removed, with its containers, when dropped.
pub struct RunningPod<'p> {
    podman: &'p Podman,
    name: String,
    spec: Pod,
    volumes: Vec<(String, PathBuf)>,
    pod_dir: tempfile::TempDir,
}

impl Pod {
    /// Creates the pod, runs its init containers to completion and starts its containers.
    pub fn start<'p>(&self, podman: &'p Podman) -> Result<RunningPod<'p>, InitFailed> {
        static PODS: AtomicUsize = AtomicUsize::new(0);
        let n = PODS.fetch_add(1, Ordering::Relaxed);
        let name = format!("modelcar-test-{}-{n}", std::process::id());
        let share = match self.share_process_namespace {
            true => "net,ipc,uts,pid",
            false => "net,ipc,uts",
        };
        podman.ok(&[
            "pod",
            "create",
            "--name",
            &name,
            "--network=host",
            "--share",
            share,
        ]);
        let empty_dirs = tempfile::tempdir().expect("pod volumes dir");
        let volumes = self.volume_dirs(empty_dirs.path());
        let pod = RunningPod {
            podman,
            name,
            spec: self.clone(),
            volumes,
            pod_dir: empty_dirs,
        };
        for init in &self.init_containers {
            let output = pod.run_to_end(init, false);
            if !output.status.success() {
                return Err(InitFailed {
                    container: init.name.clone(),
                    output,
                });
            }
        }
        for container in &self.containers {
            let out = podman
                .command()
                .args(pod.run_args(container, "--detach"))
                .output()
                .expect("run podman");
            assert!(
                out.status.success(),
                "cannot start {}: {}",
                container.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(pod)
    }

    /// Each volume's directory here: the host ones as given, each emptyDir made under `root`.
    fn volume_dirs(&self, root: &Path) -> Vec<(String, PathBuf)> {
        let empty = self.empty_dirs.iter().map(|name| {
            let dir = root.join(name);
            std::fs::create_dir_all(&dir).expect("emptyDir");
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
                .expect("emptyDir mode");
            (name.clone(), dir)
        });
        empty.chain(self.host_dirs.iter().cloned()).collect()
    }
}

impl RunningPod<'_> {
    /// Runs `container` in this pod to completion (as an init container or a Tekton step
    /// runs); its output, its stderr on this process's own with `show_logs`.
    pub fn run_to_end(&self, container: &Container, show_logs: bool) -> Output {
        let mut command = self.podman.command();
        command.args(self.run_args(container, "--rm"));
        if show_logs {
            command.stderr(Stdio::inherit());
        }
        command
            .output()
            .unwrap_or_else(|e| panic!("cannot run podman for {}: {e}", container.name))
    }

    /// `container`'s environment in podman's `--env-file` form, in the pod's own directory.
    fn env_file(&self, container: &Container) -> PathBuf {
        use std::io::Write;
        let path = self.pod_dir.path().join(format!("{}.env", container.name));
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&path)
            .expect("env file");
        for (name, value) in &container.env {
            assert!(
                !value.contains('\n'),
                "{name}: an env file holds one line per variable"
            );
            writeln!(file, "{name}={value}").expect("write env file");
        }
        path
    }

    /// `podman run` for `container` in this pod, `mode` being `--rm` or `--detach`.
    fn run_args(&self, container: &Container, mode: &str) -> Vec<String> {
        let mut args: Vec<String> = vec!["run".into(), "--pod".into(), self.name.clone()];
        args.push(format!("--name={}", self.container_id(&container.name)));
        args.push(mode.into());
        args.push("--tls-verify=false".into());
        args.extend(self.spec.security.podman_flags(container.read_only_root));
        // From a file only root can read: a secret never shows in a process's arguments,
        // which every user of the machine can read, and podman's own environment stays its
        // own (it would take a step's REGISTRY_AUTH_FILE for its pulls).
        if !container.env.is_empty() {
            args.push(format!("--env-file={}", self.env_file(container).display()));
        }
        for mount in &container.mounts {
            let (_, dir) = self
                .volumes
                .iter()
                .find(|(name, _)| *name == mount.volume)
                .unwrap_or_else(|| panic!("{} mounts no volume {}", container.name, mount.volume));
            let mode = if mount.read_only { "ro" } else { "rw" };
            args.push(format!("--volume={}:{}:{mode}", dir.display(), mount.path));
        }
        let vars = |name: &str| {
            let found = container.env.iter().find(|(n, _)| n == name);
            found.map(|(_, v)| v.clone())
        };
        if !container.command.is_empty() {
            let command: Vec<String> = container.command.iter().map(|c| expand(c, vars)).collect();
            let json = serde_json::to_string(&command).expect("a list of strings");
            args.push(format!("--entrypoint={json}"));
        }
        args.push(container.image.clone());
        args.extend(container.args.iter().map(|a| expand(a, vars)));
        args
    }

    /// podman's name for this pod's container `container`.
    fn container_id(&self, container: &str) -> String {
        format!("{}-{container}", self.name)
    }

    /// Waits for `container` to exit (at most `timeout`); its exit code and its logs.
    pub fn wait(&self, container: &str, timeout: Duration) -> (i32, String) {
        let full = self.container_id(container);
        let started = Instant::now();
        loop {
            let format = "{{.State.Status}} {{.State.ExitCode}}";
            let state = self.podman.ok(&["inspect", "--format", format, &full]);
            let mut words = state.split_whitespace();
            if words.next() == Some("exited") {
                let code = words.next().and_then(|c| c.parse().ok()).unwrap_or(-1);
                return (code, self.logs(container));
            }
            assert!(
                started.elapsed() < timeout,
                "{container} still running after {timeout:?}: {}",
                self.logs(container)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What `container` wrote so far, stdout then stderr.
    pub fn logs(&self, container: &str) -> String {
        let out = self.podman.output(&["logs", &self.container_id(container)]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

impl Drop for RunningPod<'_> {
    fn drop(&mut self) {
        let _ = self
            .podman
            .output(&["pod", "rm", "--force", "--time", "0", &self.name]);
    }
}
