//! Streaming one blob from its producer into one or more destinations, resumable at the byte:
//! the source is read once, each destination gets its own upload ([`Lane`]) from its own
//! resume point, and after a failure each goes on from what its registry holds (see `lane`
//! for how an answer is read). The digest is always over every byte; the registry checks it
//! again on commit. A blob whose digest is known in advance (a copy between registries) and
//! whose destinations all check it is not hashed here: it goes on from exactly the byte the
//! registry holds, re-reading nothing.

use std::time::Duration;

use super::chunks::ChunkWriter;
use super::copy::{Producer, Sent, TransferError};
use super::destination::{DestError, Destination};
use super::download::SourceError;
use super::lane::{Failure, Lane};
use super::method::UploadMethod;
use super::resume_points::ResumePoints;
use super::uploads::UploadLog;
use crate::progress::Progress;
use crate::registry::RegistryError;

/// Attempts at a blob when the network or the registry fails in a way that may pass.
const TRANSIENT_ATTEMPTS: u32 = 4;
/// Attempts at a blob in all, whatever the failures: a bound on every way round.
const ALL_ATTEMPTS: u32 = 16;

/// Streams `producer` into `dest`, going on from where an earlier attempt or run stopped.
pub async fn stream_blob<P: Producer>(
    dest: &Destination,
    producer: &P,
    method: UploadMethod,
    uploads: &UploadLog,
    progress: &Progress,
) -> Result<Sent, TransferError> {
    let mut sent = stream_blob_to_all(&[dest], producer, method, uploads, progress).await?;
    Ok(sent.remove(0))
}

/// Streams `producer` into every destination of `dests` at once; returns what happened at
/// each, in order.
pub async fn stream_blob_to_all<P: Producer>(
    dests: &[&Destination],
    producer: &P,
    method: UploadMethod,
    uploads: &UploadLog,
    progress: &Progress,
) -> Result<Vec<Sent>, TransferError> {
    let (size, id) = (producer.size(), producer.id());
    let hashing = !producer.checked_by_destination() || dests.iter().any(|d| !d.checks_digests());
    let mut lanes = Vec::with_capacity(dests.len());
    for (index, dest) in dests.iter().enumerate() {
        let points = ResumePoints::new(uploads, dest.upload_key(&id), size, hashing);
        let lane = Lane::open(dest, points, method).await?;
        progress.adjust_total(-(lane.start.send_from as i64));
        lanes.push((index, lane));
    }
    let mut sent: Vec<Option<Sent>> = vec![None; dests.len()];
    let (mut attempts, mut transient) = (0, 0);
    while !lanes.is_empty() {
        attempts += 1;
        for (_, lane) in &lanes {
            lane.points.take_sent();
        }
        let (digest, failures) = attempt(&mut lanes, producer, progress).await?;
        let mut next = Vec::with_capacity(lanes.len());
        let mut waits = Duration::ZERO;
        let mut retry_with = Vec::new();
        for ((index, lane), failure) in lanes.into_iter().zip(failures) {
            match failure {
                None => {
                    let digest = digest.clone().expect("a blob with no failure was produced");
                    sent[index] = Some(Sent {
                        digest,
                        size,
                        sent: true,
                    });
                }
                Some(failure) => {
                    if let Failure::Send(e) | Failure::Commit(e) = &failure {
                        let last = attempts >= ALL_ATTEMPTS;
                        if e.is_retryable() && !is_negotiable(e) {
                            transient += 1;
                        }
                        if last || transient >= TRANSIENT_ATTEMPTS {
                            let (Failure::Send(e) | Failure::Commit(e)) = failure else {
                                unreachable!("matched above")
                            };
                            return Err(e.into());
                        }
                        if e.is_retryable() && !is_negotiable(e) {
                            waits = waits.max(pause_after(e, transient));
                            let what = match &failure {
                                Failure::Commit(e) => uncommitted(e),
                                _ => e.to_string(),
                            };
                            tracing::warn!(
                                "{what}; trying again in {:?} (attempt {} of {TRANSIENT_ATTEMPTS})",
                                pause_after(e, transient),
                                transient + 1
                            );
                        }
                    }
                    retry_with.push((index, lane, failure));
                }
            }
        }
        tokio::time::sleep(waits).await;
        for (index, mut lane, failure) in retry_with {
            let budgeted = size - lane.start.send_from;
            let recovered = lane.recover(failure, digest.as_deref()).await;
            // The total grows by what this attempt sent that must be sent again.
            let to_send = match recovered {
                Ok(false) => size - lane.start.send_from,
                _ => 0,
            };
            progress.adjust_total((lane.points.take_sent() + to_send) as i64 - budgeted as i64);
            match recovered {
                Ok(true) => {
                    lane.points.forget();
                    sent[index] = Some(Sent {
                        digest: digest.clone().expect("checked with a digest"),
                        size,
                        sent: true,
                    });
                }
                Ok(false) => next.push((index, lane)),
                Err(e) => {
                    if !e.is_retryable() {
                        lane.points.forget();
                    }
                    return Err(e.into());
                }
            }
        }
        lanes = next;
    }
    Ok(sent.into_iter().flatten().collect())
}

/// One pass: produce the blob into every lane, then commit it where it all arrived. Returns
/// the digest (when the producer finished) and each lane's failure, if any. `Err`: the
/// source failed for good.
async fn attempt<P: Producer>(
    lanes: &mut [(usize, Lane<'_>)],
    producer: &P,
    progress: &Progress,
) -> Result<(Option<String>, Vec<Option<Failure>>), TransferError> {
    let chunk = lanes
        .iter()
        .map(|(_, l)| l.chunk_size())
        .min()
        .unwrap_or(u64::MAX);
    let starts = lanes.iter().map(|(_, l)| l.stream_start()).collect();
    let size = lanes.first().map_or(0, |(_, l)| l.points.size());
    let (writer, receivers) = ChunkWriter::fan_out(size, chunk, starts);
    let receiving = lanes
        .iter_mut()
        .zip(receivers)
        .map(|((_, lane), chunks)| lane.receive(chunks));
    let (produced, received) = tokio::join!(
        producer.produce(writer, progress),
        futures_util::future::join_all(receiving)
    );
    let digest = match produced {
        Ok(digest) => Some(digest),
        // The producer failed on its own (unreadable file, corrupt source): final.
        Err(TransferError::Source(e)) if !matches!(e, SourceError::Abandoned) => {
            return Err(e.into())
        }
        // The source registry failed: every lane stops, and goes on if the failure may pass.
        Err(TransferError::Dest(e)) if received.iter().all(Result::is_ok) => {
            if !e.is_retryable() {
                return Err(e.into());
            }
            tracing::warn!("{e}; trying the source again");
            None
        }
        Err(_) => None,
    };
    let mut failures = Vec::with_capacity(lanes.len());
    for ((_, lane), received) in lanes.iter_mut().zip(received) {
        failures.push(match (received, &digest) {
            (Err(e), _) => Some(Failure::Send(e)),
            (Ok(()), None) => Some(Failure::Stopped),
            (Ok(()), Some(digest)) => commit(lane, digest).await,
        });
    }
    Ok((digest, failures))
}

/// Commits the blob at one destination; `None` when it is done.
async fn commit(lane: &mut Lane<'_>, digest: &str) -> Option<Failure> {
    match lane.dest.commit(&mut lane.start.pending, digest).await {
        Ok(()) => {
            lane.points.forget();
            None
        }
        Err(e) => Some(Failure::Commit(e)),
    }
}

/// A commit that got no good answer: the registry was reached (every byte went there), so
/// this is never "cannot reach"; what it holds is asked next.
fn uncommitted(error: &DestError) -> String {
    match error {
        DestError::Registry(e) => match e.innermost() {
            RegistryError::Unreachable { registry, .. } => format!(
                "registry {registry} closed the connection without answering the commit: asking \
                 it what it holds"
            ),
            other => format!("the commit failed ({other}): asking the registry what it holds"),
        },
        other => other.to_string(),
    }
}

/// A refused range or a lost session is answered by asking the registry, not by waiting.
fn is_negotiable(error: &DestError) -> bool {
    matches!(
        error,
        DestError::Registry(e) if matches!(
            e.innermost(),
            RegistryError::RangeRefused { .. } | RegistryError::UploadUnknown { .. }
        )
    )
}

/// A rejected token is replaced at once; only a struggling registry is given time.
fn pause_after(error: &DestError, failures: u32) -> Duration {
    match error {
        DestError::Registry(RegistryError::TokenRejectedMidUpload { .. }) => Duration::ZERO,
        _ => Duration::from_secs(1 << failures),
    }
}
