use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use modelcar_shared::cli::{parse_key_value, CommonArgs, TrustArgs, UsageError};
use modelcar_shared::Workspace;
use register::{RunError, Token};

/// Record a ModelCar image in the Kubeflow / OpenShift AI Model Registry.
///
/// Finds or creates the RegisteredModel, the ModelVersion under it and its ModelArtifact
/// (the image URI, model format and the pipeline's provenance as custom properties). Running
/// it again creates nothing and reports the same IDs. Values not given as flags are taken from
/// the workspace metadata file, and the IDs are written back to it.
#[derive(Debug, Parser)]
#[command(name = "register", version)]
struct Args {
    /// The Model Registry REST service, e.g. https://model-registry.example:8443.
    #[arg(long, env = "MODEL_REGISTRY_URL")]
    url: String,

    /// Registered model name (default: the last part of the metadata's hf_repo).
    #[arg(long, env = "MODELCAR_MODEL_NAME")]
    model_name: Option<String>,

    /// Version name (default: <variant>-<MMDD> of the push date, with --variant).
    #[arg(long, env = "MODELCAR_VERSION_NAME")]
    version_name: Option<String>,

    /// Variant for the default version name, e.g. full-fp16 or w4a16.
    #[arg(long, env = "MODELCAR_VARIANT")]
    variant: Option<String>,

    /// Artifact URI (default from the metadata file: oci://<image>@<digest>).
    #[arg(long, env = "MODELCAR_URI")]
    uri: Option<String>,

    /// Default URI by tag, oci://<image>:<tag>, instead of by digest.
    #[arg(long, env = "MODELCAR_URI_TAG")]
    uri_tag: bool,

    /// Model format name recorded on the artifact, e.g. vLLM.
    #[arg(long, env = "MODELCAR_MODEL_FORMAT_NAME")]
    model_format_name: Option<String>,

    /// Model format version recorded on the artifact.
    #[arg(long, env = "MODELCAR_MODEL_FORMAT_VERSION")]
    model_format_version: Option<String>,

    #[arg(long, env = "MODELCAR_DESCRIPTION")]
    description: Option<String>,

    #[arg(long, env = "MODELCAR_AUTHOR")]
    author: Option<String>,

    /// Custom property KEY=VALUE on the artifact (repeatable; comma-separated in the env var).
    #[arg(long = "property", env = "MODELCAR_PROPERTIES", value_name = "KEY=VALUE", value_parser = parse_key_value, value_delimiter = ',')]
    properties: Vec<(String, String)>,

    /// Bearer token file (e.g. a service-account token), read at each call.
    #[arg(
        long,
        env = "MODELCAR_TOKEN_FILE",
        value_name = "PATH",
        conflicts_with = "token"
    )]
    token_file: Option<PathBuf>,

    /// Bearer token. Prefer the env var or --token-file to the flag: a flag's value is
    /// visible to every process on the node.
    #[arg(long, env = "MODEL_REGISTRY_TOKEN", hide_env_values = true)]
    token: Option<String>,

    #[command(flatten)]
    trust: TrustArgs,

    /// REST API version; by default the newest the service serves.
    #[arg(long, env = "MODELCAR_API_VERSION", value_parser = ["v1", "v1alpha3"])]
    api_version: Option<String>,

    /// Point an existing version at a different URI instead of refusing.
    #[arg(long, env = "MODELCAR_UPDATE")]
    update: bool,

    /// Workspace (PVC) whose metadata file gives the defaults and gets the IDs.
    #[arg(long, env = "MODELCAR_WORKSPACE", value_name = "WS")]
    workspace: Option<PathBuf>,

    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args: Args = modelcar_shared::cli::parse();
    args.common
        .run_async("run again: register is idempotent", run(&args))
}

async fn run(args: &Args) -> anyhow::Result<register::RegisterReport> {
    let workspace = args.workspace.as_ref().map(Workspace::open).transpose()?;
    let token = match (&args.token_file, &args.token) {
        (Some(path), _) => Token::File(path.clone()),
        (None, Some(t)) => Token::Value(t.clone()),
        (None, None) => Token::None,
    };
    let options = register::Options {
        url: args.url.clone(),
        api_version: args.api_version.clone(),
        token,
        trust: args.trust.trust(),
        model_name: args.model_name.clone(),
        version_name: args.version_name.clone(),
        variant: args.variant.clone(),
        uri: args.uri.clone(),
        uri_tag: args.uri_tag,
        model_format_name: args.model_format_name.clone(),
        model_format_version: args.model_format_version.clone(),
        description: args.description.clone(),
        author: args.author.clone(),
        properties: args.properties.iter().cloned().collect::<BTreeMap<_, _>>(),
        update: args.update,
        workspace,
    };
    match register::run(options).await {
        Ok(report) => Ok(report),
        Err(RunError::MissingInput(what)) => Err(UsageError(what).into()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_consistent() {
        <super::Args as clap::CommandFactory>::command().debug_assert();
    }
}
