//! A Hugging Face Hub on localhost, for the tests of `fetch-model`: the model info
//! (`/api/models/{repo}/revision/{rev}`), the paged tree (`/api/models/{repo}/tree/{rev}`),
//! `/{repo}/resolve/{rev}/{path}` with LFS files redirected to a CDN path, ranged downloads,
//! and the Hub's errors (`X-Error-Code` and a JSON `error`).
//!
//! Why not the real Hub: tests reach no network, and they need to cut a download mid-body and
//! count the bytes sent. Keep-alive and binary-safe streaming are as in `spec_registry`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use serde_json::{json, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::http_server::{reason, Request};

/// Tree entries per page unless a test sets another: small, so tests of a few dozen files page.
pub const TREE_PAGE_SIZE: usize = 50;
/// Files at least this large are stored in LFS, as `git lfs` setups on the Hub do.
const LFS_THRESHOLD: usize = 1024;
/// Weights are always LFS on the Hub (its default `.gitattributes`), whatever their size.
const LFS_EXTENSIONS: [&str; 4] = [".safetensors", ".bin", ".gguf", ".pth"];
/// Bodies go out in writes of this size, so a cut can fall mid-body.
const WRITE_CHUNK: usize = 64 * 1024;
const LAST_MODIFIED: &str = "2026-01-01T00:00:00.000Z";

/// Paths and bytes.
type Files = Vec<(String, Vec<u8>)>;

/// A model repo to serve: its `main` branch, and any other branches or tags.
pub struct HubRepo {
    id: String,
    gated: bool,
    /// Branch or tag names with their files; the first is `main`.
    revisions: Vec<(String, Files)>,
}

impl HubRepo {
    /// `id` is `org/name`; the repo starts with an empty `main`.
    pub fn new(id: &str) -> Self {
        assert!(
            id.matches('/').count() == 1,
            "a Hub repo id is org/name: {id}"
        );
        Self {
            id: id.to_owned(),
            gated: false,
            revisions: vec![("main".to_owned(), Vec::new())],
        }
    }

    /// A file on `main`.
    pub fn file(mut self, path: &str, bytes: Vec<u8>) -> Self {
        self.revisions[0].1.push((path.to_owned(), bytes));
        self
    }

    /// Only an accepted token may read it.
    pub fn gated(mut self) -> Self {
        self.gated = true;
        self
    }

    /// Another branch or tag, with its own files and so its own commit sha.
    pub fn revision(mut self, name: &str, files: Files) -> Self {
        self.revisions.push((name.to_owned(), files));
        self
    }
}

/// A file as the Hub describes it.
struct HubFile {
    path: String,
    bytes: Arc<Vec<u8>>,
    /// Git blob sha1: of the bytes, or for an LFS file of the pointer git holds in its place.
    oid: String,
    /// The sha256 of the bytes, for an LFS file.
    lfs: Option<String>,
}

impl HubFile {
    fn new(path: String, bytes: Vec<u8>) -> Self {
        let is_lfs =
            bytes.len() >= LFS_THRESHOLD || LFS_EXTENSIONS.iter().any(|e| path.ends_with(e));
        let lfs = is_lfs.then(|| hex(&Sha256::digest(&bytes)));
        let oid = match &lfs {
            Some(sha) => git_blob_oid(lfs_pointer(sha, bytes.len()).as_bytes()),
            None => git_blob_oid(&bytes),
        };
        Self {
            path,
            bytes: Arc::new(bytes),
            oid,
            lfs,
        }
    }

    fn entry(&self) -> Value {
        let size = self.bytes.len();
        let mut entry = json!({"type": "file", "oid": self.oid, "size": size, "path": self.path});
        if let Some(sha) = &self.lfs {
            let pointer_size = lfs_pointer(sha, size).len();
            entry["lfs"] = json!({"oid": sha, "size": size, "pointerSize": pointer_size});
        }
        entry
    }
}

struct Revision {
    name: String,
    sha: String,
    /// Sorted by path, as the Hub lists them.
    files: Vec<HubFile>,
}

struct Repo {
    id: String,
    gated: bool,
    revisions: Vec<Revision>,
}

impl Repo {
    fn build(repo: HubRepo) -> Self {
        let revisions = repo.revisions.into_iter().map(|(name, files)| {
            let mut files: Vec<HubFile> =
                files.into_iter().map(|(p, b)| HubFile::new(p, b)).collect();
            files.sort_by(|a, b| a.path.cmp(&b.path));
            // Deterministic, and different for every repo, revision name and file set.
            let mut hasher = Sha1::new();
            hasher.update(format!("commit\0{}\0{name}\0", repo.id));
            for file in &files {
                hasher.update(format!("{}\0{}\0", file.path, file.oid));
            }
            let sha = hex(&hasher.finalize());
            Revision { name, sha, files }
        });
        Self {
            revisions: revisions.collect(),
            id: repo.id,
            gated: repo.gated,
        }
    }
}

/// What the server serves, and what it saw.
struct Hub {
    endpoint: String,
    repos: Vec<Repo>,
    /// LFS bytes by sha256, with the repo path they are counted under.
    cdn: HashMap<String, (String, Arc<Vec<u8>>)>,
    tokens: Mutex<Vec<String>>,
    page_size: AtomicUsize,
    served: Mutex<HashMap<String, u64>>,
    /// Per path: how many body bytes the next GET sends before the connection is cut.
    cuts: Mutex<HashMap<String, u64>>,
    log: Mutex<Vec<String>>,
}

pub struct HubServer {
    hub: Arc<Hub>,
    port: u16,
    stop: Arc<AtomicBool>,
    accept: Option<thread::JoinHandle<()>>,
}

impl HubServer {
    pub fn start(repos: Vec<HubRepo>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind the Hub's port");
        let port = listener.local_addr().expect("address").port();
        let repos: Vec<Repo> = repos.into_iter().map(Repo::build).collect();
        let cdn = repos
            .iter()
            .flat_map(|r| &r.revisions)
            .flat_map(|r| &r.files)
            .filter_map(|f| Some((f.lfs.clone()?, (f.path.clone(), f.bytes.clone()))))
            .collect();
        let hub = Arc::new(Hub {
            endpoint: format!("http://127.0.0.1:{port}"),
            repos,
            cdn,
            tokens: Mutex::new(vec!["hf_good".to_owned()]),
            page_size: AtomicUsize::new(TREE_PAGE_SIZE),
            served: Mutex::default(),
            cuts: Mutex::default(),
            log: Mutex::default(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (hub, stop) = (hub.clone(), stop.clone());
            thread::spawn(move || accept_loop(listener, hub, &stop))
        };
        Self {
            hub,
            port,
            stop,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT`, what `HF_ENDPOINT` takes.
    pub fn endpoint(&self) -> String {
        self.hub.endpoint.clone()
    }

    /// The tokens accepted from now on, in place of the ones before (at first `hf_good`).
    pub fn accept_tokens(&self, tokens: &[&str]) {
        *self.hub.tokens.lock().unwrap() = tokens.iter().map(|t| t.to_string()).collect();
    }

    /// Tree entries per page from now on.
    pub fn set_page_size(&self, entries: usize) {
        self.hub.page_size.store(entries.max(1), Ordering::SeqCst);
    }

    /// The commit sha of branch or tag `revision` of `repo`.
    pub fn sha(&self, repo: &str, revision: &str) -> String {
        let repos = self.hub.repos.iter().filter(|r| r.id == repo);
        let mut found = repos
            .flat_map(|r| &r.revisions)
            .filter(|v| v.name == revision);
        let found = found.next();
        found
            .unwrap_or_else(|| panic!("the test Hub has no {repo} at {revision}"))
            .sha
            .clone()
    }

    /// File body bytes written by GETs of resolve and CDN URLs, all files.
    pub fn bytes_served(&self) -> u64 {
        self.hub.served.lock().unwrap().values().sum()
    }

    /// File body bytes written for the file at `path` (in any repo).
    pub fn bytes_served_for(&self, path: &str) -> u64 {
        let served = self.hub.served.lock().unwrap();
        served.get(path).copied().unwrap_or(0)
    }

    /// Zeroes the byte counters (the request log is kept).
    pub fn reset_counts(&self) {
        self.hub.served.lock().unwrap().clear();
    }

    /// The next GET of the file at `path` sends `bytes` body bytes, then the socket is shut.
    pub fn drop_connection_after(&self, path: &str, bytes: u64) {
        self.hub.cuts.lock().unwrap().insert(path.to_owned(), bytes);
    }

    /// Every request so far, as `METHOD /path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.hub.log.lock().unwrap().clone()
    }
}

impl Drop for HubServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept() so the loop sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn accept_loop(listener: TcpListener, hub: Arc<Hub>, stop: &AtomicBool) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let hub = hub.clone();
        thread::spawn(move || {
            // A client that hangs up early is its own problem, not the server's.
            let _ = connection(stream, &hub);
        });
    }
}

/// Keep-alive: requests one after another until the client closes or asks to.
fn connection(stream: TcpStream, hub: &Hub) -> io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    while let Some(head) = read_head(&mut reader)? {
        let request = Request::from_head(head.trim_end());
        let length: u64 = request
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        // No endpoint here takes a body; it is read so the next request starts clean.
        io::copy(&mut (&mut reader).take(length), &mut io::sink())?;
        hub.log
            .lock()
            .unwrap()
            .push(format!("{} {}", request.method, request.target));
        let close = request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let reply = hub.handle(&request);
        if !hub.write(&mut writer, &reply, request.method == "HEAD", close)? {
            return Ok(()); // cut on purpose: already shut
        }
        if close {
            return writer.shutdown(Shutdown::Both);
        }
    }
    Ok(())
}

/// The request head without its blank line; `None` when the client closed between requests.
fn read_head(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        if line == "\r\n" {
            return Ok(Some(head));
        }
        head.push_str(&line);
    }
}

struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Body,
}

enum Body {
    Bytes(Vec<u8>),
    /// Part of a file, streamed, counted and cut under the file's path.
    File {
        path: String,
        bytes: Arc<Vec<u8>>,
        range: Range<usize>,
    },
}

impl Reply {
    fn new(status: u16, body: Body) -> Self {
        let headers = Vec::new();
        Self {
            status,
            headers,
            body,
        }
    }

    fn json(status: u16, value: &Value) -> Self {
        let body = Body::Bytes(value.to_string().into_bytes());
        Self::new(status, body).with("Content-Type", "application/json; charset=utf-8")
    }

    /// The Hub's error: `{"error": ...}`, and its kind in `X-Error-Code` when it names one.
    fn error(status: u16, code: Option<&str>, message: &str) -> Self {
        let reply = Self::json(status, &json!({ "error": message }));
        match code {
            Some(code) => reply.with("X-Error-Code", code),
            None => reply,
        }
    }

    fn with(mut self, name: &'static str, value: impl ToString) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }

    fn body_len(&self) -> usize {
        match &self.body {
            Body::Bytes(bytes) => bytes.len(),
            Body::File { range, .. } => range.len(),
        }
    }
}

impl Hub {
    fn handle(&self, request: &Request) -> Reply {
        let path = request.path.trim_start_matches('/');
        if let Some(sha256) = path.strip_prefix("cdn/") {
            return self.cdn(sha256, request);
        }
        let found = match path.strip_prefix("api/models/") {
            Some(rest) => self.api(rest, request),
            None => self.resolve(path, request),
        };
        found.unwrap_or_else(|refusal| refusal)
    }

    /// `{repo}/revision/{rev}` and `{repo}/tree/{rev}[/{path}]`.
    fn api(&self, rest: &str, request: &Request) -> Result<Reply, Reply> {
        let mut parts = rest.splitn(4, '/');
        let (org, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let kind = parts.next();
        let after = parts.next().unwrap_or("");
        // Clients encode `/` in a revision, so the first raw `/` ends it.
        let (rev, sub) = after.split_once('/').unwrap_or((after, ""));
        let (repo, revision) = self.locate(request, org, name, &decode(rev))?;
        match kind {
            Some("revision") => Ok(info(repo, revision)),
            Some("tree") => self.tree(revision, &decode(sub), request),
            _ => Err(Reply::error(404, None, "Not Found")),
        }
    }

    /// The checks in the Hub's order: the token, the repo, access to it, then the revision.
    fn locate(
        &self,
        request: &Request,
        org: &str,
        name: &str,
        rev: &str,
    ) -> Result<(&Repo, &Revision), Reply> {
        let authenticated = self.token(request)?;
        let id = format!("{}/{}", decode(org), decode(name));
        let url = format!("{}{}", self.endpoint, request.target);
        let repo = self.repos.iter().find(|r| r.id == id).ok_or_else(|| {
            let message = format!("Repository Not Found for url: {url}.");
            Reply::error(404, Some("RepoNotFound"), &message)
        })?;
        if repo.gated && !authenticated {
            let message = format!(
                "Access to model {id} is restricted. You must have access to it and be \
                 authenticated to access it. Please log in."
            );
            return Err(Reply::error(401, Some("GatedRepo"), &message));
        }
        let revision = repo
            .revisions
            .iter()
            .find(|r| r.name == rev || r.sha == rev);
        let revision = revision.ok_or_else(|| {
            let message = format!("Invalid rev id: {rev}");
            Reply::error(404, Some("RevisionNotFound"), &message)
        })?;
        Ok((repo, revision))
    }

    /// Whether an accepted token came; a token not accepted is refused on any repo, as the
    /// Hub does, even a public one.
    fn token(&self, request: &Request) -> Result<bool, Reply> {
        let Some(value) = request.header("authorization") else {
            return Ok(false);
        };
        let token = value.strip_prefix("Bearer ").unwrap_or(value).trim();
        if self.tokens.lock().unwrap().iter().any(|t| t == token) {
            Ok(true)
        } else {
            let message = "Invalid credentials in Authorization header";
            Err(Reply::error(401, None, message))
        }
    }

    /// One page of the tree under `sub`; a `Link` header points at the next one.
    fn tree(&self, revision: &Revision, sub: &str, request: &Request) -> Result<Reply, Reply> {
        let sub = sub.trim_end_matches('/');
        let recursive = request
            .param("recursive")
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
        let entries = tree_entries(revision, sub, recursive);
        if !sub.is_empty() && entries.is_empty() {
            return Err(self.entry_not_found(request));
        }
        let start = request.param("cursor").and_then(|c| c.parse().ok());
        let start: usize = start.unwrap_or(0);
        let end = (start + self.page_size.load(Ordering::SeqCst)).min(entries.len());
        let page = entries.get(start..end).unwrap_or_default().to_vec();
        let reply = Reply::json(200, &Value::Array(page));
        if end >= entries.len() {
            return Ok(reply);
        }
        let flag = if recursive { "recursive=true&" } else { "" };
        let next = format!("{}{}?{flag}cursor={end}", self.endpoint, request.path);
        Ok(reply.with("Link", format!("<{next}>; rel=\"next\"")))
    }

    /// `{repo}/resolve/{rev}/{path}`: the bytes, or for an LFS file a redirect to the CDN.
    fn resolve(&self, path: &str, request: &Request) -> Result<Reply, Reply> {
        let parts: Vec<&str> = path.splitn(5, '/').collect();
        let [org, name, "resolve", rev, file] = parts[..] else {
            return Err(Reply::error(404, None, "Not Found"));
        };
        let (_, revision) = self.locate(request, org, name, &decode(rev))?;
        let wanted = decode(file);
        let file = revision.files.iter().find(|f| f.path == wanted);
        let file = file.ok_or_else(|| self.entry_not_found(request))?;
        let reply = match &file.lfs {
            Some(sha256) => Reply::new(302, Body::Bytes(Vec::new()))
                .with("Location", format!("/cdn/{sha256}"))
                .with("X-Linked-Etag", format!("\"{sha256}\""))
                .with("X-Linked-Size", file.bytes.len()),
            None => serve_bytes(request, &file.path, &file.bytes),
        };
        Ok(reply
            .with("ETag", format!("\"{}\"", file.oid))
            .with("X-Repo-Commit", &revision.sha))
    }

    fn entry_not_found(&self, request: &Request) -> Reply {
        let message = format!(
            "Entry Not Found for url: {}{}.",
            self.endpoint, request.target
        );
        Reply::error(404, Some("EntryNotFound"), &message)
    }

    /// LFS bytes by sha256; like a CDN URL it needs no token.
    fn cdn(&self, sha256: &str, request: &Request) -> Reply {
        match self.cdn.get(sha256) {
            Some((path, bytes)) => {
                serve_bytes(request, path, bytes).with("ETag", format!("\"{sha256}\""))
            }
            None => Reply::error(404, None, "Not Found"),
        }
    }

    /// Sends `reply`; `Ok(false)` when the connection was cut on purpose.
    fn write(
        &self,
        stream: &mut TcpStream,
        reply: &Reply,
        head_only: bool,
        close: bool,
    ) -> io::Result<bool> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Length: {}\r\n",
            reply.status,
            status_text(reply.status),
            reply.body_len()
        );
        for (name, value) in &reply.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        match &reply.body {
            _ if head_only => Ok(true),
            Body::Bytes(bytes) => stream.write_all(bytes).map(|()| true),
            Body::File { path, bytes, range } => {
                self.stream_file(stream, path, &bytes[range.clone()])
            }
        }
    }

    /// Writes `body` in chunks, counting each as it goes; cuts it if a test asked to.
    fn stream_file(&self, stream: &mut TcpStream, path: &str, body: &[u8]) -> io::Result<bool> {
        let cut = self.cuts.lock().unwrap().remove(path);
        let cut = cut.filter(|&n| n < body.len() as u64);
        let sent = cut.map_or(body.len(), |n| n as usize);
        for chunk in body[..sent].chunks(WRITE_CHUNK) {
            stream.write_all(chunk)?;
            let mut served = self.served.lock().unwrap();
            *served.entry(path.to_owned()).or_default() += chunk.len() as u64;
        }
        if cut.is_some() {
            stream.flush()?;
            stream.shutdown(Shutdown::Both)?;
            return Ok(false);
        }
        Ok(true)
    }
}

/// The model info the Hub gives for one revision.
fn info(repo: &Repo, revision: &Revision) -> Reply {
    let siblings: Vec<Value> = revision
        .files
        .iter()
        .map(|f| json!({ "rfilename": f.path }))
        .collect();
    let gated: Value = if repo.gated {
        "auto".into()
    } else {
        false.into()
    };
    Reply::json(
        200,
        &json!({
            "_id": &hex(&Sha1::digest(repo.id.as_bytes()))[..24],
            "id": repo.id,
            "modelId": repo.id,
            "sha": revision.sha,
            "private": false,
            "gated": gated,
            "siblings": siblings,
            "lastModified": LAST_MODIFIED,
        }),
    )
}

/// Entries under `sub` ("" for the root), directories too, sorted by path: all of them when
/// `recursive`, else only the direct children.
fn tree_entries(revision: &Revision, sub: &str, recursive: bool) -> Vec<Value> {
    let prefix = format!("{sub}/");
    let prefix = prefix.trim_start_matches('/');
    let mut dirs = BTreeSet::new();
    let mut entries = BTreeMap::new();
    for file in revision.files.iter().filter(|f| f.path.starts_with(prefix)) {
        let rest = &file.path[prefix.len()..];
        for (slash, _) in rest.match_indices('/') {
            dirs.insert(format!("{prefix}{}", &rest[..slash]));
            if !recursive {
                break;
            }
        }
        if recursive || !rest.contains('/') {
            entries.insert(file.path.clone(), file.entry());
        }
    }
    for dir in dirs {
        let oid = hex(&Sha1::digest(format!("tree {dir}").as_bytes()));
        let entry = json!({"type": "directory", "oid": oid, "size": 0, "path": dir});
        entries.insert(dir, entry);
    }
    entries.into_values().collect()
}

/// All of a file, or the part a GET's `Range` asks for; 416 past its end.
fn serve_bytes(request: &Request, path: &str, bytes: &Arc<Vec<u8>>) -> Reply {
    let size = bytes.len();
    let asked = request.header("range").filter(|_| request.method == "GET");
    let (status, range) = match asked.and_then(|r| parse_range(r, size)) {
        None => (200, 0..size),
        Some(Ok(range)) => (206, range),
        Some(Err(())) => {
            return Reply::error(416, None, "Requested Range Not Satisfiable")
                .with("Content-Range", format!("bytes */{size}"))
        }
    };
    let content_range = format!(
        "bytes {}-{}/{size}",
        range.start,
        range.end.saturating_sub(1)
    );
    let (path, bytes) = (path.to_owned(), bytes.clone());
    let reply = Reply::new(status, Body::File { path, bytes, range })
        .with("Content-Type", "application/octet-stream")
        .with("Accept-Ranges", "bytes");
    match status {
        206 => reply.with("Content-Range", content_range),
        _ => reply,
    }
}

/// `bytes=N-` or `bytes=N-M`: `None` for what cannot be parsed (ignored, as RFC
/// 9110 allows), `Err` for a range that starts past the end.
fn parse_range(header: &str, size: usize) -> Option<Result<Range<usize>, ()>> {
    let (first, last) = header.strip_prefix("bytes=")?.split_once('-')?;
    let last = match last.trim() {
        "" => None,
        last => Some(last.parse::<usize>().ok()?),
    };
    let first: usize = first.trim().parse().ok()?;
    if first >= size {
        return Some(Err(()));
    }
    let end = last.map_or(size, |l| l.saturating_add(1).min(size));
    (end > first).then_some(Ok(first..end))
}

/// `http_server::reason` lacks the statuses only this server sends.
fn status_text(status: u16) -> &'static str {
    match status {
        206 => "Partial Content",
        302 => "Found",
        other => reason(other),
    }
}

/// URL path decoding: `%XX` escapes only (`+` is itself in a path); bad escapes kept as-is.
fn decode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let escaped = s.get(i + 1..i + 3).filter(|_| s.as_bytes()[i] == b'%');
        let byte = escaped.and_then(|hex| u8::from_str_radix(hex, 16).ok());
        out.push(byte.unwrap_or(s.as_bytes()[i]));
        i += if byte.is_some() { 3 } else { 1 };
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The object id git gives a file's bytes, which the Hub reports as `oid`.
fn git_blob_oid(bytes: &[u8]) -> String {
    let mut hasher = Sha1::new();
    hasher.update(format!("blob {}\0", bytes.len()));
    hasher.update(bytes);
    hex(&hasher.finalize())
}

/// The pointer file git stores for an LFS file.
fn lfs_pointer(sha256: &str, size: usize) -> String {
    format!("version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Response {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Response {
        fn header(&self, name: &str) -> Option<&str> {
            let found = self
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name));
            found.map(|(_, v)| v.as_str())
        }

        /// The status and `X-Error-Code`.
        fn code(&self) -> (u16, Option<&str>) {
            (self.status, self.header("x-error-code"))
        }

        fn json(&self) -> Value {
            serde_json::from_slice(&self.body).expect("a JSON body")
        }
    }

    /// One request on its own connection; the body is whatever came before the server closed.
    fn send(hub: &HubServer, method: &str, target: &str, headers: &[&str]) -> Response {
        let mut stream = TcpStream::connect(("127.0.0.1", hub.port)).unwrap();
        let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
        let head = format!("{method} {target} HTTP/1.1\r\n{extra}Connection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let headers = head
            .split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(": "));
        Response {
            status: head[9..12].parse().unwrap(),
            headers: headers.map(|(n, v)| (n.into(), v.into())).collect(),
            body: raw[end + 4..].to_vec(),
        }
    }

    fn get(hub: &HubServer, target: &str) -> Response {
        send(hub, "GET", target, &[])
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    fn model_hub() -> HubServer {
        let v1 = vec![("config.json".into(), b"{\"v\":1}".to_vec())];
        HubServer::start(vec![HubRepo::new("org/model")
            .file("config.json", b"{}".to_vec())
            .file("hello.txt", b"hello\n".to_vec())
            .file("dir/my file.txt", b"spaced".to_vec())
            .file("model.safetensors", pattern(300_000))
            .revision("v1", v1)])
    }

    /// Where the resolve URL of an LFS file redirects.
    fn cdn_location(hub: &HubServer, path: &str) -> String {
        let redirect = get(hub, &format!("/org/model/resolve/main/{path}"));
        redirect.header("location").unwrap().to_owned()
    }

    #[test]
    fn revision_info_carries_the_commit_sha() {
        let hub = model_hub();
        let main = get(&hub, "/api/models/org/model/revision/main").json();
        assert_eq!(main["sha"], hub.sha("org/model", "main"));
        assert_eq!(
            (&main["id"], &main["gated"]),
            (&json!("org/model"), &json!(false))
        );
        assert_eq!(main["siblings"].as_array().unwrap().len(), 4);
        let v1 = get(&hub, "/api/models/org/model/revision/v1").json();
        assert_eq!(v1["sha"], hub.sha("org/model", "v1"));
        assert_ne!(v1["sha"], main["sha"]);
        let by_sha = format!(
            "/api/models/org/model/revision/{}",
            hub.sha("org/model", "v1")
        );
        assert_eq!(get(&hub, &by_sha).json()["sha"], v1["sha"]);
        let missing = get(&hub, "/api/models/org/model/revision/nope");
        assert_eq!(missing.code(), (404, Some("RevisionNotFound")));
        let missing = get(&hub, "/api/models/org/other/revision/main");
        assert_eq!(missing.code(), (404, Some("RepoNotFound")));
    }

    #[test]
    fn tree_pages_list_every_file_once_with_its_oids() {
        let size = |i: usize| {
            if i.is_multiple_of(3) {
                2000 + i
            } else {
                10 + i
            }
        };
        let name = |i: usize| format!("d{}/f{i:03}.txt", i % 4);
        let mut repo = HubRepo::new("org/many").file("hello.txt", b"hello\n".to_vec());
        for i in 0..120 {
            repo = repo.file(&name(i), pattern(size(i)));
        }
        let hub = HubServer::start(vec![repo]);
        let mut next = Some("/api/models/org/many/tree/main?recursive=true".to_owned());
        let (mut files, mut dirs, mut pages) = (BTreeMap::new(), 0, 0);
        while let Some(target) = next.take() {
            let page = get(&hub, &target);
            for entry in page.json().as_array().unwrap() {
                let path = entry["path"].as_str().unwrap().to_owned();
                match entry["type"].as_str() {
                    Some("directory") => dirs += 1,
                    _ => assert!(files.insert(path, entry.clone()).is_none()),
                }
            }
            let link = page
                .header("link")
                .map(|l| l[1..l.find('>').unwrap()].to_owned());
            next = link.map(|l| l.strip_prefix(&hub.endpoint()).unwrap().to_owned());
            pages += 1;
        }
        assert_eq!((files.len(), dirs, pages), (121, 4, 3));
        // What `git hash-object` gives for "hello\n".
        assert_eq!(
            files["hello.txt"]["oid"],
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
        for i in 0..120 {
            let (bytes, entry) = (pattern(size(i)), &files[&name(i)]);
            assert_eq!(entry["size"], bytes.len());
            match i % 3 {
                0 => assert_eq!(entry["lfs"]["oid"], hex(&Sha256::digest(&bytes))),
                _ => assert_eq!(
                    (&entry["oid"], entry.get("lfs")),
                    (&json!(git_blob_oid(&bytes)), None)
                ),
            }
        }
        let top = get(&hub, "/api/models/org/many/tree/main").json();
        let paths: Vec<&Value> = top.as_array().unwrap().iter().map(|e| &e["path"]).collect();
        assert_eq!(paths, ["d0", "d1", "d2", "d3", "hello.txt"]);
    }

    #[test]
    fn ranges_come_through_the_cdn_redirect() {
        let (hub, bytes) = (model_hub(), pattern(300_000));
        let range = ["Range: bytes=1000-70999"];
        let redirect = send(
            &hub,
            "GET",
            "/org/model/resolve/main/model.safetensors",
            &range,
        );
        assert_eq!(
            (redirect.status, redirect.header("x-linked-size")),
            (302, Some("300000"))
        );
        let sha256 = hex(&Sha256::digest(&bytes));
        assert_eq!(
            redirect.header("x-linked-etag"),
            Some(&*format!("\"{sha256}\""))
        );
        assert_eq!(
            redirect.header("x-repo-commit"),
            Some(&*hub.sha("org/model", "main"))
        );
        let location = redirect.header("location").unwrap();
        let part = send(&hub, "GET", location, &range);
        let content_range = part.header("content-range");
        assert_eq!(
            (part.status, content_range),
            (206, Some("bytes 1000-70999/300000"))
        );
        assert_eq!(part.body, &bytes[1000..71000]);
        let tail = send(&hub, "GET", location, &["Range: bytes=299990-"]);
        assert_eq!(tail.body, &bytes[299_990..]);
        let past = send(&hub, "GET", location, &["Range: bytes=300000-"]);
        assert_eq!(
            (past.status, past.header("content-range")),
            (416, Some("bytes */300000"))
        );
        let small = get(&hub, "/org/model/resolve/main/dir/my%20file.txt");
        assert_eq!((small.status, &*small.body), (200, &b"spaced"[..]));
        let etag = format!("\"{}\"", git_blob_oid(b"spaced"));
        assert_eq!(small.header("etag"), Some(&*etag));
        let missing = get(&hub, "/org/model/resolve/main/nope.txt");
        assert_eq!(missing.code(), (404, Some("EntryNotFound")));
    }

    #[test]
    fn gated_repos_want_an_accepted_token() {
        let repo = HubRepo::new("org/gated")
            .gated()
            .file("a.txt", b"a".to_vec());
        let hub = HubServer::start(vec![repo]);
        for target in [
            "/api/models/org/gated/revision/main",
            "/org/gated/resolve/main/a.txt",
        ] {
            let refused = get(&hub, target);
            assert_eq!(refused.code(), (401, Some("GatedRepo")));
            let message = refused.json()["error"].as_str().unwrap().to_owned();
            assert!(message.starts_with("Access to model org/gated is restricted."));
            let wrong = send(&hub, "GET", target, &["Authorization: Bearer hf_bad"]);
            assert_eq!(wrong.code(), (401, None));
            let invalid = json!({"error": "Invalid credentials in Authorization header"});
            assert_eq!(wrong.json(), invalid);
            let good = send(&hub, "GET", target, &["Authorization: Bearer hf_good"]);
            assert_eq!(good.status, 200);
        }
        hub.accept_tokens(&["hf_other"]);
        let target = "/org/gated/resolve/main/a.txt";
        let other = send(&hub, "GET", target, &["Authorization: Bearer hf_other"]);
        assert_eq!(other.status, 200);
        let old = send(&hub, "GET", target, &["Authorization: Bearer hf_good"]);
        assert_eq!(old.status, 401);
    }

    #[test]
    fn a_cut_download_sends_exactly_the_bytes_asked() {
        let hub = model_hub();
        hub.drop_connection_after("model.safetensors", 100_000);
        let location = cdn_location(&hub, "model.safetensors");
        let cut = get(&hub, &location);
        assert_eq!(
            (cut.header("content-length"), cut.body.len()),
            (Some("300000"), 100_000)
        );
        assert_eq!(hub.bytes_served_for("model.safetensors"), 100_000);
        assert_eq!(get(&hub, &location).body, pattern(300_000));
    }

    #[test]
    fn bytes_served_counts_file_bodies_only() {
        let hub = model_hub();
        send(&hub, "HEAD", "/org/model/resolve/main/hello.txt", &[]);
        get(&hub, "/api/models/org/model/revision/main");
        assert_eq!(hub.bytes_served(), 0);
        get(&hub, "/org/model/resolve/main/hello.txt");
        let location = cdn_location(&hub, "model.safetensors");
        send(&hub, "GET", &location, &["Range: bytes=0-9"]);
        assert_eq!(
            (hub.bytes_served(), hub.bytes_served_for("hello.txt")),
            (16, 6)
        );
        hub.reset_counts();
        assert_eq!(hub.bytes_served(), 0);
        assert_eq!(hub.requests()[0], "HEAD /org/model/resolve/main/hello.txt");
    }

    #[test]
    fn requests_share_a_kept_alive_connection() {
        let hub = model_hub();
        let mut stream = TcpStream::connect(("127.0.0.1", hub.port)).unwrap();
        let one = "GET /org/model/resolve/main/hello.txt HTTP/1.1\r\n\r\n";
        let two = "HEAD /org/model/resolve/main/hello.txt HTTP/1.1\r\nConnection: close\r\n\r\n";
        stream.write_all(format!("{one}{two}").as_bytes()).unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).unwrap();
        assert_eq!(raw.matches("HTTP/1.1 200 OK").count(), 2, "{raw}");
        assert!(raw.contains("\r\n\r\nhello\nHTTP/1.1"), "{raw}");
    }
}
