//! How each registry keeps a blob upload: the personalities a [`super::SpecRegistry`] can
//! take. Each copies one registry's behaviour as its public source or issue tracker shows it
//! (cited per variant), quirks included: a look-alike that behaves better than the real one
//! would hide the bugs users meet.

/// Whose upload rules the registry follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Personality {
    /// CNCF distribution 3.x (`registry/handlers/blobupload.go`): the Location carries a
    /// `_state` with the offset, and a PATCH or PUT whose `_state` offset is not the stored
    /// size gets 416 RANGE_INVALID (`ResumeBlobUpload`), as does a `Content-Range` that does
    /// not start at the stored size; a GET does not check the state and gives a fresh one. A
    /// PATCH cut off mid-body keeps what arrived (the writer is closed either way). A failed
    /// commit cancels the upload.
    Distribution3,
    /// Quay (`endpoints/v2/blob.py`, `data/registry_model/blobuploader.py`): the byte count and
    /// sha256 state live in the database, read when a request starts and written when it ends,
    /// a request cut off included. POST answers `Range: bytes=0--1`; GET answers
    /// `Range: bytes=0-<count>` (one past the spec's last index) and no Location; PATCH answers
    /// `Range: 0-<count-1>` and a Location without query. A `Content-Range` that is not
    /// `<digits>-<digits>` (a `bytes ` prefix) gets 400; one starting past the count gets 416
    /// with `Range: 0-<count>` and an empty body; one starting before it has the overlap
    /// skipped; none at all writes at byte 0 and hashes on from the stored state. Any error
    /// during a commit deletes the upload (`complete_when_uploaded`).
    Quay,
    /// GHCR (closed source; oras-project/rust-oci-client #35, wasmCloud/wash #268, ocx-sh/ocx
    /// #237): a PATCH that says its range and carries over 4 MiB gets 416
    /// REQUESTED_RANGE_NOT_SATISFIABLE "the request body is too large"; docker's one streamed
    /// PATCH without a range is taken at any size. What it does with a cut request is not
    /// documented: modelled as losing the upload, the less forgiving guess.
    Ghcr,
    /// Google Artifact Registry ("does not support Docker chunked uploads", its Docker API
    /// reference; containers/skopeo #1101, dotnet/sdk-container-builds #287): a PATCH with a
    /// range, or a second PATCH, gets 400 UNSUPPORTED; a cut upload is lost (undocumented).
    ArtifactRegistry,
    /// Amazon ECR (aws/containers-roadmap #2831, crashappsec/chalk #682): each PATCH is one
    /// part of an S3 multipart upload; its `Range` answers stay at the end of the first part
    /// while later parts are stored; a part must start at the stored size (else 416); a part
    /// under 5 MiB that is not the last fails the commit (S3's minimum); a cut part is lost.
    Ecr,
    /// Artifactory HA behind a load balancer that spreads requests over two nodes: the bytes
    /// of an upload live on the node its first PATCH reached, and a later PATCH or GET on the
    /// other node does not find them (404 BLOB_UPLOAD_UNKNOWN, and a GET there says nothing
    /// is held), which is why oci-modelcar 1.0 dropped chunking; a commit works on either.
    ArtifactoryHa,
}

impl Personality {
    pub const ALL: [Personality; 6] = [
        Self::Distribution3,
        Self::Quay,
        Self::Ghcr,
        Self::ArtifactRegistry,
        Self::Ecr,
        Self::ArtifactoryHa,
    ];

    /// Whether a rerun can go on from the bytes of a PATCH cut off mid-body: the upload keeps
    /// them, and says so to any request (Artifactory HA keeps them on one node only).
    pub fn keeps_cut_bytes(self) -> bool {
        matches!(self, Self::Distribution3 | Self::Quay)
    }

    /// Whether a cut request loses the whole upload (the session is gone).
    pub(super) fn loses_cut_upload(self) -> bool {
        matches!(self, Self::Ghcr | Self::ArtifactRegistry)
    }
}
