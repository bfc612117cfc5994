//! Sending a model layer: skipped when the destination has its cached digest, otherwise read
//! from the files and streamed (see `modelcar_shared::transfer`).

use modelcar_shared::progress::Progress;
use modelcar_shared::transfer::{
    stream_blob_to_all, Destination, Producer, Sent, TransferError, UploadLog, UploadMethod,
};

use crate::chunks_of_tar::produce_tar;
use crate::hub_source::HubSource;
use crate::tar_layout::TarLayout;

/// A model layer as a blob producer; its id is the layer's digest-cache key (its inputs).
struct TarProducer<'a> {
    layout: &'a TarLayout,
    key: &'a str,
    hub: Option<&'a HubSource>,
}

impl Producer for TarProducer<'_> {
    fn size(&self) -> u64 {
        self.layout.size
    }

    fn id(&self) -> String {
        format!("layer-inputs:{}", self.key)
    }

    async fn produce(
        &self,
        writer: modelcar_shared::transfer::chunks::ChunkWriter,
        progress: &Progress,
    ) -> Result<String, TransferError> {
        Ok(produce_tar(self.layout, self.hub, writer, progress).await?)
    }
}

/// A model layer to push: its byte layout, where its Hub files come from (for `hf://`), and
/// its digest-cache key (what it is made of).
pub struct LayerSource<'a> {
    pub layout: &'a TarLayout,
    pub hub: Option<&'a HubSource>,
    pub key: &'a str,
}

/// Pushes a model layer to every destination that lacks it, reading it once; `known` is its
/// digest from the cache, if any. Returns what happened at each destination, in order.
pub async fn push_layer(
    dests: &[&Destination],
    layer: LayerSource<'_>,
    known: Option<&str>,
    method: UploadMethod,
    uploads: &UploadLog,
    progress: &Progress,
) -> Result<Vec<Sent>, TransferError> {
    let LayerSource { layout, hub, key } = layer;
    let mut outcome: Vec<Option<Sent>> = vec![None; dests.len()];
    if let Some(digest) = known {
        for (slot, dest) in outcome.iter_mut().zip(dests) {
            if dest.has_blob(digest).await? {
                progress.adjust_total(-(layout.size as i64));
                *slot = Some(Sent {
                    digest: digest.into(),
                    size: layout.size,
                    sent: false,
                });
            }
        }
    }
    let lacking: Vec<&Destination> = dests
        .iter()
        .zip(&outcome)
        .filter(|(_, o)| o.is_none())
        .map(|(d, _)| *d)
        .collect();
    if !lacking.is_empty() {
        let producer = TarProducer { layout, key, hub };
        let mut pushed = stream_blob_to_all(&lacking, &producer, method, uploads, progress).await?;
        if let Some(known) = known.filter(|k| pushed.first().is_some_and(|p| p.digest != *k)) {
            tracing::warn!(
                "a cached digest was stale ({known}, now {}): the file changed without a change of size, mtime or inode",
                pushed[0].digest
            );
        }
        for slot in outcome.iter_mut().filter(|o| o.is_none()) {
            *slot = Some(pushed.remove(0));
        }
    }
    Ok(outcome.into_iter().flatten().collect())
}
