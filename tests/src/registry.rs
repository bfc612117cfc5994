//! A real CNCF distribution registry (Debian's `docker-registry`) for one test.
//!
//! Started on a free localhost port with its storage in a temp dir; stopped by its PID when the
//! `Registry` is dropped. It also dies with the test thread that started it (PR_SET_PDEATHSIG),
//! so a test that panics or is killed leaves no registry behind: start one per test.
//! With [`RegistryAuth::Token`] it trusts a [`TokenServer`] that the `Registry` owns.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::http::get_status;
use crate::tls::{CertPair, TestCa};
use crate::token_server::{self, TokenServer};
use crate::tools::{free_port, require_tool};

/// How clients must authenticate to the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryAuth {
    None,
    /// HTTP basic auth against an htpasswd file (bcrypt), made with `htpasswd -B`.
    Htpasswd {
        user: String,
        password: String,
    },
    /// Bearer tokens (distribution token auth) from an in-process [`TokenServer`] that issues
    /// them to `user`/`password` and makes them expire after `ttl_secs` seconds.
    Token {
        user: String,
        password: String,
        ttl_secs: u64,
    },
}

pub struct Registry {
    /// The program: Debian's distribution 2.8, or a 3.x binary (see [`Registry::start_v3`]).
    bin: PathBuf,
    child: Child,
    dir: TempDir,
    port: u16,
    auth: RegistryAuth,
    /// Dropped after the registry process is killed (fields drop after `Drop::drop`).
    token_server: Option<TokenServer>,
    /// Serving TLS with a certificate of this CA (`http.tls`), for `localhost` and 127.0.0.1.
    tls: bool,
}

impl Registry {
    /// An open registry: anyone may push and pull.
    pub fn start() -> Self {
        Self::start_with(RegistryAuth::None)
    }

    /// A registry that demands basic auth with `user`/`password`.
    pub fn start_with_htpasswd(user: &str, password: &str) -> Self {
        Self::start_with(RegistryAuth::Htpasswd {
            user: user.into(),
            password: password.into(),
        })
    }

    /// A registry that demands bearer tokens from its own token server, which issues them to
    /// `user`/`password` for `ttl_secs` seconds.
    pub fn start_with_token(user: &str, password: &str, ttl_secs: u64) -> Self {
        Self::start_with(RegistryAuth::Token {
            user: user.into(),
            password: password.into(),
            ttl_secs,
        })
    }

    pub fn start_with(auth: RegistryAuth) -> Self {
        Self::start_program(require_tool("docker-registry"), auth, None, false)
    }

    /// An open registry serving TLS only, with a certificate `ca` issued (distribution's
    /// `http.tls`), as every registry users push to does.
    pub fn start_tls(ca: &TestCa) -> Self {
        Self::start_tls_with(ca.server_pair(), None)
    }

    /// An open registry serving TLS with `pair` (one for other names, an expired one), and
    /// demanding a client certificate `client_ca` issued when there is one
    /// (`http.tls.clientcas`: distribution then requires and verifies one).
    pub fn start_tls_with(pair: CertPair, client_ca: Option<&TestCa>) -> Self {
        let tls = ServingTls {
            pair,
            client_ca,
            token_ca: None,
        };
        Self::start_program(
            require_tool("docker-registry"),
            RegistryAuth::None,
            Some(tls),
            false,
        )
    }

    /// A registry that knows itself as `localhost:PORT` (distribution's `http.host`, as Quay
    /// knows itself by its `SERVER_HOSTNAME` and a registry behind a proxy by its own name):
    /// every upload Location it gives is on that name, while [`Self::host`] reaches it at
    /// 127.0.0.1, another origin. Over TLS with a certificate of `tls` when given.
    pub fn start_known_as_localhost(auth: RegistryAuth, tls: Option<&TestCa>) -> Self {
        let serving = tls.map(|ca| ServingTls {
            pair: ca.server_pair(),
            client_ca: None,
            token_ca: Some(ca),
        });
        Self::start_program(require_tool("docker-registry"), auth, serving, true)
    }

    /// The environment variable naming a distribution 3.x `registry` binary.
    pub const V3_ENV: &'static str = "MODELCAR_DISTRIBUTION_3";

    /// A real distribution 3.x, open, from the binary [`Self::V3_ENV`] names: 3.x is not
    /// packaged here, so the tests that use it are ignored unless asked for (`--ignored`) with
    /// a binary built by hand. `None` when the variable is not set.
    pub fn start_v3() -> Option<Self> {
        let bin = std::env::var_os(Self::V3_ENV)?;
        Some(Self::start_program(
            PathBuf::from(bin),
            RegistryAuth::None,
            None,
            false,
        ))
    }

    fn start_program(
        bin: PathBuf,
        auth: RegistryAuth,
        tls: Option<ServingTls<'_>>,
        known_as_localhost: bool,
    ) -> Self {
        let token_ca = tls.as_ref().and_then(|t| t.token_ca);
        let token_server = match &auth {
            RegistryAuth::Token {
                user,
                password,
                ttl_secs,
            } => Some(match token_ca {
                Some(ca) => TokenServer::start_tls(user, password, *ttl_secs, ca),
                None => TokenServer::start(user, password, *ttl_secs),
            }),
            RegistryAuth::None | RegistryAuth::Htpasswd { .. } => None,
        };
        let dir = tempfile::Builder::new()
            .prefix("modelcar-registry-")
            .tempdir()
            .expect("cannot make the registry's temp dir");
        let port = free_port();
        let config = dir.path().join("config.yml");
        let serves_tls = tls.is_some();
        let mut http_extra = tls.map(|t| tls_yaml(dir.path(), t)).unwrap_or_default();
        if known_as_localhost {
            let scheme = if serves_tls { "https" } else { "http" };
            http_extra.push_str(&format!("  host: {scheme}://localhost:{port}\n"));
        }
        let yaml = config_yaml(dir.path(), port, &http_extra, &auth, token_server.as_ref());
        fs::write(&config, yaml).expect("cannot write registry config");
        let child = spawn(&bin, dir.path());
        let registry = Self {
            bin,
            child,
            dir,
            port,
            auth,
            token_server,
            tls: serves_tls,
        };
        registry.wait_until_ready();
        registry
    }

    /// Stops the registry (SIGKILL, as when its pod dies). Its storage stays on disk.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port, storage and secret: upload sessions survive, as they
    /// do across restarts of a registry whose `http.secret` is set.
    pub fn start_again(&mut self) {
        self.child = spawn(&self.bin, self.dir.path());
        self.wait_until_ready();
    }

    /// `127.0.0.1:PORT`, as used in image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `localhost:PORT`: a name the TLS registry's certificate is valid for.
    pub fn tls_host(&self) -> String {
        format!("localhost:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn auth(&self) -> &RegistryAuth {
        &self.auth
    }

    /// The token server that the registry trusts, for [`RegistryAuth::Token`].
    pub fn token_server(&self) -> Option<&TokenServer> {
        self.token_server.as_ref()
    }

    /// Where the registry keeps blobs and manifests.
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The registry's own log, for assertion messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Status of `GET /v2/`: 200 when open (or with the right credentials), 401 otherwise.
    pub fn ping(&self, basic: Option<(&str, &str)>) -> std::io::Result<u16> {
        get_status(&self.host(), "/v2/", basic)
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            // Over TLS, the plain-HTTP ping is answered 400 ("HTTP request to an HTTPS
            // server"): an answer all the same.
            let status = self.ping(None).ok();
            if matches!(status, Some(200 | 401)) || (self.tls && status == Some(400)) {
                return;
            }
            sleep(Duration::from_millis(25));
        }
        panic!(
            "docker-registry did not answer on {} within 20 s; its log:\n{}",
            self.host(),
            self.log()
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The registry's config; `http_extra` is more of the `http:` section (indented by two).
fn config_yaml(
    dir: &Path,
    port: u16,
    http_extra: &str,
    auth: &RegistryAuth,
    token_server: Option<&TokenServer>,
) -> String {
    let storage = dir.join("storage");
    let mut yaml = format!(
        "version: 0.1\n\
         log:\n  level: warn\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
         maintenance:\n    uploadpurging:\n      enabled: false\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: modelcar-test-upload-state-key\n{http_extra}",
        storage.display()
    );
    match (auth, token_server) {
        (RegistryAuth::None, _) => {}
        (RegistryAuth::Htpasswd { user, password }, _) => {
            let file = dir.join("htpasswd");
            write_htpasswd(&file, user, password);
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: modelcar-test\n    path: {}\n",
                file.display()
            ));
        }
        (RegistryAuth::Token { .. }, Some(server)) => yaml.push_str(&token_auth_yaml(server)),
        (RegistryAuth::Token { .. }, None) => panic!("token auth needs a running token server"),
    }
    yaml
}

/// How a registry serves TLS.
struct ServingTls<'a> {
    pair: CertPair,
    client_ca: Option<&'a TestCa>,
    /// Serve the token service over TLS too, with a certificate this CA issues.
    token_ca: Option<&'a TestCa>,
}

/// The `http.tls` lines (nested under `http:`): the server's
/// certificate and key, and the CA its clients' certificates must chain to, written into `dir`.
fn tls_yaml(dir: &Path, tls: ServingTls<'_>) -> String {
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    fs::write(&cert, tls.pair.cert_pem).expect("cannot write the server certificate");
    fs::write(&key, tls.pair.key_pem).expect("cannot write the server key");
    let mut yaml = format!(
        "  tls:\n    certificate: {}\n    key: {}\n",
        cert.display(),
        key.display()
    );
    if let Some(client_ca) = tls.client_ca {
        let path = client_ca.write_ca(dir, "client-ca.crt");
        yaml.push_str(&format!("    clientcas:\n      - {}\n", path.display()));
    }
    yaml
}

/// The registry's `auth.token` section: challenge clients with `server`'s realm and trust
/// only tokens that `server` signed for our service.
fn token_auth_yaml(server: &TokenServer) -> String {
    format!(
        "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    \
         rootcertbundle: {}\n",
        server.realm(),
        token_server::SERVICE,
        token_server::ISSUER,
        server.cert_path().display()
    )
}

fn write_htpasswd(file: &Path, user: &str, password: &str) {
    let out = Command::new(require_tool("htpasswd"))
        .args(["-Bbn", user, password])
        .output()
        .expect("cannot run htpasswd");
    assert!(
        out.status.success(),
        "htpasswd failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::write(file, out.stdout).expect("cannot write htpasswd file");
}

/// Runs `docker-registry serve` on the config in `dir`, appending to its log there.
fn spawn(bin: &Path, dir: &Path) -> Child {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("registry.log"))
        .expect("cannot open registry log");
    let mut command = Command::new(bin);
    command
        .arg("serve")
        .arg(dir.join("config.yml"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("cannot dup log"))
        .stderr(log);
    die_with_parent(&mut command);
    command.spawn().expect("cannot start docker-registry")
}

/// The registry gets SIGKILL when the thread that spawned it ends.
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)
        });
    }
}
