//! A layer's bytes as a stream of chunks: each chunk is a bounded channel of pieces that becomes
//! one request body (or one run of writes), and the sha256 is computed as the bytes pass.
//! Memory per layer in flight is bounded by the channel capacities, whatever the layer size.

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::digest::format_digest;

/// Largest piece handed to a request body at once.
pub const PIECE: usize = 1 << 20;
/// Pieces buffered per chunk: with [`PIECE`], 4 MiB of read-ahead per layer.
const PIECES_IN_FLIGHT: usize = 4;

/// One chunk of a layer: `len` bytes, arriving as pieces.
pub struct Chunk {
    pub offset: u64,
    pub len: u64,
    pub pieces: mpsc::Receiver<std::io::Result<Bytes>>,
}

/// The producing side: splits what it is given into chunks of `chunk_size` and hashes it.
pub struct ChunkWriter {
    chunks: mpsc::Sender<Chunk>,
    current: Option<mpsc::Sender<std::io::Result<Bytes>>>,
    left_in_chunk: u64,
    chunk_size: u64,
    /// The next byte to send.
    offset: u64,
    /// Bytes written so far, sent or not.
    position: u64,
    total: u64,
    hasher: Sha256,
}

/// The consumer went away (its upload failed): stop producing; its error is the one to report.
#[derive(Debug)]
pub struct Abandoned;

impl ChunkWriter {
    /// A writer for a stream of `total` bytes, and the receiver of its chunks.
    pub fn new(total: u64, chunk_size: u64) -> (Self, mpsc::Receiver<Chunk>) {
        Self::resuming(total, chunk_size, 0)
    }

    /// The same, for an upload the destination already holds the first `send_from` bytes of:
    /// every byte is still hashed (a digest is only ever over all of them), but only the
    /// bytes from `send_from` on are sent.
    pub fn resuming(total: u64, chunk_size: u64, send_from: u64) -> (Self, mpsc::Receiver<Chunk>) {
        let (tx, rx) = mpsc::channel(1);
        let writer = Self {
            chunks: tx,
            current: None,
            left_in_chunk: 0,
            chunk_size: chunk_size.max(1),
            offset: send_from,
            position: 0,
            total,
            hasher: Sha256::new(),
        };
        (writer, rx)
    }

    /// Hashes `bytes` and sends those not already at the destination, starting new chunks at
    /// chunk boundaries. Returns how many bytes were sent.
    pub async fn write(&mut self, mut bytes: Bytes) -> Result<u64, Abandoned> {
        self.hasher.update(&bytes);
        let start = self.position;
        self.position += bytes.len() as u64;
        if self.position <= self.offset {
            return Ok(0);
        }
        if start < self.offset {
            let _ = bytes.split_to((self.offset - start) as usize);
        }
        let sent = bytes.len() as u64;
        while !bytes.is_empty() {
            if self.left_in_chunk == 0 {
                self.open_chunk().await?;
            }
            let take = (bytes.len() as u64).min(self.left_in_chunk) as usize;
            let piece = bytes.split_to(take);
            self.left_in_chunk -= take as u64;
            self.offset += take as u64;
            let sender = self.current.as_ref().ok_or(Abandoned)?;
            sender.send(Ok(piece)).await.map_err(|_| Abandoned)?;
        }
        Ok(sent)
    }

    /// Passes a read error to the consumer, whose request then fails with it.
    pub async fn fail(&mut self, error: std::io::Error) {
        if let Some(sender) = &self.current {
            let _ = sender.send(Err(error)).await;
        }
    }

    /// The digest of everything written.
    pub fn finish(self) -> String {
        format_digest(&self.hasher.finalize())
    }

    async fn open_chunk(&mut self) -> Result<(), Abandoned> {
        let len = self
            .chunk_size
            .min(self.total.saturating_sub(self.offset))
            .max(1);
        let (tx, rx) = mpsc::channel(PIECES_IN_FLIGHT);
        let chunk = Chunk {
            offset: self.offset,
            len,
            pieces: rx,
        };
        self.chunks.send(chunk).await.map_err(|_| Abandoned)?;
        self.current = Some(tx);
        self.left_in_chunk = len;
        Ok(())
    }
}

/// A chunk's pieces as a request body stream.
pub fn body_of(chunk: Chunk) -> reqwest::Body {
    let stream = futures_util::stream::unfold(chunk.pieces, |mut rx| async move {
        rx.recv().await.map(|piece| (piece, rx))
    });
    reqwest::Body::wrap_stream(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resuming_hashes_everything_but_sends_only_the_rest() {
        let (mut writer, mut chunks) = ChunkWriter::resuming(10, 4, 5);
        let producer = tokio::spawn(async move {
            let mut sent = writer.write(Bytes::from_static(b"abc")).await.unwrap();
            sent += writer.write(Bytes::from_static(b"defghij")).await.unwrap();
            (sent, writer.finish())
        });
        let mut seen = Vec::new();
        while let Some(mut chunk) = chunks.recv().await {
            let mut data = Vec::new();
            while let Some(piece) = chunk.pieces.recv().await {
                data.extend_from_slice(&piece.unwrap());
            }
            seen.push((chunk.offset, String::from_utf8(data).unwrap()));
        }
        assert_eq!(seen, [(5, "fghi".into()), (9, "j".into())]);
        let (sent, digest) = producer.await.unwrap();
        assert_eq!(sent, 5);
        assert_eq!(digest, crate::digest::sha256_digest(b"abcdefghij"));
    }

    #[tokio::test]
    async fn splits_at_chunk_boundaries_and_hashes_everything() {
        let (mut writer, mut chunks) = ChunkWriter::new(10, 4);
        let producer = tokio::spawn(async move {
            writer.write(Bytes::from_static(b"abc")).await.unwrap();
            writer.write(Bytes::from_static(b"defghij")).await.unwrap();
            writer.finish()
        });
        let mut seen = Vec::new();
        while let Some(mut chunk) = chunks.recv().await {
            let mut data = Vec::new();
            while let Some(piece) = chunk.pieces.recv().await {
                data.extend_from_slice(&piece.unwrap());
            }
            assert_eq!(data.len() as u64, chunk.len);
            seen.push((chunk.offset, String::from_utf8(data).unwrap()));
        }
        assert_eq!(
            seen,
            [(0, "abcd".into()), (4, "efgh".into()), (8, "ij".into())]
        );
        assert_eq!(
            producer.await.unwrap(),
            crate::digest::sha256_digest(b"abcdefghij")
        );
    }
}
