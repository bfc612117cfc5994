//! The producer of a model layer: its tar stream, read from the model files (or the Hub) into
//! a chunk stream (header bytes, file contents, padding), hashed as it passes, staged nowhere.

use bytes::Bytes;

use modelcar_shared::causes::ErrorCauses;
use modelcar_shared::digest::Digest;
use modelcar_shared::hub::RepoEntry;
use modelcar_shared::progress::Progress;
use modelcar_shared::transfer::chunks::{ChunkWriter, PIECE};
use modelcar_shared::transfer::{Producer, SourceError, TransferError};

use crate::file_reader::PlannedFile;
use crate::hub_source::HubSource;
use crate::tar_stream::{Segment, TarStream};

static ZEROS: [u8; PIECE] = [0; PIECE];

/// Streams a layer's tar stream into `writer` from the writer's position on (0, or where an upload
/// goes on from); returns the layer digest.
async fn produce_tar(
    stream: &TarStream,
    hub: Option<&HubSource>,
    mut writer: ChunkWriter,
    progress: &Progress,
) -> Result<Digest, SourceError> {
    let mut segment_start = 0;
    for segment in &stream.segments {
        let segment_end = segment_start + segment.size();
        // Bytes of this segment before the start position are not produced at all.
        let skip = writer.position().clamp(segment_start, segment_end) - segment_start;
        segment_start = segment_end;
        if skip == segment.size() {
            continue;
        }
        match segment {
            Segment::Bytes(bytes) => {
                writer
                    .write_counted(bytes.slice(skip as usize..), progress)
                    .await?
            }
            Segment::Zeros(n) => {
                let mut left = (n - skip) as usize;
                while left > 0 {
                    let take = left.min(PIECE);
                    writer
                        .write_counted(Bytes::from_static(&ZEROS[..take]), progress)
                        .await?;
                    left -= take;
                }
            }
            Segment::File {
                path,
                size,
                identity,
            } => {
                let file = PlannedFile {
                    path,
                    size: *size,
                    identity: *identity,
                };
                if let Err(e) = file.stream(skip, &mut writer, progress).await {
                    writer
                        .fail(std::io::Error::other(e.causes().to_string()))
                        .await;
                    return Err(e);
                }
            }
            Segment::HubFile {
                repo_path,
                size,
                lfs_sha256,
                oid,
            } => {
                let hub = hub.expect("a layer of Hub files is produced with its Hub source");
                let file = RepoEntry {
                    path: repo_path.clone(),
                    size: *size,
                    oid: oid.clone(),
                    lfs_sha256: lfs_sha256.clone(),
                };
                if let Err(e) = hub.stream_file(&file, skip, &mut writer, progress).await {
                    writer
                        .fail(std::io::Error::other(e.causes().to_string()))
                        .await;
                    return Err(e);
                }
            }
        }
    }
    // A layer's digest is only known once it is hashed: its writer always hashes.
    Ok(writer
        .finish()
        .expect("a layer of unknown digest is hashed as it streams"))
}

/// A model layer as a blob producer; its id is the layer's digest-cache key (its inputs).
pub struct TarProducer<'a> {
    pub stream: &'a TarStream,
    pub key: &'a str,
    pub hub: Option<&'a HubSource>,
}

impl Producer for TarProducer<'_> {
    fn size(&self) -> u64 {
        self.stream.size
    }

    fn id(&self) -> String {
        format!("layer-inputs:{}", self.key)
    }

    async fn produce(
        &self,
        writer: ChunkWriter,
        progress: &Progress,
    ) -> Result<Digest, TransferError> {
        Ok(produce_tar(self.stream, self.hub, writer, progress).await?)
    }
}
