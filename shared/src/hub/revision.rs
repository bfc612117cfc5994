//! A Hub repo at one commit: where a model came from, as images and records name it.

/// `repo` (ORG/NAME) at commit `sha`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubRevision {
    pub repo: String,
    pub sha: String,
}

impl HubRevision {
    /// The repo's page on the public Hub, as provenance labels give it.
    pub fn source_url(&self) -> String {
        format!("https://huggingface.co/{}", self.repo)
    }
}
