//! The image's labels and annotations: provenance (the model's name, and its Hub repository
//! and commit when known), the creation time from SOURCE_DATE_EPOCH, the base it was built
//! on, then what the user gave, which wins.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use modelcar_shared::hub::HubRevision;

use crate::base::BaseImage;
use crate::image::ImageInfo;
use crate::options::{ModelSource, Options};

/// Labels and annotations: provenance from the metadata file, then what the user gave (which wins).
pub fn image_info(opts: &Options, hf: Option<&HubRevision>, base: &BaseImage) -> ImageInfo {
    let created = humantime::format_rfc3339_seconds(
        SystemTime::UNIX_EPOCH + Duration::from_secs(opts.source_date_epoch),
    )
    .to_string();
    let title = match (hf, &opts.source) {
        (Some(hf), _) => hf.repo.clone(),
        (None, ModelSource::Dir(dir)) => dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default(),
        (None, ModelSource::Hub(input)) => input.spec.repo.clone(),
    };
    let mut provenance = BTreeMap::from([("org.opencontainers.image.title".to_string(), title)]);
    if let Some(hf) = hf {
        provenance.insert("org.opencontainers.image.source".into(), hf.source_url());
        provenance.insert("io.modelcar.hf.repo".into(), hf.repo.clone());
        provenance.insert("org.opencontainers.image.revision".into(), hf.sha.clone());
        provenance.insert("io.modelcar.hf.revision".into(), hf.sha.clone());
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
            source.manifest_digest.to_string(),
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
