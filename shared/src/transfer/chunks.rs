//! A layer's bytes as a stream of chunks: each chunk is a bounded channel of pieces that becomes
//! one request body (or one run of writes), and the sha256 is computed as the bytes pass
//! (unless the stream starts from an unhashed [`Checkpoint`]: then it only counts them).
//! Memory per layer in flight is bounded by the channel capacities, whatever the layer size.

use bytes::Bytes;
use tokio::sync::mpsc;

use super::checkpoint::Checkpoint;
use super::error::SourceError;
use super::resume_points::{ResumePoints, MARK_EVERY};
use crate::digest::Digest;
use crate::progress::Progress;

/// Largest piece handed to a request body at once.
pub const PIECE: usize = 1 << 20;
/// Pieces buffered per chunk: with [`PIECE`], 4 MiB of read-ahead per layer.
const PIECES_IN_FLIGHT: usize = 4;

/// One chunk of a layer: `len` bytes from `offset`, arriving as pieces.
pub struct Chunk {
    pub offset: u64,
    pub len: u64,
    pub pieces: mpsc::Receiver<std::io::Result<Bytes>>,
}

/// The producing side: splits what it is given into chunks of `chunk_size` and hashes it, for
/// one destination or several at once (each with its own chunks, hash and resume point), so a
/// source is read once whatever the number of destinations. The slowest one sets the pace.
pub struct ChunkWriter {
    outputs: Vec<Output>,
    /// The offset of the next byte the producer writes.
    position: u64,
}

/// One destination's side of the writer.
struct Output {
    chunks: mpsc::Sender<Chunk>,
    current: Option<mpsc::Sender<std::io::Result<Bytes>>>,
    left_in_chunk: u64,
    chunk_size: u64,
    /// The next byte to send.
    offset: u64,
    /// Every byte written to this output so far, sent or not.
    hashed: Checkpoint,
    total: u64,
    /// Told of the hash state every [`MARK_EVERY`] bytes.
    points: Option<ResumePoints>,
    next_mark: u64,
}

/// The consumer went away (its upload failed): stop producing; its error is the one to report.
#[derive(Debug)]
pub struct Abandoned;

/// Where one destination's stream starts: the hash state to go on from, and the first byte the
/// destination lacks (at or after it).
pub struct StreamStart {
    pub from: Checkpoint,
    pub send_from: u64,
    /// Where to mark the points an upload can go on from, if anywhere.
    pub points: Option<ResumePoints>,
}

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
        let (writer, mut receivers) = Self::fan_out(
            total,
            chunk_size,
            vec![StreamStart {
                from,
                send_from,
                points: None,
            }],
        );
        (writer, receivers.remove(0))
    }

    /// A writer feeding one chunk stream per start. The producer starts at the earliest start;
    /// each output takes the bytes from its own on.
    pub fn fan_out(
        total: u64,
        chunk_size: u64,
        starts: Vec<StreamStart>,
    ) -> (Self, Vec<mpsc::Receiver<Chunk>>) {
        let mut receivers = Vec::with_capacity(starts.len());
        let outputs: Vec<Output> = starts
            .into_iter()
            .map(|start| {
                let (tx, rx) = mpsc::channel(1);
                receivers.push(rx);
                Output {
                    chunks: tx,
                    current: None,
                    left_in_chunk: 0,
                    chunk_size: chunk_size.max(1),
                    offset: start.send_from.max(start.from.offset()),
                    next_mark: next_mark_after(start.from.offset()),
                    hashed: start.from,
                    total,
                    points: start.points,
                }
            })
            .collect();
        let position = outputs.iter().map(|o| o.hashed.offset()).min().unwrap_or(0);
        (Self { outputs, position }, receivers)
    }

    /// The offset of the next byte to write: where the producer must start.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// [`write`](Self::write)s `bytes` and counts what was sent in `progress`; a consumer that
    /// stopped taking bytes is [`SourceError::Abandoned`] (its own error is the one to report).
    pub async fn write_counted(
        &mut self,
        bytes: Bytes,
        progress: &Progress,
    ) -> Result<(), SourceError> {
        let sent = self
            .write(bytes)
            .await
            .map_err(|_| SourceError::Abandoned)?;
        progress.add(sent);
        Ok(())
    }

    /// Hashes `bytes` and sends those not already at each destination, starting new chunks at
    /// chunk boundaries. Returns how many bytes were sent, over all destinations.
    pub async fn write(&mut self, bytes: Bytes) -> Result<u64, Abandoned> {
        let start = self.position;
        self.position += bytes.len() as u64;
        let mut sent = 0;
        for output in &mut self.outputs {
            // An output resuming further on already has the hash of what comes before.
            let covered = output.hashed.offset().saturating_sub(start);
            if covered >= bytes.len() as u64 {
                continue;
            }
            sent += output.write(bytes.slice(covered as usize..)).await?;
        }
        Ok(sent)
    }

    /// Passes a read error to the consumers, whose requests then fail with it.
    pub async fn fail(&mut self, error: std::io::Error) {
        for output in &mut self.outputs {
            if let Some(sender) = &output.current {
                let _ = sender
                    .send(Err(std::io::Error::new(error.kind(), error.to_string())))
                    .await;
            }
        }
    }

    /// The digest of everything written (every output hashed the same bytes); `None` when
    /// the outputs only counted them.
    pub fn finish(self) -> Option<Digest> {
        let mut digests = self.outputs.into_iter().map(|o| o.hashed.digest());
        let first = digests.next().flatten();
        debug_assert!(
            digests.all(|d| d == first),
            "outputs hashed different bytes"
        );
        first
    }
}

impl Output {
    async fn write(&mut self, mut bytes: Bytes) -> Result<u64, Abandoned> {
        let held = self.offset.saturating_sub(self.hashed.offset());
        let only_hashed = held.min(bytes.len() as u64) as usize;
        if only_hashed > 0 {
            self.hashed.update(&bytes.split_to(only_hashed));
            self.mark_if_due();
        }
        let sent = bytes.len() as u64;
        while !bytes.is_empty() {
            if self.left_in_chunk == 0 {
                self.open_chunk().await?;
            }
            let take = (bytes.len() as u64).min(self.left_in_chunk) as usize;
            let piece = bytes.split_to(take);
            self.hashed.update(&piece);
            self.mark_if_due();
            self.left_in_chunk -= take as u64;
            self.offset += take as u64;
            let sender = self.current.as_ref().ok_or(Abandoned)?;
            sender.send(Ok(piece)).await.map_err(|_| Abandoned)?;
            if let Some(points) = &self.points {
                points.sent(take as u64);
            }
        }
        Ok(sent)
    }

    fn mark_if_due(&mut self) {
        if self.hashed.offset() < self.next_mark {
            return;
        }
        self.next_mark = next_mark_after(self.hashed.offset());
        if let Some(points) = &self.points {
            points.mark(&self.hashed);
        }
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

fn next_mark_after(offset: u64) -> u64 {
    (offset / MARK_EVERY + 1) * MARK_EVERY
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
            (sent, writer.finish().unwrap())
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
            writer.finish().unwrap()
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
            (sent, writer.finish().unwrap())
        });
        let mut chunk = chunks.recv().await.unwrap();
        assert_eq!(chunk.offset, 6);
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

    #[tokio::test]
    async fn a_fan_out_feeds_each_output_from_its_own_start() {
        let mut at4 = Checkpoint::start();
        at4.update(b"abcd");
        let starts = vec![
            StreamStart {
                from: Checkpoint::start(),
                send_from: 0,
                points: None,
            },
            StreamStart {
                from: at4,
                send_from: 6,
                points: None,
            },
        ];
        let (mut writer, receivers) = ChunkWriter::fan_out(10, 100, starts);
        assert_eq!(writer.position(), 0);
        let producer = tokio::spawn(async move {
            let mut sent = writer.write(Bytes::from_static(b"abc")).await.unwrap();
            sent += writer.write(Bytes::from_static(b"defghij")).await.unwrap();
            (sent, writer.finish().unwrap())
        });
        let mut seen = Vec::new();
        for mut rx in receivers {
            let mut data = Vec::new();
            while let Some(mut chunk) = rx.recv().await {
                while let Some(piece) = chunk.pieces.recv().await {
                    data.extend_from_slice(&piece.unwrap());
                }
            }
            seen.push(String::from_utf8(data).unwrap());
        }
        assert_eq!(seen, ["abcdefghij", "ghij"]);
        let (sent, digest) = producer.await.unwrap();
        assert_eq!(sent, 14);
        assert_eq!(digest, crate::digest::sha256_digest(b"abcdefghij"));
    }
}
