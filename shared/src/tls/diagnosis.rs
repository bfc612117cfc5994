//! A TLS failure as the user is told of it: what is wrong, and the certificate as the server
//! presents it (issuer, names, dates), read by a second handshake.

use super::failure::{tls_problem, TlsProblem};
use super::peer::{peer_certificate, CertificateSummary};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFailure {
    pub problem: TlsProblem,
    /// `None` when the server presents none (it speaks no TLS) or the problem is ours.
    /// Boxed: errors carrying it stay small on the happy path.
    pub certificate: Option<Box<CertificateSummary>>,
}

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.problem)?;
        match &self.certificate {
            Some(certificate) => write!(f, "; {certificate}"),
            None => Ok(()),
        }
    }
}

impl TlsFailure {
    /// The TLS failure behind `error`, if it is one; `fallback` is where the request went when
    /// the error does not say.
    pub async fn of(error: &reqwest::Error, fallback: &reqwest::Url) -> Option<Self> {
        let problem = tls_problem(error)?;
        let url = error.url().unwrap_or(fallback);
        let certificate = match problem {
            TlsProblem::NotTls | TlsProblem::ClientCertificate => None,
            _ => match (url.host_str(), url.port_or_known_default()) {
                (Some(host), Some(port)) => peer_certificate(host, port).await.map(Box::new),
                _ => None,
            },
        };
        Some(Self {
            problem,
            certificate,
        })
    }

    /// The fix for a server that is not a registry (the Hub, the Model Registry): its URL is
    /// given whole, and its CA with `--ca-file`.
    pub fn server_fix(&self, host: &str) -> String {
        match self.problem {
            TlsProblem::UnknownIssuer => "trust the CA that issued it with --ca-file FILE (a PEM \
                 file, or a directory of them: in Tekton, the ca-bundle workspace)"
                .into(),
            TlsProblem::WrongName => format!(
                "reach it by a name its certificate lists, or have the certificate reissued \
                 with {host} among its names"
            ),
            TlsProblem::Expired | TlsProblem::NotYetValid => {
                "have its certificate renewed, or check this machine's clock".into()
            }
            TlsProblem::NotTls => "if it serves plain HTTP, give its URL as http://".into(),
            TlsProblem::ClientCertificate => "it wants a client certificate, which only \
                 registries are sent (from certs.d or --cert-dir)"
                .into(),
            TlsProblem::Other(_) => "check the server's TLS set-up".into(),
        }
    }
}
