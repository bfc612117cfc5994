//! The base image under the model layers: `scratch`, or an image in a registry (an index is
//! resolved to the manifest for `--platform`). Only its manifest and config are read here;
//! its layers are later mounted or streamed registry to registry, never stored locally.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use modelcar_shared::causes::ErrorCauses;
use modelcar_shared::digest::sha256_digest;
use modelcar_shared::digest::Digest;
use modelcar_shared::oci::{self, Descriptor, ImageIndex, ImageManifest, Platform};
use modelcar_shared::registry::{ConnectOptions, Reference, RegistryClient, RegistryError};

/// Configs are small; anything larger is not an image config.
const MAX_CONFIG_BYTES: usize = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    #[error("--base")]
    Reference(#[from] modelcar_shared::registry::ReferenceError),
    #[error("cannot read base image {image}")]
    Registry {
        image: String,
        source: RegistryError,
    },
    #[error("base image {image} has no manifest for platform {platform} (it has: {available}); choose one with --platform")]
    NoPlatform {
        image: String,
        platform: String,
        available: String,
    },
    #[error("base image {image}: {detail}")]
    Invalid { image: String, detail: String },
}

pub struct BaseImage {
    /// `None` for scratch.
    pub source: Option<BaseSource>,
    /// Base layers, with OCI media types.
    pub layers: Vec<Descriptor>,
    /// The base image config, to which the model layers are added.
    pub config: Map<String, Value>,
}

pub struct BaseSource {
    pub reference: Reference,
    /// The digest of the platform manifest actually used.
    pub manifest_digest: Digest,
    pub client: RegistryClient,
}

pub async fn resolve(
    base: &str,
    platform: &Platform,
    connect: &ConnectOptions,
) -> Result<BaseImage, BaseError> {
    if base == "scratch" {
        return Ok(scratch(platform));
    }
    let reference = Reference::parse(base)?;
    let image = reference.to_string();
    let registry_error = |source| BaseError::Registry {
        image: image.clone(),
        source,
    };
    let invalid = |detail: String| BaseError::Invalid {
        image: image.clone(),
        detail,
    };
    let client = RegistryClient::for_pull(&reference, connect)
        .await
        .map_err(registry_error)?;

    let mut raw = client
        .get_manifest(reference.manifest_ref(), &oci::MANIFEST_TYPES)
        .await
        .map_err(registry_error)?;
    if oci::is_index(&raw.media_type) {
        let index: ImageIndex =
            serde_json::from_slice(&raw.bytes).map_err(|e| invalid(format!("bad index: {e}")))?;
        let entry = index
            .manifest_for(platform)
            .map_err(|available| BaseError::NoPlatform {
                image: image.clone(),
                platform: platform.to_string(),
                available,
            })?;
        raw = client
            .get_manifest(&entry.digest, &oci::MANIFEST_TYPES)
            .await
            .map_err(registry_error)?;
    }
    let manifest: ImageManifest =
        serde_json::from_slice(&raw.bytes).map_err(|e| invalid(format!("bad manifest: {e}")))?;
    let config = fetch_config(&client, &manifest.config)
        .await
        .map_err(|e| match e {
            ConfigError::Registry(source) => registry_error(source),
            ConfigError::Invalid(detail) => invalid(detail),
        })?;
    let layers = manifest
        .layers
        .into_iter()
        .map(|mut layer| {
            layer.media_type = oci::oci_layer_media_type(&layer.media_type).to_string();
            layer
        })
        .collect();
    Ok(BaseImage {
        source: Some(BaseSource {
            reference,
            manifest_digest: raw.digest,
            client,
        }),
        layers,
        config,
    })
}

fn scratch(platform: &Platform) -> BaseImage {
    let config = json!({
        "architecture": platform.architecture,
        "os": platform.os,
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    });
    let Value::Object(mut config) = config else {
        unreachable!("a JSON object literal")
    };
    if let Some(variant) = &platform.variant {
        config.insert("variant".into(), variant.clone().into());
    }
    BaseImage {
        source: None,
        layers: Vec::new(),
        config,
    }
}

enum ConfigError {
    Registry(RegistryError),
    Invalid(String),
}

async fn fetch_config(
    client: &RegistryClient,
    desc: &Descriptor,
) -> Result<Map<String, Value>, ConfigError> {
    if desc.size as usize > MAX_CONFIG_BYTES {
        return Err(ConfigError::Invalid(format!(
            "config of {} bytes is too large",
            desc.size
        )));
    }
    let (response, _) = client
        .get_blob(&desc.digest, 0)
        .await
        .map_err(ConfigError::Registry)?;
    let bytes: Bytes = response
        .bytes()
        .await
        .map_err(|e| ConfigError::Invalid(format!("config download broke off: {}", e.causes())))?;
    if sha256_digest(&bytes) != desc.digest {
        return Err(ConfigError::Invalid(format!(
            "config does not match its digest {}",
            desc.digest
        )));
    }
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ConfigError::Invalid("config is not a JSON object".into())),
    }
}
