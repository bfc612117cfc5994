//! A Hugging Face Hub client for what fetch-model (and build-push's `hf://` source) needs: a
//! revision's commit sha, the repo's files with sizes and hashes, and a file's bytes from an
//! offset. Three public endpoints over the shared reqwest client.
//!
//! Why not the `hf-hub` crate (1.0.0, read): its `snapshot_download` neither resumes (no Range)
//! nor verifies, and takes a file that merely exists as done, so a download cut by an eviction
//! is kept truncated; and it builds reqwest with default features (aws-lc-sys, a second TLS
//! crypto stack compiled from C) and always pulls hf-xet. What it does well (endpoint and
//! token from the environment, error codes) is a few lines here.

mod client;
mod error;
mod revision;
mod verified_body;
mod verify;

pub use client::{HubClient, HubOptions, RepoEntry, DEFAULT_ENDPOINT};
pub use error::HubError;
pub use revision::HubRevision;
pub use verified_body::{EndError, PieceError, VerifiedBody};
pub use verify::{FileHasher, Hashes, Mismatch};

use crate::selection::{RepoFile, Rules, Skipped};

/// Whether `id` is a model repo id, `ORG/NAME`.
pub fn is_repo_id(id: &str) -> bool {
    matches!(id.split_once('/'), Some((org, name)) if !org.is_empty() && !name.is_empty() && !name.contains('/'))
}

/// Whether a path the Hub lists stays inside the directory it is put under: relative, with
/// no empty, `.` or `..` segment.
pub fn is_safe_path(path: &str) -> bool {
    path.split('/')
        .all(|segment| !segment.is_empty() && segment != "." && segment != "..")
}

/// The entries `rules` take, in listing order, and those they leave out with the reason.
pub fn select(entries: Vec<RepoEntry>, rules: &Rules) -> (Vec<RepoEntry>, Vec<Skipped>) {
    let listed = entries.iter().map(|e| RepoFile {
        path: e.path.clone(),
        size: e.size,
    });
    let selection = rules.select(listed.collect());
    let chosen: std::collections::HashSet<&str> =
        selection.selected.iter().map(|f| f.path.as_str()).collect();
    let taken = entries
        .iter()
        .filter(|e| chosen.contains(e.path.as_str()))
        .cloned()
        .collect();
    (taken, selection.skipped)
}

/// The Hub token: the content of `file` when one is given, else `HF_TOKEN`.
pub fn token(file: Option<&std::path::Path>) -> std::io::Result<Option<String>> {
    match file {
        Some(path) => std::fs::read_to_string(path)
            .map(|text| Some(text.trim().to_string()))
            .map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display()))
            }),
        None => Ok(std::env::var("HF_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn repo_ids_and_safe_paths() {
        assert!(super::is_repo_id("org/name"));
        for bad in ["name", "org/", "/name", "org/a/b"] {
            assert!(!super::is_repo_id(bad), "{bad}");
        }
        assert!(super::is_safe_path("a/b.safetensors"));
        for bad in ["", "../x", "a/../../x", "/etc/passwd", "./a", "a//b"] {
            assert!(!super::is_safe_path(bad), "{bad}");
        }
    }
}
