//! The certificate a server presents, read for an error message only: a second handshake that
//! records the certificate, then refuses it and sends nothing.

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// How long the diagnostic handshake may take: the error it explains is already known.
const TIMEOUT: Duration = Duration::from_secs(2);

/// What a user needs of a certificate to see why it was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSummary {
    pub subject: String,
    pub issuer: String,
    /// Its DNS names and IP addresses (subjectAltName).
    pub names: Vec<String>,
    pub not_before: String,
    pub not_after: String,
}

impl std::fmt::Display for CertificateSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = match self.names.is_empty() {
            true => "no name (no subjectAltName)".to_string(),
            false => self.names.join(", "),
        };
        write!(
            f,
            "it presents \"{}\", issued by \"{}\", valid for {names}, from {} to {}",
            self.subject, self.issuer, self.not_before, self.not_after
        )
    }
}

/// The certificate `host:port` presents, or `None` when it cannot be had (the server is gone,
/// or speaks no TLS).
pub async fn peer_certificate(host: &str, port: u16) -> Option<CertificateSummary> {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    tokio::task::spawn_blocking(move || summarize(&handshake_certificate(&host, port)?))
        .await
        .ok()
        .flatten()
}

fn handshake_certificate(host: &str, port: u16) -> Option<Vec<u8>> {
    let recorder = Arc::new(Recorder::default());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string()).ok()?;
    let mut connection = rustls::ClientConnection::new(Arc::new(config), name).ok()?;
    let address = (host, port).to_socket_addrs().ok()?.next()?;
    let mut socket = TcpStream::connect_timeout(&address, TIMEOUT).ok()?;
    socket.set_read_timeout(Some(TIMEOUT)).ok()?;
    socket.set_write_timeout(Some(TIMEOUT)).ok()?;
    while connection.is_handshaking() && recorder.recorded().is_none() {
        if connection.complete_io(&mut socket).is_err() {
            break;
        }
    }
    recorder.recorded()
}

fn summarize(der: &[u8]) -> Option<CertificateSummary> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san.value.general_names.iter().filter_map(name).collect(),
        _ => Vec::new(),
    };
    let validity = cert.validity();
    Some(CertificateSummary {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        names,
        not_before: validity.not_before.to_string(),
        not_after: validity.not_after.to_string(),
    })
}

fn name(general: &GeneralName<'_>) -> Option<String> {
    match general {
        GeneralName::DNSName(dns) => Some(dns.to_string()),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*bytes).ok()?).to_string()),
            16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*bytes).ok()?).to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// Records the server's certificate and refuses it, so the handshake ends there.
#[derive(Debug, Default)]
struct Recorder(Mutex<Option<Vec<u8>>>);

impl Recorder {
    fn recorded(&self) -> Option<Vec<u8>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(end_entity.to_vec());
        Err(rustls::Error::General(
            "certificate recorded for a diagnosis".into(),
        ))
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("diagnosis only".into()))
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("diagnosis only".into()))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
