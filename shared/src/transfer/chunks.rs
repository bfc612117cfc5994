//! A layer's bytes as a stream of chunks: each chunk is a bounded channel of pieces that becomes
//! one request body (or one run of writes), and the sha256 is computed as the bytes pass.
//! Memory per layer in flight is bounded by the channel capacities, whatever the layer size.

use bytes::Bytes;
use tokio::sync::mpsc;

use super::checkpoint::Checkpoint;

/// Largest piece handed to a request body at once.
pub const PIECE: usize = 1 << 20;
/// Pieces buffered per chunk: with [`PIECE`], 4 MiB of read-ahead per layer.
const PIECES_IN_FLIGHT: usize = 4;

/// One chunk of a layer: `len` bytes from `offset`, arriving as pieces.
pub struct Chunk {
    pub offset: u64,
    pub len: u64,
    pub pieces: mpsc::Receiver<std::io::Result<Bytes>>,
    /// The hash of every byte before this chunk: once the destination has taken the chunks
    /// before it, an upload can go on from here.
    pub start: Checkpoint,
}

/// The producing side: splits what it is given into chunks of `chunk_size` and hashes it.
pub struct ChunkWriter {
    chunks: mpsc::Sender<Chunk>,
    current: Option<mpsc::Sender<std::io::Result<Bytes>>>,
    left_in_chunk: u64,
    chunk_size: u64,
    /// The next byte to send.
    offset: u64,
    /// Every byte written so far, sent or not.
    hashed: Checkpoint,
    total: u64,
}

/// The consumer went away (its upload failed): stop producing; its error is the one to report.
#[derive(Debug)]
pub struct Abandoned;

impl ChunkWriter {
    /// A writer for a stream of `total` bytes, and the receiver of its chunks.
    pub fn new(total: u64, chunk_size: u64) -> (Self, mpsc::Receiver<Chunk>) {
        Self::resuming(total, chunk_size, Checkpoint::start(), 0)
    }

    /// The same, going on from `from`: the producer starts at byte [`ChunkWriter::position`]
    /// (`from`'s offset), and of what it writes the bytes before `send_from` (which the
    /// destination holds already) are only hashed, the rest also sent.
    pub fn resuming(
        total: u64,
        chunk_size: u64,
        from: Checkpoint,
        send_from: u64,
    ) -> (Self, mpsc::Receiver<Chunk>) {
        let (tx, rx) = mpsc::channel(1);
        let writer = Self {
            chunks: tx,
            current: None,
            left_in_chunk: 0,
            chunk_size: chunk_size.max(1),
            offset: send_from.max(from.offset()),
            hashed: from,
            total,
        };
        (writer, rx)
    }

    /// The offset of the next byte to write: where the producer must start.
    pub fn position(&self) -> u64 {
        self.hashed.offset()
    }

    /// Hashes `bytes` and sends those not already at the destination, starting new chunks at
    /// chunk boundaries. Returns how many bytes were sent.
    pub async fn write(&mut self, mut bytes: Bytes) -> Result<u64, Abandoned> {
        let held = self.offset.saturating_sub(self.hashed.offset());
        let only_hashed = held.min(bytes.len() as u64) as usize;
        if only_hashed > 0 {
            self.hashed.update(&bytes.split_to(only_hashed));
        }
        let sent = bytes.len() as u64;
        while !bytes.is_empty() {
            if self.left_in_chunk == 0 {
                self.open_chunk().await?;
            }
            let take = (bytes.len() as u64).min(self.left_in_chunk) as usize;
            let piece = bytes.split_to(take);
            self.hashed.update(&piece);
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
        self.hashed.digest()
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
            start: self.hashed.clone(),
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
        let (mut writer, mut chunks) = ChunkWriter::resuming(10, 4, Checkpoint::start(), 5);
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
            assert_eq!(chunk.start.offset(), chunk.offset);
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

    #[tokio::test]
    async fn resuming_from_a_checkpoint_needs_only_the_bytes_after_it() {
        let mut from = Checkpoint::start();
        from.update(b"abcd");
        let (mut writer, mut chunks) = ChunkWriter::resuming(10, 4, from, 6);
        assert_eq!(writer.position(), 4);
        let producer = tokio::spawn(async move {
            let sent = writer.write(Bytes::from_static(b"efghij")).await.unwrap();
            (sent, writer.finish())
        });
        let mut chunk = chunks.recv().await.unwrap();
        assert_eq!((chunk.offset, chunk.start.offset()), (6, 6));
        let mut data = Vec::new();
        while let Some(piece) = chunk.pieces.recv().await {
            data.extend_from_slice(&piece.unwrap());
        }
        assert_eq!(data, b"ghij");
        assert!(chunks.recv().await.is_none());
        let (sent, digest) = producer.await.unwrap();
        assert_eq!(sent, 4);
        assert_eq!(digest, crate::digest::sha256_digest(b"abcdefghij"));
    }
}
