//! The result of a run: on stdout for people and scripts, and as Tekton result files.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::atomic_file::write_atomic;
use crate::perms::create_shared_dir_all;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// What a binary reports when it finishes.
pub trait Report: Serialize {
    /// A short summary for a person reading a terminal.
    fn human(&self) -> String;

    /// Named values for `--results-dir` (e.g. `IMAGE_URL`, `IMAGE_DIGEST`); none by default.
    fn results(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// Why a run that did its work and reports it must still exit 1 (fix-perms with entries
    /// left unusable), said after the report; none by default.
    fn failure(&self) -> Option<String> {
        None
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot write the result to stdout")]
    Stdout(#[source] io::Error),
    #[error("cannot write result {path} (--results-dir)")]
    ResultFile { path: PathBuf, source: io::Error },
}

pub(super) fn print<R: Report>(report: &R, format: OutputFormat) -> Result<(), OutputError> {
    let text = match format {
        OutputFormat::Text => report.human(),
        OutputFormat::Json => serde_json::to_string(report)
            .map_err(io::Error::other)
            .map_err(OutputError::Stdout)?,
    };
    let mut out = io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(OutputError::Stdout)
}

pub(super) fn write_results(
    dir: &Path,
    results: &[(&'static str, String)],
) -> Result<(), OutputError> {
    let file_error = |path: PathBuf| move |source| OutputError::ResultFile { path, source };
    create_shared_dir_all(dir).map_err(file_error(dir.to_owned()))?;
    for (name, value) in results {
        let path = dir.join(name);
        write_atomic(&path, value.as_bytes()).map_err(file_error(path.clone()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_written_without_trailing_newline() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("results");
        let results = [
            ("IMAGE_URL", "r/m:1".to_string()),
            ("IMAGE_DIGEST", "sha256:ab".to_string()),
        ];
        write_results(&dir, &results).unwrap();
        assert_eq!(std::fs::read(dir.join("IMAGE_URL")).unwrap(), b"r/m:1");
        assert_eq!(
            std::fs::read(dir.join("IMAGE_DIGEST")).unwrap(),
            b"sha256:ab"
        );
    }
}
