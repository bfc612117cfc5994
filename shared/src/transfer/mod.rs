//! Moving blobs (`docs/design.md`, "Moving bytes"): a producer (model files, or another registry) fills a
//! chunk stream that is hashed as it passes; a destination (a registry, or an OCI layout)
//! receives it with bounded buffers and commits it only under the digest computed over every
//! byte. Uploads resume at the byte, so an evicted pod loses no more than the last resume point. build-push and mirror share all of it.

pub mod checkpoint;
pub mod chunks;
mod copy;
pub mod destination;
mod download;
mod lane;
mod method;
mod oci_layout;
pub mod resume_points;
mod stream;
pub mod uploads;

pub use copy::{copy_blob, DigestCheck, Producer, RemoteBlob, Sent, TransferError};
pub use destination::{DestError, DestSpec, Destination, OciLayout};
pub use download::{produce_download, SourceError};
pub use method::UploadMethod;
pub use stream::{stream_blob, stream_blob_to_all};
pub use uploads::UploadLog;
