//! Which CA certificates a step trusts besides the system's: the ones the user names
//! (`--ca-file`, a PEM file or a directory of them, as a ConfigMap mounted as a Tekton workspace
//! gives), and the cluster's service CA where the pod has one. The system bundle itself
//! (`/etc/ssl/certs`, `SSL_CERT_FILE`, `SSL_CERT_DIR`) is read by the TLS stack.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// OpenShift mounts its service CA (which signs the internal registry's and every `.svc`
/// serving certificate) into every pod beside the service-account token; no other Kubernetes
/// does, so this file is trusted only when it is there.
pub const SERVICE_CA_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/service-ca.crt";

/// The CA sources of one run, in the order they are read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    pub sources: Vec<CaSource>,
}

/// One file or directory of CA certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaSource {
    pub path: PathBuf,
    /// The flag that gave it, named in every error about it.
    pub flag: &'static str,
    /// Named by the user: it must be there and hold certificates. Otherwise it is trusted
    /// when present, and a missing one is logged once at debug level and skipped.
    pub required: bool,
}

/// Which service CA to trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceCa {
    /// [`SERVICE_CA_FILE`], when the pod has it.
    Default,
    /// A file the user named: it must be there.
    Named(PathBuf),
    None,
}

/// Why a named CA source cannot be used; names the file and the flag.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read {flag} {path}")]
    Read {
        flag: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{flag} {path} holds no PEM certificate")]
    NoCertificate { flag: &'static str, path: PathBuf },
    #[error("{flag} {path} is a directory with no *.crt or *.pem file in it")]
    EmptyDirectory { flag: &'static str, path: PathBuf },
    #[error("{flag} {path} is not PEM certificates")]
    NotPem {
        flag: &'static str,
        path: PathBuf,
        #[source]
        source: reqwest::Error,
    },
}

impl Trust {
    /// `ca_file` as the user named it (`None`: not named), and the service CA.
    pub fn from_flags(ca_file: Option<PathBuf>, service_ca: ServiceCa) -> Self {
        let named = |path, flag| CaSource {
            path,
            flag,
            required: true,
        };
        let mut sources: Vec<CaSource> =
            ca_file.map(|p| named(p, "--ca-file")).into_iter().collect();
        match service_ca {
            ServiceCa::Default => sources.push(CaSource {
                required: false,
                ..named(PathBuf::from(SERVICE_CA_FILE), "--service-ca-file")
            }),
            ServiceCa::Named(path) => sources.push(named(path, "--service-ca-file")),
            ServiceCa::None => {}
        }
        Trust { sources }
    }

    /// Every certificate of every source that is there, in order.
    pub fn certificates(&self) -> Result<Vec<reqwest::Certificate>, TrustError> {
        let mut certs = Vec::new();
        for source in &self.sources {
            if source.required || source.path.exists() {
                certs.extend(read_source(&source.path, source.flag)?);
            } else {
                log_missing_once(&source.path);
            }
        }
        Ok(certs)
    }
}

/// The certificates in `path`: a PEM file, or every `*.crt` and `*.pem` file of a directory
/// (a ConfigMap or Secret volume: its keys are symlinks into `..data`, which are followed;
/// the `..`-named entries themselves are skipped).
fn read_source(path: &Path, flag: &'static str) -> Result<Vec<reqwest::Certificate>, TrustError> {
    let read_err = |source| TrustError::Read {
        flag,
        path: path.to_path_buf(),
        source,
    };
    if !fs::metadata(path).map_err(read_err)?.is_dir() {
        return read_pem(path, flag);
    }
    let mut files: Vec<PathBuf> = fs::read_dir(path)
        .map_err(read_err)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|p| is_certificate_name(p) && p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(TrustError::EmptyDirectory {
            flag,
            path: path.to_path_buf(),
        });
    }
    let mut certs = Vec::new();
    for file in files {
        certs.extend(read_pem(&file, flag)?);
    }
    Ok(certs)
}

fn is_certificate_name(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    !name.starts_with('.') && (name.ends_with(".crt") || name.ends_with(".pem"))
}

fn read_pem(path: &Path, flag: &'static str) -> Result<Vec<reqwest::Certificate>, TrustError> {
    let pem = fs::read(path).map_err(|source| TrustError::Read {
        flag,
        path: path.to_path_buf(),
        source,
    })?;
    let certs =
        reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| TrustError::NotPem {
            flag,
            path: path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TrustError::NoCertificate {
            flag,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// A step builds one HTTP client per registry: say that an optional CA is absent once.
fn log_missing_once(path: &Path) {
    static SEEN: OnceLock<Mutex<BTreeSet<PathBuf>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    let first = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(path.to_path_buf());
    if first {
        tracing::debug!(
            path = %path.display(),
            "no service CA here (only OpenShift mounts one); trusting the system's and --ca-file's"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_service_ca_is_optional_and_a_named_one_is_required() {
        let default = Trust::from_flags(None, ServiceCa::Default);
        let service_ca = CaSource {
            path: PathBuf::from(SERVICE_CA_FILE),
            flag: "--service-ca-file",
            required: false,
        };
        assert_eq!(default.sources, [service_ca]);
        let none = Trust::from_flags(None, ServiceCa::None);
        assert_eq!(none, Trust::default());
        let named = Trust::from_flags(Some("a.pem".into()), ServiceCa::Named("b.crt".into()));
        let paths: Vec<_> = named.sources.iter().map(|s| (&s.path, s.flag)).collect();
        assert_eq!(
            paths,
            [
                (&PathBuf::from("a.pem"), "--ca-file"),
                (&PathBuf::from("b.crt"), "--service-ca-file")
            ]
        );
        assert!(named.sources.iter().all(|s| s.required));
    }

    #[test]
    fn a_missing_optional_ca_is_skipped_and_a_named_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("service-ca.crt");
        let optional = Trust {
            sources: vec![CaSource {
                path: missing.clone(),
                flag: "--service-ca-file",
                required: false,
            }],
        };
        assert!(optional.certificates().unwrap().is_empty());
        let named = Trust::from_flags(Some(missing.clone()), ServiceCa::None);
        let err = named.certificates().unwrap_err().to_string();
        assert_eq!(err, format!("cannot read --ca-file {}", missing.display()));
        // A service CA the user named is blamed on the flag that named it.
        let named = Trust::from_flags(None, ServiceCa::Named(missing.clone()));
        let err = named.certificates().unwrap_err().to_string();
        assert_eq!(
            err,
            format!("cannot read --service-ca-file {}", missing.display())
        );
    }

    #[test]
    fn a_directory_without_certificate_files_is_named() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("token"), "secret").unwrap();
        let trust = Trust::from_flags(Some(dir.path().into()), ServiceCa::None);
        let err = trust.certificates().unwrap_err().to_string();
        assert!(err.contains("no *.crt or *.pem file"), "{err}");
        let bundle = dir.path().join("ca-bundle.crt");
        fs::write(&bundle, "not a certificate\n").unwrap();
        let err = trust.certificates().unwrap_err().to_string();
        assert_eq!(
            err,
            format!("--ca-file {} holds no PEM certificate", bundle.display())
        );
    }
}
