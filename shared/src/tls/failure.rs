//! What a TLS failure means to the user: found in a reqwest error's causes, and never worth a
//! retry, since nothing about a certificate changes by asking again.

use std::error::Error;

use rustls::{AlertDescription, CertificateError};

/// What went wrong in a handshake, in the terms of its fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsProblem {
    /// The certificate chains to no CA this run trusts.
    UnknownIssuer,
    /// The certificate is valid, but not for the name the server was reached by.
    WrongName,
    Expired,
    NotYetValid,
    /// The server answered the handshake with something that is not TLS: plain HTTP, most
    /// likely.
    NotTls,
    /// The server wants a client certificate, or refused the one it was given.
    ClientCertificate,
    /// Anything else rustls refused, in its own words.
    Other(String),
}

impl std::fmt::Display for TlsProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::UnknownIssuer => "its certificate is issued by a CA this run does not trust",
            Self::WrongName => "its certificate is not valid for the name it was reached by",
            Self::Expired => "its certificate has expired",
            Self::NotYetValid => "its certificate is not valid yet",
            Self::NotTls => "it answered the TLS handshake with something else (plain HTTP?)",
            Self::ClientCertificate => {
                "it asks for a client certificate, and was given none it accepts"
            }
            Self::Other(detail) => return write!(f, "the TLS handshake failed: {detail}"),
        })
    }
}

/// The TLS problem behind `error`, if its causes hold one.
pub fn tls_problem(error: &(dyn Error + 'static)) -> Option<TlsProblem> {
    find_rustls_error(error).map(classify)
}

/// Whether the server closed the connection while the TLS handshake was under way: what a
/// plain-HTTP server (or a proxy in front of one) does when its parser meets a ClientHello, as
/// much as answering it with an HTTP error does.
pub fn handshake_cut_off(error: &(dyn Error + 'static)) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, UnexpectedEof};
    causes(error).into_iter().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                UnexpectedEof | ConnectionReset | ConnectionAborted
            )
        })
    })
}

/// rustls's error, wherever hyper and std::io put it.
fn find_rustls_error<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a rustls::Error> {
    causes(error)
        .into_iter()
        .find_map(|cause| cause.downcast_ref::<rustls::Error>())
}

/// `error` and every cause under it. An `io::Error`'s `source()` skips the error it wraps, so
/// that one is reached through `get_ref()`.
fn causes<'a>(error: &'a (dyn Error + 'static)) -> Vec<&'a (dyn Error + 'static)> {
    let mut found = Vec::new();
    let mut next = Some(error);
    while let Some(current) = next {
        found.push(current);
        if let Some(inner) = current
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            found.extend(causes(inner));
        }
        next = current.source();
    }
    found
}

fn classify(error: &rustls::Error) -> TlsProblem {
    match error {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => TlsProblem::UnknownIssuer,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                TlsProblem::WrongName
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                TlsProblem::Expired
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                TlsProblem::NotYetValid
            }
            other => TlsProblem::Other(format!("{other:?}")),
        },
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            TlsProblem::NotTls
        }
        rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateExpired,
        ) => TlsProblem::ClientCertificate,
        other => TlsProblem::Other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rustls_error_is_found_inside_an_io_error() {
        let io = std::io::Error::other(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ));
        assert_eq!(tls_problem(&io), Some(TlsProblem::UnknownIssuer));
        let plain = std::io::Error::other("connection reset");
        assert_eq!(tls_problem(&plain), None);
    }

    #[test]
    fn a_missing_client_certificate_is_told_apart() {
        let alert = rustls::Error::AlertReceived(AlertDescription::CertificateRequired);
        assert_eq!(classify(&alert), TlsProblem::ClientCertificate);
        let corrupt = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        assert_eq!(classify(&corrupt), TlsProblem::NotTls);
    }
}
