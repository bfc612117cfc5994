//! A Hub file's body checked as it arrives against what the listing says of it: never a byte
//! past its size, and at its end its size and its hash (an LFS file's sha256, or for a file
//! kept in git its blob id). fetch-model writes what it yields to a partial file; build-push
//! streams it into a layer. Either way a file the Hub serves wrong is never taken as right.

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;

use super::client::RepoEntry;
use super::verify::{FileHasher, Hashes, Mismatch};

/// Why a piece of the body was not taken.
#[derive(Debug, thiserror::Error)]
pub enum PieceError {
    #[error("the download broke off: {0}")]
    Broken(reqwest::Error),
    #[error("more than the {size} bytes the Hub lists ({got} by now)")]
    TooLong { size: u64, got: u64 },
}

/// Why a body that ended is not the file the Hub lists.
#[derive(Debug)]
pub enum EndError {
    /// It ended early: `got` bytes of `size`.
    Short {
        got: u64,
        size: u64,
    },
    Mismatch(Mismatch),
}

impl std::fmt::Display for EndError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Short { got, size } => write!(f, "{got} bytes arrived, the Hub lists {size}"),
            Self::Mismatch(m) => write!(
                f,
                "its bytes have {} {}, but the Hub lists {}",
                m.what, m.actual, m.expected
            ),
        }
    }
}

pub struct VerifiedBody<'a> {
    entry: &'a RepoEntry,
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    hasher: FileHasher,
    at: u64,
}

impl<'a> VerifiedBody<'a> {
    /// The body of `response`, which starts at byte `at` of `entry`; `hasher` holds the bytes
    /// before it (read back from a partial file; a new one when `at` is 0).
    pub fn new(
        entry: &'a RepoEntry,
        response: reqwest::Response,
        hasher: FileHasher,
        at: u64,
    ) -> Self {
        Self {
            entry,
            body: response.bytes_stream().boxed(),
            hasher,
            at,
        }
    }

    /// The next piece, hashed; `None` at the end of the body.
    pub async fn next(&mut self) -> Option<Result<Bytes, PieceError>> {
        let piece = match self.body.next().await? {
            Ok(piece) => piece,
            Err(e) => return Some(Err(PieceError::Broken(e))),
        };
        let got = self.at + piece.len() as u64;
        if got > self.entry.size {
            return Some(Err(PieceError::TooLong {
                size: self.entry.size,
                got,
            }));
        }
        self.hasher.update(&piece);
        self.at = got;
        Some(Ok(piece))
    }

    /// The offset in the file of the next byte.
    pub fn position(&self) -> u64 {
        self.at
    }

    /// The hash so far, to go on from on another attempt.
    pub fn into_hasher(self) -> FileHasher {
        self.hasher
    }

    /// The body ended: the file's hashes, if it is whole and what the Hub lists.
    pub fn finish(self) -> Result<Hashes, EndError> {
        if self.at != self.entry.size {
            return Err(EndError::Short {
                got: self.at,
                size: self.entry.size,
            });
        }
        let hashes = self.hasher.finish();
        hashes.check(self.entry).map_err(EndError::Mismatch)?;
        Ok(hashes)
    }
}
