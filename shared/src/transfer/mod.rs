//! Moving blobs (`docs/design.md`, "Moving bytes"): a producer (model files, or another registry) fills a
//! chunk stream that is hashed as it passes; a destination (a registry, or an OCI layout)
//! receives it with bounded buffers and commits it only under the digest computed over every
//! byte. Uploads resume at the byte, so an evicted pod loses no more than the last resume point. build-push and mirror share all of it.

pub mod checkpoint;
pub mod chunks;
mod dest_spec;
pub mod destination;
mod download;
mod error;
mod lane;
mod method;
mod oci_layout;
mod producer;
mod remote_blob;
pub mod resume_points;
mod send;
mod stream;
pub mod uploads;

pub use dest_spec::DestSpec;
pub use destination::Destination;
pub use download::produce_download;
pub use error::{DestError, SourceError, TransferError};
pub use method::{UploadMethod, UploadPlan};
pub use oci_layout::OciLayout;
pub use producer::{BlobOutcome, DigestCheck, InMemoryBlob, Producer};
pub use remote_blob::RemoteBlob;
pub use send::{send_blob, Blob, Sending};
pub use uploads::UploadLog;
