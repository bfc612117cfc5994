//! A registry for tests, serving the push side of the OCI distribution spec the way a chosen
//! real registry does ([`Personality`]): distribution 3.x by default, or Quay, GHCR, Google
//! Artifact Registry, ECR or Artifactory HA, each with its upload quirks copied from its
//! source or issue tracker (see `personality`). The real distribution that installs here is
//! Debian's 2.8.2 ([`crate::Registry`]), which drops an upload cut off mid-request; 3.x keeps
//! it. Storage is on disk and upload records outlive a restart, as with a real registry.
//!
//! It can also fail commits on demand, the way Quay did under load: the upload is deleted and
//! the connection closed without an answer ([`SpecRegistry::fail_next_commits`]).

mod personality;
mod settings;
mod table;
mod uploads;
mod wire;

pub use personality::Personality;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use tempfile::TempDir;

use crate::http_server::Request;
use settings::Settings;
use uploads::Uploads;
use wire::{digest_of, reply, reply_head, Answer};

pub struct SpecRegistry {
    port: u16,
    dir: TempDir,
    running: Option<Running>,
    settings: Arc<Settings>,
}

struct Running {
    stop: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<TcpStream>>>,
    accept: thread::JoinHandle<()>,
}

impl SpecRegistry {
    /// One that behaves as distribution 3.x.
    pub fn start() -> Self {
        Self::start_as(Personality::Distribution3)
    }

    /// One with the upload rules of `personality`.
    pub fn start_as(personality: Personality) -> Self {
        Self::start_with(Settings {
            personality: Some(personality),
            ..Settings::default()
        })
    }

    /// One with the upload rules of `personality` that knows itself as `localhost`: every
    /// upload Location is on `localhost:PORT` (PORT: the one the client reached), while
    /// [`Self::host`] reaches it at 127.0.0.1.
    pub fn start_known_as_localhost(personality: Personality) -> Self {
        Self::start_with(Settings {
            personality: Some(personality),
            known_as_localhost: true,
            ..Settings::default()
        })
    }

    /// The next `n` commits (PUT `?digest=`) delete their upload and close the connection
    /// without an answer, as Quay did on a database error with two layers in parallel.
    pub fn fail_next_commits(&self, n: u32) {
        self.settings.commit_failures.store(n, Ordering::SeqCst);
    }

    /// The next `n` commits delete their upload and answer 500, as distribution does when a
    /// commit fails in its storage (`PutBlobUploadComplete` cancels the upload).
    pub fn fail_next_commits_with_500(&self, n: u32) {
        self.settings.commit_500s.store(n, Ordering::SeqCst);
    }

    pub fn personality(&self) -> Personality {
        self.settings
            .personality
            .unwrap_or(Personality::Distribution3)
    }

    /// One that asks for chunks of at least `bytes` (`OCI-Chunk-Min-Length`).
    pub fn start_with_min_chunk(bytes: u64) -> Self {
        Self::start_with(Settings {
            personality: Some(Personality::Distribution3),
            min_chunk: Some(bytes),
            ..Settings::default()
        })
    }

    /// The body length of every PATCH received so far.
    pub fn patch_sizes(&self) -> Vec<u64> {
        self.settings.patches.lock().unwrap().clone()
    }

    fn start_with(settings: Settings) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("modelcar-spec-registry-")
            .tempdir()
            .expect("cannot make the spec registry's storage dir");
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind the spec registry");
        let port = listener.local_addr().expect("address").port();
        settings.port.store(port.into(), Ordering::SeqCst);
        let settings = Arc::new(settings);
        let running = serve(listener, dir.path().to_path_buf(), settings.clone());
        Self {
            port,
            dir,
            running: Some(running),
            settings,
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops at once, as a killed registry does: open connections are cut mid-request.
    pub fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect(("127.0.0.1", self.port));
            let _ = running.accept.join();
            for connection in running.connections.lock().unwrap().drain(..) {
                let _ = connection.shutdown(Shutdown::Both);
            }
        }
    }

    /// Serves again on the same port and storage.
    pub fn start_again(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("rebind the port");
        let root = self.dir.path().to_path_buf();
        self.running = Some(serve(listener, root, self.settings.clone()));
    }
}

impl Drop for SpecRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(listener: TcpListener, root: PathBuf, settings: Arc<Settings>) -> Running {
    let stop = Arc::new(AtomicBool::new(false));
    let connections = Arc::new(Mutex::new(Vec::new()));
    let uuids = Arc::new(AtomicU64::new(0));
    let requests = Arc::new(AtomicU64::new(0));
    let accept = {
        let (stop, connections) = (stop.clone(), connections.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                if let Ok(clone) = stream.try_clone() {
                    connections.lock().unwrap().push(clone);
                }
                let store = Store {
                    root: root.clone(),
                    uuids: uuids.clone(),
                    requests: requests.clone(),
                    settings: settings.clone(),
                };
                thread::spawn(move || {
                    let _ = connection(stream, &store);
                });
            }
        })
    };
    Running {
        stop,
        connections,
        accept,
    }
}

/// Keep-alive: requests one after another until the client closes.
fn connection(stream: TcpStream, store: &Store) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        // A TLS handshake (skopeo tries https first): answered as Go's plain-HTTP server does,
        // so the client sees "server gave HTTP response to HTTPS client" and falls back to
        // http at once instead of after its handshake timeout.
        if reader.fill_buf()?.first() == Some(&0x16) {
            writer.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")?;
            return Ok(());
        }
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let request = Request::from_head(head.trim_end());
        let length: u64 = request
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = (&mut reader).take(length);
        let Answer::Reply(reply) = store.handle(&request, &mut body) else {
            let _ = writer.shutdown(Shutdown::Both);
            return Ok(());
        };
        // Whatever the handler left unread is drained, so the next request starts clean.
        std::io::copy(&mut body, &mut std::io::sink())?;
        writer.write_all(reply.as_bytes())?;
    }
}

struct Store {
    root: PathBuf,
    uuids: Arc<AtomicU64>,
    /// Requests so far: an HA pair's load balancer sends each to the next node.
    requests: Arc<AtomicU64>,
    settings: Arc<Settings>,
}

impl Store {
    fn handle(&self, request: &Request, body: &mut dyn Read) -> Answer {
        let path = request.path.as_str();
        let method = request.method.as_str();
        let node = self.requests.fetch_add(1, Ordering::SeqCst) % 2;
        if path == "/v2/" {
            return Answer::Reply(reply(200, &[], ""));
        }
        let Some(rest) = path.strip_prefix("/v2/") else {
            return Answer::Reply(reply(404, &[], ""));
        };
        if let Some((name, uuid)) = rest.split_once("/blobs/uploads/") {
            let uploads = Uploads {
                root: self.root.clone(),
                table: &self.settings.uploads,
                settings: &self.settings,
                personality: self
                    .settings
                    .personality
                    .unwrap_or(Personality::Distribution3),
                node,
                host: request
                    .header("host")
                    .map_or_else(|| self.settings.host(), str::to_string),
            };
            return match (method, uuid) {
                ("POST", "") => {
                    let uuid = format!(
                        "{}-{}",
                        std::process::id(),
                        self.uuids.fetch_add(1, Ordering::SeqCst)
                    );
                    Answer::Reply(uploads.start(name, &uuid))
                }
                ("PATCH", _) => uploads.patch(name, uuid, request, body),
                ("GET", _) => Answer::Reply(uploads.status(name, uuid)),
                ("PUT", _) => uploads.finish(uuid, request, body),
                ("DELETE", _) => {
                    uploads.forget(uuid);
                    Answer::Reply(reply(204, &[], ""))
                }
                _ => Answer::Reply(reply(405, &[], "")),
            };
        }
        Answer::Reply(if let Some((_, digest)) = rest.split_once("/blobs/") {
            match fs::metadata(self.blob(digest)) {
                Ok(m) if method == "HEAD" => reply_head(200, m.len(), digest),
                _ => reply(404, &[], ""),
            }
        } else if let Some((name, reference)) = rest.split_once("/manifests/") {
            match method {
                "PUT" => self.put_manifest(name, reference, request, body),
                "GET" | "HEAD" => self.get_manifest(name, reference, method),
                _ => reply(405, &[], ""),
            }
        } else {
            reply(404, &[], "")
        })
    }

    fn blob(&self, digest: &str) -> PathBuf {
        self.root.join("blobs").join(digest.replace(':', "-"))
    }

    fn put_manifest(
        &self,
        name: &str,
        reference: &str,
        request: &Request,
        body: &mut dyn Read,
    ) -> String {
        let mut bytes = Vec::new();
        body.read_to_end(&mut bytes).unwrap();
        let digest = digest_of(&bytes);
        let media_type = request.header("content-type").unwrap_or_default();
        let dir = self.root.join("manifests").join(name);
        fs::create_dir_all(&dir).unwrap();
        for key in [reference, digest.as_str()] {
            fs::write(dir.join(key.replace(':', "-")), &bytes).unwrap();
            fs::write(
                dir.join(format!("{}.type", key.replace(':', "-"))),
                media_type,
            )
            .unwrap();
        }
        let location = format!("/v2/{name}/manifests/{digest}");
        reply(
            201,
            &[
                ("Location".into(), location),
                ("Docker-Content-Digest".into(), digest),
            ],
            "",
        )
    }

    fn get_manifest(&self, name: &str, reference: &str, method: &str) -> String {
        let dir = self.root.join("manifests").join(name);
        let key = reference.replace(':', "-");
        let (Ok(bytes), Ok(media_type)) = (
            fs::read_to_string(dir.join(&key)),
            fs::read_to_string(dir.join(format!("{key}.type"))),
        ) else {
            return reply(404, &[], r#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#);
        };
        let digest = digest_of(bytes.as_bytes());
        let headers = [
            ("Content-Type".to_string(), media_type),
            ("Docker-Content-Digest".to_string(), digest.clone()),
        ];
        match method {
            "HEAD" => reply_head(200, bytes.len() as u64, &digest),
            _ => reply(200, &headers, &bytes),
        }
    }
}
