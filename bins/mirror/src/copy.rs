//! Copying the source image to every destination at once: blobs first (`--jobs` at a time,
//! each read from the source once for all the destinations that lack it, through
//! `send_blob`: skipped, mounted or streamed, its digest checked by each destination, and here
//! too with `--verify-locally`), then the listed manifests by digest, and the tagged manifest
//! last, so a failed copy never leaves a tag pointing at missing blobs.

use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};

use modelcar_shared::progress::Progress;
use modelcar_shared::registry::{ConnectOptions, Reference, RegistryClient};
use modelcar_shared::transfer::{
    send_blob, Blob, BlobOutcome, Destination, DigestCheck, RemoteBlob, Sending, UploadLog,
    UploadMethod,
};

use crate::error::MirrorError;
use crate::report::DestReport;
use crate::source::SourceImage;

pub struct CopySettings<'a> {
    pub jobs: usize,
    pub check: DigestCheck,
    pub upload_method: UploadMethod,
    pub connect: &'a ConnectOptions,
    pub uploads: &'a UploadLog,
    pub progress_every: Duration,
}

/// A destination repository, opened.
struct Target<'a> {
    reference: &'a Reference,
    client: RegistryClient,
    dest: Destination,
}

/// Copies `source` to every destination of `dests`; returns a report for each, in order.
pub async fn copy_to_all(
    source: &SourceImage,
    dests: &[Reference],
    settings: &CopySettings<'_>,
) -> Result<Vec<DestReport>, MirrorError> {
    let mut targets = Vec::with_capacity(dests.len());
    for dest in dests {
        targets.push(open(source, dest, settings).await?);
    }
    let names: Vec<String> = dests.iter().map(Reference::to_string).collect();
    let blob_outcomes = copy_blobs(source, &targets, &names.join(", "), settings).await?;
    let mut reports = Vec::with_capacity(targets.len());
    for (index, target) in targets.iter().enumerate() {
        let outcomes: Vec<&BlobOutcome> = blob_outcomes.iter().map(|b| &b[index]).collect();
        reports.push(put_manifests(source, target, &outcomes).await?);
    }
    Ok(reports)
}

async fn open<'a>(
    source: &SourceImage,
    dest: &'a Reference,
    settings: &CopySettings<'_>,
) -> Result<Target<'a>, MirrorError> {
    let same_registry = source.reference.api_host() == dest.api_host();
    let mount_from = if same_registry {
        vec![source.reference.repository.clone()]
    } else {
        Vec::new()
    };
    let client = RegistryClient::for_push(dest, &mount_from, settings.connect)
        .await
        .map_err(|e| MirrorError::Dest {
            image: dest.to_string(),
            source: e,
        })?;
    Ok(Target {
        reference: dest,
        dest: Destination::registry(client.clone(), settings.upload_method),
        client,
    })
}

/// Every blob of the source to every target; per blob, what became of it at each target.
async fn copy_blobs(
    source: &SourceImage,
    targets: &[Target<'_>],
    names: &str,
    settings: &CopySettings<'_>,
) -> Result<Vec<Vec<BlobOutcome>>, MirrorError> {
    let dests: Vec<&Destination> = targets.iter().map(|t| &t.dest).collect();
    let total: u64 = source.blobs.iter().map(|b| b.size).sum();
    let progress = Progress::new(format!("copying to {names}"), total * dests.len() as u64);
    let _reporter = progress.spawn_reporter(settings.progress_every);
    let how = Sending {
        uploads: settings.uploads,
        progress: &progress,
    };
    futures_util::stream::iter(&source.blobs)
        .map(|descriptor| {
            let dests = &dests;
            async move {
                let producer = RemoteBlob {
                    client: &source.client,
                    descriptor,
                    check: settings.check,
                };
                let blob = Blob {
                    producer: &producer,
                    digest: Some(&descriptor.digest),
                    mount_from: Some(source.client.reference()),
                };
                let outcomes =
                    send_blob(dests, blob, how)
                        .await
                        .map_err(|e| MirrorError::Blob {
                            image: names.to_string(),
                            digest: descriptor.digest.to_string(),
                            source: Box::new(e),
                        })?;
                log_blob(&outcomes, &descriptor.digest, descriptor.size);
                Ok(outcomes)
            }
        })
        .buffer_unordered(settings.jobs.max(1))
        .try_collect()
        .await
}

fn log_blob(outcomes: &[BlobOutcome], digest: &str, size: u64) {
    let uploaded = outcomes.iter().filter(|o| o.uploaded).count();
    match (uploaded, outcomes.len()) {
        (0, _) => tracing::info!("already there or mounted: blob {digest} ({size} bytes)"),
        (_, 1) => tracing::info!("copied blob {digest} ({size} bytes)"),
        (n, all) => tracing::info!("copied blob {digest} ({size} bytes) to {n} of {all}"),
    }
}

/// The listed manifests by digest, then the top one under its tag (or digest); the report.
async fn put_manifests(
    source: &SourceImage,
    target: &Target<'_>,
    blobs: &[&BlobOutcome],
) -> Result<DestReport, MirrorError> {
    let (dest, client) = (target.reference, &target.client);
    let image = dest.to_string();
    let dest_error = |e| MirrorError::Dest {
        image: image.clone(),
        source: e,
    };
    for child in &source.children {
        client
            .put_manifest(&child.digest, &child.media_type, child.bytes.clone())
            .await
            .map_err(dest_error)?;
    }
    let tag = dest.tag.clone().or_else(|| source.reference.tag.clone());
    let name = tag.as_deref().unwrap_or(&source.top.digest);
    let stored = client
        .put_manifest(name, &source.top.media_type, source.top.bytes.clone())
        .await
        .map_err(dest_error)?;
    if !stored.is_empty() && stored != source.top.digest {
        return Err(MirrorError::DigestChanged {
            image,
            expected: source.top.digest.to_string(),
            actual: stored,
        });
    }
    let copied: Vec<&&BlobOutcome> = blobs.iter().filter(|o| o.uploaded).collect();
    Ok(DestReport {
        image: match &tag {
            Some(tag) => format!("{}:{tag}", dest.name()),
            None => format!("{}@{}", dest.name(), source.top.digest),
        },
        name: dest.name(),
        digest: source.top.digest.to_string(),
        blobs: blobs.len(),
        blobs_copied: copied.len(),
        bytes_copied: copied.iter().map(|o| o.size).sum(),
        manifests: source.children.len() + 1,
    })
}
