//! Where registry credentials come from (`docs/design.md`, "Registries"), in priority order:
//! `--creds USER:PASS`, `--token-file PATH` (a Kubernetes service-account token, re-read on
//! every use so a rotated token is picked up), then the docker/podman auth files. The first
//! two go only to the registry they were given for, as an auth file's entry goes only to its
//! own registry: a pipeline's robot credentials must never reach a registry an image, a
//! workspace file or a server's answer names.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::prelude::{Engine, BASE64_STANDARD};
use serde::Deserialize;

/// User name sent with a token file's content. Registries that take a service-account token
/// as a password (OpenShift's, Quay's robot tokens) ignore the user name.
pub const TOKEN_FILE_USER: &str = "serviceaccount";

#[derive(Clone, PartialEq, Eq)]
pub struct Basic {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for Basic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Basic({}:***)", self.user)
    }
}

impl Basic {
    /// Parses `USER:PASS` (the password may contain ':').
    pub fn parse(creds: &str) -> Option<Self> {
        let (user, password) = creds.split_once(':')?;
        (!user.is_empty()).then(|| Self {
            user: user.into(),
            password: password.into(),
        })
    }

    pub fn header_value(&self) -> String {
        let pair = format!("{}:{}", self.user, self.password);
        format!("Basic {}", BASE64_STANDARD.encode(pair))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("cannot read token file {path} (--token-file)")]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("token file {path} (--token-file) is empty")]
    EmptyTokenFile { path: PathBuf },
    #[error("cannot read auth file {path}")]
    AuthFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("auth file {path} is not a docker/podman auth file")]
    BadAuthFile {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("auth file {path}: the entry for {key} is not base64 of USER:PASSWORD")]
    BadAuthEntry { path: PathBuf, key: String },
}

/// Credentials found for a registry, with where they came from, so a rejection can name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub basic: Basic,
    pub source: String,
}

/// What the user configured; credentials are looked up (and token files read) on each use.
#[derive(Debug, Clone, Default)]
pub struct CredentialSource {
    pub creds: Option<Basic>,
    pub token_file: Option<PathBuf>,
    /// `--authfile`; when unset, the standard locations are searched.
    pub authfile: Option<PathBuf>,
    /// The registries (`host[:port]`) `creds` and `token_file` are for; other registries get
    /// only what the auth files hold for them.
    pub explicit_for: Vec<String>,
}

impl CredentialSource {
    /// From the command line's `--creds USER:PASSWORD`, `--token-file`, `--authfile`, the
    /// first two for `registries` alone.
    pub fn from_flags(
        creds: Option<&str>,
        token_file: Option<PathBuf>,
        authfile: Option<PathBuf>,
        registries: &[&str],
    ) -> Result<Self, String> {
        let creds = match creds {
            Some(c) => Some(Basic::parse(c).ok_or("credentials must be USER:PASSWORD")?),
            None => None,
        };
        Ok(Self {
            creds,
            token_file,
            authfile,
            explicit_for: registries.iter().map(|r| r.to_string()).collect(),
        })
    }

    /// Credentials for `name` (`registry/repository`) on `registry`, read now.
    pub fn lookup(&self, registry: &str, name: &str) -> Result<Option<Found>, CredentialError> {
        if self.explicit_for.iter().any(|r| r == registry) {
            if let Some(basic) = &self.creds {
                return Ok(Some(Found {
                    basic: basic.clone(),
                    source: "--creds".into(),
                }));
            }
            if let Some(path) = &self.token_file {
                return read_token_file(path).map(Some);
            }
        }
        let files = match &self.authfile {
            Some(path) => vec![path.clone()],
            None => default_auth_files(),
        };
        for path in files {
            let explicit = self.authfile.is_some();
            if let Some(found) = lookup_auth_file(&path, registry, name, explicit)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }
}

fn read_token_file(path: &Path) -> Result<Found, CredentialError> {
    let token = std::fs::read_to_string(path).map_err(|source| CredentialError::TokenFile {
        path: path.into(),
        source,
    })?;
    let token = token.trim();
    if token.is_empty() {
        return Err(CredentialError::EmptyTokenFile { path: path.into() });
    }
    Ok(Found {
        basic: Basic {
            user: TOKEN_FILE_USER.into(),
            password: token.into(),
        },
        source: format!("token file {}", path.display()),
    })
}

/// podman's and docker's search order.
fn default_auth_files() -> Vec<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let mut files = Vec::new();
    files.extend(env("REGISTRY_AUTH_FILE"));
    files.extend(env("XDG_RUNTIME_DIR").map(|d| d.join("containers/auth.json")));
    files.extend(env("HOME").map(|h| h.join(".config/containers/auth.json")));
    files.extend(env("DOCKER_CONFIG").map(|d| d.join("config.json")));
    files.extend(env("HOME").map(|h| h.join(".docker/config.json")));
    files
}

#[derive(Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

fn lookup_auth_file(
    path: &Path,
    registry: &str,
    name: &str,
    explicit: bool,
) -> Result<Option<Found>, CredentialError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(None),
        Err(source) => {
            return Err(CredentialError::AuthFile {
                path: path.into(),
                source,
            })
        }
    };
    let file: AuthFile =
        serde_json::from_slice(&bytes).map_err(|source| CredentialError::BadAuthFile {
            path: path.into(),
            source,
        })?;
    let Some((key, entry)) = best_entry(&file.auths, registry, name) else {
        return Ok(None);
    };
    let basic = match (&entry.auth, &entry.username, &entry.password) {
        (Some(auth), _, _) => BASE64_STANDARD
            .decode(auth.trim())
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|pair| Basic::parse(&pair)),
        (None, Some(user), Some(password)) => Some(Basic {
            user: user.clone(),
            password: password.clone(),
        }),
        _ => None,
    }
    .ok_or_else(|| CredentialError::BadAuthEntry {
        path: path.into(),
        key: key.clone(),
    })?;
    Ok(Some(Found {
        basic,
        source: format!("auth file {} (entry {key})", path.display()),
    }))
}

/// The most specific entry: podman allows `registry/namespace` keys, docker uses URLs.
fn best_entry<'a>(
    auths: &'a BTreeMap<String, AuthEntry>,
    registry: &str,
    name: &str,
) -> Option<(&'a String, &'a AuthEntry)> {
    auths
        .iter()
        .filter_map(|(key, entry)| {
            let k = normalize_key(key);
            let matches = k == registry
                || name.starts_with(&format!("{k}/"))
                || (registry == "docker.io" && k == "index.docker.io");
            matches.then_some((k.len(), key, entry))
        })
        .max_by_key(|(len, _, _)| *len)
        .map(|(_, key, entry)| (key, entry))
}

/// `https://index.docker.io/v1/` -> `index.docker.io`; `quay.io/org` stays.
fn normalize_key(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let k = k.strip_suffix('/').unwrap_or(k);
    k.strip_suffix("/v1")
        .or_else(|| k.strip_suffix("/v2"))
        .unwrap_or(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth_file(dir: &Path, json: &str) -> PathBuf {
        let p = dir.join("auth.json");
        std::fs::write(&p, json).unwrap();
        p
    }

    #[test]
    fn most_specific_auth_file_entry_wins() {
        let tmp = tempfile::tempdir().unwrap();
        let enc = |s: &str| BASE64_STANDARD.encode(s);
        let path = auth_file(
            tmp.path(),
            &format!(
                r#"{{"auths":{{"quay.io":{{"auth":"{}"}},"quay.io/team":{{"auth":"{}"}},"https://index.docker.io/v1/":{{"auth":"{}"}}}}}}"#,
                enc("general:p1"),
                enc("team:p:2"),
                enc("hub:p3")
            ),
        );
        let src = CredentialSource {
            authfile: Some(path),
            ..Default::default()
        };
        let user = |reg: &str, name: &str| src.lookup(reg, name).unwrap().map(|f| f.basic.user);
        assert_eq!(
            user("quay.io", "quay.io/team/model").as_deref(),
            Some("team")
        );
        assert_eq!(
            user("quay.io", "quay.io/other/model").as_deref(),
            Some("general")
        );
        assert_eq!(
            user("docker.io", "docker.io/library/busybox").as_deref(),
            Some("hub")
        );
        assert_eq!(user("ghcr.io", "ghcr.io/x/y"), None);
        let team = src.lookup("quay.io", "quay.io/team/m").unwrap().unwrap();
        assert_eq!(team.basic.password, "p:2");
        assert!(
            team.source.contains("auth.json") && team.source.contains("quay.io/team"),
            "{}",
            team.source
        );
    }

    #[test]
    fn token_file_is_reread_on_every_lookup() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("token");
        std::fs::write(&path, "first\n").unwrap();
        let src = CredentialSource {
            token_file: Some(path.clone()),
            explicit_for: vec!["r".into()],
            ..Default::default()
        };
        assert_eq!(
            src.lookup("r", "r/x").unwrap().unwrap().basic.password,
            "first"
        );
        std::fs::write(&path, "rotated").unwrap();
        assert_eq!(
            src.lookup("r", "r/x").unwrap().unwrap().basic.password,
            "rotated"
        );
        std::fs::write(&path, "").unwrap();
        assert!(matches!(
            src.lookup("r", "r/x"),
            Err(CredentialError::EmptyTokenFile { .. })
        ));
    }

    #[test]
    fn explicit_authfile_must_exist_and_parse() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = CredentialSource {
            authfile: Some(tmp.path().join("nope.json")),
            ..Default::default()
        };
        assert!(matches!(
            missing.lookup("r", "r/x"),
            Err(CredentialError::AuthFile { .. })
        ));
        let bad = CredentialSource {
            authfile: Some(auth_file(tmp.path(), "{not json")),
            ..Default::default()
        };
        assert!(bad
            .lookup("r", "r/x")
            .unwrap_err()
            .to_string()
            .contains("auth.json"));
    }

    #[test]
    fn creds_flag_splits_at_the_first_colon() {
        let b = Basic::parse("robot$x:pa:ss").unwrap();
        assert_eq!((b.user.as_str(), b.password.as_str()), ("robot$x", "pa:ss"));
        assert!(Basic::parse("nocolon").is_none());
        assert!(
            !format!("{b:?}").contains("pa:ss"),
            "Debug must not print the password"
        );
    }

    #[test]
    fn creds_and_token_files_go_only_to_their_registry() {
        let tmp = tempfile::tempdir().unwrap();
        let token = tmp.path().join("token");
        std::fs::write(&token, "sa-token").unwrap();
        let enc = BASE64_STANDARD.encode("other:from-file");
        let authfile = auth_file(
            tmp.path(),
            &format!(r#"{{"auths":{{"other.example":{{"auth":"{enc}"}}}}}}"#),
        );
        for (creds, token_file) in [(Some("bob:s3cret"), None), (None, Some(token.clone()))] {
            let src = CredentialSource::from_flags(
                creds,
                token_file,
                Some(authfile.clone()),
                &["quay.io", "registry.example:5000"],
            )
            .unwrap();
            let found = |reg: &str| src.lookup(reg, &format!("{reg}/x")).unwrap();
            assert!(found("quay.io").is_some_and(|f| f.basic.user != "other"));
            assert!(found("registry.example:5000").is_some());
            assert_eq!(found("quay.io:443"), None, "another origin");
            assert_eq!(found("evil.example"), None);
            assert_eq!(found("other.example").unwrap().basic.user, "other");
        }
    }
}
