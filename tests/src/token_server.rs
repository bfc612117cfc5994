//! A bearer-token service for the registry, as in the distribution token auth spec
//! (<https://distribution.github.io/distribution/spec/auth/token/> and `.../jwt/`).
//!
//! It lets the tests drive a client through real `WWW-Authenticate: Bearer` challenges with
//! tokens that expire after a few seconds, so token refresh can be proven (`tokens_issued`).
//! Std-only HTTP on 127.0.0.1 (one thread per connection, `Connection: close`); the RSA key,
//! the self-signed certificate and every RS256 signature come from the `openssl` tool, so the
//! harness needs no crypto crate.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::prelude::{Engine, BASE64_STANDARD, BASE64_URL_SAFE_NO_PAD};
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::http_server::{HttpServer, Reply, Request};
use crate::tls::TestCa;
use crate::tls_front::TlsFront;
use crate::tools::require_tool;

/// The `service` the registry announces in its challenges; tokens carry it as `aud`.
pub const SERVICE: &str = "modelcar-test-registry";
/// The `iss` of every token; the registry trusts only this issuer.
pub const ISSUER: &str = "modelcar-test-issuer";

/// Clock-skew allowance that registry 2.8 adds to `exp` (and subtracts from `nbf`) when it
/// checks a token (`token.Leeway`, 60 s). The server writes `exp` this much earlier, so that
/// the registry really refuses a token `ttl_secs` after it was issued.
pub const REGISTRY_LEEWAY_SECS: u64 = 60;

/// The token server of one test: stopped (and its key material deleted) when dropped.
///
/// Deliberately off-spec in two ways, to make refresh testable: `expires_in` may be under the
/// 60 s the spec asks for, and the JWT `exp` sits [`REGISTRY_LEEWAY_SECS`] before the real
/// expiry (clients must treat tokens as opaque and go by `expires_in`).
pub struct TokenServer {
    server: HttpServer,
    /// TLS in front of `server`, when the realm is https.
    front: Option<TlsFront>,
    shared: Arc<Shared>,
    /// Holds `key.pem` and `cert.pem`; deleted on drop.
    _dir: TempDir,
}

/// What the connection threads need: the policy and the signing key.
struct Shared {
    user: String,
    /// Passwords accepted now: more than one while a rotated token overlaps the old one.
    passwords: Mutex<Vec<String>>,
    ttl_secs: u64,
    openssl: PathBuf,
    key: PathBuf,
    cert: PathBuf,
    /// Base64 (standard, padded) DER of the signing certificate, for the JWT `x5c` header.
    cert_der_b64: String,
    issued: AtomicUsize,
    /// When set, the `expires_in` announced instead of the real ttl.
    advertised_secs: AtomicU64,
    /// Answer as Quay does (see [`TokenServer::answer_as_quay`]).
    quay: AtomicBool,
    /// Quay's failed logins in a row, and when the last one was.
    failed_logins: Mutex<(u32, Option<Instant>)>,
    requests: AtomicUsize,
}

impl TokenServer {
    /// Starts a server on a free localhost port that issues tokens to `user`/`password` (HTTP
    /// basic auth) valid for `ttl_secs` seconds.
    pub fn start(user: &str, password: &str, ttl_secs: u64) -> Self {
        Self::start_serving(user, password, ttl_secs, None)
    }

    /// [`Self::start`] behind TLS with a certificate `ca` issued: an `https://` realm, as
    /// every token service users meet has (Quay's, Docker Hub's `auth.docker.io`).
    pub fn start_tls(user: &str, password: &str, ttl_secs: u64, ca: &TestCa) -> Self {
        Self::start_serving(user, password, ttl_secs, Some(ca))
    }

    fn start_serving(user: &str, password: &str, ttl_secs: u64, tls: Option<&TestCa>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("modelcar-token-")
            .tempdir()
            .expect("cannot make the token server's temp dir");
        let openssl = require_tool("openssl");
        let (key, cert) = make_signing_cert(&openssl, dir.path());
        let shared = Arc::new(Shared {
            user: user.into(),
            passwords: Mutex::new(vec![password.into()]),
            ttl_secs,
            openssl,
            cert_der_b64: cert_der_base64(&cert),
            key,
            cert,
            issued: AtomicUsize::new(0),
            advertised_secs: AtomicU64::new(0),
            quay: AtomicBool::new(false),
            failed_logins: Mutex::new((0, None)),
            requests: AtomicUsize::new(0),
        });
        let handler = {
            let shared = Arc::clone(&shared);
            Arc::new(move |request: &Request| route(request, &shared))
        };
        let server = HttpServer::start("token server", handler, Reply::text);
        let front = tls.map(|ca| TlsFront::start(server.addr(), ca.server_config()));
        Self {
            server,
            front,
            shared,
            _dir: dir,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.server.addr().to_string()
    }

    pub fn port(&self) -> u16 {
        self.server.addr().port()
    }

    /// The token endpoint, as given to the registry (`auth.token.realm`).
    pub fn realm(&self) -> String {
        match &self.front {
            Some(front) => format!("https://127.0.0.1:{}/token", front.port()),
            None => format!("http://{}/token", self.server.addr()),
        }
    }

    pub fn service(&self) -> &'static str {
        SERVICE
    }

    pub fn issuer(&self) -> &'static str {
        ISSUER
    }

    /// The self-signed certificate whose key signs the tokens (`auth.token.rootcertbundle`).
    pub fn cert_path(&self) -> &Path {
        &self.shared.cert
    }

    /// From now on, accept exactly these passwords: a token rotation is `[old, new]` for the
    /// overlap, then `[new]`, as Kubernetes rotates a projected service-account token.
    pub fn accept_passwords(&self, passwords: &[&str]) {
        let mut accepted = self.shared.passwords.lock().expect("password list lock");
        *accepted = passwords.iter().map(|p| p.to_string()).collect();
    }

    /// From now on, announce `secs` as every token's `expires_in` while the registry still
    /// refuses it after the real ttl: a registry that revokes tokens early. Clients then learn
    /// of the expiry only from a 401, in the middle of whatever they were sending.
    pub fn advertise_expires_in(&self, secs: u64) {
        self.shared.advertised_secs.store(secs, Ordering::SeqCst);
    }

    /// From now on, answer as Quay does (`endpoints/v2/v2auth.py`, `data/model/user.py`):
    /// the token alone (`{"token": ...}`, no `expires_in`), and after a failed login every
    /// request within an exponential backoff (`util/backoff.py`: 0.5 s, 1.5 s, 3.5 s, ... after
    /// 1, 2, 3 failed logins in a row) gets 429 with `Retry-After`.
    pub fn answer_as_quay(&self) {
        self.shared.quay.store(true, Ordering::SeqCst);
    }

    /// Token requests received so far, answered or not.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    pub fn ttl_secs(&self) -> u64 {
        self.shared.ttl_secs
    }

    /// How many tokens the server has handed out so far.
    pub fn tokens_issued(&self) -> usize {
        self.shared.issued.load(Ordering::SeqCst)
    }
}

/// Makes `key.pem` (RSA 2048) and a self-signed `cert.pem` for it in `dir`.
fn make_signing_cert(openssl: &Path, dir: &Path) -> (PathBuf, PathBuf) {
    let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
    let out = Command::new(openssl)
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=modelcar-test-token", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run openssl req");
    assert!(
        out.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (key, cert)
}

/// The certificate's DER in standard base64: the body of its PEM, checked and re-encoded.
fn cert_der_base64(cert: &Path) -> String {
    let pem = fs::read_to_string(cert).expect("cannot read the token certificate");
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END CERTIFICATE-----"))
        .collect();
    let der = BASE64_STANDARD
        .decode(body.trim())
        .expect("token certificate PEM is not base64");
    BASE64_STANDARD.encode(der)
}

fn route(request: &Request, shared: &Shared) -> Reply {
    if request.path != "/token" {
        return Reply::text(404, "token server: only /token is served");
    }
    if request.method != "GET" {
        return Reply::text(405, "token server: only GET is served");
    }
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let quay = shared.quay.load(Ordering::SeqCst);
    if quay {
        if let Some(locked) = shared.quay_lockout() {
            return locked;
        }
    }
    if !shared.accepts(basic_credentials(request).as_ref()) {
        if quay {
            let mut failed = shared.failed_logins.lock().expect("failed logins lock");
            *failed = (failed.0 + 1, Some(Instant::now()));
        }
        return Reply::text(401, "token server: wrong or no credentials")
            .with_header("WWW-Authenticate", "Basic realm=\"modelcar-test-token\"");
    }
    *shared.failed_logins.lock().expect("failed logins lock") = (0, None);
    issue(&TokenRequest::of(request), shared)
}

/// The `user:password` of an `Authorization: Basic` header, if any.
fn basic_credentials(request: &Request) -> Option<(String, String)> {
    let (scheme, encoded) = request.header("authorization")?.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(BASE64_STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.into(), password.into()))
}

/// The query's `service` and its `scope`s (the parameter may repeat, and one value may hold
/// several space-separated scopes).
struct TokenRequest {
    service: Option<String>,
    scopes: Vec<String>,
}

impl TokenRequest {
    fn of(request: &Request) -> Self {
        Self {
            service: request.param("service").map(str::to_owned),
            scopes: request
                .params("scope")
                .flat_map(str::split_whitespace)
                .map(str::to_owned)
                .collect(),
        }
    }
}

/// `type:name:action,action` into a JWT `access` entry granting every requested action.
/// The name may itself hold a colon (`registry:catalog:*` has none, a tagged name would).
fn access_entry(scope: &str) -> Option<Value> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let actions: BTreeSet<&str> = actions.split(',').filter(|a| !a.is_empty()).collect();
    Some(json!({"type": kind, "name": name, "actions": actions}))
}

fn issue(request: &TokenRequest, shared: &Shared) -> Reply {
    if request.service.as_deref() != Some(SERVICE) {
        return Reply::text(400, &format!("token server: service must be {SERVICE:?}"));
    }
    let access: Option<Vec<Value>> = request.scopes.iter().map(|s| access_entry(s)).collect();
    let Some(access) = access else {
        return Reply::text(400, "token server: malformed scope");
    };
    let now = SystemTime::now();
    let token = match shared.sign_token(&access, now) {
        Ok(token) => token,
        Err(message) => {
            eprintln!("token server: {message}");
            return Reply::text(500, &message);
        }
    };
    shared.issued.fetch_add(1, Ordering::SeqCst);
    if shared.quay.load(Ordering::SeqCst) {
        return Reply::json(200, &json!({ "token": token }));
    }
    Reply::json(
        200,
        &json!({
        "token": token,
        "access_token": token,
        "expires_in": match shared.advertised_secs.load(Ordering::SeqCst) {
            0 => shared.ttl_secs,
            advertised => advertised,
        },
            "issued_at": rfc3339_utc(now),
        }),
    )
}

impl Shared {
    /// Quay's 429 while within the backoff of the last failed login (`verify_user` checks it
    /// before the password; a wrong password after it lengthens the next one).
    fn quay_lockout(&self) -> Option<Reply> {
        let (attempts, last) = *self.failed_logins.lock().expect("failed logins lock");
        let backoff = Duration::from_millis(500 * ((1u64 << attempts.min(20)) - 1));
        let wait = (last? + backoff).checked_duration_since(Instant::now())?;
        let retry_after = wait.as_secs_f64().ceil().max(1.0) as u64;
        Some(
            Reply::text(
                429,
                "Too many login attempts. \nPlease reset your Quay password and try again.",
            )
            .with_header("Retry-After", &retry_after.to_string()),
        )
    }

    fn accepts(&self, credentials: Option<&(String, String)>) -> bool {
        let accepted = self.passwords.lock().expect("password list lock");
        credentials
            .is_some_and(|(user, password)| *user == self.user && accepted.contains(password))
    }

    /// A signed JWT for `access`, as registry 2.8 verifies it: `x5c` chains to the
    /// `rootcertbundle`, `iss`/`aud` match its config, and `exp` (plus its leeway) is
    /// `ttl_secs` from now, rounded up to a whole second.
    fn sign_token(&self, access: &[Value], now: SystemTime) -> Result<String, String> {
        let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let iat = since_epoch.as_secs();
        let expires = since_epoch.as_secs_f64().ceil() as u64 + self.ttl_secs;
        let jti = format!("modelcar-{}-{}", iat, since_epoch.subsec_nanos());
        let header = json!({"typ": "JWT", "alg": "RS256", "x5c": [self.cert_der_b64]});
        let claims = json!({
            "iss": ISSUER,
            "sub": self.user,
            "aud": SERVICE,
            "exp": expires.saturating_sub(REGISTRY_LEEWAY_SECS),
            "nbf": iat,
            "iat": iat,
            "jti": jti,
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            BASE64_URL_SAFE_NO_PAD.encode(header.to_string()),
            BASE64_URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = rs256_sign(&self.openssl, &self.key, signing_input.as_bytes())?;
        Ok(format!(
            "{signing_input}.{}",
            BASE64_URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

/// RSASSA-PKCS1-v1_5 with SHA-256 (JWS `RS256`) of `input`, by `openssl dgst -sign`.
fn rs256_sign(openssl: &Path, key: &Path, input: &[u8]) -> Result<Vec<u8>, String> {
    let mut child = Command::new(openssl)
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run openssl dgst: {e}"))?;
    // The input is a few KB at most: it fits the pipe, so writing before reading cannot block.
    child
        .stdin
        .take()
        .ok_or("openssl dgst has no stdin")?
        .write_all(input)
        .map_err(|e| format!("cannot feed openssl dgst: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("openssl dgst did not finish: {e}"))?;
    if !out.status.success() || out.stdout.is_empty() {
        return Err(format!(
            "openssl dgst failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out.stdout)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for `time` (UTC).
fn rfc3339_utc(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_are_rfc3339_utc() {
        let at = |secs| rfc3339_utc(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_709_251_199), "2024-02-29T23:59:59Z");
    }

    #[test]
    fn queries_decode_repeated_and_escaped_scopes() {
        let request = TokenRequest::of(&Request::from_head(
            "GET /token?service=modelcar-test-registry&scope=repository%3Aa%2Fb%3Apull%2Cpush\
             &scope=repository:c/d:pull+registry:catalog:* HTTP/1.1",
        ));
        assert_eq!(request.service.as_deref(), Some(SERVICE));
        assert_eq!(
            request.scopes,
            [
                "repository:a/b:pull,push",
                "repository:c/d:pull",
                "registry:catalog:*"
            ]
        );
    }

    #[test]
    fn scopes_grant_every_requested_action() {
        assert_eq!(
            access_entry("repository:a/b:push,pull").unwrap(),
            json!({"type": "repository", "name": "a/b", "actions": ["pull", "push"]})
        );
        assert_eq!(access_entry("nonsense"), None);
    }

    #[test]
    fn basic_credentials_are_read_case_insensitively() {
        let head = "GET /token HTTP/1.1\r\nauthorization: basic YWxpY2U6czNjOnJldA==\r\n\r\n";
        assert_eq!(
            basic_credentials(&Request::from_head(head)),
            Some(("alice".into(), "s3c:ret".into()))
        );
        assert_eq!(
            basic_credentials(&Request::from_head("GET / HTTP/1.1\r\n\r\n")),
            None
        );
    }
}
