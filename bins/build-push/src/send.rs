//! Sending the image's layers to every destination, `--jobs` layers at a time, each through
//! `send_blob` (skipped where present, mounted within a registry, else read once for all the
//! destinations that lack it): base layers copied from the base's registry, model layers made
//! from the files.

use futures_util::{StreamExt, TryStreamExt};

use modelcar_shared::oci::Descriptor;
use modelcar_shared::transfer::{
    send_blob, Blob, BlobOutcome, Destination, DigestCheck, RemoteBlob, Sending,
};

use crate::base::BaseImage;
use crate::cache::{CachedLayer, DigestCache};
use crate::error::BuildError;
use crate::hub_source::HubSource;
use crate::layers::ModelLayer;
use crate::tar_producer::TarProducer;

/// What became of each layer at one destination: base layers, then model layers.
pub struct DestLayers {
    pub base: Vec<BlobOutcome>,
    pub model: Vec<BlobOutcome>,
}

/// The layers to send and what they are read from.
pub struct Layers<'a> {
    pub base: &'a BaseImage,
    pub model: &'a [ModelLayer],
    pub hub: Option<&'a HubSource>,
    pub cache: &'a DigestCache,
}

/// Sends base and model layers to `dests`; the first failure stops the rest. Returns one
/// [`DestLayers`] per destination, in order.
pub async fn send_layers(
    dests: &[&Destination],
    layers: &Layers<'_>,
    jobs: usize,
    how: Sending<'_>,
) -> Result<Vec<DestLayers>, BuildError> {
    enum Job<'a> {
        Base(&'a Descriptor),
        Model(&'a ModelLayer),
    }
    let jobs_in_order = layers
        .base
        .layers
        .iter()
        .map(Job::Base)
        .chain(layers.model.iter().map(Job::Model));
    // One entry per layer, each with one outcome per destination.
    let results: Vec<Vec<BlobOutcome>> = futures_util::stream::iter(jobs_in_order)
        .map(|job| async move {
            match job {
                Job::Base(descriptor) => send_base_layer(dests, layers.base, descriptor, how).await,
                Job::Model(layer) => send_model_layer(dests, layers, layer, how).await,
            }
        })
        .buffered(jobs.max(1))
        .try_collect()
        .await?;
    let base_count = layers.base.layers.len();
    let per_dest = (0..dests.len())
        .map(|d| {
            let mut all = results.iter().map(|layer| layer[d].clone());
            DestLayers {
                base: all.by_ref().take(base_count).collect(),
                model: all.collect(),
            }
        })
        .collect();
    Ok(per_dest)
}

async fn send_base_layer(
    dests: &[&Destination],
    base: &BaseImage,
    descriptor: &Descriptor,
    how: Sending<'_>,
) -> Result<Vec<BlobOutcome>, BuildError> {
    let source = base
        .source
        .as_ref()
        .expect("a base with layers has a source");
    let producer = RemoteBlob {
        client: &source.client,
        descriptor,
        check: DigestCheck::Destination,
    };
    let blob = Blob {
        producer: &producer,
        digest: Some(&descriptor.digest),
        mount_from: Some(source.client.reference()),
    };
    send_blob(dests, blob, how)
        .await
        .map_err(|source| BuildError::BaseLayer {
            digest: descriptor.digest.to_string(),
            source,
        })
}

async fn send_model_layer(
    dests: &[&Destination],
    layers: &Layers<'_>,
    layer: &ModelLayer,
    how: Sending<'_>,
) -> Result<Vec<BlobOutcome>, BuildError> {
    let cached = layers
        .cache
        .get(&layer.cache_key)
        .filter(|c| c.size == layer.stream.size);
    let known = cached.as_ref().map(|c| &c.digest);
    let producer = TarProducer {
        stream: &layer.stream,
        key: &layer.cache_key,
        hub: layers.hub,
    };
    let blob = Blob {
        producer: &producer,
        digest: known,
        mount_from: None,
    };
    let outcomes = send_blob(dests, blob, how)
        .await
        .map_err(|source| BuildError::Layer {
            title: layer.plan.title.clone(),
            source,
        })?;
    let first = &outcomes[0];
    let read = outcomes.iter().find(|o| o.uploaded);
    if let (Some(known), Some(read)) = (known, read.filter(|r| Some(&r.digest) != known)) {
        tracing::warn!(
            "a cached digest was stale ({known}, now {}): the file changed without a change of size, mtime or inode",
            read.digest
        );
    }
    let entry = CachedLayer {
        digest: first.digest.clone(),
        size: first.size,
    };
    if let Err(e) = layers.cache.record(&layer.cache_key, entry) {
        tracing::warn!(
            "cannot update the digest cache {:?}: {e}",
            layers.cache.path()
        );
    }
    let sent_to = outcomes.iter().filter(|o| o.uploaded).count();
    match sent_to {
        0 => tracing::info!("already there: {} ({} bytes)", layer.plan.title, first.size),
        n => tracing::info!(
            "sent {} ({} bytes) to {n} of {}",
            layer.plan.title,
            first.size,
            dests.len()
        ),
    }
    Ok(outcomes)
}
