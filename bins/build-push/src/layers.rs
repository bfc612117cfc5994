//! The model's layers: its entries read (a directory's, or the Hub's listing) before anything
//! goes out, cut into layers within the layer budget and size limit, and each laid out as the
//! tar stream it will be sent as.

use crate::cache::layer_key;
use crate::error::BuildError;
use crate::hub_source::{self, HubSource};
use crate::limits::layer_size_limit;
use crate::options::{ModelSource, Options};
use crate::plan::{LayerPlan, LayerRules, ModelTree, PlanError};
use crate::tar_stream::{tar_stream, TarStream};

/// A model layer ready to send: what it holds, its tar stream, and its digest-cache key.
pub struct ModelLayer {
    pub plan: LayerPlan,
    pub stream: TarStream,
    pub cache_key: String,
}

/// The model's entries, read (a directory's metadata, or the Hub's file list) before anything
/// goes out, so a missing directory or an unreadable file stops the run at once.
pub async fn scan_model(opts: &Options) -> Result<(ModelTree, Option<HubSource>), BuildError> {
    let prefix = opts.prefix.clone();
    match &opts.source {
        ModelSource::Dir(dir) => {
            let dir = dir.clone();
            let tree = tokio::task::spawn_blocking(move || ModelTree::scan_dir(&dir, &prefix))
                .await
                .expect("the planner does not panic")?;
            Ok((tree, None))
        }
        ModelSource::Hub(input) => {
            let listing = hub_source::list(&input.spec, &input.options, &input.rules).await?;
            let tree = ModelTree::from_hub(&listing.files, &prefix)?;
            Ok((tree, Some(listing.source)))
        }
    }
}

/// The model's layers within the layer budget the base leaves and the layer size limit, each
/// laid out as a tar stream; a layer over the limit stops the run before its first byte.
pub fn plan_model(
    opts: &Options,
    tree: ModelTree,
    base_layers: usize,
) -> Result<Vec<ModelLayer>, BuildError> {
    let rules = LayerRules {
        threshold: opts.layer_threshold,
        max_layers: opts.max_layers.saturating_sub(base_layers),
        max_layer_size: layer_size_limit(opts.max_layer_size, &opts.dests),
    };
    let large_files = tree.large_files(rules.threshold);
    let plans = tree.layers(&rules)?;
    if plans.len() <= large_files {
        tracing::info!(
            "{large_files} large files packed into {} layers (--max-layers {} less {base_layers} of the base)",
            plans.len() - 1,
            opts.max_layers,
        );
    }
    plans
        .into_iter()
        .map(|plan| {
            let stream =
                tar_stream(&plan, opts.source_date_epoch).map_err(|source| BuildError::Tar {
                    title: plan.title.clone(),
                    source,
                })?;
            if let Some(limit) = &rules.max_layer_size {
                if stream.size > limit.bytes {
                    return Err(PlanError::LayerTooLarge {
                        title: plan.title,
                        size: stream.size,
                        limit: limit.clone(),
                    }
                    .into());
                }
            }
            let cache_key = layer_key(&plan, opts.source_date_epoch);
            Ok(ModelLayer {
                plan,
                stream,
                cache_key,
            })
        })
        .collect()
}
