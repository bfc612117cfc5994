//! One destination's upload of one blob, and how it goes on after a failure.
//!
//! Whatever went wrong, the registry is asked how many bytes it holds, and its answer decides:
//! go on from there, or send the blob again from byte 0 in an upload of our own (said once in
//! the log). A disagreement about the offset is never retried as if the network were down:
//! - 416 at an offset the registry then confirms: its `Range` counts one past the last byte
//!   (Quay's GET and 416 do, `endpoints/v2/blob.py`), so one byte earlier is tried once; if
//!   that is refused too, the registry refuses ranged requests (GHCR over 4 MiB, a stale ECR
//!   offset) and the run stops using them;
//! - an offset that keeps moving while we send nothing: bytes of a killed request still
//!   arriving (behind a proxy) settle within a second or two; if they do not, another client
//!   is writing to the upload (a retried pod beside the old one), so we take our own;
//! - an upload the registry no longer knows (a failed commit dropped it, it expired, another
//!   node has it): unless the blob is there already, a new upload.

use std::time::Duration;

use super::checkpoint::Checkpoint;
use super::chunks::{Chunk, StreamStart};
use super::destination::{Destination, Pending};
use super::error::DestError;
use super::method::{ChunkSize, UploadMethod};
use super::resume_points::ResumePoints;
use crate::causes::ErrorCauses;
use crate::registry::RegistryError;

/// New uploads of one blob at one destination after the first, before giving up.
const FRESH_STARTS: u32 = 3;
/// Offset negotiations (a refused range, an unknown session) per blob and destination.
const NEGOTIATIONS: u32 = 8;
/// Asks while the held count moves, a second apart: longer than bytes of a dead client take
/// to drain through a proxy, shorter than a live upload takes.
const SETTLE_ASKS: u32 = 5;
const SETTLE_PAUSE: Duration = Duration::from_secs(1);

/// Where an attempt starts: the upload, the hash state to produce from, and the first byte
/// the destination lacks.
pub struct StartPoint {
    pub pending: Pending,
    pub from: Checkpoint,
    pub send_from: u64,
}

/// Why an attempt at this destination stopped.
pub enum Failure {
    /// Its own request failed.
    Send(DestError),
    /// Everything was sent, and the commit failed.
    Commit(DestError),
    /// Another destination or the source failed and the stream stopped.
    Stopped,
}

/// What the registry answered when asked how far the upload got.
enum Held {
    Bytes(u64),
    /// It does not know the upload.
    Unknown,
    /// The count kept moving though we sent nothing: someone else is writing to it.
    Moving,
    /// The count went down: the answers come from places that disagree (nodes of a cluster).
    Inconsistent,
}

pub struct Lane<'a> {
    pub dest: &'a Destination,
    pub points: ResumePoints,
    pub start: StartPoint,
    /// The method this lane's attempts use. Kept per lane, not read from the destination's
    /// plan each time: a refusal of chunks this lane sent still earns it its fall-back after
    /// another lane to the same destination has fallen back.
    method: UploadMethod,
    fresh_starts: u32,
    negotiations: u32,
    /// Whether one byte before a refused offset was tried (a count-style `Range`).
    tried_one_before: bool,
    /// Whether this upload went on from the middle at some point (a refused digest may then
    /// be the registry's fault in counting, and earns one fresh upload).
    resumed: bool,
}

impl<'a> Lane<'a> {
    /// The first attempt: an upload an earlier run left, if the registry still has it and it
    /// holds something, else a new one.
    pub async fn open(dest: &'a Destination, points: ResumePoints) -> Result<Self, DestError> {
        let method = dest.method();
        let reopened = match points.earlier_upload() {
            Some(location) => dest.reopen(&location).await.map(|p| (p, location)),
            None => None,
        };
        let Some((mut pending, location)) = reopened else {
            let start = fresh_start(dest, &points).await?;
            return Ok(Self::new(dest, points, start, method));
        };
        let size = points.size();
        let held = match settle(dest, &mut pending).await? {
            // Nothing to go on from: a new upload cannot collide with bytes still arriving.
            Held::Bytes(held) if held > 0 && held <= size => held,
            Held::Moving => {
                tracing::warn!(
                    "another client is still writing to the upload an earlier run left \
                     ({location}): sending this blob in an upload of its own"
                );
                return Self::restart(dest, points, method).await;
            }
            Held::Inconsistent => {
                tracing::warn!(
                    "the registry's answers about the upload an earlier run left disagree \
                     ({location}; nodes of a cluster?): sending this blob from byte 0"
                );
                return Self::restart(dest, points, method).await;
            }
            Held::Bytes(0) => {
                tracing::warn!(
                    "the registry holds none of the upload an earlier run left ({location}): \
                     sending this blob from byte 0"
                );
                return Self::restart(dest, points, method).await;
            }
            _ => {
                tracing::warn!(
                    "the registry no longer has the upload an earlier run left ({location}): \
                     sending this blob from byte 0"
                );
                return Self::restart(dest, points, method).await;
            }
        };
        let from = points.resume_from(held);
        pending.set_offset(held);
        tracing::info!(
            "an earlier run left this upload with {held} of {size} bytes at the registry: \
             going on from there ({})",
            reading_from(&from)
        );
        points.moved(pending.location().unwrap_or(&location));
        let start = StartPoint {
            pending,
            from,
            send_from: held,
        };
        let mut lane = Self::new(dest, points, start, method);
        lane.resumed = true;
        Ok(lane)
    }

    async fn restart(
        dest: &'a Destination,
        points: ResumePoints,
        method: UploadMethod,
    ) -> Result<Self, DestError> {
        let start = fresh_start(dest, &points).await?;
        Ok(Self::new(dest, points, start, method))
    }

    fn new(
        dest: &'a Destination,
        points: ResumePoints,
        start: StartPoint,
        method: UploadMethod,
    ) -> Self {
        Self {
            dest,
            points,
            start,
            method,
            fresh_starts: 0,
            negotiations: 0,
            tried_one_before: false,
            resumed: false,
        }
    }

    /// Bytes per request: the method's, raised to what the registry takes at least (a streamed
    /// request is as long as the blob either way).
    pub fn chunk_size(&self) -> ChunkSize {
        self.method
            .chunk_size()
            .at_least(self.start.pending.min_chunk())
    }

    pub fn stream_start(&self) -> StreamStart {
        StreamStart {
            from: self.start.from.clone(),
            send_from: self.start.send_from,
            points: Some(self.points.clone()),
        }
    }

    /// Sends what the producer writes for this destination.
    pub async fn receive(
        &mut self,
        chunks: tokio::sync::mpsc::Receiver<Chunk>,
    ) -> Result<(), DestError> {
        let points = self.points.clone();
        let mut moved = |location: &str| points.moved(location);
        let chunked = self.method.is_chunked();
        self.dest
            .receive(&mut self.start.pending, chunks, chunked, &mut moved)
            .await
    }

    /// After `failure`, sets where the next attempt starts. `Ok(true)`: the blob turned out to
    /// be at the destination already (another run committed it), nothing more to send.
    /// `Err`: the failure is final, or the ways on are used up.
    pub async fn recover(
        &mut self,
        failure: Failure,
        digest: Option<&str>,
    ) -> Result<bool, DestError> {
        let error = match failure {
            Failure::Stopped => return self.go_on().await.map(|()| false),
            Failure::Send(e) | Failure::Commit(e) => e,
        };
        if let Some(digest) = digest {
            if !matches!(error_of(&error), Some(RegistryError::DigestRefused { .. }))
                && self.dest.has_blob(digest).await?
            {
                tracing::info!(
                    "blob {digest} is at the destination already: another run committed it"
                );
                return Ok(true);
            }
        }
        match error_of(&error) {
            Some(RegistryError::RangeRefused { .. }) => self.after_refused_range(error).await?,
            // Google Artifact Registry answers any ranged or second PATCH so: one request per
            // blob is the method it takes.
            Some(e) if e.has_code("UNSUPPORTED") && self.method.is_chunked() => {
                self.fall_back(error, "the registry takes no chunked uploads")
                    .await?;
            }
            // A chunked upload lost again after a fresh start: the chunks reach nodes that do
            // not share uploads (Artifactory HA behind a load balancer); one request cannot.
            Some(RegistryError::UploadUnknown { .. })
                if self.method.is_chunked() && self.fresh_starts > 0 =>
            {
                self.fall_back(error, "the registry loses chunked uploads between requests")
                    .await?;
            }
            // Asking again could reach another node that says otherwise (Artifactory HA):
            // a new upload is the one answer that holds.
            Some(RegistryError::UploadUnknown { .. }) => {
                self.fresh(error, "the registry no longer knows this upload")
                    .await?;
            }
            Some(RegistryError::DigestRefused { .. }) if self.resumed => {
                self.fresh(
                    error,
                    "the registry's copy of the resumed upload does not hash to the digest",
                )
                .await?;
            }
            _ if error.is_transient() => self.go_on().await?,
            _ => return Err(error),
        }
        Ok(false)
    }

    /// A 416: find the byte the registry takes, or stop sending it ranges.
    async fn after_refused_range(&mut self, error: DestError) -> Result<(), DestError> {
        tracing::debug!("{}", error.causes());
        if !self.negotiate() {
            return Err(error);
        }
        let sent_from = self.start.pending.offset();
        match settle(self.dest, &mut self.start.pending).await? {
            Held::Bytes(held) if held != sent_from && held <= self.points.size() => {
                self.resume_at(held);
                Ok(())
            }
            Held::Bytes(held) if !self.tried_one_before && held > 0 => {
                tracing::info!(
                    "the registry refused byte {held}, which it says it holds: going on from \
                     byte {} (a Range that counts bytes rather than naming the last)",
                    held - 1
                );
                self.tried_one_before = true;
                self.resume_at(held - 1);
                Ok(())
            }
            Held::Moving => {
                self.fresh(
                    error,
                    "another client is still writing to this upload (another run of this step?)",
                )
                .await
            }
            Held::Unknown => {
                self.fresh(error, "the registry no longer knows this upload")
                    .await
            }
            Held::Inconsistent => {
                self.fresh(
                    error,
                    "the registry's answers about this upload disagree (nodes of a cluster?)",
                )
                .await
            }
            Held::Bytes(_) => {
                self.fall_back(error, "the registry refuses to go on from an offset")
                    .await
            }
        }
    }

    /// Asks the registry how far the upload got and goes on from there, or from byte 0 in a
    /// new upload if it lost the upload.
    async fn go_on(&mut self) -> Result<(), DestError> {
        let size = self.points.size();
        match self.dest.resume_offset(&mut self.start.pending).await? {
            // Going on from byte 0 of an old upload could meet bytes of a killed request still
            // arriving: a new upload cannot.
            Some(held) if held > 0 && held <= size => {
                self.resume_at(held);
                Ok(())
            }
            Some(0) => {
                self.start = fresh_start(self.dest, &self.points).await?;
                Ok(())
            }
            held => {
                if self.start.pending.location().is_some() {
                    let why = match held {
                        Some(_) => "the registry holds more bytes than the blob has",
                        None => "the destination no longer has this upload",
                    };
                    tracing::warn!("{why}: sending the blob again from byte 0 in a new upload");
                }
                self.start = self.fresh_start_counted().await?;
                Ok(())
            }
        }
    }

    fn resume_at(&mut self, held: u64) {
        let from = self.points.resume_from(held);
        tracing::info!(
            "the destination holds {held} of {} bytes: going on from there ({})",
            self.points.size(),
            reading_from(&from)
        );
        if let Some(location) = self.start.pending.location() {
            self.points.moved(location);
        }
        self.resumed |= held > 0;
        self.start.pending.set_offset(held);
        self.start.from = from;
        self.start.send_from = held;
    }

    async fn fresh(&mut self, error: DestError, why: &str) -> Result<(), DestError> {
        if self.fresh_starts >= FRESH_STARTS {
            return Err(error);
        }
        tracing::warn!("{why}: sending the blob again from byte 0 in a new upload");
        self.start = self.fresh_start_counted().await?;
        Ok(())
    }

    /// The destination does not take this lane's method (`why`): this blob, and every later
    /// one there, goes in one request from byte 0 in a new upload.
    async fn fall_back(&mut self, error: DestError, why: &str) -> Result<(), DestError> {
        self.method = self.dest.fall_back(why);
        self.fresh(error, why).await
    }

    async fn fresh_start_counted(&mut self) -> Result<StartPoint, DestError> {
        self.fresh_starts += 1;
        self.tried_one_before = false;
        self.resumed = false;
        fresh_start(self.dest, &self.points).await
    }

    /// Counts one more negotiation; false once they are used up.
    fn negotiate(&mut self) -> bool {
        self.negotiations += 1;
        self.negotiations <= NEGOTIATIONS
    }
}

/// A new upload from byte 0.
async fn fresh_start(dest: &Destination, points: &ResumePoints) -> Result<StartPoint, DestError> {
    let pending = dest.start().await?;
    if let Some(location) = pending.location() {
        points.moved(location);
    }
    Ok(StartPoint {
        pending,
        from: points.resume_from(0),
        send_from: 0,
    })
}

/// Asks how far the upload got until two answers a second apart agree.
async fn settle(dest: &Destination, pending: &mut Pending) -> Result<Held, DestError> {
    let Some(mut held) = dest.resume_offset(pending).await? else {
        return Ok(Held::Unknown);
    };
    for _ in 0..SETTLE_ASKS {
        tokio::time::sleep(SETTLE_PAUSE).await;
        match dest.resume_offset(pending).await? {
            None => return Ok(Held::Unknown),
            Some(now) if now == held => return Ok(Held::Bytes(held)),
            Some(now) if now < held => return Ok(Held::Inconsistent),
            Some(now) => held = now,
        }
    }
    Ok(Held::Moving)
}

fn error_of(error: &DestError) -> Option<&RegistryError> {
    match error {
        DestError::Registry(e) => Some(e.innermost()),
        _ => None,
    }
}

/// Where the producer reads from, for the log.
fn reading_from(from: &Checkpoint) -> String {
    match from.is_hashed() {
        true => format!("hashing from byte {}", from.offset()),
        false => format!("reading from byte {}", from.offset()),
    }
}
