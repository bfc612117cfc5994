//! Helpers shared by mirror's integration test files.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use modelcar_shared::oci::Platform;
use modelcar_shared::registry::ConnectOptions;
use modelcar_shared::transfer::{DestSpec, UploadLog, UploadMethod};

pub const MIB: u64 = 1 << 20;

/// build-push (as a library) of `model` to `dest` for `platform`: no base, layers of 1 MiB
/// files and more on their own, the default upload method, no cache and no upload log.
pub fn build_options(model: &Path, dest: &str, platform: &str) -> build_push::Options {
    build_push::Options {
        source: build_push::ModelSource::Dir(model.to_path_buf()),
        dests: vec![DestSpec::parse(dest).unwrap()],
        base: "scratch".into(),
        platform: Platform::parse(platform).unwrap(),
        prefix: "/models".into(),
        layer_threshold: MIB,
        max_layers: build_push::limits::DEFAULT_MAX_LAYERS,
        max_layer_size: None,
        upload_method: UploadMethod::Streamed,
        jobs: 2,
        user: "1001".into(),
        labels: Default::default(),
        annotations: Default::default(),
        source_date_epoch: 0,
        connect: ConnectOptions::default(),
        base_connect: ConnectOptions::default(),
        workspace: None,
        cache_path: None,
        uploads: UploadLog::disabled(),
        progress_every: Duration::from_secs(60),
        modelpack: None,
    }
}
