//! Recording a push in the workspace's metadata file: the image, its digest and tag, the
//! other destinations as its copies, the ModelPack, and where the model came from.

use std::time::SystemTime;

use modelcar_shared::hub::HubRevision;
use modelcar_shared::metadata::{ArtifactRecord, MirrorRecord};
use modelcar_shared::transfer::DestSpec;
use modelcar_shared::Workspace;

use crate::error::BuildError;
use crate::options::{ModelSource, Options};
use crate::report::PushReport;

pub fn record(
    ws: &Workspace,
    opts: &Options,
    hf: Option<HubRevision>,
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
                if let Some(hf) = hf {
                    m.hf_repo = Some(hf.repo);
                    m.hf_revision = Some(hf.sha);
                }
            }
        }
    })?;
    Ok(())
}
