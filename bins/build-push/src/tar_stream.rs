//! The byte layout of a layer's tar stream, computed before a byte of content is read: header
//! blocks (made by the `tar` crate, GNU format), then each file's content as a reference to the
//! file, then padding. The total size is known up front, so uploads can announce their length.
//!
//! Deterministic (`docs/design.md`, "The ModelCar image"): sorted entries, uid/gid 0, no user or group names,
//! one mtime for all, modes 0644/0755, sizes above 8 GiB in GNU base-256 form (as GNU tar and
//! olot write them), long names as GNU `././@LongLink` entries.

use std::io;
use std::path::PathBuf;

use bytes::Bytes;
use tar::{Builder, EntryType, Header};

use crate::plan::{EntryKind, LayerPlan};

const BLOCK: u64 = 512;
pub const FILE_MODE: u32 = 0o644;
pub const DIR_MODE: u32 = 0o755;

/// A run of the layer's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Bytes(Bytes),
    File {
        path: PathBuf,
        size: u64,
        /// The (device, inode) planned: the file read must be this one, not whatever the
        /// path names by then.
        identity: (u64, u64),
    },
    /// A Hub file's content, fetched while the layer streams.
    HubFile {
        repo_path: String,
        size: u64,
        lfs_sha256: Option<String>,
        oid: String,
    },
    Zeros(u64),
}

impl Segment {
    pub fn size(&self) -> u64 {
        match self {
            Segment::Bytes(b) => b.len() as u64,
            Segment::File { size, .. } | Segment::HubFile { size, .. } => *size,
            Segment::Zeros(n) => *n,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TarStream {
    pub segments: Vec<Segment>,
    pub size: u64,
}

/// Lays out the tar stream of `plan`, every entry stamped with `mtime` (SOURCE_DATE_EPOCH).
pub fn tar_stream(plan: &LayerPlan, mtime: u64) -> io::Result<TarStream> {
    let mut headers = Builder::new(Vec::new());
    let mut segments = Vec::new();
    for entry in &plan.entries {
        let mut header = Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(mtime);
        match &entry.kind {
            EntryKind::Dir => {
                header.set_entry_type(EntryType::Directory);
                header.set_mode(DIR_MODE);
                header.set_size(0);
                headers.append_data(&mut header, &entry.image_path, io::empty())?;
            }
            EntryKind::Symlink { target } => {
                header.set_entry_type(EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                headers.append_link(&mut header, &entry.image_path, target)?;
            }
            EntryKind::File {
                source,
                size,
                identity,
            } => {
                let content = Segment::File {
                    path: source.clone(),
                    size: *size,
                    identity: (identity.device, identity.inode),
                };
                append_file(&mut headers, &mut segments, &mut header, entry, content)?;
            }
            EntryKind::HubFile {
                repo_path,
                size,
                lfs_sha256,
                oid,
                ..
            } => {
                let content = Segment::HubFile {
                    repo_path: repo_path.clone(),
                    size: *size,
                    lfs_sha256: lfs_sha256.clone(),
                    oid: oid.clone(),
                };
                append_file(&mut headers, &mut segments, &mut header, entry, content)?;
            }
        }
    }
    flush_headers(&mut headers, &mut segments);
    // The end-of-archive marker: two zero blocks.
    segments.push(Segment::Zeros(2 * BLOCK));
    let size = segments.iter().map(Segment::size).sum();
    Ok(TarStream { segments, size })
}

/// A regular file: its header blocks, its content, the padding to a whole block.
fn append_file(
    headers: &mut Builder<Vec<u8>>,
    segments: &mut Vec<Segment>,
    header: &mut Header,
    entry: &crate::plan::Entry,
    content: Segment,
) -> io::Result<()> {
    let size = content.size();
    header.set_entry_type(EntryType::Regular);
    header.set_mode(FILE_MODE);
    header.set_size(size);
    // With an empty reader the builder writes the header blocks alone.
    headers.append_data(header, &entry.image_path, io::empty())?;
    flush_headers(headers, segments);
    segments.push(content);
    let pad = (BLOCK - size % BLOCK) % BLOCK;
    if pad > 0 {
        segments.push(Segment::Zeros(pad));
    }
    Ok(())
}

fn flush_headers(headers: &mut Builder<Vec<u8>>, segments: &mut Vec<Segment>) {
    let pending = std::mem::take(headers.get_mut());
    if !pending.is_empty() {
        segments.push(Segment::Bytes(Bytes::from(pending)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::plan_layers;
    use std::fs;
    use std::io::Read;

    /// Materializes a tar stream (test only: real layers are streamed).
    fn bytes_of(layout: &TarStream) -> Vec<u8> {
        let mut out = Vec::new();
        for s in &layout.segments {
            match s {
                Segment::Bytes(b) => out.extend_from_slice(b),
                Segment::File { path, .. } => out.extend(fs::read(path).unwrap()),
                Segment::HubFile { .. } => unreachable!("no Hub files in these tests"),
                Segment::Zeros(n) => out.extend(std::iter::repeat_n(0u8, *n as usize)),
            }
        }
        out
    }

    #[test]
    fn a_tar_stream_is_a_tar_that_the_tar_crate_reads_back() {
        let tmp = tempfile::tempdir().unwrap();
        let long = "d".repeat(120);
        fs::create_dir_all(tmp.path().join(&long)).unwrap();
        fs::write(tmp.path().join(&long).join("weights.bin"), vec![7u8; 1000]).unwrap();
        fs::write(tmp.path().join("empty"), b"").unwrap();
        std::os::unix::fs::symlink("empty", tmp.path().join("link")).unwrap();
        let plan = plan_layers(tmp.path(), "/models", u64::MAX).unwrap();
        let layout = tar_stream(&plan[0], 42).unwrap();
        let bytes = bytes_of(&layout);
        assert_eq!(bytes.len() as u64, layout.size);
        assert_eq!(layout.size % 512, 0);

        let mut archive = tar::Archive::new(&bytes[..]);
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let h = entry.header().clone();
            assert_eq!(
                (h.uid().unwrap(), h.gid().unwrap(), h.mtime().unwrap()),
                (0, 0, 42)
            );
            assert_eq!(h.username().unwrap(), Some(""));
            let path = entry.path().unwrap().display().to_string();
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            seen.push((path, h.mode().unwrap(), content.len()));
        }
        let long_path = format!("models/{long}/weights.bin");
        assert_eq!(
            seen,
            [
                ("models".to_string(), 0o755, 0),
                (format!("models/{long}"), 0o755, 0),
                (long_path, 0o644, 1000),
                ("models/empty".to_string(), 0o644, 0),
                ("models/link".to_string(), 0o777, 0),
            ]
        );
    }

    #[test]
    fn sizes_above_8_gib_use_gnu_base_256() {
        let mut header = Header::new_gnu();
        header.set_size(46 << 30);
        assert_eq!(header.as_gnu().unwrap().size[0], 0x80, "base-256 marker");
        assert_eq!(header.size().unwrap(), 46 << 30);
    }

    #[test]
    fn same_input_same_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("a"), b"abc").unwrap();
        let plan = plan_layers(tmp.path(), "/models", u64::MAX).unwrap();
        assert_eq!(
            bytes_of(&tar_stream(&plan[0], 0).unwrap()),
            bytes_of(&tar_stream(&plan[0], 0).unwrap())
        );
    }
}
