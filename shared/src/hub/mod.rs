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

pub use client::{HubClient, HubOptions, RepoEntry, DEFAULT_ENDPOINT};
pub use error::HubError;

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
