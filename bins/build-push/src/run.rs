//! One build-push run: plan the layers, resolve the base, send every blob that is missing
//! (`--jobs` at a time), then the config and the manifest, and record the result.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use modelcar_shared::digest::sha256_digest;
use modelcar_shared::metadata::{ArtifactRecord, Metadata, MetadataError, MirrorRecord};
use modelcar_shared::oci::{
    Descriptor, Platform, ANNOTATION_TITLE, OCI_CONFIG, OCI_LAYER_TAR, OCI_MANIFEST,
};
use modelcar_shared::progress::Progress;
use modelcar_shared::registry::ConnectOptions;
use modelcar_shared::transfer::{
    DestError, DestSpec, Destination, Sent as Pushed, TransferError, UploadLog, UploadMethod,
};
use modelcar_shared::Workspace;

use crate::base::{self, BaseError, BaseImage};
use crate::cache::{layer_key, DigestCache};
use crate::hub_source::{self, HubSource, HubSpec};
use crate::image::{config_json, manifest_json, ImageInfo};
use crate::limits::layer_size_limit;
use crate::modelpack;
use crate::plan::{LayerPlan, LayerRules, ModelTree, PlanError};
use crate::report::{ArtifactReport, DestinationReport, LayerReport, PushReport};
use crate::send::{send_layers, DestLayers};
use crate::tar_layout::{layout, TarLayout};
use modelcar_shared::hub::HubOptions;
use modelcar_shared::selection::Rules;

/// What the image is made from.
pub enum ModelSource {
    /// A model directory (fetch-model's, or any).
    Dir(PathBuf),
    /// `hf://ORG/REPO[@REV]`: streamed from the Hub, the files chosen as fetch-model chooses.
    Hub(Box<HubInput>),
}

pub struct HubInput {
    pub spec: HubSpec,
    pub options: HubOptions,
    pub rules: Rules,
}

pub struct Options {
    pub source: ModelSource,
    /// Where to push; each layer is read once and sent to all of them.
    pub dests: Vec<DestSpec>,
    pub base: String,
    pub platform: Platform,
    pub prefix: String,
    pub layer_threshold: u64,
    /// Layers the whole image may have, the base's included.
    pub max_layers: usize,
    /// `--max-layer-size`: the most bytes a layer may hold (default: the destinations'
    /// documented limits, see [`layer_size_limit`]).
    pub max_layer_size: Option<u64>,
    pub upload_method: UploadMethod,
    pub jobs: usize,
    pub user: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub source_date_epoch: u64,
    /// How to reach the destination registry.
    pub connect: ConnectOptions,
    /// How to reach the base image's registry.
    pub base_connect: ConnectOptions,
    /// Where the result is recorded (metadata file) and the digest cache kept.
    pub workspace: Option<Workspace>,
    /// The digest cache file; `None` disables it.
    pub cache_path: Option<PathBuf>,
    /// Where open uploads are logged, so that a rerun resumes them at the byte.
    pub uploads: UploadLog,
    pub progress_every: Duration,
    /// `--modelpack[=TAG]`: also push a CNCF ModelPack artifact over the same layer blobs.
    pub modelpack: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Hub(#[from] modelcar_shared::hub::HubError),
    #[error(transparent)]
    Base(#[from] BaseError),
    #[error(transparent)]
    Dest(#[from] DestError),
    #[error("layer {title}: {source}")]
    Layer {
        title: String,
        source: TransferError,
    },
    #[error("base layer {digest}: {source}")]
    BaseLayer {
        digest: String,
        source: TransferError,
    },
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error(transparent)]
    Layout(#[from] modelcar_shared::layout::LayoutError),
    #[error("cannot lay out the tar stream of {title}: {source}")]
    Tar {
        title: String,
        source: std::io::Error,
    },
}

/// A model layer ready to send.
pub(crate) struct ModelLayer {
    pub plan: LayerPlan,
    pub layout: TarLayout,
    pub cache_key: String,
}

pub async fn run(opts: Options) -> Result<PushReport, BuildError> {
    let started = Instant::now();
    let metadata = match &opts.workspace {
        Some(ws) => ws.metadata()?.read()?,
        None => Metadata::default(),
    };
    let (tree, hub) = scan_model(&opts).await?;
    let cache = match &opts.cache_path {
        Some(path) => DigestCache::load(path.clone()),
        None => DigestCache::disabled(),
    };
    let base = base::resolve(&opts.base, &opts.platform, &opts.base_connect).await?;
    let layers = plan_model(&opts, tree, base.layers.len())?;
    let mount_from: Vec<String> = base
        .source
        .iter()
        .map(|s| s.reference.repository.clone())
        .collect();
    let dests = opts
        .dests
        .iter()
        .map(|d| Destination::open(d, &mount_from, &opts.connect))
        .collect::<Result<Vec<_>, _>>()?;
    let dest_refs: Vec<&Destination> = dests.iter().collect();

    let total = layers.iter().map(|l| l.layout.size).sum::<u64>()
        + base.layers.iter().map(|l| l.size).sum::<u64>();
    let names: Vec<String> = opts.dests.iter().map(DestSpec::display).collect();
    let progress = Progress::new(
        format!("pushing to {}", names.join(", ")),
        total * dests.len() as u64,
    );
    let _reporter = progress.spawn_reporter(opts.progress_every);
    let sent = send_layers(
        &opts,
        &dest_refs,
        &base,
        &layers,
        hub.as_ref(),
        &cache,
        &progress,
    )
    .await?;
    let (base_pushed, model_pushed) = (&sent[0].base, &sent[0].model);

    let provenance = match &hub {
        Some(hub) => Some((hub.repo.clone(), hub.sha.clone())),
        None => metadata.hf_repo.clone().zip(metadata.hf_revision.clone()),
    };
    let info = image_info(&opts, provenance.as_ref(), &base);
    let model_descriptors: Vec<Descriptor> = layers
        .iter()
        .zip(model_pushed)
        .map(|(layer, pushed)| {
            let mut d = Descriptor::new(OCI_LAYER_TAR, pushed.digest.clone(), pushed.size);
            d.annotations
                .insert(ANNOTATION_TITLE.into(), layer.plan.title.clone());
            d
        })
        .collect();
    let config = Bytes::from(config_json(base.config.clone(), &model_descriptors, &info));
    let config_desc = Descriptor::new(OCI_CONFIG, sha256_digest(&config), config.len() as u64);
    for dest in &dests {
        dest.put_blob(&config_desc.digest, config.clone()).await?;
    }

    let all_layers: Vec<Descriptor> = base
        .layers
        .iter()
        .cloned()
        .chain(model_descriptors.iter().cloned())
        .collect();
    let manifest = Bytes::from(manifest_json(
        config_desc.clone(),
        all_layers.clone(),
        info.annotations.clone(),
    ));
    let manifest_desc = Descriptor::new(
        OCI_MANIFEST,
        sha256_digest(&manifest),
        manifest.len() as u64,
    );
    for (spec, dest) in opts.dests.iter().zip(&dests) {
        dest.put_manifest(&spec.tag(), &manifest_desc, manifest.clone())
            .await?;
    }

    let modelpack = match &opts.modelpack {
        Some(flag) => {
            let pushed = ModelCarPushed {
                dests: &dests,
                layers: &layers,
                descriptors: &model_descriptors,
                hub: hub.as_ref(),
                info: &info,
            };
            Some(push_modelpack(&opts, &pushed, provenance.clone(), flag).await?)
        }
        None => None,
    };

    let bytes_sent = |d: &DestLayers| -> u64 {
        d.base
            .iter()
            .chain(&d.model)
            .filter(|p| p.sent)
            .map(|p| p.size)
            .sum()
    };
    let report = PushReport {
        image: opts.dests[0].display(),
        digest: manifest_desc.digest.clone(),
        size: config_desc.size + all_layers.iter().map(|l| l.size).sum::<u64>(),
        layers: layer_reports(&layers, base_pushed, model_pushed),
        bytes_sent: bytes_sent(&sent[0]),
        destinations: opts
            .dests
            .iter()
            .zip(&sent)
            .enumerate()
            .map(|(i, (spec, d))| DestinationReport {
                image: spec.display(),
                digest: manifest_desc.digest.clone(),
                bytes_sent: bytes_sent(d),
                modelpack: modelpack.as_ref().map(|(refs, _)| refs[i].clone()),
            })
            .collect(),
        modelpack: modelpack.as_ref().map(|(refs, digest)| ArtifactReport {
            image: refs[0].clone(),
            digest: digest.clone(),
        }),
        base: base
            .source
            .as_ref()
            .map(|s| format!("{}@{}", s.reference.name(), s.manifest_digest)),
        seconds: started.elapsed().as_secs_f64(),
    };
    if let Some(ws) = &opts.workspace {
        record(ws, &opts, provenance, &report)?;
    }
    Ok(report)
}

/// The model's entries, read (a directory's metadata, or the Hub's file list) before anything
/// goes out, so a missing directory or an unreadable file stops the run at once.
async fn scan_model(opts: &Options) -> Result<(ModelTree, Option<HubSource>), BuildError> {
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
fn plan_model(
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
            let layout =
                layout(&plan, opts.source_date_epoch).map_err(|source| BuildError::Tar {
                    title: plan.title.clone(),
                    source,
                })?;
            if let Some(limit) = &rules.max_layer_size {
                if layout.size > limit.bytes {
                    return Err(PlanError::LayerTooLarge {
                        title: plan.title,
                        size: layout.size,
                        limit: limit.clone(),
                    }
                    .into());
                }
            }
            let cache_key = layer_key(&plan, opts.source_date_epoch);
            Ok(ModelLayer {
                plan,
                layout,
                cache_key,
            })
        })
        .collect()
}

/// Labels and annotations: provenance from the metadata file, then what the user gave (which wins).
fn image_info(opts: &Options, hf: Option<&(String, String)>, base: &BaseImage) -> ImageInfo {
    let created = humantime::format_rfc3339_seconds(
        SystemTime::UNIX_EPOCH + Duration::from_secs(opts.source_date_epoch),
    )
    .to_string();
    let title = match (hf, &opts.source) {
        (Some((repo, _)), _) => repo.clone(),
        (None, ModelSource::Dir(dir)) => dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default(),
        (None, ModelSource::Hub(input)) => input.spec.repo.clone(),
    };
    let mut provenance = BTreeMap::from([("org.opencontainers.image.title".to_string(), title)]);
    if let Some((repo, revision)) = hf {
        provenance.insert(
            "org.opencontainers.image.source".into(),
            format!("https://huggingface.co/{repo}"),
        );
        provenance.insert("io.modelcar.hf.repo".into(), repo.clone());
        provenance.insert("org.opencontainers.image.revision".into(), revision.clone());
        provenance.insert("io.modelcar.hf.revision".into(), revision.clone());
    }
    let mut labels = provenance.clone();
    labels.extend(opts.labels.clone());
    let mut annotations = provenance;
    annotations.insert("org.opencontainers.image.created".into(), created.clone());
    if let Some(source) = &base.source {
        annotations.insert(
            "org.opencontainers.image.base.name".into(),
            source.reference.to_string(),
        );
        annotations.insert(
            "org.opencontainers.image.base.digest".into(),
            source.manifest_digest.clone(),
        );
    }
    annotations.extend(opts.annotations.clone());
    ImageInfo {
        user: opts.user.clone(),
        created,
        labels,
        annotations,
    }
}

fn layer_reports(layers: &[ModelLayer], base: &[Pushed], model: &[Pushed]) -> Vec<LayerReport> {
    let base = base.iter().map(|p| (p, None));
    let model = model
        .iter()
        .zip(layers)
        .map(|(p, l)| (p, Some(l.plan.title.clone())));
    base.chain(model)
        .map(|(p, title)| LayerReport {
            digest: p.digest.clone(),
            size: p.size,
            title,
            sent: p.sent,
        })
        .collect()
}

/// What the ModelCar push left for the ModelPack: the open destinations, the layers and
/// their descriptors, the Hub source and the image facts.
struct ModelCarPushed<'a> {
    dests: &'a [Destination],
    layers: &'a [ModelLayer],
    descriptors: &'a [Descriptor],
    hub: Option<&'a HubSource>,
    info: &'a ImageInfo,
}

/// Pushes the ModelPack artifact to every destination, beside the ModelCar whose blobs it
/// shares; returns its reference at each destination and its digest.
async fn push_modelpack(
    opts: &Options,
    car: &ModelCarPushed<'_>,
    hub_provenance: Option<(String, String)>,
    flag: &str,
) -> Result<(Vec<String>, String), BuildError> {
    let name = car
        .info
        .annotations
        .get("org.opencontainers.image.title")
        .cloned()
        .unwrap_or_default();
    let who = modelpack::Provenance {
        name,
        hub: hub_provenance,
    };
    let facts = modelpack::gather_facts(car.layers, &opts.prefix, car.hub).await;
    let pack = modelpack::build(
        car.layers,
        car.descriptors,
        &opts.prefix,
        &facts,
        &who,
        car.info,
    );
    let mut refs = Vec::new();
    for (spec, dest) in opts.dests.iter().zip(car.dests) {
        let tag = modelpack::tag(flag, &spec.tag());
        dest.put_blob(&pack.config_desc.digest, pack.config.clone())
            .await?;
        dest.put_manifest(&tag, &pack.manifest_desc, pack.manifest.clone())
            .await?;
        refs.push(with_tag(spec, &tag).display());
    }
    Ok((refs, pack.manifest_desc.digest))
}

/// `spec` with another tag: where the ModelPack artifact goes beside the image.
fn with_tag(spec: &DestSpec, tag: &str) -> DestSpec {
    match spec {
        DestSpec::Registry(r) => DestSpec::Registry(modelcar_shared::registry::Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..r.clone()
        }),
        DestSpec::Layout { dir, .. } => DestSpec::Layout {
            dir: dir.clone(),
            tag: tag.to_string(),
        },
    }
}

fn record(
    ws: &Workspace,
    opts: &Options,
    hf: Option<(String, String)>,
    report: &PushReport,
) -> Result<(), BuildError> {
    let name = |spec: &DestSpec| match spec {
        DestSpec::Registry(r) => r.name(),
        DestSpec::Layout { dir, .. } => format!("oci:{}", dir.display()),
    };
    let pushed_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    ws.metadata()?.update(|m| {
        m.image = Some(name(&opts.dests[0]));
        m.image_digest = Some(report.digest.clone());
        m.image_tag = Some(opts.dests[0].tag());
        // The other destinations hold the same image: they are recorded as its copies.
        for spec in &opts.dests[1..] {
            m.record_mirror(MirrorRecord {
                image: name(spec),
                digest: report.digest.clone(),
                mirrored_at_utc: pushed_at.clone(),
                extra: Default::default(),
            });
        }
        m.pushed_at_utc = Some(pushed_at);
        if let Some(pack) = &report.modelpack {
            m.modelpack = Some(ArtifactRecord {
                image: pack.image.clone(),
                digest: pack.digest.clone(),
                extra: Default::default(),
            });
        }
        match &opts.source {
            ModelSource::Dir(dir) => {
                m.model_dir.get_or_insert_with(|| dir.display().to_string());
            }
            ModelSource::Hub(_) => {
                if let Some((repo, sha)) = hf {
                    m.hf_repo = Some(repo);
                    m.hf_revision = Some(sha);
                }
            }
        }
    })?;
    Ok(())
}
