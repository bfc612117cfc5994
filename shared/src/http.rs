//! The HTTP client set-up every network step shares: one TLS stack (rustls on ring), the
//! system's roots plus `--ca-file`, a connect timeout. Callers add the timeouts their traffic
//! needs (a 50 GB upload and a REST call differ).

use std::path::Path;
use std::time::Duration;

/// A client builder with the shared TLS set-up; `Err` says what is wrong with `--ca-file`.
pub fn client_builder(
    user_agent: &str,
    ca_file: Option<&Path>,
) -> Result<reqwest::ClientBuilder, String> {
    // One process-wide rustls provider (ring): a second install attempt is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .user_agent(user_agent)
        .connect_timeout(Duration::from_secs(30));
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read --ca-file {}: {e}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("--ca-file {} is not PEM certificates: {e}", path.display()))?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder)
}
