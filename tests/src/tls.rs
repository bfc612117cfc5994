//! A certificate authority made for one test run, and the certificates it issues for the
//! harness's servers: what a self-hosted Quay, Harbor or OpenShift's service CA gives a user,
//! a CA that no system bundle trusts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;

/// The names every server certificate is valid for: how tests reach a server here.
pub const SERVER_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    ca_pem: String,
}

/// A server's certificate chain and key, PEM.
pub struct ServerPair {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    /// A new CA named `name` (its common name: what an "unknown issuer" error shows).
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("CA certificate");
        Self {
            ca_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA certificate, PEM: what a user puts in a ConfigMap or `--ca-file`.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Writes the CA certificate to `dir/<file>` and returns the path.
    pub fn write_ca(&self, dir: &Path, file: &str) -> PathBuf {
        let path = dir.join(file);
        std::fs::write(&path, &self.ca_pem)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }

    /// A server certificate for [`SERVER_NAMES`], signed by this CA.
    pub fn server_pair(&self) -> ServerPair {
        let key = KeyPair::generate().expect("server key");
        let names: Vec<String> = SERVER_NAMES.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, SERVER_NAMES[0]);
        let cert = params.signed_by(&key, &self.issuer).expect("server cert");
        ServerPair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A rustls server configuration with a fresh [`server_pair`](Self::server_pair).
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let pair = self.server_pair();
        let certs = rustls::pki_types::CertificateDer::pem_slice_iter(pair.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("server cert PEM");
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(pair.key_pem.as_bytes())
            .expect("server key PEM");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server config");
        Arc::new(config)
    }
}
