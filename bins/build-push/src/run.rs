//! One build-push run, in order: read the model and plan its layers, resolve the base, open
//! the destinations, send the layers, then the image's config and manifest, the ModelPack,
//! and report and record what was pushed.

use std::sync::Arc;
use std::time::Instant;

use modelcar_shared::hub::HubRevision;
use modelcar_shared::metadata::Metadata;
use modelcar_shared::progress::Progress;
use modelcar_shared::transfer::{DestSpec, Destination, Sending};

use crate::base::{self, BaseImage};
use crate::cache::DigestCache;
use crate::error::BuildError;
use crate::labels::image_info;
use crate::layers::{plan_model, scan_model, ModelLayer};
use crate::options::Options;
use crate::publish::{push_image, push_modelpack, ModelPackInputs, Targets};
use crate::record::record;
use crate::report::{PushOutcome, PushReport};
use crate::send::{send_layers, Layers};

pub async fn run(opts: Options) -> Result<PushReport, BuildError> {
    let started = Instant::now();
    let metadata = match &opts.workspace {
        Some(ws) => ws.metadata()?.read()?,
        None => Metadata::default(),
    };
    let (tree, hub) = scan_model(&opts).await?;
    let base = base::resolve(&opts.base, &opts.platform, &opts.base_connect).await?;
    let layers = plan_model(&opts, tree, base.layers.len())?;
    let dests = open_destinations(&opts, &base).await?;
    let dests: Vec<&Destination> = dests.iter().collect();
    let targets = Targets {
        specs: &opts.dests,
        dests: &dests,
    };

    let cache = match &opts.cache_path {
        Some(path) => DigestCache::load(path.clone()),
        None => DigestCache::disabled(),
    };
    let progress = layers_progress(&opts, &base, &layers);
    let _reporter = progress.spawn_reporter(opts.progress_every);
    let how = Sending {
        uploads: &opts.uploads,
        progress: &progress,
    };
    let to_send = Layers {
        base: &base,
        model: &layers,
        hub: hub.as_ref(),
        cache: &cache,
    };
    let sent = send_layers(&dests, &to_send, opts.jobs, how).await?;

    let hub_provenance = match &hub {
        Some(hub) => Some(HubRevision {
            repo: hub.repo.clone(),
            sha: hub.sha.clone(),
        }),
        None => metadata
            .hf_repo
            .clone()
            .zip(metadata.hf_revision.clone())
            .map(|(repo, sha)| HubRevision { repo, sha }),
    };
    let info = image_info(&opts, hub_provenance.as_ref(), &base);
    let image = push_image(&targets, &base, &layers, &sent[0].model, &info, how).await?;
    let modelpack = match &opts.modelpack {
        Some(tag) => {
            let inputs = ModelPackInputs {
                tag,
                prefix: &opts.prefix,
                layers: &layers,
                hub: hub.as_ref(),
                hub_provenance: hub_provenance.clone(),
                info: &info,
            };
            Some(push_modelpack(&targets, &image, &inputs, how).await?)
        }
        None => None,
    };

    let report = PushReport::new(PushOutcome {
        specs: &opts.dests,
        image: &image,
        layers: &layers,
        sent: &sent,
        modelpack,
        base: &base,
        seconds: started.elapsed().as_secs_f64(),
    });
    if let Some(ws) = &opts.workspace {
        record(ws, &opts, hub_provenance, &report)?;
    }
    Ok(report)
}

/// Every destination, opened; a registry one may mount the base's layers from its repository.
async fn open_destinations(
    opts: &Options,
    base: &BaseImage,
) -> Result<Vec<Destination>, BuildError> {
    let mount_from: Vec<String> = base
        .source
        .iter()
        .map(|s| s.reference.repository.clone())
        .collect();
    let mut opened = Vec::with_capacity(opts.dests.len());
    for dest in &opts.dests {
        opened.push(Destination::open(dest, &mount_from, &opts.connect, opts.upload_method).await?);
    }
    Ok(opened)
}

/// Progress over every layer byte for every destination.
fn layers_progress(opts: &Options, base: &BaseImage, layers: &[ModelLayer]) -> Arc<Progress> {
    let total = layers.iter().map(|l| l.stream.size).sum::<u64>()
        + base.layers.iter().map(|l| l.size).sum::<u64>();
    let names: Vec<String> = opts.dests.iter().map(DestSpec::display).collect();
    Progress::new(
        format!("pushing to {}", names.join(", ")),
        total * opts.dests.len() as u64,
    )
}
