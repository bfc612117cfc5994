//! How a registry client meets TLS: which scheme it speaks, which certificates it presents and
//! trusts for this registry, and what a TLS failure tells the user to do.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use reqwest::Url;

use super::error::RegistryError;
use super::reference::Reference;
use crate::tls::{self, TlsFailure, TlsProblem};

/// How long the HTTPS probe of a loopback registry may take before HTTPS is kept.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Adds the registry's certs.d directory (its CAs and client certificate) to `builder`.
pub(super) fn with_registry_certs(
    builder: reqwest::ClientBuilder,
    reference: &Reference,
    named: Option<&Path>,
) -> Result<reqwest::ClientBuilder, RegistryError> {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let Some(dir) = tls::cert_dir_for(&reference.registry, named, home.as_deref()) else {
        return Ok(builder);
    };
    let certs = tls::read_cert_dir(&dir).map_err(|source| RegistryError::CertDir {
        registry: reference.registry.clone(),
        source,
    })?;
    tracing::debug!(
        registry = %reference.registry,
        dir = %dir.display(),
        cas = certs.cas.len(),
        client_certificate = certs.identity.is_some(),
        "certificates for this registry"
    );
    let mut builder = builder;
    for ca in certs.cas {
        builder = builder.add_root_certificate(ca);
    }
    if let Some(identity) = certs.identity {
        builder = builder.identity(identity);
    }
    Ok(builder)
}

/// `https`, unless `plain_http` says otherwise, or a loopback registry answers plain HTTP to
/// a TLS handshake (docker's and go-containerregistry's rule: on a loopback address HTTPS is
/// tried first, and HTTP only when that is what the registry speaks).
pub(super) async fn scheme(
    http: &reqwest::Client,
    reference: &Reference,
    plain_http: Option<bool>,
) -> &'static str {
    match plain_http {
        Some(true) => "http",
        Some(false) => "https",
        None if reference.is_localhost() => probed_scheme(http, reference).await,
        None => "https",
    }
}

/// The scheme a loopback registry answered the HTTPS probe with, probed once per run however
/// many clients reach it (a base on DEST's registry, several destinations), and said once.
async fn probed_scheme(http: &reqwest::Client, reference: &Reference) -> &'static str {
    static PROBED: OnceLock<Mutex<HashMap<String, &'static str>>> = OnceLock::new();
    let probed = || {
        PROBED
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    };
    let host = reference.api_host();
    if let Some(scheme) = probed().get(host) {
        return *scheme;
    }
    let ping = format!("https://{host}/v2/");
    let scheme = match http.get(ping).timeout(PROBE_TIMEOUT).send().await {
        Err(e) if speaks_no_tls(&e) => "http",
        _ => "https",
    };
    if probed().insert(host.to_string(), scheme).is_none() && scheme == "http" {
        tracing::info!(
            registry = %reference.registry,
            "the registry speaks plain HTTP, not TLS: using http:// (--plain-http says so at once)"
        );
    }
    scheme
}

/// Whether the HTTPS probe met a server that speaks no TLS: it answered the ClientHello with
/// something else, or hung up on it during the handshake.
fn speaks_no_tls(error: &reqwest::Error) -> bool {
    tls::tls_problem(error) == Some(TlsProblem::NotTls)
        || (error.is_connect() && tls::handshake_cut_off(error))
}

/// The error for `failure` of `action`: what is wrong, the certificate as the registry
/// presents it, and the flag or file that fixes it. `prefix` is the side's flag prefix (`""`,
/// `base-`, `src-`, `dest-`).
pub(super) fn failure(
    registry: &str,
    action: &str,
    url: &Url,
    failure: TlsFailure,
    prefix: &str,
) -> RegistryError {
    let fix = fix(
        &failure.problem,
        registry,
        url.host_str().unwrap_or(registry),
        prefix,
    );
    RegistryError::Tls {
        registry: registry.into(),
        action: action.into(),
        failure: Box::new(failure),
        fix,
    }
}

fn fix(problem: &TlsProblem, registry: &str, host: &str, prefix: &str) -> String {
    let certs_d = format!("/etc/containers/certs.d/{registry}/");
    let insecure = format!("--{prefix}insecure skips the check, if you trust the network");
    match problem {
        TlsProblem::UnknownIssuer => format!(
            "trust the CA that issued it: put it in {certs_d}ca.crt (or \
             ~/.config/containers/certs.d/{registry}/ca.crt), or name it with --ca-file \
             FILE or --{prefix}cert-dir DIR; {insecure}"
        ),
        TlsProblem::WrongName => format!(
            "reach the registry by a name its certificate lists, or have the certificate \
             reissued with {host} among its names; {insecure}"
        ),
        TlsProblem::Expired | TlsProblem::NotYetValid => format!(
            "have the registry's certificate renewed, or check this machine's clock; {insecure}"
        ),
        TlsProblem::NotTls => format!(
            "if the registry serves plain HTTP, say --{prefix}plain-http; check the port \
             otherwise"
        ),
        TlsProblem::ClientCertificate => format!(
            "put a client certificate and its key (client.cert, client.key) in {certs_d}, or \
             name a directory holding them with --{prefix}cert-dir DIR"
        ),
        TlsProblem::Other(_) => insecure,
    }
}
