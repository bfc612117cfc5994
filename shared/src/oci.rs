//! The OCI image-spec documents modelcar reads and writes: descriptors, image manifests,
//! indexes, and the media types, Docker's v2 equivalents included. Unknown fields are kept
//! (`extra`) so that a base image's manifest or config survives a round trip.

use crate::digest::Digest;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// What to send in `Accept` when fetching a manifest of any kind.
pub const MANIFEST_TYPES: [&str; 4] = [
    OCI_INDEX,
    OCI_MANIFEST,
    DOCKER_MANIFEST_LIST,
    DOCKER_MANIFEST,
];

pub const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Self {
        Self {
            media_type: media_type.into(),
            digest,
            size,
            platform: None,
            annotations: BTreeMap::new(),
            extra: Map::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Platform {
    /// Parses `os/arch[/variant]`, e.g. `linux/arm64/v8`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split('/');
        let os = parts.next().filter(|p| !p.is_empty())?;
        let architecture = parts.next().filter(|p| !p.is_empty())?;
        let variant = parts.next().map(str::to_string);
        parts.next().is_none().then(|| Self {
            architecture: architecture.into(),
            os: os.into(),
            variant,
            extra: Map::new(),
        })
    }

    /// Parses a `--platform` flag value, with an error message for the command line.
    pub fn parse_flag(s: &str) -> Result<Self, String> {
        Self::parse(s).ok_or_else(|| format!("{s:?} is not OS/ARCH[/VARIANT], e.g. linux/amd64"))
    }

    /// Whether an index entry for `other` serves this platform (a missing variant matches any).
    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || self.variant == other.variant)
    }
}

impl std::fmt::Display for Platform {
    /// `os/arch[/variant]`, as `--platform` takes it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(v) => write!(f, "/{v}"),
            None => Ok(()),
        }
    }
}

impl ImageIndex {
    /// The index's manifest for `platform` (the first entry that serves it); `Err` lists the
    /// platforms it has, for an error a user can act on. build-push's base and mirror's
    /// `--platform` pick a manifest this one way.
    pub fn manifest_for(&self, platform: &Platform) -> Result<&Descriptor, String> {
        self.manifests
            .iter()
            .find(|m| m.platform.as_ref().is_some_and(|p| platform.matches(p)))
            .ok_or_else(|| {
                let available: Vec<String> = self
                    .manifests
                    .iter()
                    .filter_map(|m| m.platform.as_ref())
                    .map(Platform::to_string)
                    .collect();
                available.join(", ")
            })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The OCI media type for the same bytes as a Docker v2 layer type.
pub fn oci_layer_media_type(media_type: &str) -> &str {
    match media_type {
        DOCKER_LAYER_GZIP => OCI_LAYER_GZIP,
        other => other,
    }
}

/// Whether a manifest media type (or, when the registry omits it, the document) is an index.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_gives_the_manifest_of_a_platform_or_says_which_it_has() {
        let entry = |digest: &str, platform: &str| Descriptor {
            platform: Platform::parse(platform),
            ..Descriptor::new(OCI_MANIFEST, Digest::parse(digest).unwrap(), 1)
        };
        let index = ImageIndex {
            schema_version: 2,
            media_type: Some(OCI_INDEX.into()),
            manifests: vec![
                entry(&format!("sha256:{}", "a".repeat(64)), "linux/amd64"),
                entry(&format!("sha256:{}", "b".repeat(64)), "linux/arm64/v8"),
            ],
            annotations: BTreeMap::new(),
            extra: Map::new(),
        };
        let arm = Platform::parse("linux/arm64").unwrap();
        assert_eq!(
            index.manifest_for(&arm).unwrap().digest.hex(),
            "b".repeat(64)
        );
        let s390x = Platform::parse("linux/s390x").unwrap();
        assert_eq!(
            index.manifest_for(&s390x).unwrap_err(),
            "linux/amd64, linux/arm64/v8"
        );
    }

    #[test]
    fn platform_parsing_and_matching() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(
            (p.os.as_str(), p.architecture.as_str(), p.variant.as_deref()),
            ("linux", "arm64", Some("v8"))
        );
        assert!(Platform::parse("linux").is_none());
        assert!(Platform::parse("linux/amd64/x/y").is_none());
        let any_variant = Platform::parse("linux/arm64").unwrap();
        assert!(any_variant.matches(&p));
        assert!(!p.matches(&any_variant));
    }

    #[test]
    fn unknown_manifest_fields_survive() {
        let digest = crate::digest::sha256_digest(b"d");
        let json = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"m","digest":"{digest}","size":1,"urls":["u"]}},"layers":[],"subject":{{"x":1}}}}"#
        );
        let m: ImageManifest = serde_json::from_str(&json).unwrap();
        let back = serde_json::to_value(&m).unwrap();
        assert_eq!(back["config"]["urls"][0], "u");
        assert_eq!(back["subject"]["x"], 1);
    }
}
