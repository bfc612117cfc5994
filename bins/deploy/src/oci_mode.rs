//! KServe's three ways to mount a ModelCar, chosen by the storageUri's scheme
//! (kserve/kserve `pkg/utils/storage.go` `ParseOciScheme`, `pkg/constants`):
//! - `modelcar`: the image runs as a sidecar whose `/models` the server reaches through
//!   `/proc/<pid>/root` (shared PID namespace); written `oci://`, because an InferenceService
//!   whose storageUri is `oci+modelcar://` fails KServe's `ValidateStorageURI`
//!   (`SupportedStorageURIPrefixList` lists `oci://`, `oci+native://`, `oci+fetch://` only).
//!   For a bare `oci://` KServe takes the cluster's `ociModelMode`, modelcar by default.
//! - `native`: `oci+native://`, the image as a Kubernetes ImageVolume mounted read-only at
//!   `/mnt/models` with `subPath: models` (clusters from 1.33 with the ImageVolume feature
//!   gate, on by default from 1.35); no sidecar.
//! - `fetch`: `oci+fetch://`, the storage-initializer init container pulls the image and
//!   extracts `/models` into an emptyDir: any runtime, at the cost of a copy per pod.

use std::fmt;

use clap::ValueEnum;

/// How KServe mounts the model image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OciMode {
    #[default]
    Modelcar,
    Native,
    Fetch,
}

impl OciMode {
    /// The storageUri scheme KServe reads as this mode.
    pub fn scheme(self) -> &'static str {
        match self {
            OciMode::Modelcar => "oci://",
            OciMode::Native => "oci+native://",
            OciMode::Fetch => "oci+fetch://",
        }
    }

    /// The storageUri for `image` (a reference, no scheme) in this mode.
    pub fn uri(self, image: &str) -> String {
        format!("{}{image}", self.scheme())
    }

    /// The mode KServe names `mode` (`ParseOciScheme`'s X in `oci+X://`): the flag's values.
    pub(crate) fn named(mode: &str) -> Option<Self> {
        <Self as ValueEnum>::from_str(mode, false).ok()
    }
}

impl fmt::Display for OciMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self.to_possible_value().expect("no variant is skipped");
        f.write_str(value.get_name())
    }
}

/// An `oci://` or `oci+MODE://` URI as KServe's `ParseOciScheme` reads it: the mode it names
/// (`None` for a bare `oci://`) and the image reference after the scheme. `Err` holds the
/// scheme when it is `oci+X://` with a mode KServe does not have, `None` when not OCI at all.
pub fn parse_oci_uri(uri: &str) -> Result<(Option<OciMode>, &str), Option<String>> {
    if let Some(image) = uri.strip_prefix("oci://") {
        return Ok((None, image));
    }
    let Some(rest) = uri.strip_prefix("oci+") else {
        return Err(None);
    };
    let (mode, image) = rest.split_once("://").ok_or(None)?;
    match OciMode::named(mode) {
        Some(mode) => Ok((Some(mode), image)),
        None => Err(Some(format!("oci+{mode}://"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// KServe's `ParseOciScheme` returns, for `oci+X://rest`, the mode X and `oci://rest`; for
    /// `oci://rest`, no mode. What each mode writes reads back as that mode.
    #[test]
    fn each_mode_writes_the_scheme_kserve_parses_as_it() {
        let image = "quay.io/org/model@sha256:00";
        for mode in [OciMode::Modelcar, OciMode::Native, OciMode::Fetch] {
            let uri = mode.uri(image);
            let (named, rest) = parse_oci_uri(&uri).unwrap();
            assert_eq!(rest, image);
            // A bare oci:// is modelcar under KServe's default config.
            assert_eq!(named.unwrap_or_default(), mode, "{uri}");
        }
        assert_eq!(OciMode::Native.uri(image), format!("oci+native://{image}"));
        assert_eq!(OciMode::Fetch.uri(image), format!("oci+fetch://{image}"));
        assert_eq!(OciMode::Modelcar.uri(image), format!("oci://{image}"));
    }

    #[test]
    fn other_schemes_are_told_apart() {
        assert_eq!(parse_oci_uri("s3://bucket/model"), Err(None));
        assert_eq!(
            parse_oci_uri("oci+foo://r/i:t"),
            Err(Some("oci+foo://".into()))
        );
        assert_eq!(
            parse_oci_uri("oci+modelcar://r/i:t"),
            Ok((Some(OciMode::Modelcar), "r/i:t"))
        );
    }
}
