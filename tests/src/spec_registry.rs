//! A registry that serves the push side of the OCI distribution spec (v1.1, "Pushing blobs"
//! and "Pushing manifests") the way the spec and CNCF distribution 3.x define resuming:
//! a PATCH cut off mid-body keeps the bytes that arrived, and `GET` on the upload URL reports
//! them (`Range: 0-<last>`) with a Location to go on from.
//!
//! Why not only the real one: the distribution registry that installs here (Debian's 2.8.2)
//! cancels an upload whose file holds more bytes than its last `_state` says, which is what a
//! PATCH cut off mid-body leaves; distribution fixed that in 3.0 (distribution PR #3755), and
//! 3.x cannot be installed here. Storage is on disk, so a restart keeps upload sessions.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::http_server::Request;

pub struct SpecRegistry {
    port: u16,
    dir: TempDir,
    running: Option<Running>,
    settings: Arc<Settings>,
}

/// What a registry announces, and what it saw.
#[derive(Default)]
struct Settings {
    /// Sent as `OCI-Chunk-Min-Length` when a session opens.
    min_chunk: Option<u64>,
    /// The body length of every PATCH, in arrival order.
    patches: Mutex<Vec<u64>>,
}

struct Running {
    stop: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<TcpStream>>>,
    accept: thread::JoinHandle<()>,
}

impl SpecRegistry {
    pub fn start() -> Self {
        Self::start_with(Settings::default())
    }

    /// One that asks for chunks of at least `bytes` (`OCI-Chunk-Min-Length`).
    pub fn start_with_min_chunk(bytes: u64) -> Self {
        Self::start_with(Settings {
            min_chunk: Some(bytes),
            ..Settings::default()
        })
    }

    /// The body length of every PATCH received so far.
    pub fn patch_sizes(&self) -> Vec<u64> {
        self.settings.patches.lock().unwrap().clone()
    }

    fn start_with(settings: Settings) -> Self {
        let settings = Arc::new(settings);
        let dir = tempfile::Builder::new()
            .prefix("modelcar-spec-registry-")
            .tempdir()
            .expect("cannot make the spec registry's storage dir");
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind the spec registry");
        let port = listener.local_addr().expect("address").port();
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
        let reply = store.handle(&request, &mut body);
        // Whatever the handler left unread is drained, so the next request starts clean.
        std::io::copy(&mut body, &mut std::io::sink())?;
        writer.write_all(reply.as_bytes())?;
    }
}

struct Store {
    root: PathBuf,
    uuids: Arc<AtomicU64>,
    settings: Arc<Settings>,
}

impl Store {
    fn handle(&self, request: &Request, body: &mut dyn Read) -> String {
        let path = request.path.as_str();
        let method = request.method.as_str();
        if path == "/v2/" {
            return reply(200, &[], "");
        }
        let Some(rest) = path.strip_prefix("/v2/") else {
            return reply(404, &[], "");
        };
        if let Some((name, uuid)) = rest.split_once("/blobs/uploads/") {
            return match (method, uuid) {
                ("POST", "") => self.start_upload(name),
                ("PATCH", _) => self.patch(name, uuid, request, body),
                ("GET", _) => self.status(name, uuid),
                ("PUT", _) => self.finish(name, uuid, request, body),
                _ => reply(405, &[], ""),
            };
        }
        if let Some((_, digest)) = rest.split_once("/blobs/") {
            return match fs::metadata(self.blob(digest)) {
                Ok(m) if method == "HEAD" => reply_head(200, m.len(), digest),
                _ => reply(404, &[], ""),
            };
        }
        if let Some((name, reference)) = rest.split_once("/manifests/") {
            return match method {
                "PUT" => self.put_manifest(name, reference, request, body),
                "GET" | "HEAD" => self.get_manifest(name, reference, method),
                _ => reply(405, &[], ""),
            };
        }
        reply(404, &[], "")
    }

    fn upload(&self, uuid: &str) -> PathBuf {
        self.root.join("uploads").join(uuid)
    }

    fn blob(&self, digest: &str) -> PathBuf {
        self.root.join("blobs").join(digest.replace(':', "-"))
    }

    fn start_upload(&self, name: &str) -> String {
        let uuid = format!(
            "{}-{}",
            std::process::id(),
            self.uuids.fetch_add(1, Ordering::SeqCst)
        );
        let path = self.upload(&uuid);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"").unwrap();
        let reply = upload_reply(202, name, &uuid, 0);
        match self.settings.min_chunk {
            // The header goes in before the blank line that ends the head.
            Some(min) => reply.replacen(
                "\r\n\r\n",
                &format!("\r\nOCI-Chunk-Min-Length: {min}\r\n\r\n"),
                1,
            ),
            None => reply,
        }
    }

    /// Appends the body as it arrives: a body cut short leaves what came, as in distribution.
    fn patch(&self, name: &str, uuid: &str, request: &Request, body: &mut dyn Read) -> String {
        let path = self.upload(uuid);
        let Ok(held) = fs::metadata(&path).map(|m| m.len()) else {
            return reply(404, &[], r#"{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN"}]}"#);
        };
        let start = request
            .header("content-range")
            .and_then(|r| r.split_once('-'))
            .and_then(|(s, _)| s.parse::<u64>().ok());
        if start.is_some_and(|s| s != held) {
            return upload_reply(416, name, uuid, held);
        }
        let mut file = fs::OpenOptions::new().append(true).open(&path).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut received = 0;
        loop {
            match body.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    file.write_all(&buf[..n]).unwrap();
                    received += n as u64;
                }
            }
        }
        self.settings.patches.lock().unwrap().push(received);
        let held = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        upload_reply(202, name, uuid, held)
    }

    fn status(&self, name: &str, uuid: &str) -> String {
        match fs::metadata(self.upload(uuid)) {
            Ok(m) => upload_reply(204, name, uuid, m.len()),
            Err(_) => reply(404, &[], r#"{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN"}]}"#),
        }
    }

    fn finish(&self, name: &str, uuid: &str, request: &Request, body: &mut dyn Read) -> String {
        let path = self.upload(uuid);
        let Ok(mut file) = fs::OpenOptions::new().append(true).open(&path) else {
            return reply(404, &[], r#"{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN"}]}"#);
        };
        std::io::copy(body, &mut file).unwrap();
        let digest = request.param("digest").unwrap_or_default().to_string();
        if sha256_of(&path) != digest {
            let _ = fs::remove_file(&path);
            return reply(400, &[], r#"{"errors":[{"code":"DIGEST_INVALID"}]}"#);
        }
        fs::create_dir_all(self.root.join("blobs")).unwrap();
        fs::rename(&path, self.blob(&digest)).unwrap();
        let location = format!("/v2/{name}/blobs/{digest}");
        reply(
            201,
            &[("Location", &location), ("Docker-Content-Digest", &digest)],
            "",
        )
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
            &[("Location", &location), ("Docker-Content-Digest", &digest)],
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
            ("Content-Type", media_type.as_str()),
            ("Docker-Content-Digest", digest.as_str()),
        ];
        match method {
            "HEAD" => reply_head(200, bytes.len() as u64, &digest),
            _ => reply(200, &headers, &bytes),
        }
    }
}

fn sha256_of(path: &Path) -> String {
    let mut file = fs::File::open(path).unwrap();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buf).unwrap() {
            0 => break,
            n => hasher.update(&buf[..n]),
        }
    }
    hex_digest(&hasher.finalize())
}

fn digest_of(bytes: &[u8]) -> String {
    hex_digest(&Sha256::digest(bytes))
}

fn hex_digest(hash: &[u8]) -> String {
    format!("sha256:{}", crate::hex(hash))
}

/// An upload's state as the spec reports it: where to go on, and the bytes held.
fn upload_reply(status: u16, name: &str, uuid: &str, held: u64) -> String {
    let location = format!("/v2/{name}/blobs/uploads/{uuid}");
    let range = format!("0-{}", held.saturating_sub(1));
    reply(
        status,
        &[
            ("Location", &location),
            ("Range", &range),
            ("Docker-Upload-UUID", uuid),
        ],
        "",
    )
}

fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> String {
    let mut text = format!(
        "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\n",
        crate::http_server::reason(status),
        body.len()
    );
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    text
}

/// A HEAD reply: the length of what a GET would send, and no body.
fn reply_head(status: u16, len: u64, digest: &str) -> String {
    format!(
        "HTTP/1.1 {status} {}\r\nContent-Length: {len}\r\nDocker-Content-Digest: {digest}\r\n\r\n",
        crate::http_server::reason(status)
    )
}
