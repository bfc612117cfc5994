//! mirror: copies an image (a manifest, or an index and all it lists) from one registry to one
//! or more others, byte for byte, so every destination has the source's digest; each blob is
//! read from the source once, however many destinations lack it.

mod copy;
mod error;
pub mod report;
mod source;

use std::time::{Duration, Instant, SystemTime};

use modelcar_shared::metadata::MirrorRecord;
use modelcar_shared::oci::Platform;
use modelcar_shared::registry::{ConnectOptions, Reference};
use modelcar_shared::transfer::{DigestCheck, UploadLog, UploadMethod};
use modelcar_shared::Workspace;

pub use error::MirrorError;
use report::MirrorReport;

pub struct Options {
    pub source: Reference,
    pub destinations: Vec<Reference>,
    pub platform: Option<Platform>,
    pub jobs: usize,
    /// Who checks each blob against its digest.
    pub check: DigestCheck,
    pub upload_method: UploadMethod,
    pub src_connect: ConnectOptions,
    pub dest_connect: ConnectOptions,
    /// Where each destination is recorded in `mirrors`.
    pub workspace: Option<Workspace>,
    /// Where open uploads are logged, so that a rerun resumes them at the byte.
    pub uploads: UploadLog,
    pub progress_every: Duration,
}

pub async fn run(opts: Options) -> Result<MirrorReport, MirrorError> {
    let started = Instant::now();
    let source = source::resolve(&opts.source, opts.platform.as_ref(), &opts.src_connect).await?;
    let settings = copy::CopySettings {
        jobs: opts.jobs,
        check: opts.check,
        upload_method: opts.upload_method,
        connect: &opts.dest_connect,
        uploads: &opts.uploads,
        progress_every: opts.progress_every,
    };
    let destinations = copy::copy_to_all(&source, &opts.destinations, &settings).await?;
    for report in &destinations {
        tracing::info!(
            "{} -> {}: {} bytes copied",
            opts.source,
            report.image,
            report.bytes_copied
        );
        if let Some(ws) = &opts.workspace {
            let record = MirrorRecord {
                image: report.name.clone(),
                digest: report.digest.clone(),
                mirrored_at_utc: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
                extra: Default::default(),
            };
            ws.metadata()?.update(|m| m.record_mirror(record))?;
        }
    }
    Ok(MirrorReport {
        source: opts.source.to_string(),
        digest: source.top.digest.to_string(),
        destinations,
        seconds: started.elapsed().as_secs_f64(),
    })
}
