//! Where one blob's upload to one destination can go on from: the upload's URL and the hash
//! state at a few recent offsets, kept in memory for this run and in the uploads log for the
//! next one.
//!
//! A point is marked every [`MARK_EVERY`] bytes as the producer hashes them, whatever the
//! upload method: one streamed request confirms nothing until it ends, so the points cannot
//! wait for the registry. After a failure the registry says how many bytes it holds; the hash
//! goes on from the newest point at or before that (re-reading at most a little more than
//! [`MARK_EVERY`]) and only the bytes the registry lacks are sent. Several points are kept
//! because the registry may hold fewer bytes than were produced: what sat in buffers and
//! sockets when the run died never arrived.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use super::checkpoint::Checkpoint;
use super::uploads::{SavedPoint, UploadKey, UploadLog, UploadRecord};

/// Bytes between two points: at most this much is re-read (not re-sent) to rebuild the hash.
pub const MARK_EVERY: u64 = 64 << 20;
/// Points kept: the newest may lie past what the registry holds; 4 cover 192 MiB behind it.
const KEPT: usize = 4;

/// One blob's resume points at one destination; clones share them.
#[derive(Clone)]
pub struct ResumePoints {
    inner: Arc<Mutex<Points>>,
}

struct Points {
    uploads: UploadLog,
    key: Option<UploadKey>,
    size: u64,
    /// Whether the blob is hashed here (else a point is only a count, and any byte will do).
    hashing: bool,
    location: Option<String>,
    /// Newest first.
    recent: VecDeque<Checkpoint>,
    /// Where the current attempt started hashing: at or before what the registry held then,
    /// so never evicted by marks past it (a registry that refuses a request may first take
    /// the whole body, and the producer marks all the way to the end).
    floor: Option<Checkpoint>,
    /// Bytes sent since [`ResumePoints::take_sent`] last asked, for the progress total.
    sent: u64,
}

impl ResumePoints {
    pub fn new(uploads: &UploadLog, key: Option<UploadKey>, size: u64, hashing: bool) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Points {
                uploads: uploads.clone(),
                key,
                size,
                hashing,
                location: None,
                recent: VecDeque::new(),
                floor: None,
                sent: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Points> {
        // A panic elsewhere while holding it leaves plain data: still good to read.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn size(&self) -> u64 {
        self.lock().size
    }

    /// The upload an earlier run left for this blob (same size), taking over its points.
    pub fn earlier_upload(&self) -> Option<String> {
        let mut points = self.lock();
        let record = points.uploads.find(points.key.as_ref()?)?;
        if record.size != points.size {
            return None;
        }
        if points.hashing {
            points.recent = record.checkpoints().into_iter().take(KEPT).collect();
        }
        points.location = Some(record.location.clone());
        Some(record.location)
    }

    /// The producer has hashed up to `at`.
    pub fn mark(&self, at: &Checkpoint) {
        let mut points = self.lock();
        if !points.hashing
            || points
                .recent
                .front()
                .is_some_and(|p| p.offset() >= at.offset())
        {
            return;
        }
        points.recent.push_front(at.clone());
        points.recent.truncate(KEPT);
        points.save();
    }

    /// `bytes` more went to the destination.
    pub fn sent(&self, bytes: u64) {
        self.lock().sent += bytes;
    }

    /// The bytes sent since the last call.
    pub fn take_sent(&self) -> u64 {
        std::mem::take(&mut self.lock().sent)
    }

    /// The upload now lives at `location` (a new upload, or one whose URL the registry changed).
    pub fn moved(&self, location: &str) {
        let mut points = self.lock();
        if points.location.as_deref() != Some(location) {
            points.location = Some(location.to_string());
            points.save();
        }
    }

    /// Where the producer starts for a destination that holds `held` bytes: exactly there when
    /// not hashing, else the newest point at or before it (byte 0 if none).
    pub fn resume_from(&self, held: u64) -> Checkpoint {
        let mut points = self.lock();
        if !points.hashing {
            return Checkpoint::unhashed(held);
        }
        let from = points
            .recent
            .iter()
            .chain(&points.floor)
            .filter(|p| p.offset() <= held)
            .max_by_key(|p| p.offset())
            .cloned()
            .unwrap_or_else(Checkpoint::start);
        points.floor = Some(from.clone());
        from
    }

    /// The upload is done (or can never go on): the log keeps nothing of it.
    pub fn forget(&self) {
        let mut points = self.lock();
        points.location = None;
        if let Some(key) = &points.key {
            points.uploads.forget(key);
        }
    }
}

impl Points {
    fn save(&self) {
        let (Some(key), Some(location)) = (&self.key, &self.location) else {
            return;
        };
        let mut saved = self.recent.iter().chain(&self.floor).map(|p| SavedPoint {
            offset: p.offset(),
            sha256_state: p.encode_state(),
        });
        let newest = saved.next().unwrap_or(SavedPoint {
            offset: 0,
            sha256_state: match self.hashing {
                true => Checkpoint::start().encode_state(),
                false => String::new(),
            },
        });
        self.uploads.save(UploadRecord {
            key: key.clone(),
            size: self.size,
            location: location.clone(),
            offset: newest.offset,
            sha256_state: newest.sha256_state,
            earlier: saved.collect(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> UploadKey {
        UploadKey {
            registry: "r".into(),
            repository: "ns/m".into(),
            blob: "b".into(),
        }
    }

    fn at(bytes: &[u8]) -> Checkpoint {
        let mut c = Checkpoint::start();
        c.update(bytes);
        c
    }

    #[test]
    fn a_rerun_goes_on_from_the_newest_point_the_registry_holds() {
        let tmp = tempfile::tempdir().unwrap();
        let log = UploadLog::at(tmp.path().join("uploads.json"));
        let data = vec![7u8; 600];
        let points = ResumePoints::new(&log, Some(key()), 600, true);
        points.moved("http://r/up/1");
        for end in (100..=500).step_by(100) {
            points.mark(&at(&data[..end]));
        }

        let rerun = ResumePoints::new(&log, Some(key()), 600, true);
        assert_eq!(rerun.earlier_upload().as_deref(), Some("http://r/up/1"));
        // Points 500, 400, 300, 200 were kept (4); the registry holds 450.
        assert_eq!(rerun.resume_from(450).offset(), 400);
        assert_eq!(rerun.resume_from(199).offset(), 0);
        assert_eq!(rerun.resume_from(600).offset(), 500);

        let other_size = ResumePoints::new(&log, Some(key()), 601, true);
        assert_eq!(other_size.earlier_upload(), None);
        rerun.forget();
        assert_eq!(
            ResumePoints::new(&log, Some(key()), 600, true).earlier_upload(),
            None
        );
    }

    #[test]
    fn a_hashing_run_cannot_go_on_from_a_count() {
        let tmp = tempfile::tempdir().unwrap();
        let log = UploadLog::at(tmp.path().join("uploads.json"));
        let counting = ResumePoints::new(&log, Some(key()), 10, false);
        counting.moved("http://r/up/1");
        counting.mark(&at(b"abcdefgh"));
        let hashing = ResumePoints::new(&log, Some(key()), 10, true);
        assert!(hashing.earlier_upload().is_some());
        // It hashes again from byte 0.
        let from = hashing.resume_from(8);
        assert_eq!((from.offset(), from.is_hashed()), (0, true));
    }

    #[test]
    fn without_hashing_any_byte_is_a_point() {
        let points = ResumePoints::new(&UploadLog::disabled(), None, 10, false);
        points.mark(&at(b"abc"));
        let from = points.resume_from(7);
        assert_eq!((from.offset(), from.is_hashed()), (7, false));
    }
}
