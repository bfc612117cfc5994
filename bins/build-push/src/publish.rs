//! After the layers: the image's config and manifest, then the ModelPack artifact made from
//! what the image push returned, sent to every destination, each manifest after the blobs it
//! names so a tag never points at a missing blob.

use bytes::Bytes;

use modelcar_shared::digest::sha256_digest;
use modelcar_shared::hub::HubRevision;
use modelcar_shared::oci::{Descriptor, ANNOTATION_TITLE, OCI_CONFIG, OCI_LAYER_TAR, OCI_MANIFEST};
use modelcar_shared::transfer::{
    send_blob, Blob, BlobOutcome, DestSpec, Destination, InMemoryBlob, Sending, TransferError,
};

use crate::base::BaseImage;
use crate::error::BuildError;
use crate::hub_source::HubSource;
use crate::image::{config_json, manifest_json, ImageInfo};
use crate::layers::ModelLayer;
use crate::modelpack;
use crate::options::ModelPackTag;

/// The destinations, as given and as opened, in the same order.
pub struct Targets<'a> {
    pub specs: &'a [DestSpec],
    pub dests: &'a [&'a Destination],
}

/// The image as pushed: its manifest, its config, and its layers' descriptors.
pub struct PushedImage {
    pub manifest: Descriptor,
    pub config: Descriptor,
    /// Base layers, then model layers.
    pub layers: Vec<Descriptor>,
    /// The model layers alone, in the order of the planned layers.
    pub model_layers: Vec<Descriptor>,
}

/// Makes the config and manifest over `base` and the model layers (`sent` as returned by the
/// layer push) and sends them to every destination, the manifest under its tag.
pub async fn push_image(
    targets: &Targets<'_>,
    base: &BaseImage,
    layers: &[ModelLayer],
    sent: &[BlobOutcome],
    info: &ImageInfo,
    how: Sending<'_>,
) -> Result<PushedImage, BuildError> {
    let model_layers: Vec<Descriptor> = layers
        .iter()
        .zip(sent)
        .map(|(layer, sent)| {
            let mut d = Descriptor::new(OCI_LAYER_TAR, sent.digest.clone(), sent.size);
            d.annotations
                .insert(ANNOTATION_TITLE.into(), layer.plan.title.clone());
            d
        })
        .collect();
    let config = Bytes::from(config_json(base.config.clone(), &model_layers, info));
    let config = send_in_memory(targets.dests, OCI_CONFIG, config, how).await?;
    let all_layers: Vec<Descriptor> = base.layers.iter().chain(&model_layers).cloned().collect();
    let manifest = Bytes::from(manifest_json(
        config.clone(),
        all_layers.clone(),
        info.annotations.clone(),
    ));
    let manifest_desc = Descriptor::new(
        OCI_MANIFEST,
        sha256_digest(&manifest),
        manifest.len() as u64,
    );
    for (spec, dest) in targets.specs.iter().zip(targets.dests) {
        dest.put_manifest(&spec.tag(), &manifest_desc, manifest.clone())
            .await?;
    }
    Ok(PushedImage {
        manifest: manifest_desc,
        config,
        layers: all_layers,
        model_layers,
    })
}

/// What the ModelPack is made from besides the pushed image.
pub struct ModelPackInputs<'a> {
    /// Where the artifact is tagged.
    pub tag: &'a ModelPackTag,
    pub prefix: &'a str,
    pub layers: &'a [ModelLayer],
    pub hub: Option<&'a HubSource>,
    /// `(repo, commit sha)` when the model came from the Hub.
    pub hub_provenance: Option<HubRevision>,
    pub info: &'a ImageInfo,
}

/// Pushes the ModelPack artifact to every destination, beside the image whose layer blobs it
/// shares; returns its reference at each destination and its digest.
pub async fn push_modelpack(
    targets: &Targets<'_>,
    image: &PushedImage,
    inputs: &ModelPackInputs<'_>,
    how: Sending<'_>,
) -> Result<(Vec<String>, String), BuildError> {
    let name = inputs
        .info
        .annotations
        .get("org.opencontainers.image.title")
        .cloned()
        .unwrap_or_default();
    let who = modelpack::Provenance {
        name,
        hub: inputs.hub_provenance.clone(),
    };
    let facts = modelpack::gather_facts(inputs.layers, inputs.prefix, inputs.hub).await;
    let pack = modelpack::build(
        inputs.layers,
        &image.model_layers,
        inputs.prefix,
        &facts,
        &who,
        inputs.info,
    );
    send_in_memory(
        targets.dests,
        &pack.config_desc.media_type,
        pack.config,
        how,
    )
    .await?;
    let mut refs = Vec::new();
    for (spec, dest) in targets.specs.iter().zip(targets.dests) {
        let tag = inputs.tag.tag_beside(&spec.tag());
        dest.put_manifest(&tag, &pack.manifest_desc, pack.manifest.clone())
            .await?;
        refs.push(spec.with_tag(&tag).display());
    }
    Ok((refs, pack.manifest_desc.digest.to_string()))
}

/// Sends a few bytes (a config) to every destination that lacks them; their descriptor.
async fn send_in_memory(
    dests: &[&Destination],
    media_type: &str,
    bytes: Bytes,
    how: Sending<'_>,
) -> Result<Descriptor, BuildError> {
    let descriptor = Descriptor::new(media_type, sha256_digest(&bytes), bytes.len() as u64);
    let producer = InMemoryBlob {
        digest: descriptor.digest.clone(),
        bytes,
    };
    let blob = Blob {
        producer: &producer,
        digest: Some(&descriptor.digest),
        mount_from: None,
    };
    send_blob(dests, blob, how).await.map_err(|e| match e {
        TransferError::Dest(e) => BuildError::Dest(e),
        TransferError::Source(_) => unreachable!("bytes in memory are not read from a source"),
    })?;
    Ok(descriptor)
}
