//! How a blob's bytes go to a registry: one streamed request, or a series of chunks, and the
//! fall-back to one request per blob for a registry that does not take chunks.

use std::sync::atomic::{AtomicBool, Ordering};

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

    /// What one request carries: the rest of the blob, or chunks of the size asked for.
    pub fn chunk_size(self) -> ChunkSize {
        match self {
            Self::Streamed => ChunkSize::WholeBlob,
            Self::Chunked(n) => ChunkSize::Bytes(n),
        }
    }

    pub fn is_chunked(self) -> bool {
        matches!(self, Self::Chunked(_))
    }
}

/// The upload method of one destination for a whole run: the one asked for, until the
/// registry shows it does not take it (see `Lane::recover` for the answers that do); from then
/// on each blob goes in one request from byte 0, which every registry takes. The registry
/// client only speaks the protocol: this choice is the transfer's.
#[derive(Debug)]
pub struct UploadPlan {
    requested: UploadMethod,
    single_request_only: AtomicBool,
}

impl UploadPlan {
    pub fn new(requested: UploadMethod) -> Self {
        Self {
            requested,
            single_request_only: AtomicBool::new(false),
        }
    }

    /// The method the next blob's upload starts with.
    pub fn method(&self) -> UploadMethod {
        if self.single_request_only.load(Ordering::Relaxed) {
            UploadMethod::Streamed
        } else {
            self.requested
        }
    }

    /// Falls back to one request per blob for the rest of the run, said once with `why` and
    /// the `registry`; returns the method to go on with.
    pub fn fall_back(&self, registry: &str, why: &str) -> UploadMethod {
        if !self.single_request_only.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                registry,
                "{why}: this run sends every blob in one request from byte 0"
            );
        }
        UploadMethod::Streamed
    }
}

/// What one upload request carries. Ordered so that the smallest of several destinations'
/// sizes is the one a shared stream is cut to: any byte count is smaller than a whole blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChunkSize {
    /// At most this many bytes.
    Bytes(u64),
    /// Everything from where the request starts to the end of the blob.
    WholeBlob,
}

impl ChunkSize {
    /// At least `min` bytes (a registry's `OCI-Chunk-Min-Length`); a whole blob is.
    pub fn at_least(self, min: u64) -> Self {
        match self {
            Self::Bytes(n) => Self::Bytes(n.max(min)),
            Self::WholeBlob => Self::WholeBlob,
        }
    }

    /// The most bytes a chunk stream puts in one chunk.
    pub fn limit(self) -> u64 {
        match self {
            Self::Bytes(n) => n,
            Self::WholeBlob => u64::MAX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ChunkSize, UploadMethod, UploadPlan};

    #[test]
    fn a_plan_keeps_its_method_until_it_falls_back_then_sends_whole_blobs() {
        let plan = UploadPlan::new(UploadMethod::Chunked(5 << 20));
        assert_eq!(plan.method(), UploadMethod::Chunked(5 << 20));
        assert_eq!(plan.fall_back("ghcr.io", "refused"), UploadMethod::Streamed);
        assert_eq!(plan.method(), UploadMethod::Streamed);
        assert_eq!(plan.fall_back("ghcr.io", "refused"), UploadMethod::Streamed);
    }

    #[test]
    fn the_smallest_chunk_size_of_several_is_a_byte_count_if_any() {
        let sizes = [
            ChunkSize::WholeBlob,
            ChunkSize::Bytes(5 << 20),
            ChunkSize::Bytes(4 << 20),
        ];
        assert_eq!(sizes.iter().min(), Some(&ChunkSize::Bytes(4 << 20)));
        assert_eq!(ChunkSize::WholeBlob.at_least(1 << 20), ChunkSize::WholeBlob);
        assert_eq!(
            ChunkSize::Bytes(1).at_least(1 << 20),
            ChunkSize::Bytes(1 << 20)
        );
    }
}
