//! The source image as it will be copied: the manifest (or index) bytes exactly as the source
//! registry stores them, the manifests an index lists, and every blob they reference.

use std::collections::HashSet;

use modelcar_shared::oci::{self, Descriptor, ImageIndex, ImageManifest, Platform};
use modelcar_shared::registry::{ConnectOptions, RawManifest, Reference, RegistryClient};

use crate::error::MirrorError;

pub struct SourceImage {
    pub reference: Reference,
    pub client: RegistryClient,
    /// What the destination tag will name: copied byte for byte, so its digest is kept.
    pub top: RawManifest,
    /// The manifests an index lists (none for a single manifest), pushed by digest first.
    pub children: Vec<RawManifest>,
    /// Every config and layer blob, each once.
    pub blobs: Vec<Descriptor>,
}

/// Reads the source's manifests. With `platform`, an index is resolved to that one manifest.
pub async fn resolve(
    reference: &Reference,
    platform: Option<&Platform>,
    connect: &ConnectOptions,
) -> Result<SourceImage, MirrorError> {
    let source_error = |e| MirrorError::Source {
        image: reference.to_string(),
        source: e,
    };
    let client = RegistryClient::for_pull(reference, connect)
        .await
        .map_err(source_error)?;
    let mut top = client
        .get_manifest(reference.manifest_ref(), &oci::MANIFEST_TYPES)
        .await
        .map_err(source_error)?;
    if let Some(expected) = &reference.digest {
        if &top.digest != expected {
            return Err(MirrorError::ManifestDigest {
                image: reference.to_string(),
                actual: top.digest.to_string(),
            });
        }
    }
    let mut children = Vec::new();
    if oci::is_index(&top.media_type) {
        let index: ImageIndex = parse(reference, &top)?;
        let selected: Vec<&Descriptor> = match platform {
            Some(p) => {
                let entry = index
                    .manifest_for(p)
                    .map_err(|available| MirrorError::NoPlatform {
                        image: reference.to_string(),
                        platform: p.to_string(),
                        available,
                    })?;
                vec![entry]
            }
            None => index.manifests.iter().collect(),
        };
        for entry in selected {
            let child = client
                .get_manifest(&entry.digest, &oci::MANIFEST_TYPES)
                .await
                .map_err(source_error)?;
            if oci::is_index(&child.media_type) {
                return Err(MirrorError::Unsupported {
                    image: reference.to_string(),
                    detail: format!(
                        "index {} lists another index; nested indexes are not copied",
                        entry.digest
                    ),
                });
            }
            children.push(child);
        }
        if platform.is_some() {
            top = children.pop().expect("one manifest was selected");
        }
    }
    let images: Vec<&RawManifest> = if children.is_empty() {
        vec![&top]
    } else {
        children.iter().collect()
    };
    let mut seen = HashSet::new();
    let mut blobs = Vec::new();
    for raw in images {
        let manifest: ImageManifest = parse(reference, raw)?;
        for blob in std::iter::once(manifest.config).chain(manifest.layers) {
            if seen.insert(blob.digest.clone()) {
                blobs.push(blob);
            }
        }
    }
    Ok(SourceImage {
        reference: reference.clone(),
        client,
        top,
        children,
        blobs,
    })
}

fn parse<T: serde::de::DeserializeOwned>(
    reference: &Reference,
    raw: &RawManifest,
) -> Result<T, MirrorError> {
    serde_json::from_slice(&raw.bytes).map_err(|e| MirrorError::Unsupported {
        image: reference.to_string(),
        detail: format!(
            "manifest {} ({}) cannot be read: {e}",
            raw.digest, raw.media_type
        ),
    })
}
