//! fetch-model: downloads a Hugging Face model repo at one commit into a directory of the PVC,
//! choosing the files vLLM serves, resuming what an earlier run left, checking every file
//! against the Hub's hashes, and recording what it fetched in the workspace metadata file.

mod done;
mod download;
mod error;
mod plan;
pub mod report;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt};

use modelcar_shared::causes::ErrorCauses;
use modelcar_shared::hub::{HubClient, HubOptions};
use modelcar_shared::metadata::FileRecord;
use modelcar_shared::progress::Progress;
use modelcar_shared::selection::Rules;
use modelcar_shared::Workspace;

pub use error::FetchError;
use plan::{Plan, Todo};
use report::{FetchReport, SkippedFile};

/// Where the model goes.
pub enum Target {
    /// `<ws>/models/<name>/`, recorded in the workspace metadata file.
    Workspace { ws: Workspace, name: String },
    /// A directory of one's own choosing.
    Dir(PathBuf),
}

pub struct Options {
    pub repo: String,
    pub revision: String,
    /// Which files of the repo to take.
    pub rules: Rules,
    pub target: Target,
    pub hub: HubOptions,
    pub jobs: usize,
    /// Free space to leave on the target filesystem after the download.
    pub min_free: u64,
    pub progress_every: Duration,
}

pub async fn run(opts: Options) -> Result<FetchReport, FetchError> {
    let started = Instant::now();
    let client = HubClient::new(&opts.hub)?;
    let sha = client.commit_sha(&opts.repo, &opts.revision).await?;
    tracing::info!("{} at {} is commit {sha}", opts.repo, opts.revision);
    let entries = client.list_files(&opts.repo, &sha).await?;
    let plan = Plan::make(&opts.target, entries, &opts.rules).await?;
    for skipped in &plan.skipped {
        tracing::info!("skipping {skipped}");
    }
    plan.check_space(opts.min_free)?;

    let progress = Progress::new(format!("downloading {}", opts.repo), plan.bytes_to_fetch());
    let _reporter = progress.spawn_reporter(opts.progress_every);
    let fetched: Vec<(FileRecord, u64)> = futures_util::stream::iter(&plan.todo)
        .map(|todo| {
            fetch_one(
                &client,
                opts.hub.retries,
                &opts.repo,
                &sha,
                &plan,
                todo,
                &progress,
            )
        })
        .buffer_unordered(opts.jobs.max(1))
        .try_collect()
        .await?;

    let downloaded = fetched.iter().map(|(_, n)| n).sum();
    let mut files: Vec<FileRecord> = plan
        .done
        .iter()
        .cloned()
        .chain(fetched.into_iter().map(|(f, _)| f))
        .collect();
    files.sort_by(|a, b| a.name.cmp(&b.name));
    if let Target::Workspace { ws, .. } = &opts.target {
        let model_dir = plan.model_dir.display().to_string();
        let (repo, sha, files) = (opts.repo.clone(), sha.clone(), files.clone());
        ws.metadata()?.update(move |m| {
            m.hf_repo = Some(repo);
            m.hf_revision = Some(sha);
            m.model_dir = Some(model_dir);
            m.files = files;
        })?;
    }
    Ok(FetchReport {
        repo: opts.repo,
        revision: sha,
        model_dir: plan.model_dir.display().to_string(),
        bytes: files.iter().map(|f| f.size).sum(),
        files: files.len(),
        downloaded,
        skipped: plan
            .skipped
            .iter()
            .map(|s| SkippedFile {
                path: s.file.path.clone(),
                reason: s.to_string(),
            })
            .collect(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

async fn fetch_one(
    client: &HubClient,
    retries: u32,
    repo: &str,
    sha: &str,
    plan: &Plan,
    todo: &Todo,
    progress: &Progress,
) -> Result<(FileRecord, u64), FetchError> {
    let job = download::FileJob {
        client,
        repo,
        sha,
        entry: &todo.entry,
        partial: todo.partial.clone(),
        dest: todo.dest.clone(),
        attempts: retries + 1,
    };
    let fetched = download::fetch_file(&job, progress).await?;
    if let Err(e) = plan
        .done_files
        .record(&todo.entry, &todo.dest, &fetched.sha256)
    {
        tracing::warn!(
            "cannot record {} as done (a rerun will hash it again): {}",
            todo.entry.path,
            e.causes()
        );
    }
    tracing::info!("fetched {} ({} bytes)", todo.entry.path, todo.entry.size);
    Ok((
        FileRecord {
            name: todo.entry.path.clone(),
            size: todo.entry.size,
            sha256: Some(fetched.sha256),
            extra: Default::default(),
        },
        fetched.downloaded,
    ))
}
