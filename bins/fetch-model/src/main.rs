use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use fetch_model::{Options, Target};
use modelcar_shared::causes::ErrorCauses;
use modelcar_shared::cli::{parse_size, CommonArgs, SelectionArgs, TrustArgs, UsageError};
use modelcar_shared::hub::{HubOptions, DEFAULT_ENDPOINT};
use modelcar_shared::Workspace;

/// Download a Hugging Face model into the PVC: pinned, verified, resumable.
///
/// The revision is resolved to its commit sha first and every file is taken from that commit.
/// By default the files vLLM serves are taken and second copies of the weights skipped
/// (`consolidated*.safetensors`, `original/`, PyTorch `.bin`/`.pth` beside safetensors); each
/// skipped file is named with the reason. Downloads resume with HTTP Range from what an earlier
/// run left; every file is checked against the Hub's sha256 (LFS) or git blob id before it is
/// put in place, and a file that fails is fetched again, never kept. Files land group-writable
/// so the next task, under another UID, can read them.
#[derive(Debug, Parser)]
#[command(name = "fetch-model", version)]
struct Args {
    /// The model repo: ORG/NAME.
    #[arg(value_name = "REPO_ID", env = "MODELCAR_HF_REPO")]
    repo: String,

    /// Branch, tag or commit sha; what is recorded is the commit sha it names now.
    #[arg(long, env = "MODELCAR_HF_REVISION", default_value = "main")]
    revision: String,

    #[command(flatten)]
    selection: SelectionArgs,

    /// Workspace (PVC): the model goes to <ws>/models/<name>/ and is recorded in the metadata
    /// file (hf_repo, hf_revision, model_dir, files with size and sha256).
    #[arg(
        long,
        env = "MODELCAR_WORKSPACE",
        value_name = "WS",
        required_unless_present = "dest"
    )]
    workspace: Option<PathBuf>,

    /// The directory name under <ws>/models/ (default: the repo's NAME).
    #[arg(long, env = "MODELCAR_MODEL_NAME", requires = "workspace")]
    name: Option<String>,

    /// Download into DIR instead of a workspace (nothing is recorded).
    #[arg(
        long,
        env = "MODELCAR_DEST",
        value_name = "DIR",
        conflicts_with = "workspace"
    )]
    dest: Option<PathBuf>,

    /// A file holding the Hub token (read instead of HF_TOKEN).
    #[arg(long, env = "MODELCAR_HF_TOKEN_FILE", value_name = "PATH")]
    token_file: Option<PathBuf>,

    /// The Hub, or a mirror of it for air-gapped clusters.
    #[arg(long, env = "HF_ENDPOINT", default_value = DEFAULT_ENDPOINT)]
    endpoint: String,

    /// Files downloaded at once.
    #[arg(long, env = "MODELCAR_JOBS", default_value = "4")]
    jobs: NonZeroUsize,

    /// Free space to leave on the target filesystem; the run refuses to start when the
    /// download would eat into it (e.g. 10GiB).
    #[arg(long, env = "MODELCAR_MIN_FREE", value_parser = parse_size, default_value = "0")]
    min_free: u64,

    #[command(flatten)]
    trust: TrustArgs,

    /// Retries of a request that failed in a way that may pass (connection, 5xx, 429), and of a
    /// file whose download broke off (each goes on from where it stopped).
    #[arg(long, env = "MODELCAR_RETRIES", default_value = "5")]
    retries: u32,

    /// Seconds between progress lines on stderr.
    #[arg(long, env = "MODELCAR_PROGRESS_INTERVAL", default_value_t = 5)]
    progress_interval: u64,

    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args: Args = modelcar_shared::cli::parse();
    args.common.run_async(
        "run again with the same arguments: finished files are kept, partial ones resume",
        async { Ok(fetch_model::run(options(&args)?).await?) },
    )
}

fn options(args: &Args) -> anyhow::Result<Options> {
    if !modelcar_shared::hub::is_repo_id(&args.repo) {
        anyhow::bail!(UsageError(format!(
            "REPO_ID {:?} is not ORG/NAME",
            args.repo
        )));
    }
    let repo_name = args.repo.split_once('/').map_or("", |(_, name)| name);
    let target = match (&args.workspace, &args.dest) {
        (Some(ws), _) => Target::Workspace {
            ws: Workspace::open(ws)?,
            name: args.name.clone().unwrap_or_else(|| repo_name.to_string()),
        },
        (None, Some(dir)) => Target::Dir(dir.clone()),
        (None, None) => anyhow::bail!(UsageError("give --workspace or --dest".into())),
    };
    Ok(Options {
        repo: args.repo.clone(),
        revision: args.revision.clone(),
        rules: args
            .selection
            .rules()
            .map_err(|e| UsageError(e.causes().to_string()))?,
        target,
        hub: HubOptions {
            endpoint: args.endpoint.clone(),
            token: modelcar_shared::hub::token(args.token_file.as_deref())
                .context("--token-file")?,
            trust: args.trust.trust(),
            retries: args.retries,
        },
        jobs: args.jobs.get(),
        min_free: args.min_free,
        progress_every: Duration::from_secs(args.progress_interval.max(1)),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_consistent() {
        <super::Args as clap::CommandFactory>::command().debug_assert();
    }
}
