//! fix-perms: makes a PVC tree usable by every Tekton task, whatever UID each runs as
//! (`docs/design.md`, "Permissions"): one group everywhere, directories 2775, files group read-write.
//! Symlinks are never followed, so nothing outside the tree is ever touched.

pub mod access;
pub mod entry;
pub mod policy;
mod report;
mod walk;

use std::num::NonZeroUsize;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::sys::stat::{fstat, Mode};

use access::PodGroups;
use policy::Policy;
pub use report::{FixReport, RootReport};
use walk::{Stats, Walker};

/// What to repair and how.
#[derive(Debug, Clone)]
pub struct Options {
    pub roots: Vec<PathBuf>,
    /// The group to give every entry; `None`: each root's own group.
    pub gid: Option<u32>,
    pub dry_run: bool,
    /// Worker threads. Metadata calls on network storage wait on the server, so more threads
    /// than cores pay off there.
    pub jobs: NonZeroUsize,
}

#[derive(Debug, thiserror::Error)]
pub enum FixError {
    #[error("cannot start {jobs} worker threads")]
    ThreadPool {
        jobs: usize,
        source: rayon::ThreadPoolBuildError,
    },
}

/// Repairs every root in turn. Entries that cannot be fixed are logged and counted in the
/// report, never fatal: one unreadable directory must not leave the rest of a PVC broken.
/// Entries this UID may not change but every task can use are left alone (`skipped`); those
/// the tasks cannot use are `errors`.
pub fn run(opts: &Options) -> Result<FixReport, FixError> {
    raise_open_file_limit();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.get())
        // Each directory level is a few frames deep; room for very deep trees.
        .stack_size(16 << 20)
        .build()
        .map_err(|source| FixError::ThreadPool {
            jobs: opts.jobs.get(),
            source,
        })?;
    let stats = Stats::default();
    let pod = PodGroups::of_this_process();
    let mut roots = Vec::new();
    for path in &opts.roots {
        let (fd, root_gid) = match open_root(path) {
            Ok(opened) => opened,
            Err(e) => {
                stats
                    .errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::error!(path = %path.display(), "cannot open directory: {}", e.desc());
                roots.push(RootReport {
                    path: path.clone(),
                    gid: None,
                    error: Some(e.desc().to_string()),
                });
                continue;
            }
        };
        let gid = opts.gid.unwrap_or(root_gid);
        let walker = Walker {
            policy: Policy { gid },
            dry_run: opts.dry_run,
            stats: &stats,
            root: path,
            pod: &pod,
        };
        pool.install(|| walker.walk(fd, path));
        roots.push(RootReport {
            path: path.clone(),
            gid: Some(gid),
            error: None,
        });
    }
    Ok(FixReport {
        dry_run: opts.dry_run,
        roots,
        scanned: stats.scanned.into_inner(),
        changed: stats.changed.into_inner(),
        skipped: stats.skipped.into_inner(),
        errors: stats.errors.into_inner(),
    })
}

/// Opens a root named on the command line. A symlink given explicitly is followed, as chmod
/// and find do for their arguments; none is followed below it.
fn open_root(path: &Path) -> nix::Result<(OwnedFd, u32)> {
    let fd = open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let gid = fstat(&fd)?.st_gid;
    Ok((fd, gid))
}

/// Each thread holds a descriptor per directory level it is inside: lift the soft limit to the
/// hard one so deep trees do not hit EMFILE.
fn raise_open_file_limit() {
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}
