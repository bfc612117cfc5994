//! Streaming one blob from its producer into one or more destinations, resumable at the byte:
//! the source is read once, each destination gets its own upload ([`Lane`]) from its own
//! resume point, and after a failure each goes on from what its registry holds (see `lane`
//! for how an answer is read). The digest is always over every byte; the registry checks it
//! again on commit. A blob whose digest is known in advance (a copy between registries) and
//! whose destinations all check it is not hashed here: it goes on from exactly the byte the
//! registry holds, re-reading nothing.

use std::time::Duration;

use super::chunks::ChunkWriter;
use super::destination::Destination;
use super::error::{DestError, SourceError, TransferError};
use super::lane::{Failure, Lane};
use super::method::ChunkSize;
use super::producer::{BlobOutcome, Producer};
use super::resume_points::ResumePoints;
use super::uploads::UploadLog;
use crate::causes::ErrorCauses;
use crate::digest::Digest;
use crate::progress::Progress;
use crate::registry::RegistryError;

/// Attempts at a blob when the network or the registry fails in a way that may pass.
const TRANSIENT_ATTEMPTS: u32 = 4;
/// Attempts at a blob in all, whatever the failures: a bound on every way round.
const ALL_ATTEMPTS: u32 = 16;

/// Streams `producer` into every destination of `dests` at once; returns what happened at
/// each, in order.
pub async fn stream_blob_to_all<P: Producer>(
    dests: &[&Destination],
    producer: &P,
    uploads: &UploadLog,
    progress: &Progress,
) -> Result<Vec<BlobOutcome>, TransferError> {
    let (size, id) = (producer.size(), producer.id());
    let hashing = !producer.checked_by_destination() || dests.iter().any(|d| !d.checks_digests());
    let mut lanes = Vec::with_capacity(dests.len());
    for (index, dest) in dests.iter().enumerate() {
        let points = ResumePoints::new(uploads, dest.upload_key(&id), size, hashing);
        let lane = Lane::open(dest, points).await?;
        progress.adjust_total(-(lane.start.send_from as i64));
        lanes.push((index, lane));
    }
    let mut sent: Vec<Option<BlobOutcome>> = vec![None; dests.len()];
    let mut budget = Budget::default();
    while !lanes.is_empty() {
        for (_, lane) in &lanes {
            lane.points.take_sent();
        }
        let (digest, failures) = attempt(&mut lanes, producer, progress).await?;
        let mut failed = Vec::new();
        for ((index, lane), failure) in lanes.drain(..).zip(failures) {
            match failure {
                None => sent[index] = Some(sent_blob(digest.as_ref(), size)),
                Some(failure) => failed.push((index, lane, failure)),
            }
        }
        let pause = match budget.admit(&failed) {
            Ok(pause) => pause,
            Err(last) => match failed.swap_remove(last).2 {
                Failure::Send(e) | Failure::Commit(e) => return Err(e.into()),
                Failure::Stopped => unreachable!("a stopped lane spends no budget"),
            },
        };
        tokio::time::sleep(pause).await;
        for (index, mut lane, failure) in failed {
            match recover(&mut lane, failure, digest.as_deref(), progress).await? {
                true => sent[index] = Some(sent_blob(digest.as_ref(), size)),
                false => lanes.push((index, lane)),
            }
        }
    }
    Ok(sent.into_iter().flatten().collect())
}

fn sent_blob(digest: Option<&Digest>, size: u64) -> BlobOutcome {
    BlobOutcome::uploaded(digest.expect("a blob that arrived was produced"), size)
}

/// How many more attempts a blob gets: few for failures that only time may cure, more in all
/// for the negotiations a registry's answers lead to.
#[derive(Default)]
struct Budget {
    attempts: u32,
    transient: u32,
}

impl Budget {
    /// Counts one attempt that ended in `failed`; returns how long to wait before the next,
    /// or the position in `failed` of the failure that used the budget up.
    fn admit(&mut self, failed: &[(usize, Lane<'_>, Failure)]) -> Result<Duration, usize> {
        self.attempts += 1;
        let mut pause = Duration::ZERO;
        for (position, (_, _, failure)) in failed.iter().enumerate() {
            let (Failure::Send(e) | Failure::Commit(e)) = failure else {
                continue;
            };
            let transient = e.is_transient() && !is_negotiable(e);
            self.transient += u32::from(transient);
            if self.attempts >= ALL_ATTEMPTS || self.transient >= TRANSIENT_ATTEMPTS {
                return Err(position);
            }
            if transient {
                let wait = pause_after(e, self.transient);
                let what = match failure {
                    Failure::Commit(e) => uncommitted(e),
                    _ => e.causes().to_string(),
                };
                tracing::warn!(
                    "{what}; trying again in {wait:?} (attempt {} of {TRANSIENT_ATTEMPTS})",
                    self.transient + 1
                );
                pause = pause.max(wait);
            }
        }
        Ok(pause)
    }
}

/// Finds where `lane` goes on after `failure`, growing the progress total by what must be
/// sent again. `Ok(true)`: the blob is at the destination after all.
async fn recover(
    lane: &mut Lane<'_>,
    failure: Failure,
    digest: Option<&str>,
    progress: &Progress,
) -> Result<bool, DestError> {
    let budgeted = lane.points.size() - lane.start.send_from;
    let recovered = lane.recover(failure, digest).await;
    let to_send = match recovered {
        Ok(false) => lane.points.size() - lane.start.send_from,
        _ => 0,
    };
    progress.adjust_total((lane.points.take_sent() + to_send) as i64 - budgeted as i64);
    match recovered {
        Ok(true) => lane.points.forget(),
        // A final failure leaves nothing a rerun could go on from.
        Err(ref e) if !e.is_transient() => lane.points.forget(),
        _ => {}
    }
    recovered
}

/// One pass: produce the blob into every lane, then commit it where it all arrived. Returns
/// the digest (when the producer finished) and each lane's failure, if any. `Err`: the
/// source failed for good.
async fn attempt<P: Producer>(
    lanes: &mut [(usize, Lane<'_>)],
    producer: &P,
    progress: &Progress,
) -> Result<(Option<Digest>, Vec<Option<Failure>>), TransferError> {
    let chunk = lanes
        .iter()
        .map(|(_, l)| l.chunk_size())
        .min()
        .unwrap_or(ChunkSize::WholeBlob);
    let starts = lanes.iter().map(|(_, l)| l.stream_start()).collect();
    let size = lanes.first().map_or(0, |(_, l)| l.points.size());
    let (writer, receivers) = ChunkWriter::fan_out(size, chunk.limit(), starts);
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
            if !e.is_transient() {
                return Err(e.into());
            }
            tracing::warn!("{}; trying the source again", e.causes());
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
            other => format!(
                "the commit failed ({}): asking the registry what it holds",
                other.causes()
            ),
        },
        other => other.causes().to_string(),
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
