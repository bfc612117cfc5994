//! How a blob's bytes go to a registry: one streamed request, or a series of chunks.

/// The upload method. [`UploadMethod::Streamed`] is the default because it is what every
/// registry takes: docker, containerd and skopeo push that way, while chunks meet limits
/// (GHCR refuses a chunk over 4 MiB, ECR one under 5 MiB, Google Artifact Registry takes none,
/// an Artifactory HA node may not know the session the previous chunk opened). Resuming does
/// not need chunks: the registry is asked how many bytes it holds, and the hash goes on from a
/// point marked every 64 MiB as the bytes are read (see `resume_points`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadMethod {
    /// One PATCH carries the rest of the blob.
    Streamed,
    /// PATCHes of this many bytes (raised to what the registry asks for at least).
    Chunked(u64),
}

impl UploadMethod {
    /// `--chunk-size`: none, or 0, streams.
    pub fn from_chunk_size(size: Option<u64>) -> Self {
        match size {
            None | Some(0) => Self::Streamed,
            Some(n) => Self::Chunked(n),
        }
    }

    /// Bytes per request: a streamed request is one chunk as long as the blob.
    pub fn chunk_size(self) -> u64 {
        match self {
            Self::Streamed => u64::MAX,
            Self::Chunked(n) => n,
        }
    }

    pub fn is_chunked(self) -> bool {
        matches!(self, Self::Chunked(_))
    }
}
