//! The `hf://ORG/REPO[@REV]` source: a repo's files at one commit, each streamed from the Hub
//! into its place in a layer as the HTTP body arrives (the tar header is written from the
//! Hub's listed size), so no copy of the model lands on any disk. Every file's bytes are
//! checked as they pass against the Hub's sha256 (LFS) or git blob id, as fetch-model checks
//! them; on a mismatch the layer's upload is abandoned before its commit, so no blob, and no
//! manifest, points at wrong bytes.

use modelcar_shared::causes::ErrorCauses;
use modelcar_shared::hub::{
    self, is_repo_id, FileHasher, HubClient, HubError, HubOptions, RepoEntry, VerifiedBody,
};
use modelcar_shared::progress::Progress;
use modelcar_shared::selection::{Rules, Skipped};
use modelcar_shared::transfer::chunks::ChunkWriter;
use modelcar_shared::transfer::SourceError;

/// `hf://ORG/REPO[@REV]`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSpec {
    pub repo: String,
    pub revision: String,
}

impl HubSpec {
    /// `Some` for an `hf://` source (`Err` when it is malformed), `None` for a directory.
    pub fn parse(source: &str) -> Option<Result<Self, String>> {
        let rest = source.strip_prefix("hf://")?;
        let (repo, revision) = match rest.split_once('@') {
            Some((repo, rev)) => (repo, rev),
            None => (rest, "main"),
        };
        Some(match is_repo_id(repo) && !revision.is_empty() {
            true => Ok(Self {
                repo: repo.into(),
                revision: revision.into(),
            }),
            false => Err(format!(
                "{source:?} is not hf://ORG/REPO or hf://ORG/REPO@REVISION"
            )),
        })
    }
}

/// One repo at one commit, and the client that reads it.
pub struct HubSource {
    pub client: HubClient,
    pub repo: String,
    pub sha: String,
}

/// What the repo holds at the resolved commit, and what the selection rules left out.
pub struct HubListing {
    pub source: HubSource,
    pub files: Vec<RepoEntry>,
    pub skipped: Vec<Skipped>,
}

/// Resolves the revision to a commit and lists the files the rules select.
pub async fn list(
    spec: &HubSpec,
    options: &HubOptions,
    rules: &Rules,
) -> Result<HubListing, HubError> {
    let client = HubClient::new(options)?;
    let sha = client.commit_sha(&spec.repo, &spec.revision).await?;
    tracing::info!("{} at {} is commit {sha}", spec.repo, spec.revision);
    let entries = client.list_files(&spec.repo, &sha).await?;
    let (files, skipped) = hub::select(entries, rules);
    for s in &skipped {
        tracing::info!("skipping {s}");
    }
    Ok(HubListing {
        source: HubSource {
            client,
            repo: spec.repo.clone(),
            sha,
        },
        files,
        skipped,
    })
}

impl HubSource {
    /// Streams `file` from byte `skip` on into `writer`, checked against the listing as it
    /// passes (see `VerifiedBody`). The body is read from byte 0 even when resuming inside the
    /// file, so its hash is over every byte; the bytes before `skip` are only hashed.
    pub async fn stream_file(
        &self,
        file: &RepoEntry,
        skip: u64,
        writer: &mut ChunkWriter,
        progress: &Progress,
    ) -> Result<(), SourceError> {
        let failed = |detail: String| SourceError::HubFile {
            path: file.path.clone(),
            detail,
        };
        let (response, _) = self
            .client
            .open_file(&self.repo, &self.sha, &file.path, 0)
            .await
            .map_err(|e| failed(e.causes().to_string()))?;
        let mut body = VerifiedBody::new(file, response, FileHasher::new(file), 0);
        while let Some(piece) = body.next().await {
            let at = body.position();
            let mut piece = piece.map_err(|e| failed(e.to_string()))?;
            let start = at - piece.len() as u64;
            if at > skip {
                let _ = piece.split_to(skip.saturating_sub(start) as usize);
                writer.write_counted(piece, progress).await?;
            }
        }
        body.finish().map_err(|e| failed(e.to_string()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hf_sources_parse() {
        assert_eq!(
            HubSpec::parse("hf://org/name@v2").unwrap().unwrap(),
            HubSpec {
                repo: "org/name".into(),
                revision: "v2".into()
            }
        );
        assert_eq!(
            HubSpec::parse("hf://org/name").unwrap().unwrap().revision,
            "main"
        );
        assert!(HubSpec::parse("hf://name").unwrap().is_err());
        assert!(HubSpec::parse("hf://org/a/b").unwrap().is_err());
        assert!(HubSpec::parse("/models/x").is_none());
    }
}
