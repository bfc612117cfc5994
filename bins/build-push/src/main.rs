use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use build_push::args::{host_platform, parse_size};
use modelcar_shared::causes::ErrorCauses;
use modelcar_shared::cli::{
    parse_key_value, CommonArgs, DestArgs, SelectionArgs, TransferArgs, UsageError,
};
use modelcar_shared::hub::{HubOptions, DEFAULT_ENDPOINT};
use modelcar_shared::oci::Platform;
use modelcar_shared::registry::{ConnectOptions, Reference};
use modelcar_shared::state_file;
use modelcar_shared::transfer::{DestSpec, UploadLog};
use modelcar_shared::Workspace;

use build_push::hub_source::HubSpec;
use build_push::{HubInput, ModelPackTag, ModelSource};

/// Package a model directory, or a Hub repo straight from the Hub, as a ModelCar OCI image
/// and push it, streaming.
///
/// Each large file becomes its own layer and the small files share one; every layer is a
/// deterministic tar stream read straight from the files, hashed and uploaded in one pass,
/// so nothing is staged on local disk and memory stays flat whatever the model size. Layers
/// the registry already has are skipped, so a rerun after a failure sends only what is
/// missing. The same input gives the same digests on any machine.
#[derive(Debug, Parser)]
#[command(name = "build-push", version)]
struct Args {
    /// The model: a directory (e.g. <ws>/models/<name> as fetch-model leaves it), or
    /// hf://ORG/REPO[@REV] to stream each file from the Hub into its layer with no copy on
    /// any disk (the files chosen as fetch-model chooses them).
    #[arg(
        value_name = "MODEL_DIR|hf://ORG/REPO[@REV]",
        env = "MODELCAR_MODEL_DIR"
    )]
    source: String,

    /// Where to push: HOST[:PORT]/REPO[:TAG] (docker:// prefix accepted), or oci:DIR[:TAG] for an
    /// OCI image layout on disk. Several: each file is read once and sent to all of them
    /// (--output json lists each; --results-dir and the metadata file's image name the first,
    /// the metadata file's mirrors the others).
    #[arg(value_name = "DEST", env = "MODELCAR_DEST", required = true, num_args = 1..)]
    dests: Vec<String>,

    /// Base image, providing the shell KServe's modelcar sidecar runs; `scratch` for none.
    /// Pin it by digest for reproducible images.
    #[arg(
        long,
        env = "MODELCAR_BASE",
        default_value = "registry.access.redhat.com/ubi9/ubi-micro:latest"
    )]
    base: String,

    /// Platform OS/ARCH[/VARIANT] picked from a multi-platform base, and recorded in a scratch
    /// image (default: this machine's, e.g. linux/amd64).
    #[arg(long, env = "MODELCAR_PLATFORM", value_parser = Platform::parse_flag)]
    platform: Option<Platform>,

    /// Directory of the model files in the image.
    #[arg(long, env = "MODELCAR_PREFIX", default_value = "/models")]
    prefix: String,

    /// Label in the image config, KEY=VALUE (repeatable; comma-separated in the env var).
    #[arg(long = "label", env = "MODELCAR_LABELS", value_name = "KEY=VALUE", value_parser = parse_key_value, value_delimiter = ',')]
    labels: Vec<(String, String)>,

    /// Annotation on the manifest, KEY=VALUE (repeatable; comma-separated in the env var).
    #[arg(long = "annotation", env = "MODELCAR_ANNOTATIONS", value_name = "KEY=VALUE", value_parser = parse_key_value, value_delimiter = ',')]
    annotations: Vec<(String, String)>,

    /// User the image runs as. Model files are world-readable, so any UID can serve them.
    #[arg(long, env = "MODELCAR_USER", default_value = "1001")]
    user: String,

    /// Files this large or larger get a layer of their own.
    #[arg(long, env = "MODELCAR_LAYER_THRESHOLD", value_parser = parse_size, default_value = "16MiB")]
    layer_threshold: u64,

    /// Layers the whole image may have, the base's included. containers/storage, the storage
    /// of CRI-O (OpenShift's runtime) and podman, cannot start a container from an image of
    /// more than 128 layers ("max depth exceeded"; measured with podman 4.3 and runc: 128
    /// start, 129 do not); below this budget every large file has a layer of its own (layers
    /// are pulled in parallel), beyond it large files share layers of balanced size, in path
    /// order, so the same files always give the same layers.
    #[arg(long, env = "MODELCAR_MAX_LAYERS", default_value_t = build_push::limits::DEFAULT_MAX_LAYERS, value_parser = clap::value_parser!(usize))]
    max_layers: usize,

    /// The most bytes one layer may hold, checked before the first byte is sent: a file
    /// larger than this is refused, and packed layers stay under it. Default: the documented
    /// limit of a destination's registry: quay.io 20 GiB (Quay's MAXIMUM_LAYER_SIZE default;
    /// a self-hosted Quay has its own, in its config.yaml), ghcr.io 10 GB, Amazon ECR
    /// 52,000 MiB; none for other registries (Harbor before 2.9.2 fails layers over 32 GiB).
    #[arg(long, env = "MODELCAR_MAX_LAYER_SIZE", value_parser = parse_size, value_name = "SIZE")]
    max_layer_size: Option<u64>,

    #[command(flatten)]
    dest: DestArgs,

    /// Plain HTTP to the base image's registry, when it is not one of DEST's (it gets
    /// --plain-http when it is).
    #[arg(
        long,
        env = "MODELCAR_BASE_PLAIN_HTTP",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    base_plain_http: Option<bool>,

    /// Do not verify the TLS certificate of the base image's registry, when it is not one of
    /// DEST's (it gets --insecure when it is).
    #[arg(long, env = "MODELCAR_BASE_INSECURE")]
    base_insecure: bool,

    /// A directory of certificates for the base image's registry (as --cert-dir is for DEST's),
    /// when it is not one of DEST's (it gets --cert-dir when it is).
    #[arg(long, env = "MODELCAR_BASE_CERT_DIR", value_name = "DIR")]
    base_cert_dir: Option<PathBuf>,

    #[command(flatten)]
    transfer: TransferArgs,

    /// Workspace (PVC) whose metadata file records the pushed image, and which holds the digest
    /// cache and the log of open uploads (so that a rerun resumes them at the byte).
    #[arg(long, env = "MODELCAR_WORKSPACE", value_name = "WS")]
    workspace: Option<PathBuf>,

    /// Digest cache: which layer digest each set of unchanged files gave, so a rerun skips
    /// layers the registry has without reading them again. Default: <ws>/.modelcar/blobs.json,
    /// or $XDG_CACHE_HOME/modelcar/blobs.json without a workspace.
    #[arg(long, env = "MODELCAR_CACHE_FILE", value_name = "PATH")]
    cache_file: Option<PathBuf>,

    /// Use no digest cache: every layer is read and sent.
    #[arg(long, env = "MODELCAR_NO_CACHE", conflicts_with = "cache_file")]
    no_cache: bool,

    /// Timestamp of every file and of the image, in seconds since 1970, for reproducible digests.
    #[arg(long, env = "SOURCE_DATE_EPOCH", default_value_t = 0)]
    source_date_epoch: u64,

    /// Also push a CNCF ModelPack artifact (model-spec v1) in each destination's repository,
    /// tagged <tag>-modelpack, or TAG with --modelpack=TAG (the tag only with `=`, so that
    /// `--modelpack DIR DEST` reads as it looks). Its layers are the ModelCar's own blobs
    /// (nothing is uploaded twice), typed weight / weight.config / doc / code, and its config
    /// describes the model. KServe's modelcar (oci://) storage, OpenShift AI and container
    /// runtimes read the ModelCar; ModelPack tools (modctl, KitOps) and registries that show
    /// model artifacts (Harbor) read the ModelPack.
    #[arg(
        long,
        env = "MODELCAR_MODELPACK",
        value_name = "TAG",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    modelpack: Option<String>,

    /// With hf://: which files of the repo to take.
    #[command(flatten)]
    selection: SelectionArgs,

    /// With hf://: a file holding the Hub token (read instead of HF_TOKEN).
    #[arg(long, env = "MODELCAR_HF_TOKEN_FILE", value_name = "PATH")]
    hf_token_file: Option<PathBuf>,

    /// With hf://: the Hub, or a mirror of it.
    #[arg(long, env = "HF_ENDPOINT", default_value = DEFAULT_ENDPOINT)]
    hf_endpoint: String,

    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args: Args = modelcar_shared::cli::parse();
    args.common.run_async(
        "run again with the same arguments: layers already pushed are skipped",
        async { Ok(build_push::run(options(&args)?).await?) },
    )
}

fn options(args: &Args) -> anyhow::Result<build_push::Options> {
    let dests = args
        .dests
        .iter()
        .map(|d| DestSpec::parse(d).map_err(|e| UsageError(format!("DEST {d}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let workspace = args.workspace.as_ref().map(Workspace::open).transpose()?;
    // --creds and --token-file speak for the DESTs' registries alone (and a base there).
    let registries: Vec<&str> = dests
        .iter()
        .filter_map(|d| match d {
            DestSpec::Registry(reference) => Some(reference.registry.as_str()),
            DestSpec::Layout { .. } => None,
        })
        .collect();
    let connect = args
        .dest
        .flags()
        .connect(&registries, &args.transfer, (None, false))?;
    // TLS flags are per side: the base's registry gets DEST's only when it is one of them.
    let base_on_dest =
        Reference::parse(&args.base).is_ok_and(|b| registries.contains(&b.registry.as_str()));
    let base_connect = ConnectOptions {
        plain_http: args
            .base_plain_http
            .or(base_on_dest.then_some(args.dest.plain_http).flatten()),
        insecure: args.base_insecure || (base_on_dest && args.dest.insecure),
        cert_dir: args
            .base_cert_dir
            .clone()
            .or(base_on_dest.then(|| args.dest.cert_dir.clone()).flatten()),
        flag_prefix: "base-",
        ..connect.clone()
    };
    let cache_path = match args.no_cache {
        true => None,
        false => cache_path(args.cache_file.as_ref(), workspace.as_ref())?,
    };
    Ok(build_push::Options {
        source: model_source(args)?,
        dests,
        base: args.base.clone(),
        platform: match &args.platform {
            Some(p) => p.clone(),
            None => Platform::parse_flag(&host_platform()).map_err(anyhow::Error::msg)?,
        },
        prefix: args.prefix.clone(),
        layer_threshold: args.layer_threshold,
        max_layers: args.max_layers,
        max_layer_size: args.max_layer_size,
        upload_method: args.transfer.upload_method(),
        jobs: args.transfer.jobs.get(),
        user: args.user.clone(),
        labels: args.labels.iter().cloned().collect::<BTreeMap<_, _>>(),
        annotations: args.annotations.iter().cloned().collect(),
        source_date_epoch: args.source_date_epoch,
        connect,
        base_connect,
        uploads: UploadLog::default_for(workspace.as_ref()),
        workspace,
        cache_path,
        progress_every: args.transfer.progress_every(),
        modelpack: args.modelpack.as_deref().and_then(ModelPackTag::from_flag),
    })
}

fn model_source(args: &Args) -> anyhow::Result<ModelSource> {
    let Some(spec) = HubSpec::parse(&args.source) else {
        return Ok(ModelSource::Dir(PathBuf::from(&args.source)));
    };
    let spec = spec.map_err(|e| UsageError(format!("MODEL_DIR: {e}")))?;
    let token = modelcar_shared::hub::token(args.hf_token_file.as_deref())
        .map_err(|e| anyhow::anyhow!("--hf-token-file: {e}"))?;
    Ok(ModelSource::Hub(Box::new(HubInput {
        spec,
        options: HubOptions {
            endpoint: args.hf_endpoint.clone(),
            token,
            trust: args.transfer.trust.trust(),
            retries: args.transfer.retries,
        },
        rules: args
            .selection
            .rules()
            .map_err(|e| UsageError(e.causes().to_string()))?,
    })))
}

fn cache_path(
    flag: Option<&PathBuf>,
    workspace: Option<&Workspace>,
) -> anyhow::Result<Option<PathBuf>> {
    let path = match flag {
        Some(path) => {
            state_file::ensure_parent(path)?;
            Some(path.clone())
        }
        None => state_file::location(workspace, "blobs.json")?,
    };
    Ok(path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_consistent() {
        <super::Args as clap::CommandFactory>::command().debug_assert();
    }
}
