//! An HTTP proxy in front of a registry that rewrites what passes, as a compromised proxy (or
//! a compromised or misconfigured registry) would: the `Location` of an upload, the realm of
//! a `WWW-Authenticate` challenge, the path a request goes to. Bodies stream through in both
//! directions, never held whole. Each request gets its own upstream connection, closed after
//! its answer, so responses need no parsing past their head.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

/// A change to a request on its way up: (method, path) -> the path to send instead.
type PathRule = Box<dyn Fn(&str, &str) -> Option<String> + Send>;
/// A change to an answer's head: (method, path, status, headers); true once it applied.
type HeadRule = Box<dyn FnMut(&str, &str, u16, &mut Vec<(String, String)>) -> bool + Send>;

#[derive(Default)]
struct Rules {
    paths: Vec<PathRule>,
    /// Applied once each, then dropped.
    heads: Vec<HeadRule>,
    /// `METHOD path` of every request that carried an `Authorization` header.
    authorized: Vec<String>,
}

pub struct RewritingProxy {
    port: u16,
    rules: Arc<Mutex<Rules>>,
}

impl RewritingProxy {
    pub fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind the proxy's port");
        let port = listener.local_addr().expect("address").port();
        let rules = Arc::new(Mutex::new(Rules::default()));
        let (shared, upstream) = (Arc::clone(&rules), upstream.to_string());
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (rules, upstream) = (Arc::clone(&shared), upstream.clone());
                thread::spawn(move || {
                    let _ = serve(client, &upstream, &rules);
                });
            }
        });
        Self { port, rules }
    }

    /// `METHOD path` of every request so far that carried an `Authorization` header.
    pub fn authorized_requests(&self) -> Vec<String> {
        self.rules.lock().unwrap().authorized.clone()
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The first `202` to `POST .../blobs/uploads/` names `origin` (same path) as the upload's
    /// place instead of the registry.
    pub fn rewrite_first_upload_location(&self, origin: &str) {
        let origin = origin.trim_end_matches('/').to_string();
        self.on_head(move |method, path, status, headers| {
            if method != "POST" || !path.contains("/blobs/uploads/") || status != 202 {
                return false;
            }
            rewrite(headers, "location", |old| {
                let path = old.find("/v2/").map_or(old, |i| &old[i..]);
                format!("{origin}{path}")
            })
        });
    }

    /// The first `401`'s challenge names `realm` as its token service.
    pub fn rewrite_first_realm(&self, realm: &str) {
        let realm = realm.to_string();
        self.on_head(move |_, _, status, headers| {
            status == 401
                && rewrite(headers, "www-authenticate", |old| {
                    let rest = old.split_once(',').map_or("", |(_, rest)| rest);
                    format!("Bearer realm=\"{realm}\",{rest}")
                })
        });
    }

    /// Requests for `from` (a path) go to `to` instead: the registry answers one thing for
    /// another.
    pub fn serve_path_as(&self, from: &str, to: &str) {
        let (from, to) = (from.to_string(), to.to_string());
        let rule: PathRule = Box::new(move |_, path| (path == from).then(|| to.clone()));
        self.rules.lock().unwrap().paths.push(rule);
    }

    fn on_head(
        &self,
        rule: impl FnMut(&str, &str, u16, &mut Vec<(String, String)>) -> bool + Send + 'static,
    ) {
        self.rules.lock().unwrap().heads.push(Box::new(rule));
    }
}

/// Replaces header `name`'s value with `new(old)`; false if the head has no such header.
fn rewrite(headers: &mut [(String, String)], name: &str, new: impl Fn(&str) -> String) -> bool {
    match headers
        .iter_mut()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
    {
        Some((_, value)) => {
            *value = new(value);
            true
        }
        None => false,
    }
}

/// A request or response head: its first line, and its headers in order.
type Head = (String, Vec<(String, String)>);

/// Reads a head (request or response): its first line and headers.
fn read_head(reader: &mut impl BufRead) -> std::io::Result<Option<Head>> {
    let mut first = String::new();
    if reader.read_line(&mut first)? == 0 {
        return Ok(None);
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Ok(Some((first.trim_end().to_string(), headers)))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn write_head(
    out: &mut impl Write,
    first: &str,
    headers: &[(String, String)],
) -> std::io::Result<()> {
    let mut head = format!("{first}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())
}

/// Copies a request body framed by `Content-Length` or chunked encoding.
fn copy_body(
    from: &mut impl BufRead,
    to: &mut impl Write,
    headers: &[(String, String)],
) -> std::io::Result<()> {
    if let Some(len) = header(headers, "content-length").and_then(|v| v.parse::<u64>().ok()) {
        std::io::copy(&mut from.take(len), to)?;
        return Ok(());
    }
    if !header(headers, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        return Ok(());
    }
    loop {
        let mut size_line = String::new();
        from.read_line(&mut size_line)?;
        to.write_all(size_line.as_bytes())?;
        let size =
            u64::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
        if size == 0 {
            // Trailers, then the empty line.
            loop {
                let mut line = String::new();
                from.read_line(&mut line)?;
                to.write_all(line.as_bytes())?;
                if line.trim_end().is_empty() {
                    return Ok(());
                }
            }
        }
        std::io::copy(&mut from.take(size + 2), to)?;
    }
}

/// Serves one request of a client connection: its answer closes the connection, and the
/// client opens another for its next request.
fn serve(client: TcpStream, upstream: &str, rules: &Mutex<Rules>) -> std::io::Result<()> {
    let mut to_client = client.try_clone()?;
    let mut from_client = BufReader::new(client);
    let Some((line, mut headers)) = read_head(&mut from_client)? else {
        return Ok(());
    };
    {
        let mut parts = line.splitn(3, ' ');
        let (method, path, version) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("HTTP/1.1").to_string(),
        );
        if header(&headers, "authorization").is_some() {
            let mut rules = rules.lock().unwrap();
            rules.authorized.push(format!("{method} {path}"));
        }
        let sent_path = rules
            .lock()
            .unwrap()
            .paths
            .iter()
            .find_map(|rule| rule(&method, &path))
            .unwrap_or_else(|| path.clone());
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case("connection"));
        headers.push(("Connection".into(), "close".into()));
        let mut up = TcpStream::connect(upstream)?;
        write_head(
            &mut up,
            &format!("{method} {sent_path} {version}"),
            &headers,
        )?;
        copy_body(&mut from_client, &mut up, &headers)?;
        up.flush()?;

        let mut from_up = BufReader::new(up);
        let Some((status_line, mut answer)) = read_head(&mut from_up)? else {
            return Ok(());
        };
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        {
            let mut rules = rules.lock().unwrap();
            if let Some(i) = rules
                .heads
                .iter_mut()
                .position(|rule| rule(&method, &path, status, &mut answer))
            {
                drop(rules.heads.remove(i));
            }
        }
        answer.retain(|(k, _)| !k.eq_ignore_ascii_case("connection"));
        answer.push(("Connection".into(), "close".into()));
        write_head(&mut to_client, &status_line, &answer)?;
        std::io::copy(&mut from_up, &mut to_client)?;
        to_client.flush()?;
        let _ = to_client.shutdown(Shutdown::Both);
    }
    Ok(())
}
