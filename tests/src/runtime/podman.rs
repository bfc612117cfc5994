//! podman and runc from Debian as the node's container runtime: images pulled by
//! containers/image into containers/storage's overlay driver (the storage library of CRI-O,
//! OpenShift's runtime), containers started by runc. Every podman this harness runs reads a
//! containers.conf of its own, so it runs the same on a developer's machine and in CI's
//! sandbox:
//! - `runtime = "runc"`: crun 1.8 refuses the hybrid cgroup mounts of some machines;
//! - `default_ulimits` at this process's own hard limits: podman asks for 1048576 open files
//!   and nproc at pid_max, which sandboxes that refuse to raise a hard limit (even to root)
//!   turn into "setrlimit: operation not permitted" when the container starts, and the pod's
//!   infra container has no `--ulimit` flag to pass;
//! - `cgroup_manager = "cgroupfs"`: no systemd needed.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::resource::{getrlimit, Resource};

use crate::tools::require_tool;

/// The podman every test of a process shares.
pub struct Podman {
    conf: PathBuf,
    /// A store of its own (`--root`/`--runroot`) instead of the machine's, when set.
    store: Option<PathBuf>,
}

/// The podman with the machine's store (/var/lib/containers/storage), which CI starts empty.
pub fn podman() -> &'static Podman {
    static PODMAN: OnceLock<Podman> = OnceLock::new();
    PODMAN.get_or_init(|| {
        require_tool("podman");
        require_tool("runc");
        let dir = std::env::temp_dir().join(format!("modelcar-podman-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("podman config dir");
        let conf = dir.join("containers.conf");
        std::fs::write(&conf, containers_conf()).expect("write containers.conf");
        Podman { conf, store: None }
    })
}

/// containers.conf for this machine: runc, cgroupfs, and ulimits no higher than ours.
pub fn containers_conf() -> String {
    let hard = |r| getrlimit(r).map(|(_, hard)| hard).unwrap_or(u64::MAX);
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(32768);
    let nofile = hard(Resource::RLIMIT_NOFILE).min(1 << 20);
    let nproc = hard(Resource::RLIMIT_NPROC).min(pid_max);
    format!(
        "[containers]\ndefault_ulimits = [\"nofile={nofile}:{nofile}\", \"nproc={nproc}:{nproc}\"]\n\
         [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\n"
    )
}

impl Podman {
    /// The same runtime over a store of its own under `dir`: what a node that never pulled
    /// anything has.
    pub fn with_store(&self, dir: &Path) -> Podman {
        Podman {
            conf: self.conf.clone(),
            store: Some(dir.to_path_buf()),
        }
    }

    /// `podman` with this harness's configuration, to add a subcommand to.
    pub fn command(&self) -> Command {
        let mut command = Command::new("podman");
        command.env("CONTAINERS_CONF", &self.conf);
        if let Some(store) = &self.store {
            command.arg("--root").arg(store.join("root"));
            command.arg("--runroot").arg(store.join("run"));
        }
        command
    }

    /// Runs `podman ARGS`; its output, whatever its status.
    pub fn output<S: AsRef<OsStr> + std::fmt::Debug>(&self, args: &[S]) -> Output {
        self.command()
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run podman {args:?}: {e}"))
    }

    /// Runs `podman ARGS`, panicking with its stderr unless it succeeds; its stdout.
    pub fn ok<S: AsRef<OsStr> + std::fmt::Debug>(&self, args: &[S]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "podman {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Pulls `reference` (from a plain-HTTP or self-signed test registry) into the store, as
    /// a node's kubelet has CRI-O pull it; how long it took.
    pub fn pull(&self, reference: &str) -> Duration {
        let started = Instant::now();
        self.ok(&["pull", "--quiet", "--tls-verify=false", reference]);
        started.elapsed()
    }

    /// Whether the store holds `reference`.
    pub fn has_image(&self, reference: &str) -> bool {
        self.output(&["image", "exists", reference])
            .status
            .success()
    }
}
