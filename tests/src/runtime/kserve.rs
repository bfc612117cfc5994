//! The predictor pod KServe makes for an InferenceService whose `storageUri` is `oci://`
//! (its default modelcar mode), from kserve/kserve pkg/utils/storage.go
//! (`ConfigureModelcarToContainer`, `CreateModelcarContainer`, `CreateModelcarInitContainer`)
//! and pkg/constants: the `modelcar-init` init container checks that `/models` exists and is
//! not empty; the `modelcar` sidecar links `/mnt/models` to its own `/proc/<pid>/root/models`
//! and sleeps; the server (`kserve-container`) mounts the same emptyDir at `/mnt`, gets
//! `MODEL_INIT_MODE=async`, and reaches the files through the link, which
//! `shareProcessNamespace` makes resolvable. Both KServe containers are written with `args`
//! and no `command`: the image's ENTRYPOINT, if it has one, runs them.

use serde_json::Value;

use super::pod::{Container, Mount, Pod};
use super::security::PodSecurity;

/// `constants.StorageInitializerVolumeName`.
pub const VOLUME: &str = "kserve-provision-location";
/// Where the server finds the model: `constants.DefaultModelLocalMountPath`.
pub const MODEL_PATH: &str = "/mnt/models";

/// The `oci://` image of an InferenceService's predictor model.
pub fn modelcar_image(isvc: &Value) -> String {
    let uri = isvc
        .pointer("/spec/predictor/model/storageUri")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no spec.predictor.model.storageUri in {isvc}"));
    let image = uri
        .strip_prefix("oci://")
        .unwrap_or_else(|| panic!("storageUri {uri} is not oci://"));
    image.to_string()
}

/// The predictor pod of `isvc` under `security`, with `server` standing for the
/// ServingRuntime's `kserve-container`.
pub fn predictor_pod(isvc: &Value, server: Container, security: PodSecurity) -> Pod {
    let image = modelcar_image(isvc);
    let mount = Mount {
        volume: VOLUME.into(),
        path: "/mnt".into(),
        read_only: false,
    };
    let mut server = server;
    server.env.push(("MODEL_INIT_MODE".into(), "async".into()));
    server.mounts.push(mount.clone());
    let modelcar = Container {
        name: "modelcar".into(),
        image: image.clone(),
        args: vec![
            "sh".into(),
            "-c".into(),
            format!("ln -sf /proc/$$$$/root/models {MODEL_PATH} && sleep infinity"),
        ],
        mounts: vec![mount],
        ..Container::default()
    };
    let check = format!(
        "echo 'Pre-fetching modelcar {image}: ' && [ -d /models ] && [ \"$$(ls -A /models)\" ] \
         && echo 'OK ... Prefetched and valid (/models exists)' \
         || (echo 'NOK ... Prefetched but modelcar is invalid (/models does not exist or is empty)' && exit 1)"
    );
    let init = Container {
        name: "modelcar-init".into(),
        image,
        args: vec!["sh".into(), "-c".into(), check],
        ..Container::default()
    };
    Pod {
        init_containers: vec![init],
        containers: vec![server, modelcar],
        share_process_namespace: true,
        empty_dirs: vec![VOLUME.into()],
        host_dirs: Vec::new(),
        security,
    }
}
