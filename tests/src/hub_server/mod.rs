//! A Hugging Face Hub on localhost, for the tests of `fetch-model`: the model info
//! (`/api/models/{repo}/revision/{rev}`), the paged tree (`/api/models/{repo}/tree/{rev}`),
//! `/{repo}/resolve/{rev}/{path}` with LFS files redirected to a CDN path, ranged downloads,
//! and the Hub's errors (`X-Error-Code` and a JSON `error`).
//!
//! Why not the real Hub: tests reach no network, and they need to cut a download mid-body and
//! count the bytes sent. Keep-alive and binary-safe streaming are as in `spec_registry`.
//!
//! Here: the server, its shared state and the methods tests call. `repo` holds the data model
//! (files, revisions, commit shas, blob ids), `routes` the Hub's endpoints, `conn` the HTTP
//! connections.

mod conn;
mod repo;
mod routes;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

pub use repo::HubRepo;
use repo::Repo;

use crate::tls::TestCa;
use crate::tls_front::TlsFront;

/// Tree entries per page unless a test sets another: small, so tests of a few dozen files page.
pub const TREE_PAGE_SIZE: usize = 50;

/// What the server serves, and what it saw.
struct Hub {
    endpoint: String,
    /// Where LFS files are redirected: another origin (port), as the Hub's CDN is another
    /// host, so clients read a file's metadata from the redirect itself.
    cdn_endpoint: String,
    repos: Vec<Repo>,
    /// LFS bytes by sha256, with the repo path they are counted under.
    cdn: HashMap<String, (String, Arc<Vec<u8>>)>,
    tokens: Mutex<Vec<String>>,
    page_size: AtomicUsize,
    served: Mutex<HashMap<String, u64>>,
    /// Per path: how many body bytes the next GET sends before the connection is cut.
    cuts: Mutex<HashMap<String, u64>>,
    corrupted: Mutex<std::collections::HashSet<String>>,
    log: Mutex<Vec<String>>,
    /// What a hostile Hub (or a proxy in front of it) does to the listing.
    hostile: Mutex<Hostile>,
    /// File body bytes a second at most, for downloads that must overlap.
    throttle: Mutex<Option<u64>>,
}

/// How the listing lies: not what the Hub does, what a compromised mirror or proxy might.
#[derive(Clone, Default)]
enum Hostile {
    #[default]
    No,
    /// `Link`s to the next page name this origin instead of the Hub's.
    LinkTo(String),
    /// Each page's `Link` names the page itself.
    LinkToSelf,
    /// The first page is this many bytes of JSON.
    HugePage(usize),
}

pub struct HubServer {
    hub: Arc<Hub>,
    ports: [u16; 2],
    stop: Arc<AtomicBool>,
    accept: Vec<thread::JoinHandle<()>>,
    /// With TLS, the fronts that serve it for the Hub and its CDN: held so they stop with it.
    _fronts: Vec<TlsFront>,
}

impl HubServer {
    pub fn start(repos: Vec<HubRepo>) -> Self {
        Self::start_serving(repos, None)
    }

    /// The Hub and its CDN over TLS only, with certificates `ca` issued: the endpoint is
    /// `https://localhost:PORT`, and the redirects name the CDN's TLS origin.
    pub fn start_tls(repos: Vec<HubRepo>, ca: &TestCa) -> Self {
        Self::start_serving(repos, Some(ca))
    }

    fn start_serving(repos: Vec<HubRepo>, tls: Option<&TestCa>) -> Self {
        let bind = || TcpListener::bind("127.0.0.1:0").expect("cannot bind the Hub's port");
        let (listener, cdn_listener) = (bind(), bind());
        let port = listener.local_addr().expect("address").port();
        let cdn_port = cdn_listener.local_addr().expect("address").port();
        let fronts: Vec<TlsFront> = tls
            .map(|ca| {
                let config = ca.server_config();
                [&listener, &cdn_listener]
                    .map(|l| TlsFront::start(l.local_addr().expect("address"), config.clone()))
                    .into()
            })
            .unwrap_or_default();
        let origin = |i: usize, plain: u16| match fronts.get(i) {
            Some(front) => format!("https://localhost:{}", front.port()),
            None => format!("http://127.0.0.1:{plain}"),
        };
        let repos: Vec<Repo> = repos.into_iter().map(Repo::build).collect();
        let cdn = repos
            .iter()
            .flat_map(|r| &r.revisions)
            .flat_map(|r| &r.files)
            .filter_map(|f| Some((f.lfs.clone()?, (f.path.clone(), f.bytes.clone()))))
            .collect();
        let hub = Arc::new(Hub {
            endpoint: origin(0, port),
            cdn_endpoint: origin(1, cdn_port),
            repos,
            cdn,
            tokens: Mutex::new(vec!["hf_good".to_owned()]),
            page_size: AtomicUsize::new(TREE_PAGE_SIZE),
            served: Mutex::default(),
            cuts: Mutex::default(),
            corrupted: Mutex::default(),
            log: Mutex::default(),
            hostile: Mutex::default(),
            throttle: Mutex::default(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        // Both origins serve everything; only the redirects make the second one the CDN.
        let accept = [listener, cdn_listener]
            .into_iter()
            .map(|listener| {
                let (hub, stop) = (hub.clone(), stop.clone());
                thread::spawn(move || conn::accept_loop(listener, hub, &stop))
            })
            .collect();
        Self {
            hub,
            ports: [port, cdn_port],
            stop,
            accept,
            _fronts: fronts,
        }
    }

    /// `http://127.0.0.1:PORT` (`https://localhost:PORT` with TLS), what `HF_ENDPOINT` takes.
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

    /// From now on `path` is served with its first byte flipped (its listing unchanged), as
    /// a broken proxy or storage would.
    pub fn corrupt(&self, path: &str) {
        self.hub.corrupted.lock().unwrap().insert(path.to_owned());
    }

    /// The next GET of the file at `path` sends `bytes` body bytes, then the socket is shut.
    pub fn drop_connection_after(&self, path: &str, bytes: u64) {
        self.hub.cuts.lock().unwrap().insert(path.to_owned(), bytes);
    }

    /// The listing's `Link` to the next page names `origin` (e.g. another host's listener)
    /// instead of the Hub's.
    pub fn link_pages_to(&self, origin: &str) {
        *self.hub.hostile.lock().unwrap() = Hostile::LinkTo(origin.trim_end_matches('/').into());
    }

    /// Every page of the listing links to itself as the next one, for ever.
    pub fn link_pages_to_themselves(&self) {
        *self.hub.hostile.lock().unwrap() = Hostile::LinkToSelf;
    }

    /// The listing's first page is `bytes` of JSON (an endless array of entries).
    pub fn serve_huge_tree_page(&self, bytes: usize) {
        *self.hub.hostile.lock().unwrap() = Hostile::HugePage(bytes);
    }

    /// File bodies go out at `bytes_per_sec` at most.
    pub fn throttle(&self, bytes_per_sec: u64) {
        *self.hub.throttle.lock().unwrap() = Some(bytes_per_sec.max(1));
    }

    /// Every request so far, as `METHOD /path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.hub.log.lock().unwrap().clone()
    }
}

impl Drop for HubServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept()s so the loops see the flag.
        for port in self.ports {
            let _ = TcpStream::connect(("127.0.0.1", port));
        }
        for accept in self.accept.drain(..) {
            let _ = accept.join();
        }
    }
}
