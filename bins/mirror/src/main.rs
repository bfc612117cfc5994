use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Parser;

use modelcar_shared::cli::{CommonArgs, DestSideArgs, SrcSideArgs, TransferArgs, UsageError};
use modelcar_shared::oci::Platform;
use modelcar_shared::registry::Reference;
use modelcar_shared::transfer::{DigestCheck, UploadLog};
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

    /// Also hash every blob here as it streams. Without this flag the destination registry
    /// alone checks each blob against its digest: it hashes what it receives and refuses a
    /// mismatch on commit (the distribution spec's DIGEST_INVALID), so a corrupt source blob is
    /// never stored nor tagged, and a rerun reads only the bytes the destination lacks. Hashing
    /// here as well guards against a destination that does not check, at about one CPU-second
    /// per 1.5 GB.
    #[arg(long, env = "MODELCAR_VERIFY_LOCALLY")]
    verify_locally: bool,

    #[command(flatten)]
    src: SrcSideArgs,

    #[command(flatten)]
    dest: DestSideArgs,

    /// Plain HTTP to the source and the destinations; =false: TLS, always. Without it, TLS,
    /// except to a localhost or loopback address that answers TLS with plain HTTP (docker's
    /// rule). --src-plain-http or --dest-plain-http for one side.
    #[arg(
        long,
        env = "MODELCAR_PLAIN_HTTP",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    plain_http: Option<bool>,

    /// Do not verify the TLS certificates of the source and the destinations; --src-insecure
    /// or --dest-insecure for one side.
    #[arg(long, env = "MODELCAR_INSECURE")]
    insecure: bool,

    #[command(flatten)]
    transfer: TransferArgs,

    /// Workspace (PVC): its metadata file gets each destination in `mirrors`, and open uploads
    /// are logged in its .modelcar/uploads.json so a rerun resumes them at the byte.
    #[arg(long, env = "MODELCAR_WORKSPACE", value_name = "WS")]
    workspace: Option<PathBuf>,

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
    // Each side's credentials speak for its own registries alone.
    let dest_registries: Vec<&str> = destinations.iter().map(|d| d.registry.as_str()).collect();
    let both_sides = (args.plain_http, args.insecure);
    let src_connect =
        args.src
            .flags()
            .connect(&[source.registry.as_str()], &args.transfer, both_sides)?;
    let dest_connect = args
        .dest
        .flags()
        .connect(&dest_registries, &args.transfer, both_sides)?;
    Ok(mirror::Options {
        source,
        destinations,
        platform: args.platform.clone(),
        jobs: args.transfer.jobs.get(),
        check: match args.verify_locally {
            true => DigestCheck::Local,
            false => DigestCheck::Destination,
        },
        upload_method: args.transfer.upload_method(),
        src_connect,
        dest_connect,
        uploads: UploadLog::default_for(workspace.as_ref()),
        workspace,
        progress_every: args.transfer.progress_every(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_consistent() {
        <super::Args as clap::CommandFactory>::command().debug_assert();
    }

    /// The transfer flags are build-push's own (one definition): sizes take units here too.
    #[test]
    fn chunk_size_takes_units() {
        use clap::Parser;
        let args = super::Args::try_parse_from([
            "mirror",
            "a.io/m:1",
            "b.io/m:1",
            "--chunk-size",
            "64MiB",
        ])
        .unwrap();
        assert_eq!(args.transfer.chunk_size, Some(64 << 20));
    }
}
