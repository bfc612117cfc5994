//! A registry's own certificates, where podman, skopeo, buildah, CRI-O and docker keep them
//! (containers-certs.d(5)): a directory named after the registry's `HOST[:PORT]` under
//! `$HOME/.config/containers/certs.d`, `/etc/containers/certs.d` or `/etc/docker/certs.d`, the
//! first that exists (containers/image, `docker/docker_client.go`, `dockerCertDir`), or one
//! directory named with `--cert-dir`. In it, every `*.crt` is a CA, and `NAME.cert` with
//! `NAME.key` is a client certificate (docker's `ca.crt`, `client.cert`, `client.key` fit both).

use std::fs;
use std::path::{Path, PathBuf};

/// The system directories of per-registry certificates, after the user's own
/// (`$HOME/.config/containers/certs.d`).
pub const SYSTEM_CERT_DIRS: [&str; 2] = ["/etc/containers/certs.d", "/etc/docker/certs.d"];
const HOME_CERT_DIR: &str = ".config/containers/certs.d";

/// What a registry's certificate directory holds.
#[derive(Debug)]
pub struct RegistryCerts {
    pub dir: PathBuf,
    pub cas: Vec<reqwest::Certificate>,
    /// The first client certificate pair, by file name.
    pub identity: Option<reqwest::Identity>,
}

#[derive(Debug, thiserror::Error)]
pub enum CertDirError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not PEM certificates")]
    NotPem {
        path: PathBuf,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "{cert} has no key {key} beside it (a CA certificate must be named *.crt, a client \
         certificate NAME.cert with NAME.key)"
    )]
    MissingKey { cert: PathBuf, key: String },
    #[error("{key} has no client certificate {cert} beside it")]
    MissingCert { key: PathBuf, cert: String },
    #[error("{cert} and {key} are not a client certificate and its key")]
    BadPair {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: reqwest::Error,
    },
}

/// The certificate directory of `registry` (`HOST[:PORT]` as the image reference spells it):
/// `named` when given, else the first of the usual places that exists, if any.
pub fn cert_dir_for(registry: &str, named: Option<&Path>, home: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = named {
        return Some(dir.to_path_buf());
    }
    let home_dir = home.map(|h| h.join(HOME_CERT_DIR));
    home_dir
        .into_iter()
        .chain(SYSTEM_CERT_DIRS.iter().map(PathBuf::from))
        .map(|root| root.join(registry))
        .find(|dir| dir.is_dir())
}

/// What `dir` holds. A directory that is not there holds nothing (podman's rule), but a file in
/// it that cannot be used is an error naming it: a certificate silently left out shows up
/// later as an "unknown issuer" far from its cause.
pub fn read_cert_dir(dir: &Path) -> Result<RegistryCerts, CertDirError> {
    let mut certs = RegistryCerts {
        dir: dir.to_path_buf(),
        cas: Vec::new(),
        identity: None,
    };
    let mut names: Vec<String> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(certs),
        Err(source) => {
            return Err(CertDirError::Read {
                path: dir.into(),
                source,
            })
        }
    };
    names.sort();
    for name in &names {
        let path = dir.join(name);
        if name.ends_with(".crt") {
            let pem = read(&path)?;
            let cas = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|source| CertDirError::NotPem { path, source })?;
            certs.cas.extend(cas);
        } else if let Some(base) = name.strip_suffix(".cert") {
            let key = format!("{base}.key");
            if !names.contains(&key) {
                return Err(CertDirError::MissingKey { cert: path, key });
            }
            if certs.identity.is_none() {
                certs.identity = Some(identity(&path, &dir.join(&key))?);
            }
        } else if let Some(base) = name.strip_suffix(".key") {
            let cert = format!("{base}.cert");
            if !names.contains(&cert) {
                return Err(CertDirError::MissingCert { key: path, cert });
            }
        }
    }
    Ok(certs)
}

fn read(path: &Path) -> Result<Vec<u8>, CertDirError> {
    fs::read(path).map_err(|source| CertDirError::Read {
        path: path.into(),
        source,
    })
}

fn identity(cert: &Path, key: &Path) -> Result<reqwest::Identity, CertDirError> {
    let mut pem = read(cert)?;
    pem.push(b'\n');
    pem.extend(read(key)?);
    reqwest::Identity::from_pem(&pem).map_err(|source| CertDirError::BadPair {
        cert: cert.into(),
        key: key.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_users_directory_comes_before_the_systems_and_a_named_one_before_all() {
        let home = tempfile::tempdir().unwrap();
        let registry = "registry.example:5000";
        assert_eq!(cert_dir_for(registry, None, Some(home.path())), None);
        let own = home.path().join(HOME_CERT_DIR).join(registry);
        fs::create_dir_all(&own).unwrap();
        assert_eq!(cert_dir_for(registry, None, Some(home.path())), Some(own));
        let named = Path::new("/run/certs");
        assert_eq!(
            cert_dir_for(registry, Some(named), Some(home.path())),
            Some(named.to_path_buf())
        );
    }

    #[test]
    fn a_client_certificate_without_its_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_cert_dir(&dir.path().join("absent"))
            .unwrap()
            .cas
            .is_empty());
        fs::write(dir.path().join("client.cert"), "x").unwrap();
        let err = read_cert_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("client.cert has no key client.key"), "{err}");
        fs::remove_file(dir.path().join("client.cert")).unwrap();
        fs::write(dir.path().join("client.key"), "x").unwrap();
        let err = read_cert_dir(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("client.key has no client certificate client.cert"),
            "{err}"
        );
    }
}
