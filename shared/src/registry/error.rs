//! Registry failures, each naming the registry, what was being done, and what to do about it.

use super::credentials::CredentialError;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "cannot reach registry {registry} ({action}): {source}; check the host and port, and \
         use --plain-http for a registry without TLS"
    )]
    Unreachable {
        registry: String,
        action: String,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "registry {registry} rejected the credentials from {credential_source} ({action}): check \
         them, or give others with --creds, --token-file or --authfile"
    )]
    Unauthorized {
        registry: String,
        action: String,
        credential_source: String,
    },
    #[error("registry {registry} rejected the token during {action}; a new one is fetched for the next attempt")]
    TokenRejectedMidUpload { registry: String, action: String },
    #[error(
        "registry {registry} requires credentials and none were found: give --creds, \
         --token-file or --authfile, or log in with podman/docker"
    )]
    NoCredentials { registry: String },
    #[error("registry {registry} denied {action} (403 Forbidden): the credentials lack permission on this repository")]
    Denied { registry: String, action: String },
    #[error("registry {registry} answered {status} to {action}: {body}")]
    Status {
        registry: String,
        action: String,
        status: u16,
        body: String,
    },
    #[error(
        "registry {registry} refused blob {digest}: the bytes it received have another digest \
         (DIGEST_INVALID)"
    )]
    DigestRefused { registry: String, digest: String },
    #[error("registry {registry} sent an invalid answer to {action}: {detail}")]
    Protocol {
        registry: String,
        action: String,
        detail: String,
    },
    #[error("{last} (gave up after {attempts} attempts)")]
    RetriesExhausted {
        attempts: u32,
        last: Box<RegistryError>,
    },
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
}

impl RegistryError {
    /// An unexpected status, with the registry's own error text (bounded, for the terminal).
    pub fn status(registry: &str, action: &str, status: reqwest::StatusCode, body: &[u8]) -> Self {
        let text = String::from_utf8_lossy(&body[..body.len().min(2048)])
            .trim()
            .to_string();
        Self::Status {
            registry: registry.into(),
            action: action.into(),
            status: status.as_u16(),
            body: if text.is_empty() {
                "(empty body)".into()
            } else {
                text
            },
        }
    }

    /// Whether trying again (after a pause) might succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::TokenRejectedMidUpload { .. } => true,
            Self::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}
