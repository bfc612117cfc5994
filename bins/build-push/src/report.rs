//! What build-push reports on stdout and in `--results-dir`.

use serde::Serialize;

use modelcar_shared::cli::Report;
use modelcar_shared::progress::human_bytes;
use modelcar_shared::transfer::DestSpec;

use crate::base::BaseImage;
use crate::layers::ModelLayer;
use crate::publish::PushedImage;
use crate::send::DestLayers;

#[derive(Debug, Clone, Serialize)]
pub struct PushReport {
    /// `registry/repository:tag`, or `oci:DIR:TAG`.
    pub image: String,
    pub digest: String,
    /// Bytes of the config and all layers.
    pub size: u64,
    pub layers: Vec<LayerReport>,
    /// Layer bytes actually sent (or written) by this run, to the first destination.
    pub bytes_sent: u64,
    /// Every destination, the first one (`image`) included.
    pub destinations: Vec<DestinationReport>,
    /// The ModelPack artifact at the first destination (`--modelpack`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modelpack: Option<ArtifactReport>,
    /// The base image as `registry/repository@digest`; absent for scratch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DestinationReport {
    pub image: String,
    pub digest: String,
    pub bytes_sent: u64,
    /// Where the ModelPack artifact went at this destination (`--modelpack`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modelpack: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArtifactReport {
    pub image: String,
    pub digest: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    pub digest: String,
    pub size: u64,
    /// The file the layer holds (`FIRST .. LAST` for files packed together, the directory for
    /// the small-files layer); none for base layers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub sent: bool,
}

impl Report for PushReport {
    fn human(&self) -> String {
        let sent = self.layers.iter().filter(|l| l.sent).count();
        let others = self.destinations.iter().skip(1).map(|d| {
            format!(
                "\nalso {}@{}: sent {}",
                d.image,
                d.digest,
                human_bytes(d.bytes_sent)
            )
        });
        let others: String = others.collect();
        let pack = match &self.modelpack {
            Some(p) => format!("\nModelPack {}@{} (same layer blobs)", p.image, p.digest),
            None => String::new(),
        };
        format!(
            "{}@{}\n{} layers, {}: sent {} ({} layers) in {:.1}s, {} layers already there{others}{pack}",
            self.image,
            self.digest,
            self.layers.len(),
            human_bytes(self.size),
            human_bytes(self.bytes_sent),
            sent,
            self.seconds,
            self.layers.len() - sent
        )
    }

    fn results(&self) -> Vec<(&'static str, String)> {
        vec![
            ("IMAGE_URL", self.image.clone()),
            ("IMAGE_DIGEST", self.digest.clone()),
        ]
    }
}

/// What a push did, gathered for its report.
pub struct PushOutcome<'a> {
    pub specs: &'a [DestSpec],
    pub image: &'a PushedImage,
    pub layers: &'a [ModelLayer],
    /// What became of each layer, per destination.
    pub sent: &'a [DestLayers],
    /// The ModelPack's reference at each destination, and its digest.
    pub modelpack: Option<(Vec<String>, String)>,
    pub base: &'a BaseImage,
    pub seconds: f64,
}

impl PushReport {
    pub fn new(outcome: PushOutcome<'_>) -> Self {
        let PushOutcome {
            specs,
            image,
            sent,
            modelpack,
            ..
        } = &outcome;
        let digest = &image.manifest.digest;
        Self {
            image: specs[0].display(),
            digest: digest.to_string(),
            size: image.config.size + image.layers.iter().map(|l| l.size).sum::<u64>(),
            layers: layer_reports(outcome.layers, &sent[0]),
            bytes_sent: bytes_sent(&sent[0]),
            destinations: specs
                .iter()
                .zip(sent.iter())
                .enumerate()
                .map(|(i, (spec, d))| DestinationReport {
                    image: spec.display(),
                    digest: digest.to_string(),
                    bytes_sent: bytes_sent(d),
                    modelpack: modelpack.as_ref().map(|(refs, _)| refs[i].clone()),
                })
                .collect(),
            modelpack: modelpack.as_ref().map(|(refs, digest)| ArtifactReport {
                image: refs[0].clone(),
                digest: digest.clone(),
            }),
            base: outcome
                .base
                .source
                .as_ref()
                .map(|s| format!("{}@{}", s.reference.name(), s.manifest_digest)),
            seconds: outcome.seconds,
        }
    }
}

/// Layer bytes uploaded to one destination.
fn bytes_sent(d: &DestLayers) -> u64 {
    d.base
        .iter()
        .chain(&d.model)
        .filter(|o| o.uploaded)
        .map(|o| o.size)
        .sum()
}

/// Base layers (untitled), then model layers, as they went to one destination.
fn layer_reports(layers: &[ModelLayer], sent: &DestLayers) -> Vec<LayerReport> {
    let base = sent.base.iter().map(|o| (o, None));
    let model = sent
        .model
        .iter()
        .zip(layers)
        .map(|(o, l)| (o, Some(l.plan.title.clone())));
    base.chain(model)
        .map(|(o, title)| LayerReport {
            digest: o.digest.to_string(),
            size: o.size,
            title,
            sent: o.uploaded,
        })
        .collect()
}
