use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Parser;
use modelcar_shared::cli::{on_blocking_thread, CommonArgs, UsageError};

/// Make a shared volume (PVC) usable by every pipeline task, whatever UID it runs as.
///
/// Gives every entry below each DIR one group (--gid, default: the DIR's own group), makes
/// directories 2775 (setgid, so new files inherit the group) and files group read-write
/// (x bits kept, set-id bits dropped). Symlinks are never followed: a link's own group is
/// changed, never its target's, and the walk never leaves the tree. Safe to run again: a
/// second run changes nothing.
///
/// Run as non-root (a restricted pod), it can change only what its UID owns. An entry it may
/// not change is left as it is, with one warning line, when every task can already use it
/// (list and create in directories, read model files, read and write `.modelcar/` files,
/// through the group or others bits), and so is a `lost+found` at a root, which is not
/// walked. The exit code is 1 only when something the pipeline reads or writes stays
/// unusable: the error names it.
#[derive(Debug, Parser)]
#[command(name = "fix-perms", version)]
struct Args {
    /// Trees to repair. Default: the workspace (--workspace).
    #[arg(value_name = "DIR")]
    dirs: Vec<PathBuf>,

    /// The workspace (PVC root) to repair when no DIR is given.
    #[arg(long, env = "MODELCAR_WORKSPACE", value_name = "WS")]
    workspace: Option<PathBuf>,

    /// Group to give every entry. Default: each DIR's own group (the pod's fsGroup on a PVC;
    /// give it where the volume root keeps another group, as NFS volumes do).
    #[arg(long, env = "MODELCAR_GID")]
    gid: Option<u32>,

    /// Only list (on stderr) and count what would change; change nothing.
    #[arg(long, env = "MODELCAR_DRY_RUN")]
    dry_run: bool,

    /// Worker threads; network storage answers faster with more requests in flight.
    #[arg(long, env = "MODELCAR_JOBS", default_value = "16")]
    jobs: NonZeroUsize,

    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args: Args = modelcar_shared::cli::parse();
    args.common.run_async(
        "run again: entries already right are left as they are",
        async {
            let options = options(&args)?;
            // The walk is blocking work: on its own thread, so a signal still ends the run.
            Ok(on_blocking_thread(move || fix_perms::run(&options)).await?)
        },
    )
}

fn options(args: &Args) -> anyhow::Result<fix_perms::Options> {
    let roots = match (args.dirs.is_empty(), &args.workspace) {
        (false, _) => args.dirs.clone(),
        (true, Some(ws)) => vec![ws.clone()],
        (true, None) => bail!(UsageError(
            "nothing to repair: give a DIR, or --workspace / MODELCAR_WORKSPACE".into()
        )),
    };
    Ok(fix_perms::Options {
        roots,
        gid: args.gid,
        dry_run: args.dry_run,
        jobs: args.jobs,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_consistent() {
        <super::Args as clap::CommandFactory>::command().debug_assert();
    }
}
