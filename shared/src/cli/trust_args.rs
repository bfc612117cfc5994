//! The CA flags of every step that talks to a server over TLS: one definition, so that
//! build-push, mirror, fetch-model and register read CAs the same way (`docs/design.md`,
//! "Trust").

use std::path::PathBuf;

use crate::trust::{ServiceCa, Trust};

#[derive(Debug, Clone, clap::Args)]
pub struct TrustArgs {
    /// CA certificates (PEM) to trust besides the system's (/etc/ssl/certs, or SSL_CERT_FILE
    /// and SSL_CERT_DIR): a file, or a directory whose *.crt and *.pem files are all read, as
    /// a ConfigMap mounted as a Tekton workspace gives (OpenShift's injected trusted bundle,
    /// `ca-bundle.crt`; the service CA, `service-ca.crt`). A path named here must hold
    /// certificates.
    #[arg(long, env = "MODELCAR_CA_FILE", value_name = "PATH")]
    pub ca_file: Option<PathBuf>,

    /// The cluster's service CA (PEM), trusted too. The default is where OpenShift mounts it in
    /// every pod (/var/run/secrets/kubernetes.io/serviceaccount/service-ca.crt); where it is
    /// missing (any other Kubernetes, a laptop) the default is skipped, while a path named here
    /// must be there.
    #[arg(long, env = "MODELCAR_SERVICE_CA_FILE", value_name = "PATH")]
    pub service_ca_file: Option<PathBuf>,

    /// Trust no service CA, not even the one OpenShift mounts.
    #[arg(
        long,
        env = "MODELCAR_NO_SERVICE_CA",
        conflicts_with = "service_ca_file"
    )]
    pub no_service_ca: bool,
}

impl TrustArgs {
    pub fn trust(&self) -> Trust {
        let service_ca = match (&self.service_ca_file, self.no_service_ca) {
            (_, true) => ServiceCa::None,
            (Some(path), false) => ServiceCa::Named(path.clone()),
            (None, false) => ServiceCa::Default,
        };
        Trust::from_flags(self.ca_file.clone(), service_ca)
    }
}
