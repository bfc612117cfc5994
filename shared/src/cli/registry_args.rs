//! The registry and transfer flags of the steps that talk to registries (build-push, mirror):
//! one definition each, so the two never drift. A side's credentials and TLS flags come in
//! three spellings from one macro: build-push's `--creds` (its destinations), mirror's
//! `--src-creds` and `--dest-creds`.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use super::exit::UsageError;
use super::values::{parse_size, read_secret_file};
use crate::registry::{ConnectOptions, CredentialSource, DEFAULT_RETRIES};
use crate::transfer::UploadMethod;

/// How blobs move: how many at once, in what requests, with what retries and progress.
#[derive(Debug, Clone, clap::Args)]
pub struct TransferArgs {
    /// Blobs sent at once. Across a wide-area link each connection moves at most its share
    /// (its TCP window over the round trip), so 4 move a 4-shard model twice as fast as 2 over
    /// a 40 ms link (scripts/bench.sh wan), and no slower to a registry nearby; each blob in
    /// flight holds about 8 MiB of buffers.
    #[arg(long, env = "MODELCAR_JOBS", default_value = "4")]
    pub jobs: NonZeroUsize,

    /// Send each blob in PATCH requests of this many bytes (16MiB, 1.5G...) instead of one
    /// streamed request (the default, and 0). One request per blob is what docker, containerd
    /// and skopeo send, so every registry takes it; chunks meet registry limits: GHCR refuses
    /// a chunk over 4 MiB, Amazon ECR one under 5 MiB, Google Artifact Registry takes none,
    /// and an Artifactory HA node may not know the session a chunk on another node opened.
    /// Neither method loses an interrupted blob: the upload and the sha256 state every 64 MiB
    /// are kept in <ws>/.modelcar/uploads.json (or ~/.cache/modelcar/uploads.json), and a
    /// rerun asks the registry how many bytes it holds and sends only the rest (distribution
    /// before 3.0 drops an upload cut off mid-request: the blob then starts again from byte 0,
    /// and the log says so). A registry that refuses a chunk is sent whole blobs for the rest
    /// of the run.
    #[arg(long, env = "MODELCAR_CHUNK_SIZE", value_parser = parse_size, value_name = "SIZE")]
    pub chunk_size: Option<u64>,

    /// Retries of a registry request that failed in a way that may pass (connection refused or
    /// reset, 5xx, 429), with doubling pauses from 0.5 s; the default waits 31.5 s in all.
    #[arg(long, env = "MODELCAR_RETRIES", default_value_t = DEFAULT_RETRIES)]
    pub retries: u32,

    #[command(flatten)]
    pub trust: super::trust_args::TrustArgs,

    /// Seconds between progress lines on stderr.
    #[arg(long, env = "MODELCAR_PROGRESS_INTERVAL", default_value_t = 5)]
    pub progress_interval: u64,
}

impl TransferArgs {
    pub fn upload_method(&self) -> UploadMethod {
        UploadMethod::from_chunk_size(self.chunk_size)
    }

    pub fn progress_every(&self) -> Duration {
        Duration::from_secs(self.progress_interval.max(1))
    }
}

/// One side's credentials and TLS flags, whatever their spelling.
#[derive(Debug, Clone, Default)]
pub struct SideFlags {
    pub creds: Option<String>,
    pub creds_file: Option<PathBuf>,
    pub token_file: Option<PathBuf>,
    pub authfile: Option<PathBuf>,
    /// `Some(true)`: plain HTTP; `Some(false)`: TLS even on a loopback address; `None`: the
    /// default (plain HTTP only for localhost and loopback addresses).
    pub plain_http: Option<bool>,
    pub insecure: bool,
    /// The side's certs.d-style directory (`--cert-dir`), instead of the usual places.
    pub cert_dir: Option<PathBuf>,
    /// How the side's credential flag is spelled, for errors (`--creds`, `--src-creds`).
    pub flag: &'static str,
    /// How the side's flags begin (`""`, `src-`, `dest-`).
    pub prefix: &'static str,
}

impl SideFlags {
    /// How to reach `registries`, the side's own: its credentials go to them alone.
    /// `plain_http` and `insecure` are flags that apply to every side; the side's own
    /// `--…plain-http` wins over the one for every side.
    pub fn connect(
        &self,
        registries: &[&str],
        transfer: &TransferArgs,
        (plain_http, insecure): (Option<bool>, bool),
    ) -> Result<ConnectOptions, UsageError> {
        let creds = match &self.creds_file {
            Some(path) => Some(read_secret_file(path, &format!("{}-file", self.flag))?),
            None => self.creds.clone(),
        };
        let credentials = CredentialSource::from_flags(
            creds.as_deref(),
            self.token_file.clone(),
            self.authfile.clone(),
            registries,
        )
        .map_err(|e| UsageError(format!("{}: {e}", self.flag)))?;
        Ok(ConnectOptions {
            credentials,
            plain_http: self.plain_http.or(plain_http),
            trust: transfer.trust.trust(),
            insecure: self.insecure || insecure,
            retries: transfer.retries,
            cert_dir: self.cert_dir.clone(),
            flag_prefix: self.prefix,
        })
    }
}

/// Defines a clap block of one side's credential and TLS flags: `--{prefix}creds`,
/// `--{prefix}creds-file`, `--{prefix}token-file`, `--{prefix}authfile`,
/// `--{prefix}plain-http`, `--{prefix}insecure`, each with its `MODELCAR_{PREFIX}...` env var.
macro_rules! side_args {
    (
        $(#[$meta:meta])* $name:ident,
        prefix = $prefix:literal, env = $env:literal, authfile_env = $authfile_env:literal,
        whom = $whom:literal, reach = $reach:literal
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, clap::Args)]
        pub struct $name {
            #[arg(
                help = concat!("Credentials USER:PASSWORD for ", $whom, ", sent to ", $reach,
                " alone. Prefer the env var or --", $prefix, "creds-file to the flag: a \
                flag's value is visible to every process on the node."),
                id = concat!($prefix, "creds"),
                long = concat!($prefix, "creds"),
                env = concat!("MODELCAR_", $env, "CREDS"),
                value_name = "USER:PASSWORD",
                hide_env_values = true
            )]
            pub creds: Option<String>,

            #[arg(
                help = concat!("A file holding USER:PASSWORD for ", $whom, ", the form to prefer \
                (a mounted secret): read at start, never shown."),
                id = concat!($prefix, "creds_file"),
                long = concat!($prefix, "creds-file"),
                env = concat!("MODELCAR_", $env, "CREDS_FILE"),
                value_name = "PATH",
                conflicts_with = concat!($prefix, "creds")
            )]
            pub creds_file: Option<PathBuf>,

            #[arg(
                help = concat!("A token used as the password for ", $whom, " (e.g. a Kubernetes \
                service-account token), read again whenever a new registry token is needed, \
                so a rotated token is picked up and a long push outlives it."),
                id = concat!($prefix, "token_file"),
                long = concat!($prefix, "token-file"),
                env = concat!("MODELCAR_", $env, "TOKEN_FILE"),
                value_name = "PATH"
            )]
            pub token_file: Option<PathBuf>,

            #[arg(
                help = concat!("docker/podman auth file for ", $whom, " (default: \
                REGISTRY_AUTH_FILE, then podman's and docker's usual places)."),
                id = concat!($prefix, "authfile"),
                long = concat!($prefix, "authfile"),
                env = $authfile_env,
                value_name = "PATH"
            )]
            pub authfile: Option<PathBuf>,

            #[arg(
                help = concat!("Plain HTTP to ", $whom, "; =false: TLS, always. Without it, \
                TLS, except to a localhost or loopback address that answers TLS with plain \
                HTTP (docker's rule)."),
                id = concat!($prefix, "plain_http"),
                long = concat!($prefix, "plain-http"),
                env = concat!("MODELCAR_", $env, "PLAIN_HTTP"),
                value_name = "BOOL",
                num_args = 0..=1,
                require_equals = true,
                default_missing_value = "true"
            )]
            pub plain_http: Option<bool>,

            #[arg(
                help = concat!("A directory of certificates for ", $whom, ", instead of the \
                registry's directory under ~/.config/containers/certs.d, \
                /etc/containers/certs.d or /etc/docker/certs.d (the first that exists, as \
                podman does): *.crt files are CAs, NAME.cert with NAME.key a client \
                certificate (docker's ca.crt, client.cert, client.key). Trusted besides the \
                system's CAs and --ca-file's."),
                id = concat!($prefix, "cert_dir"),
                long = concat!($prefix, "cert-dir"),
                env = concat!("MODELCAR_", $env, "CERT_DIR"),
                value_name = "DIR"
            )]
            pub cert_dir: Option<PathBuf>,

            #[arg(
                help = concat!("Do not verify the TLS certificates of ", $whom, "."),
                id = concat!($prefix, "insecure"),
                long = concat!($prefix, "insecure"),
                env = concat!("MODELCAR_", $env, "INSECURE")
            )]
            pub insecure: bool,
        }

        impl $name {
            pub fn flags(&self) -> SideFlags {
                SideFlags {
                    creds: self.creds.clone(),
                    creds_file: self.creds_file.clone(),
                    token_file: self.token_file.clone(),
                    authfile: self.authfile.clone(),
                    plain_http: self.plain_http,
                    insecure: self.insecure,
                    cert_dir: self.cert_dir.clone(),
                    flag: concat!("--", $prefix, "creds"),
                    prefix: $prefix,
                }
            }
        }
    };
}

side_args!(
    /// build-push's destination registries (`--creds`, `--plain-http`, ...).
    DestArgs,
    prefix = "", env = "", authfile_env = "REGISTRY_AUTH_FILE",
    whom = "DEST's registries", reach = "them (a base image there included)"
);

side_args!(
    /// mirror's source registry (`--src-creds`, `--src-plain-http`, ...).
    SrcSideArgs,
    prefix = "src-", env = "SRC_", authfile_env = "MODELCAR_SRC_AUTHFILE",
    whom = "the source registry", reach = "it"
);

side_args!(
    /// mirror's destination registries (`--dest-creds`, `--dest-plain-http`, ...).
    DestSideArgs,
    prefix = "dest-", env = "DEST_", authfile_env = "MODELCAR_DEST_AUTHFILE",
    whom = "the destination registries", reach = "them"
);
