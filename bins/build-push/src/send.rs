//! Sending the image's layers to every destination: base layers copied (mounted within a
//! registry), model layers read once and streamed to each destination that lacks them,
//! `--jobs` layers at a time.

use futures_util::{StreamExt, TryStreamExt};

use modelcar_shared::oci::Descriptor;
use modelcar_shared::progress::Progress;
use modelcar_shared::transfer::{copy_blob, Destination, DigestCheck, Sent};

use crate::base::BaseImage;
use crate::cache::{CachedLayer, DigestCache};
use crate::hub_source::HubSource;
use crate::push::{push_layer, LayerSource};
use crate::run::{BuildError, ModelLayer, Options};

/// What happened to each layer at one destination: base layers, then model layers.
pub struct DestLayers {
    pub base: Vec<Sent>,
    pub model: Vec<Sent>,
}

/// Sends base and model layers to `dests`; the first failure stops the rest. Returns one
/// [`DestLayers`] per destination, in order.
pub async fn send_layers(
    opts: &Options,
    dests: &[&Destination],
    base: &BaseImage,
    layers: &[ModelLayer],
    hub: Option<&HubSource>,
    cache: &DigestCache,
    progress: &Progress,
) -> Result<Vec<DestLayers>, BuildError> {
    enum Job<'a> {
        Base(&'a Descriptor),
        Model(&'a ModelLayer),
    }
    let jobs = base
        .layers
        .iter()
        .map(Job::Base)
        .chain(layers.iter().map(Job::Model));
    // One entry per layer, each with one `Sent` per destination.
    let results: Vec<Vec<Sent>> = futures_util::stream::iter(jobs)
        .map(|job| async move {
            match job {
                Job::Base(descriptor) => {
                    send_base_layer(opts, dests, base, descriptor, progress).await
                }
                Job::Model(layer) => {
                    send_model_layer(opts, dests, layer, hub, cache, progress).await
                }
            }
        })
        .buffered(opts.jobs.max(1))
        .try_collect()
        .await?;
    let per_dest = (0..dests.len())
        .map(|d| {
            let mut all = results.iter().map(|layer| layer[d].clone());
            DestLayers {
                base: all.by_ref().take(base.layers.len()).collect(),
                model: all.collect(),
            }
        })
        .collect();
    Ok(per_dest)
}

async fn send_base_layer(
    opts: &Options,
    dests: &[&Destination],
    base: &BaseImage,
    descriptor: &Descriptor,
    progress: &Progress,
) -> Result<Vec<Sent>, BuildError> {
    let source = base
        .source
        .as_ref()
        .expect("a base with layers has a source");
    let mut sent = Vec::with_capacity(dests.len());
    for dest in dests {
        let copied = copy_blob(
            dest,
            &source.client,
            descriptor,
            DigestCheck::Destination,
            opts.upload_method,
            &opts.uploads,
            progress,
        )
        .await
        .map_err(|source| BuildError::BaseLayer {
            digest: descriptor.digest.clone(),
            source,
        })?;
        sent.push(copied);
    }
    Ok(sent)
}

async fn send_model_layer(
    opts: &Options,
    dests: &[&Destination],
    layer: &ModelLayer,
    hub: Option<&HubSource>,
    cache: &DigestCache,
    progress: &Progress,
) -> Result<Vec<Sent>, BuildError> {
    let cached = cache
        .get(&layer.cache_key)
        .filter(|c| c.size == layer.layout.size);
    let source = LayerSource {
        layout: &layer.layout,
        hub,
        key: &layer.cache_key,
    };
    let known = cached.as_ref().map(|c| c.digest.as_str());
    let pushed = push_layer(
        dests,
        source,
        known,
        opts.upload_method,
        &opts.uploads,
        progress,
    )
    .await
    .map_err(|source| BuildError::Layer {
        title: layer.plan.title.clone(),
        source,
    })?;
    let first = &pushed[0];
    let entry = CachedLayer {
        digest: first.digest.clone(),
        size: first.size,
    };
    if let Err(e) = cache.record(&layer.cache_key, entry) {
        tracing::warn!("cannot update the digest cache {:?}: {e}", cache.path());
    }
    let sent_to = pushed.iter().filter(|p| p.sent).count();
    match sent_to {
        0 => tracing::info!("already there: {} ({} bytes)", layer.plan.title, first.size),
        n => tracing::info!(
            "sent {} ({} bytes) to {n} of {}",
            layer.plan.title,
            first.size,
            dests.len()
        ),
    }
    Ok(pushed)
}
