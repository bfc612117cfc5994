//! What can go wrong talking to the Hub, each case named with its fix.

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(
        "no model repository {repo} at {endpoint}: check the id (org/name); a private repo also \
         needs a token (HF_TOKEN or --token-file)"
    )]
    RepoNotFound { repo: String, endpoint: String },
    #[error(
        "{repo} is gated: accept its terms on the Hub with your account, then give that \
         account's token (HF_TOKEN or --token-file)"
    )]
    Gated { repo: String },
    #[error("{endpoint} refused the token ({detail}): check HF_TOKEN or the --token-file")]
    BadToken { endpoint: String, detail: String },
    #[error("{repo} has no revision {revision:?} (a branch, tag or commit sha)")]
    RevisionNotFound { repo: String, revision: String },
    #[error("{repo} at {revision} has no file {path}")]
    EntryNotFound {
        repo: String,
        revision: String,
        path: String,
    },
    #[error("cannot reach the Hub at {endpoint} ({action})")]
    Unreachable {
        endpoint: String,
        action: String,
        source: reqwest::Error,
    },
    /// Not transient: nothing about a certificate changes by asking again.
    #[error("TLS to the Hub at {endpoint} failed ({action}): {failure}; {fix}")]
    Tls {
        endpoint: String,
        action: String,
        failure: Box<crate::tls::TlsFailure>,
        fix: String,
    },
    #[error("the Hub at {endpoint} answered {status} to {action}: {detail}")]
    Status {
        endpoint: String,
        action: String,
        status: u16,
        detail: String,
    },
    #[error("the Hub at {endpoint} sent something unexpected ({action}): {detail}")]
    Protocol {
        endpoint: String,
        action: String,
        detail: String,
    },
    #[error("bad Hub endpoint {endpoint:?}: {detail}")]
    Endpoint { endpoint: String, detail: String },
}

impl HubError {
    /// Whether trying again later may help (the network, or the Hub, struggling).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}
