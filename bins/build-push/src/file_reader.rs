//! Reading a planned model file into a layer's chunk stream: never through a symlink, only
//! the file whose (device, inode) was planned, with O_DIRECT where the filesystem allows it,
//! a few pieces ahead of the upload on a blocking thread.

use std::path::Path;

use bytes::Bytes;

use modelcar_shared::progress::Progress;
use modelcar_shared::transfer::chunks::{ChunkWriter, PIECE};
use modelcar_shared::transfer::SourceError;

/// A model file as planned: where it is, its size, and its (device, inode).
pub struct PlannedFile<'a> {
    pub path: &'a Path,
    pub size: u64,
    pub identity: (u64, u64),
}

impl PlannedFile<'_> {
    /// Streams bytes `start..size` of the file into `writer`.
    pub async fn stream(
        &self,
        start: u64,
        writer: &mut ChunkWriter,
        progress: &Progress,
    ) -> Result<(), SourceError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel(READ_AHEAD);
        let reader = {
            let (path, size, identity) = (self.path.to_path_buf(), self.size, self.identity);
            tokio::task::spawn_blocking(move || read_pieces(&path, identity, start, size, &tx))
        };
        while let Some(piece) = rx.recv().await {
            writer.write_counted(piece, progress).await?;
        }
        reader.await.expect("the file reader does not panic")
    }
}

/// Pieces read ahead per file being sent.
const READ_AHEAD: usize = 4;
/// What O_DIRECT needs buffers, lengths and offsets aligned to (the page size covers every
/// block size in use).
const ALIGN: usize = 4096;

/// Reads bytes `start..size` of `path` into `tx`, with O_DIRECT where the filesystem allows
/// it: the weights are read once, so filling the page cache with them would only cost CPU
/// (taken, on a small node, from the registry receiving them) and evict what the node does
/// need.
fn read_pieces(
    path: &Path,
    identity: (u64, u64),
    start: u64,
    size: u64,
    tx: &tokio::sync::mpsc::Sender<Bytes>,
) -> Result<(), SourceError> {
    use std::io::{Seek, SeekFrom};
    use std::os::unix::fs::MetadataExt;
    let read_error = |source| SourceError::Read {
        path: path.into(),
        source,
    };
    let replaced = || SourceError::Replaced { path: path.into() };
    let (mut file, direct) = match open_for_streaming(path) {
        Ok(opened) => opened,
        // O_NOFOLLOW: the path is a symlink now, not the file that was planned.
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => return Err(replaced()),
        Err(e) => return Err(read_error(e)),
    };
    let meta = file.metadata().map_err(read_error)?;
    if (meta.dev(), meta.ino()) != identity {
        return Err(replaced());
    }
    // O_DIRECT reads begin on a block boundary: begin at the one before `start`, drop the rest.
    let aligned = if direct {
        start - start % ALIGN as u64
    } else {
        start
    };
    file.seek(SeekFrom::Start(aligned)).map_err(read_error)?;
    let mut drop = start - aligned;
    let mut left = size - aligned;
    while left > 0 {
        let mut piece = read_piece(&mut file, direct, left).map_err(read_error)?;
        if piece.is_empty() {
            return Err(SourceError::Changed {
                path: path.into(),
                expected: size,
                found: size - left,
            });
        }
        left -= piece.len() as u64;
        if drop > 0 {
            let dropped = drop.min(piece.len() as u64);
            let _ = piece.split_to(dropped as usize);
            drop -= dropped;
        }
        if !piece.is_empty() {
            tx.blocking_send(piece)
                .map_err(|_| SourceError::Abandoned)?;
        }
    }
    Ok(())
}

/// Opens a model file for reading, never through a symlink (the planner saw a file there),
/// with O_DIRECT where the filesystem takes it.
fn open_for_streaming(path: &Path) -> std::io::Result<(std::fs::File, bool)> {
    use std::os::unix::fs::OpenOptionsExt;
    let open = |flags| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | flags)
            .open(path)
    };
    match open(nix::libc::O_DIRECT) {
        Ok(file) => Ok((file, true)),
        // tmpfs and some network filesystems refuse O_DIRECT: read through the page cache.
        Err(e) if e.raw_os_error() == Some(nix::libc::EINVAL) => open(0).map(|f| (f, false)),
        Err(e) => Err(e),
    }
}

/// The next piece of at most `PIECE` and `left` bytes; empty at end of file. With O_DIRECT the
/// read goes into an aligned window of a slightly larger buffer, for a whole number of blocks.
fn read_piece(file: &mut std::fs::File, direct: bool, left: u64) -> std::io::Result<Bytes> {
    use std::io::Read;
    let want = (left as usize).min(PIECE);
    let read_len = if direct {
        want.next_multiple_of(ALIGN)
    } else {
        want
    };
    let mut raw = vec![0u8; read_len + ALIGN];
    let start = if direct {
        raw.as_ptr().align_offset(ALIGN)
    } else {
        0
    };
    let mut filled = 0;
    while filled < want {
        match file.read(&mut raw[start + filled..start + read_len]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Bytes::from(raw).slice(start..start + filled.min(want)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `path` the way a layer does, `size` bytes in pieces.
    fn read_all(path: &Path, size: u64) -> Vec<u8> {
        let (mut file, _) = open_for_streaming(path).unwrap();
        let mut out = Vec::new();
        let mut left = size;
        while left > 0 {
            let piece = read_piece(&mut file, true_if_direct(path), left).unwrap();
            assert!(!piece.is_empty());
            left -= piece.len() as u64;
            out.extend_from_slice(&piece);
        }
        out
    }

    fn true_if_direct(path: &Path) -> bool {
        open_for_streaming(path).unwrap().1
    }

    #[test]
    fn unaligned_sizes_read_exactly_with_or_without_o_direct() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("w.bin");
        let data: Vec<u8> = (0..(PIECE + 10_000)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        assert_eq!(read_all(&path, data.len() as u64), data);
        // A file that grew after planning: only the planned bytes are taken.
        assert_eq!(read_all(&path, 5000), data[..5000]);
    }

    /// The page-cache path (taken where a filesystem refuses O_DIRECT with EINVAL) reads the
    /// same bytes. No filesystem here refuses it (tmpfs accepts O_DIRECT since Linux 6.6), so
    /// the path is driven directly.
    #[test]
    fn the_page_cache_path_reads_the_same_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("w.bin");
        let data: Vec<u8> = (0..(PIECE + 777)).map(|i| (i % 13) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let mut file = std::fs::File::open(&path).unwrap();
        let mut out = Vec::new();
        let mut left = data.len() as u64;
        while left > 0 {
            let piece = read_piece(&mut file, false, left).unwrap();
            left -= piece.len() as u64;
            out.extend_from_slice(&piece);
        }
        assert_eq!(out, read_all(&path, data.len() as u64));
        assert_eq!(out, data);
    }

    #[test]
    fn a_read_from_the_middle_gives_exactly_the_rest() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("w.bin");
        let data: Vec<u8> = (0..(PIECE * 2 + 333)).map(|i| (i % 241) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        for start in [0, 1, 4095, 4096, 4097, PIECE + 5, data.len() - 1] {
            let (tx, mut rx) = tokio::sync::mpsc::channel(1000);
            let meta = std::fs::metadata(&path).unwrap();
            let identity = (meta.dev(), meta.ino());
            read_pieces(&path, identity, start as u64, data.len() as u64, &tx).unwrap();
            drop(tx);
            let mut out = Vec::new();
            while let Ok(piece) = rx.try_recv() {
                out.extend_from_slice(&piece);
            }
            assert_eq!(out, data[start..], "from byte {start}");
        }
    }
}
