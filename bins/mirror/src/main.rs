use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::Parser;

use modelcar_shared::cli::parse_size;
use modelcar_shared::cli::{read_secret_file, CommonArgs, UsageError};
use modelcar_shared::oci::Platform;
use modelcar_shared::registry::{ConnectOptions, CredentialSource, Reference, DEFAULT_RETRIES};
use modelcar_shared::transfer::{DigestCheck, UploadLog, UploadMethod};
use modelcar_shared::Workspace;

/// Copy an image from one registry to one or more others, streaming and digest-preserving.
///
/// Manifests and indexes are copied byte for byte, so every destination has the source's
/// digest; an index brings every manifest it lists (or only --platform's). Blobs stream from
/// the source to the destination with bounded memory and their digest checked on the way;
/// blobs a destination has are skipped and, within one registry, mounted. A rerun after a
/// failure copies only what is missing; tokens are fetched again as they expire.
#[derive(Debug, Parser)]
#[command(name = "mirror", version)]
struct Args {
    /// SRC then DEST...: HOST[:PORT]/REPO[:TAG|@DIGEST] (docker:// accepted). With
    /// --from-metadata, all are destinations.
    #[arg(value_name = "SRC DEST", required = true, num_args = 1..)]
    images: Vec<String>,

    /// Take SRC from the workspace metadata file: its image@image_digest.
    #[arg(long, env = "MODELCAR_FROM_METADATA", requires = "workspace")]
    from_metadata: bool,

    /// Copy only this platform's manifest (OS/ARCH[/VARIANT]) out of an index.
    #[arg(long, env = "MODELCAR_PLATFORM", value_parser = Platform::parse_flag)]
    platform: Option<Platform>,

    /// Blobs copied at once. Across a wide-area link each connection moves at most its
    /// share (its TCP window over the round trip), so 4 copy a 4-shard model twice as fast as 2
    /// over a 40 ms link (scripts/bench.sh wan), and no slower between registries nearby; each
    /// blob in flight holds about 8 MiB of buffers.
    #[arg(long, env = "MODELCAR_JOBS", default_value = "4")]
    jobs: NonZeroUsize,

    /// Send each blob in PATCH requests of this many bytes instead of one streamed request
    /// (the default, and 0). One request per blob is what docker, containerd and skopeo send,
    /// so every registry takes it; chunks meet registry limits: GHCR refuses a chunk over
    /// 4 MiB, Amazon ECR one under 5 MiB, Google Artifact Registry takes none, and an
    /// Artifactory HA node may not know the session a chunk on another node opened. Neither
    /// method loses an interrupted blob: the upload and the sha256 state every 64 MiB are kept
    /// in <ws>/.modelcar/uploads.json (or ~/.cache/modelcar/uploads.json), and a rerun asks the
    /// registry how many bytes it holds and sends only the rest (distribution before 3.0 drops
    /// an upload cut off mid-request: the blob then starts again from byte 0, and the log says
    /// so). A registry that refuses a chunk is sent whole blobs for the rest of the run.
    #[arg(long, env = "MODELCAR_CHUNK_SIZE", value_parser = parse_size, value_name = "SIZE")]
    chunk_size: Option<u64>,

    /// Also hash every blob here as it streams. Without this flag the destination registry
    /// alone checks each blob against its digest: it hashes what it receives and refuses a
    /// mismatch on commit (the distribution spec's DIGEST_INVALID), so a corrupt source blob is
    /// never stored nor tagged, and a rerun reads only the bytes the destination lacks. Hashing
    /// here as well guards against a destination that does not check, at about one CPU-second
    /// per 1.5 GB.
    #[arg(long, env = "MODELCAR_VERIFY_LOCALLY")]
    verify_locally: bool,

    /// Credentials USER:PASSWORD for the source registry, sent to it alone.
    #[arg(
        long,
        env = "MODELCAR_SRC_CREDS",
        value_name = "USER:PASSWORD",
        hide_env_values = true
    )]
    src_creds: Option<String>,

    /// A file holding USER:PASSWORD for the source registry, the form to prefer (a mounted
    /// secret): read at start, never shown.
    #[arg(
        long,
        env = "MODELCAR_SRC_CREDS_FILE",
        value_name = "PATH",
        conflicts_with = "src_creds"
    )]
    src_creds_file: Option<PathBuf>,

    /// Token (e.g. a service-account token) used as the source registry password, re-read
    /// whenever a new registry token is needed.
    #[arg(long, env = "MODELCAR_SRC_TOKEN_FILE", value_name = "PATH")]
    src_token_file: Option<PathBuf>,

    /// docker/podman auth file for the source (default: the usual places).
    #[arg(long, env = "MODELCAR_SRC_AUTHFILE", value_name = "PATH")]
    src_authfile: Option<PathBuf>,

    /// Credentials USER:PASSWORD for the destination registries, sent to them alone.
    #[arg(
        long,
        env = "MODELCAR_DEST_CREDS",
        value_name = "USER:PASSWORD",
        hide_env_values = true
    )]
    dest_creds: Option<String>,

    /// A file holding USER:PASSWORD for the destination registries, the form to prefer (a mounted
    /// secret): read at start, never shown.
    #[arg(
        long,
        env = "MODELCAR_DEST_CREDS_FILE",
        value_name = "PATH",
        conflicts_with = "dest_creds"
    )]
    dest_creds_file: Option<PathBuf>,

    /// Token used as the destination registries' password, re-read whenever a new registry
    /// token is needed, so a copy outlives a rotated service-account token.
    #[arg(long, env = "MODELCAR_DEST_TOKEN_FILE", value_name = "PATH")]
    dest_token_file: Option<PathBuf>,

    /// docker/podman auth file for the destinations (default: the usual places).
    #[arg(long, env = "MODELCAR_DEST_AUTHFILE", value_name = "PATH")]
    dest_authfile: Option<PathBuf>,

    /// PEM file of CA certificates to trust besides the system's.
    #[arg(long, env = "MODELCAR_CA_FILE", value_name = "PATH")]
    ca_file: Option<PathBuf>,

    /// Plain HTTP to the source and the destinations (the default for localhost and loopback
    /// addresses, as in docker); --src-plain-http or --dest-plain-http for one side.
    #[arg(long, env = "MODELCAR_PLAIN_HTTP")]
    plain_http: bool,

    /// Plain HTTP to the source registry.
    #[arg(long, env = "MODELCAR_SRC_PLAIN_HTTP")]
    src_plain_http: bool,

    /// Plain HTTP to the destination registries.
    #[arg(long, env = "MODELCAR_DEST_PLAIN_HTTP")]
    dest_plain_http: bool,

    /// Do not verify the TLS certificates of the source and the destinations; --src-insecure
    /// or --dest-insecure for one side.
    #[arg(long, env = "MODELCAR_INSECURE")]
    insecure: bool,

    /// Do not verify the source registry's TLS certificate.
    #[arg(long, env = "MODELCAR_SRC_INSECURE")]
    src_insecure: bool,

    /// Do not verify the destination registries' TLS certificates.
    #[arg(long, env = "MODELCAR_DEST_INSECURE")]
    dest_insecure: bool,

    /// Retries of a request that failed in a way that may pass (connection, 5xx, 429).
    #[arg(long, env = "MODELCAR_RETRIES", default_value_t = DEFAULT_RETRIES)]
    retries: u32,

    /// Workspace (PVC): its metadata file gets each destination in `mirrors`, and open uploads
    /// are logged in its .modelcar/uploads.json so a rerun resumes them at the byte.
    #[arg(long, env = "MODELCAR_WORKSPACE", value_name = "WS")]
    workspace: Option<PathBuf>,

    /// Seconds between progress lines on stderr.
    #[arg(long, env = "MODELCAR_PROGRESS_INTERVAL", default_value_t = 5)]
    progress_interval: u64,

    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args: Args = modelcar_shared::cli::parse();
    args.common.run_async(
        "run again with the same arguments: blobs already copied are skipped",
        async { Ok(mirror::run(options(&args)?).await?) },
    )
}

fn options(args: &Args) -> anyhow::Result<mirror::Options> {
    let workspace = args.workspace.as_ref().map(Workspace::open).transpose()?;
    let parse = |s: &str| Reference::parse(s).map_err(|e| UsageError(e.to_string()));
    let (source, dests) = match (&workspace, args.from_metadata) {
        (Some(ws), true) => {
            let meta = ws.metadata()?.read()?;
            let (Some(image), Some(digest)) = (meta.image, meta.image_digest) else {
                bail!(UsageError(format!(
                    "--from-metadata: {} has no image and image_digest",
                    ws.metadata_path().display()
                )));
            };
            (parse(&format!("{image}@{digest}"))?, &args.images[..])
        }
        _ => (parse(&args.images[0])?, &args.images[1..]),
    };
    if dests.is_empty() {
        bail!(UsageError("give at least one DEST".into()));
    }
    let destinations = dests
        .iter()
        .map(|d| parse(d))
        .collect::<Result<Vec<_>, _>>()?;
    let source_registry = source.registry.clone();
    let dest_registries: Vec<String> = destinations.iter().map(|d| d.registry.clone()).collect();
    // Each side's --*-creds and --*-token-file speak for its own registries alone.
    let side = |creds: &Option<String>,
                creds_file: &Option<PathBuf>,
                token: &Option<PathBuf>,
                auth: &Option<PathBuf>,
                registries: &[&str],
                (plain_http, insecure): (bool, bool),
                flag: &str| {
        let creds = match creds_file {
            Some(path) => Some(read_secret_file(path, &format!("{flag}-file"))?),
            None => creds.clone(),
        };
        let credentials =
            CredentialSource::from_flags(creds.as_deref(), token.clone(), auth.clone(), registries)
                .map_err(|e| UsageError(format!("{flag}: {e}")))?;
        Ok::<_, UsageError>(ConnectOptions {
            credentials,
            plain_http: (args.plain_http || plain_http).then_some(true),
            ca_file: args.ca_file.clone(),
            insecure: args.insecure || insecure,
            retries: args.retries,
        })
    };
    Ok(mirror::Options {
        source,
        destinations,
        platform: args.platform.clone(),
        jobs: args.jobs.get(),
        check: match args.verify_locally {
            true => DigestCheck::Local,
            false => DigestCheck::Destination,
        },
        upload_method: UploadMethod::from_chunk_size(args.chunk_size),
        src_connect: side(
            &args.src_creds,
            &args.src_creds_file,
            &args.src_token_file,
            &args.src_authfile,
            &[source_registry.as_str()],
            (args.src_plain_http, args.src_insecure),
            "--src-creds",
        )?,
        dest_connect: side(
            &args.dest_creds,
            &args.dest_creds_file,
            &args.dest_token_file,
            &args.dest_authfile,
            &dest_registries
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            (args.dest_plain_http, args.dest_insecure),
            "--dest-creds",
        )?,
        uploads: UploadLog::default_for(workspace.as_ref()),
        workspace,
        progress_every: Duration::from_secs(args.progress_interval.max(1)),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_consistent() {
        <super::Args as clap::CommandFactory>::command().debug_assert();
    }
}
