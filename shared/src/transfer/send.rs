//! Sending one blob to every destination that lacks it, the one way all blobs go: a
//! destination that holds the digest already is skipped, one on the registry the blob lives in
//! mounts it, and the rest receive it from one read of the source (see `stream`), or, for a
//! few bytes in memory, in one request each.

use super::destination::Destination;
use super::error::TransferError;
use super::producer::{BlobOutcome, Producer};
use super::stream::stream_blob_to_all;
use super::uploads::UploadLog;
use crate::digest::Digest;
use crate::progress::Progress;
use crate::registry::Reference;

/// A blob to send, and what is known of it before its bytes are read.
pub struct Blob<'a, P> {
    pub producer: &'a P,
    /// Its digest, when known beforehand (a copy, a cached layer, a config): a destination
    /// that holds it is skipped. Without it every destination receives the bytes.
    pub digest: Option<&'a Digest>,
    /// The repository the blob is in, if any: a destination on that registry mounts it.
    pub mount_from: Option<&'a Reference>,
}

/// How the bytes go: the log that makes uploads resumable, and the progress. (The upload
/// method is each destination's own: see `UploadPlan`.)
#[derive(Clone, Copy)]
pub struct Sending<'a> {
    pub uploads: &'a UploadLog,
    pub progress: &'a Progress,
}

/// Sends `blob` to every destination of `dests` that lacks it, reading the source at most
/// once; returns what became of it at each, in order.
pub async fn send_blob<P: Producer>(
    dests: &[&Destination],
    blob: Blob<'_, P>,
    how: Sending<'_>,
) -> Result<Vec<BlobOutcome>, TransferError> {
    let size = blob.producer.size();
    let counted = blob.producer.in_memory().is_none();
    let mut outcomes: Vec<Option<BlobOutcome>> = vec![None; dests.len()];
    if let Some(digest) = blob.digest {
        for (outcome, dest) in outcomes.iter_mut().zip(dests) {
            if present(dest, digest, blob.mount_from).await? {
                if counted {
                    how.progress.adjust_total(-(size as i64));
                }
                *outcome = Some(BlobOutcome::present(digest, size));
            }
        }
    }
    let lacking: Vec<&Destination> = dests
        .iter()
        .zip(&outcomes)
        .filter(|(_, outcome)| outcome.is_none())
        .map(|(dest, _)| *dest)
        .collect();
    if lacking.is_empty() {
        return Ok(outcomes.into_iter().flatten().collect());
    }
    let sent = match (blob.producer.in_memory(), blob.digest) {
        (Some(bytes), Some(digest)) => {
            for dest in &lacking {
                dest.put_bytes(digest, bytes.clone()).await?;
            }
            vec![BlobOutcome::uploaded(digest, size); lacking.len()]
        }
        _ => stream_blob_to_all(&lacking, blob.producer, how.uploads, how.progress)
            .await
            .map_err(|e| blob.producer.blame(e))?,
    };
    let mut sent = sent.into_iter();
    for outcome in outcomes.iter_mut().filter(|o| o.is_none()) {
        *outcome = sent.next();
    }
    Ok(outcomes.into_iter().flatten().collect())
}

/// Whether `dest` has the blob, or has just taken it by mount from `mount_from`.
async fn present(
    dest: &Destination,
    digest: &str,
    mount_from: Option<&Reference>,
) -> Result<bool, TransferError> {
    if dest.has_blob(digest).await? {
        return Ok(true);
    }
    match mount_from {
        Some(from) => Ok(dest.mount(digest, from).await?),
        None => Ok(false),
    }
}
