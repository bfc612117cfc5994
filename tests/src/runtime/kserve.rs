//! The predictor pod KServe makes for an InferenceService whose `storageUri` is `oci://`
//! (its default modelcar mode), from kserve/kserve pkg/utils/storage.go
//! (`ConfigureModelcarToContainer`, `CreateModelcarContainer`, `CreateModelcarInitContainer`)
//! and pkg/constants: the `modelcar-init` init container checks that `/models` exists and is
//! not empty; the `modelcar` sidecar links `/mnt/models` to its own `/proc/<pid>/root/models`
//! and sleeps; the server (`kserve-container`) mounts the same emptyDir at `/mnt`, gets
//! `MODEL_INIT_MODE=async`, and reaches the files through the link, which
//! `shareProcessNamespace` makes resolvable. Both KServe containers are written with `args`
//! and no `command`: the image's ENTRYPOINT, if it has one, runs them.
//!
//! `oci+native://` (`ConfigureOciNativeToContainer`): no sidecar, no init container, no
//! shared PID namespace; the image is a Kubernetes ImageVolume `mnt-models` mounted on the
//! server at `/mnt/models` with `subPath: models`, read-only. podman 4.3 has no subPath for
//! an image mount, so [`native_pod`] mounts the image in the store (`podman image mount`, the
//! same overlay the kubelet's runtime makes) and binds its `models` directory there.

use serde_json::Value;

use super::pod::{Container, Mount, Pod};
use super::podman::Podman;
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

/// An image mounted read-only in the store; unmounted when dropped.
pub struct ImageMount<'p> {
    podman: &'p Podman,
    image: String,
    pub root: std::path::PathBuf,
}

impl<'p> ImageMount<'p> {
    /// Pulls `image` if needed and mounts it.
    pub fn of(podman: &'p Podman, image: &str) -> Self {
        if !podman.has_image(image) {
            podman.pull(image);
        }
        let root = podman.ok(&["image", "mount", image]).trim().into();
        Self {
            podman,
            image: image.into(),
            root,
        }
    }
}

impl Drop for ImageMount<'_> {
    fn drop(&mut self) {
        let _ = self.podman.output(&["image", "unmount", &self.image]);
    }
}

/// The predictor pod KServe makes for `oci+native://IMAGE`, the image mounted by `mounted`.
pub fn native_pod(mounted: &ImageMount<'_>, server: Container, security: PodSecurity) -> Pod {
    let volume = "mnt-models";
    let mut server = server;
    server.mounts.push(Mount {
        volume: volume.into(),
        path: MODEL_PATH.into(),
        read_only: true,
    });
    Pod {
        containers: vec![server],
        host_dirs: vec![(volume.into(), mounted.root.join("models"))],
        security,
        ..Pod::default()
    }
}
