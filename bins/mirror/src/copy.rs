//! Copying the source image to one destination: blobs first (`--jobs` at a time, skipped,
//! mounted or streamed with their digest checked by the destination, and here too with
//! `--verify-locally`), then the listed manifests by digest, and the tagged manifest last, so
//! a failed copy never leaves a tag pointing at missing blobs.

use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};

use modelcar_shared::progress::Progress;
use modelcar_shared::registry::{ConnectOptions, Reference, RegistryClient};
use modelcar_shared::transfer::{
    copy_blob, Destination, DigestCheck, Sent, UploadLog, UploadMethod,
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

pub async fn copy_to(
    source: &SourceImage,
    dest: &Reference,
    settings: &CopySettings<'_>,
) -> Result<DestReport, MirrorError> {
    let image = dest.to_string();
    let dest_error = |e| MirrorError::Dest {
        image: image.clone(),
        source: e,
    };
    let same_registry = source.reference.api_host() == dest.api_host();
    let mount_from = if same_registry {
        vec![source.reference.repository.clone()]
    } else {
        Vec::new()
    };
    let client =
        RegistryClient::for_push(dest, &mount_from, settings.connect).map_err(dest_error)?;
    let target = Destination::Registry(client.clone());

    let total = source.blobs.iter().map(|b| b.size).sum();
    let progress = Progress::new(format!("copying to {image}"), total);
    let _reporter = progress.spawn_reporter(settings.progress_every);
    let sent: Vec<Sent> = futures_util::stream::iter(&source.blobs)
        .map(|blob| {
            let (target, progress, image) = (&target, &progress, &image);
            async move {
                let (chunk, uploads) = (settings.upload_method, settings.uploads);
                let sent = copy_blob(
                    target,
                    &source.client,
                    blob,
                    settings.check,
                    chunk,
                    uploads,
                    progress,
                )
                .await;
                if let Ok(s) = &sent {
                    let verb = if s.sent {
                        "copied"
                    } else {
                        "already there or mounted:"
                    };
                    tracing::info!("{verb} blob {} ({} bytes)", s.digest, s.size);
                }
                sent.map_err(|e| MirrorError::Blob {
                    image: image.clone(),
                    digest: blob.digest.clone(),
                    source: Box::new(e),
                })
            }
        })
        .buffer_unordered(settings.jobs.max(1))
        .try_collect()
        .await?;

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
            expected: source.top.digest.clone(),
            actual: stored,
        });
    }
    let copied: Vec<&Sent> = sent.iter().filter(|s| s.sent).collect();
    Ok(DestReport {
        image: match &tag {
            Some(tag) => format!("{}:{tag}", dest.name()),
            None => format!("{}@{}", dest.name(), source.top.digest),
        },
        name: dest.name(),
        digest: source.top.digest.clone(),
        blobs: sent.len(),
        blobs_copied: copied.len(),
        bytes_copied: copied.iter().map(|s| s.size).sum(),
        manifests: source.children.len() + 1,
    })
}
