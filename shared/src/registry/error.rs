//! Registry failures, each naming the registry, what was being done, and what to do about it.

use super::credentials::CredentialError;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "cannot reach registry {registry} ({action}); check the host and port, and \
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
    /// 416: the registry will not take bytes from where they were sent (it holds another
    /// count, another client moved the upload on, or it refuses such a request at all).
    #[error(
        "registry {registry} refused {action} (416 Range Not Satisfiable{}): {body}",
        held.map(|n| format!(", saying it holds {n} bytes")).unwrap_or_default()
    )]
    RangeRefused {
        registry: String,
        action: String,
        /// What its `Range` header claims it holds, if it sent one.
        held: Option<u64>,
        body: String,
    },
    /// The registry does not know the upload (any more): it expired, a failed commit dropped
    /// it, or the request reached a node that never saw it.
    #[error("registry {registry} no longer knows the upload ({action}): {body}")]
    UploadUnknown {
        registry: String,
        action: String,
        body: String,
    },
    #[error(
        "registry {registry} refused to log in with the credentials from {credential_source}: \
         429 Too Many Requests{}; too many failed logins lock the account (Quay locks it for \
         longer after each one), so check the credentials and try again after that, not sooner",
        retry_after.map(|s| format!(", retry after {s} s")).unwrap_or_default()
    )]
    LockedOut {
        registry: String,
        credential_source: String,
        retry_after: Option<u64>,
    },
    #[error(
        "registry {registry} placed the upload on {upload_origin}, another origin than its own \
         {origin}, which refused it (401) during {action}: a password is never sent to another \
         origin, and a token only over HTTPS; reach the registry by the name it gives its \
         uploads (Quay's SERVER_HOSTNAME, the host behind a proxy), or use token auth over HTTPS"
    )]
    ForeignOriginRefused {
        registry: String,
        action: String,
        origin: String,
        upload_origin: String,
    },
    #[error(
        "registry {registry} asks for a token from {realm}: refused, so that no credential goes \
         there (a token service must be https; plain http only on the registry's own host when \
         that is a plain-http registry on this machine)"
    )]
    UnsafeRealm { registry: String, realm: String },
    #[error("registry {registry} sent more than {limit} bytes for {action}: refused, and nothing read past that")]
    TooLarge {
        registry: String,
        action: String,
        limit: u64,
    },
    #[error("registry {registry} sent an invalid answer to {action}: {detail}")]
    Protocol {
        registry: String,
        action: String,
        detail: String,
    },
    #[error("gave up after {attempts} {}", if *attempts == 1 { "attempt" } else { "attempts" })]
    RetriesExhausted {
        attempts: u32,
        #[source]
        last: Box<RegistryError>,
    },
    /// Not transient: nothing about a certificate changes by asking again.
    #[error("TLS to registry {registry} failed ({action}): {failure}; {fix}")]
    Tls {
        registry: String,
        action: String,
        failure: Box<crate::tls::TlsFailure>,
        fix: String,
    },
    #[error("cannot use the certificates for registry {registry}")]
    CertDir {
        registry: String,
        #[source]
        source: crate::tls::CertDirError,
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

    /// The failure itself, under the "gave up after N attempts" wrapper.
    pub fn innermost(&self) -> &Self {
        match self {
            Self::RetriesExhausted { last, .. } => last.innermost(),
            other => other,
        }
    }

    /// Whether the registry's JSON error body carries `code` (`{"errors":[{"code":...}]}`).
    pub fn has_code(&self, code: &str) -> bool {
        match self.innermost() {
            Self::Status { body, .. }
            | Self::RangeRefused { body, .. }
            | Self::UploadUnknown { body, .. } => body.contains(&format!("\"{code}\"")),
            _ => false,
        }
    }
}
