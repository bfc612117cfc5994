//! A certificate authority made for one test run, and the certificates it issues for the
//! harness's servers: what a self-hosted Quay, Harbor or OpenShift's service CA gives a user,
//! a CA that no system bundle trusts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;

/// The names every server certificate is valid for: how tests reach a server here.
pub const SERVER_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    ca_pem: String,
    name: String,
}

/// A certificate and its key, PEM.
pub struct CertPair {
    pub cert_pem: String,
    pub key_pem: String,
}

impl CertPair {
    /// Writes `dir/<name>.cert` and `dir/<name>.key`, as a certs.d directory holds a client
    /// certificate.
    pub fn write_client_files(&self, dir: &Path, name: &str) {
        std::fs::write(dir.join(format!("{name}.cert")), &self.cert_pem).expect("write .cert");
        std::fs::write(dir.join(format!("{name}.key")), &self.key_pem).expect("write .key");
    }
}

/// `home/.config/containers/certs.d/<registry>`, made: where podman, skopeo and modelcar look
/// for a registry's certificates for a user whose `$HOME` is `home` (containers-certs.d(5)).
pub fn user_certs_d(home: &Path, registry: &str) -> PathBuf {
    let dir = home.join(".config/containers/certs.d").join(registry);
    std::fs::create_dir_all(&dir).expect("cannot make the certs.d directory");
    dir
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
            name: name.into(),
        }
    }

    /// Its common name, as an "unknown issuer" error shows it (`CN=<name>`).
    pub fn name(&self) -> &str {
        &self.name
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
    pub fn server_pair(&self) -> CertPair {
        self.server_pair_for(&SERVER_NAMES)
    }

    /// A server certificate valid only for `names`: a registry reached by another name.
    pub fn server_pair_for(&self, names: &[&str]) -> CertPair {
        self.issue(self.params(names))
    }

    /// A server certificate for [`SERVER_NAMES`] that expired in 2021.
    pub fn expired_server_pair(&self) -> CertPair {
        let mut params = self.params(&SERVER_NAMES);
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        self.issue(params)
    }

    /// A client certificate named `name`, for a server that demands one (mTLS).
    pub fn client_pair(&self, name: &str) -> CertPair {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params)
    }

    fn params(&self, names: &[&str]) -> CertificateParams {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, &names[0]);
        params
    }

    fn issue(&self, params: CertificateParams) -> CertPair {
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("certificate");
        CertPair {
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

/// Asserts that a run refused for its TLS said every one of `needles` within a second of
/// `started`: a certificate error is said at once, not retried as a network failure.
pub fn assert_said_at_once(started: std::time::Instant, err: &str, needles: &[&str]) {
    for needle in needles {
        assert!(err.contains(needle), "expected {needle:?} in:\n{err}");
    }
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(1),
        "took {took:?}:\n{err}"
    );
}
