//! TLS as users meet it: per-registry certificate directories (`certs.d`), and failures
//! explained by the certificate that caused them. Which CAs a whole run trusts is
//! [`crate::trust`].

pub mod cert_dir;
pub mod diagnosis;
pub mod failure;
pub mod peer;

pub use cert_dir::{cert_dir_for, read_cert_dir, CertDirError, RegistryCerts};
pub use diagnosis::TlsFailure;
pub use failure::{handshake_cut_off, tls_problem, TlsProblem};
pub use peer::{peer_certificate, CertificateSummary};
