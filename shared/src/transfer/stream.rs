//! Streaming one blob from its producer into a destination, resumable at the byte: each chunk
//! the destination accepts is a point the upload can go on from (its offset, the sha256 state
//! there, and the upload URL, also written to the uploads log). After a failure, in this run
//! or a later one, the registry is asked how far it got; the producer starts again at the
//! nearest such point at or before it (re-reading at most one chunk just to hash it) and only
//! the bytes the registry lacks are sent. The digest is always over every byte; the registry
//! checks it again on commit. A blob whose digest is known in advance (a copy between
//! registries) and whose destinations all check it is not hashed here: it goes on from exactly
//! the byte the registry holds, re-reading nothing.

use std::time::Duration;

use super::checkpoint::Checkpoint;
use super::chunks::{ChunkWriter, StreamStart};
use super::copy::{Producer, Sent, TransferError};
use super::destination::{DestError, Destination, Pending};
use super::download::SourceError;
use super::uploads::{UploadKey, UploadLog, UploadRecord};
use crate::progress::Progress;
use crate::registry::RegistryError;

const BLOB_ATTEMPTS: u32 = 4;

/// Where an attempt starts: the upload, the hash state to produce from, and the first byte
/// the destination lacks.
struct StartPoint {
    pending: Pending,
    from: Checkpoint,
    send_from: u64,
}

/// Streams `producer` into `dest`, going on from where an earlier attempt or run stopped.
pub async fn stream_blob<P: Producer>(
    dest: &Destination,
    producer: &P,
    chunk_size: u64,
    uploads: &UploadLog,
    progress: &Progress,
) -> Result<Sent, TransferError> {
    let mut sent = stream_blob_to_all(&[dest], producer, chunk_size, uploads, progress).await?;
    Ok(sent.remove(0))
}

/// Streams `producer` into every destination of `dests` at once: the source is read once, each
/// destination gets its own upload from its own resume point. When any of them fails in a way
/// that may pass, all go on from where each stopped.
pub async fn stream_blob_to_all<P: Producer>(
    dests: &[&Destination],
    producer: &P,
    chunk_size: u64,
    uploads: &UploadLog,
    progress: &Progress,
) -> Result<Vec<Sent>, TransferError> {
    let (size, id) = (producer.size(), producer.id());
    let hashing = !producer.checked_by_destination() || dests.iter().any(|d| !d.checks_digests());
    let mut lanes = Vec::with_capacity(dests.len());
    for dest in dests {
        let log = BlobLog::new(uploads, dest.upload_key(&id), size, hashing);
        let start = open(dest, &log).await?;
        progress.adjust_total(-(start.send_from as i64));
        lanes.push(Lane::new(dest, log, start));
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        let chunk = lanes
            .iter()
            .map(|l| l.start.pending.min_chunk())
            .fold(chunk_size, u64::max);
        let starts = lanes.iter().map(Lane::stream_start).collect();
        let (writer, receivers) = ChunkWriter::fan_out(size, chunk, starts);
        let receiving = lanes
            .iter_mut()
            .zip(receivers)
            .map(|(lane, chunks)| lane.receive(chunks));
        let (produced, received) = tokio::join!(
            producer.produce(writer, progress),
            futures_util::future::join_all(receiving)
        );
        let failure = match (produced, received.into_iter().find_map(Result::err)) {
            (Ok(digest), None) => return commit_all(lanes, digest, size).await,
            // The producer failed on its own (unreadable file, corrupt source): final.
            (Err(TransferError::Source(e)), _) if !matches!(e, SourceError::Abandoned) => {
                return Err(e.into())
            }
            (_, Some(e)) | (Err(TransferError::Dest(e)), None) => e,
            (Err(e), None) => return Err(e),
        };
        if !failure.is_retryable() || attempt == BLOB_ATTEMPTS {
            return Err(failure.into());
        }
        // A rejected token is replaced at once; only a struggling registry is given time.
        let pause = match &failure {
            DestError::Registry(RegistryError::TokenRejectedMidUpload { .. }) => Duration::ZERO,
            _ => Duration::from_secs(1 << attempt),
        };
        tracing::warn!(
            "{failure}; trying again in {pause:?} (attempt {} of {BLOB_ATTEMPTS})",
            attempt + 1
        );
        tokio::time::sleep(pause).await;
        let mut next = Vec::with_capacity(lanes.len());
        for lane in lanes {
            let start = resume(lane.dest, lane.start.pending, lane.latest, size, &lane.log).await?;
            next.push(Lane::new(lane.dest, lane.log, start));
        }
        lanes = next;
    }
}

/// One destination's upload of the blob: where it started, and the last point it is known
/// to hold (the chunk boundary before the next chunk it was sent).
struct Lane<'a> {
    dest: &'a Destination,
    log: BlobLog<'a>,
    start: StartPoint,
    latest: Checkpoint,
}

impl<'a> Lane<'a> {
    fn new(dest: &'a Destination, log: BlobLog<'a>, start: StartPoint) -> Self {
        Self {
            dest,
            log,
            latest: start.from.clone(),
            start,
        }
    }

    fn stream_start(&self) -> StreamStart {
        StreamStart {
            from: self.start.from.clone(),
            send_from: self.start.send_from,
        }
    }

    async fn receive(
        &mut self,
        chunks: tokio::sync::mpsc::Receiver<super::chunks::Chunk>,
    ) -> Result<(), DestError> {
        let Self {
            dest,
            log,
            start,
            latest,
        } = self;
        let mut confirmed = |at: &Checkpoint, location: &str| {
            log.save(location, at);
            *latest = at.clone();
        };
        dest.receive(&mut start.pending, chunks, &mut confirmed)
            .await
    }
}

/// Commits the blob at every destination, in order.
async fn commit_all(
    lanes: Vec<Lane<'_>>,
    digest: String,
    size: u64,
) -> Result<Vec<Sent>, TransferError> {
    let mut sent = Vec::with_capacity(lanes.len());
    for lane in lanes {
        let committed = lane.dest.commit(lane.start.pending, &digest).await;
        // A commit the registry refused (a digest it computed otherwise) ends the session as
        // well: the next run starts the blob again.
        if !committed.as_ref().is_err_and(DestError::is_retryable) {
            lane.log.forget();
        }
        committed?;
        sent.push(Sent {
            digest: digest.clone(),
            size,
            sent: true,
        });
    }
    Ok(sent)
}

/// The first attempt: an upload an earlier run left, if the registry still has it, else a
/// new one.
async fn open(dest: &Destination, log: &BlobLog<'_>) -> Result<StartPoint, DestError> {
    if let Some(record) = log.find() {
        if let Some(mut pending) = dest.reopen(&record.location) {
            match dest.resume_offset(&mut pending).await {
                Ok(Some(held)) if held <= log.size => {
                    let from = Checkpoint::to_resume(log.hashing, record.checkpoint(), held);
                    tracing::info!(
                        "an earlier run left this upload with {held} of {} bytes at the registry: \
                         going on from there ({})",
                        log.size,
                        reading_from(&from)
                    );
                    return Ok(StartPoint {
                        pending,
                        from,
                        send_from: held,
                    });
                }
                Err(e) if e.is_retryable() => return Err(e),
                _ => tracing::warn!(
                    "the registry no longer has the upload an earlier run left ({}): sending this \
                     blob from byte 0",
                    record.location
                ),
            }
        }
        log.forget();
    }
    fresh(dest, log).await
}

/// After a failed attempt: go on from what the registry holds, or from byte 0 in a new upload
/// if it forgot this one or holds what cannot be right.
async fn resume(
    dest: &Destination,
    mut pending: Pending,
    latest: Checkpoint,
    size: u64,
    log: &BlobLog<'_>,
) -> Result<StartPoint, DestError> {
    match dest.resume_offset(&mut pending).await? {
        Some(held) if held <= size => {
            // Normally `latest` (the last chunk boundary) is at or just before `held`; a
            // registry that lost accepted bytes leaves only byte 0 to hash from.
            let from = Checkpoint::to_resume(log.hashing, Some(latest), held);
            tracing::info!(
                "the destination holds {held} of {size} bytes: going on from there ({})",
                reading_from(&from)
            );
            Ok(StartPoint {
                pending,
                from,
                send_from: held,
            })
        }
        _ => {
            tracing::warn!(
                "the destination no longer has this upload: sending the blob again from byte 0"
            );
            fresh(dest, log).await
        }
    }
}

async fn fresh(dest: &Destination, log: &BlobLog<'_>) -> Result<StartPoint, DestError> {
    let pending = dest.start().await?;
    let from = Checkpoint::to_resume(log.hashing, None, 0);
    if let Some(location) = pending.location() {
        log.save(location, &from);
    }
    Ok(StartPoint {
        pending,
        from,
        send_from: 0,
    })
}

/// Where the producer reads from, for the log.
fn reading_from(from: &Checkpoint) -> String {
    match from.is_hashed() {
        true => format!("hashing from byte {}", from.offset()),
        false => format!("reading from byte {}", from.offset()),
    }
}

/// One blob's entry in the uploads log (nothing for a destination that keeps no uploads).
struct BlobLog<'a> {
    uploads: &'a UploadLog,
    key: Option<UploadKey>,
    size: u64,
    /// Whether the blob is hashed here (else its checkpoints only count bytes).
    hashing: bool,
}

impl<'a> BlobLog<'a> {
    fn new(uploads: &'a UploadLog, key: Option<UploadKey>, size: u64, hashing: bool) -> Self {
        Self {
            uploads,
            key,
            size,
            hashing,
        }
    }

    fn find(&self) -> Option<UploadRecord> {
        let record = self.uploads.find(self.key.as_ref()?)?;
        (record.size == self.size).then_some(record)
    }

    fn save(&self, location: &str, at: &Checkpoint) {
        if let Some(key) = &self.key {
            self.uploads.save(UploadRecord {
                key: key.clone(),
                size: self.size,
                location: location.into(),
                offset: at.offset(),
                sha256_state: at.encode_state(),
            });
        }
    }

    fn forget(&self) {
        if let Some(key) = &self.key {
            self.uploads.forget(key);
        }
    }
}
