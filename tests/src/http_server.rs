//! The HTTP plumbing of the harness's own servers (token service, model registry, Kubernetes
//! API): std-only HTTP/1.1 on 127.0.0.1, one thread per connection, `Connection: close`, a
//! handler that turns each parsed [`Request`] into a [`Reply`]. A reply is a whole body, or a
//! stream written chunk by chunk ([`Reply::stream`]) for answers that last, like a watch.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde_json::{json, Value};

/// Longest request head the server reads: enough for many scopes, small enough to fail fast.
const MAX_REQUEST_HEAD: usize = 64 * 1024;
/// Longest request body the server reads: metadata only, never model bytes.
const MAX_REQUEST_BODY: usize = 4 * 1024 * 1024;

/// What answers every well-formed request.
pub type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

/// The reply to a request that cannot be parsed: status and what is wrong, in the server's
/// own error format.
pub type Malformed = fn(u16, &str) -> Reply;

/// A running server: its accept loop stops when this is dropped.
pub struct HttpServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept_thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Starts serving `handler` on a free localhost port; `what` names the server in panics.
    pub fn start(what: &str, handler: Handler, malformed: Malformed) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|_| panic!("cannot bind the {what}'s port"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| panic!("{what} socket has no address"));
        let stop = Arc::new(AtomicBool::new(false));
        let accept_thread = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || accept_loop(&listener, &handler, malformed, &stop))
        };
        Self {
            addr,
            stop,
            accept_thread: Some(accept_thread),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept() so the loop sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, handler: &Handler, malformed: Malformed, stop: &AtomicBool) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(stream) = stream {
            let handler = Arc::clone(handler);
            thread::spawn(move || {
                // A client that hangs up early is its own problem, not the server's.
                let _ = serve_connection(stream, &handler, malformed);
            });
        }
    }
}

fn serve_connection(
    mut stream: TcpStream,
    handler: &Handler,
    malformed: Malformed,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let reply = match read_request(&mut stream)? {
        Ok(request) => handler(&request),
        Err((status, message)) => malformed(status, message),
    };
    reply.write_to(&mut stream)
}

// ---------------------------------------------------------------------------------------------
// Requests

/// One parsed request.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    /// Path and query as sent, for request logs.
    pub target: String,
    pub path: String,
    /// Query parameters in order, names and values decoded.
    pub query: Vec<(String, String)>,
    /// Header names lower-cased, values trimmed, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Request {
    /// The request line and headers of `head` (without the blank line), with an empty body.
    pub fn from_head(head: &str) -> Self {
        let mut lines = head.split("\r\n");
        let mut request_line = lines.next().unwrap_or_default().split_whitespace();
        let method = request_line.next().unwrap_or_default().to_owned();
        let target = request_line.next().unwrap_or_default().to_owned();
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        Self {
            method,
            path: path.to_owned(),
            query: parse_query(query),
            target: target.clone(),
            headers,
            body: Vec::new(),
        }
    }

    /// The last value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of query parameter `name`, in order.
    pub fn params<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.query
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What makes a request unreadable: the status to answer and why.
type Refusal = (u16, &'static str);

/// Reads the head and the body (by `Content-Length`, or chunked).
/// `METHOD TARGET HTTP/x.y`, with an optional `\r`.
fn is_request_line(line: &[u8]) -> bool {
    let Ok(line) = std::str::from_utf8(line) else {
        return false;
    };
    let parts: Vec<&str> = line.trim_end_matches('\r').split(' ').collect();
    matches!(parts.as_slice(), [method, _, version]
        if !method.is_empty()
            && method.bytes().all(|b| b.is_ascii_uppercase())
            && version.starts_with("HTTP/"))
}

fn read_request(stream: &mut TcpStream) -> std::io::Result<Result<Request, Refusal>> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        // A first line that is no request line is refused as soon as it is read, as Go's
        // net/http and Python's http.server do: that is how a plain-HTTP server answers a TLS
        // ClientHello (whose supported_groups extension, type 0x000a, holds a '\n').
        if let Some(end) = raw.iter().position(|&b| b == b'\n') {
            if !is_request_line(&raw[..end]) {
                return Ok(Err((400, "malformed request line")));
            }
        }
        let n = stream.read(&mut buf)?;
        if n == 0 || raw.len() > MAX_REQUEST_HEAD {
            return Ok(Err((400, "incomplete request head")));
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let mut request = Request::from_head(&String::from_utf8_lossy(&raw[..head_end]));
    let mut body = raw.split_off(head_end + 4);
    let chunked = request
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let length: usize = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if length > MAX_REQUEST_BODY {
        return Ok(Err((413, "request body too large")));
    }
    if chunked {
        body = match read_chunked(stream, body)? {
            Some(body) => body,
            None => return Ok(Err((400, "malformed chunked body"))),
        };
    } else {
        while body.len() < length {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Ok(Err((400, "request body shorter than its length")));
            }
            body.extend_from_slice(&buf[..n]);
        }
        body.truncate(length);
    }
    request.body = body;
    Ok(Ok(request))
}

/// The decoded body of a `Transfer-Encoding: chunked` request whose first bytes are `raw`;
/// `None` if it is malformed.
fn read_chunked(stream: &mut TcpStream, mut raw: Vec<u8>) -> std::io::Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    let mut pos = 0;
    let mut buf = [0u8; 8192];
    loop {
        // Size line.
        let line_end = loop {
            if let Some(i) = raw[pos..].windows(2).position(|w| w == b"\r\n") {
                break pos + i;
            }
            let n = stream.read(&mut buf)?;
            if n == 0 || raw.len() > MAX_REQUEST_BODY {
                return Ok(None);
            }
            raw.extend_from_slice(&buf[..n]);
        };
        let size_text = String::from_utf8_lossy(&raw[pos..line_end]).into_owned();
        let size_hex = size_text.split(';').next().unwrap_or_default().trim();
        let Ok(size) = usize::from_str_radix(size_hex, 16) else {
            return Ok(None);
        };
        pos = line_end + 2;
        if size == 0 {
            return Ok(Some(body));
        }
        while raw.len() < pos + size + 2 {
            let n = stream.read(&mut buf)?;
            if n == 0 || raw.len() > MAX_REQUEST_BODY {
                return Ok(None);
            }
            raw.extend_from_slice(&buf[..n]);
        }
        body.extend_from_slice(&raw[pos..pos + size]);
        pos += size + 2;
    }
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

/// URL query decoding: `%XX` escapes and `+` for a space; invalid escapes are kept as-is.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], escaped) {
            (_, Some(byte)) => {
                out.push(byte);
                i += 3;
                continue;
            }
            (b'+', None) => out.push(b' '),
            (byte, None) => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Replies

/// One HTTP response: status, content type, extra headers and a body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    /// `(name, value)` pairs sent after the standard headers.
    pub headers: Vec<(String, String)>,
    /// The whole body; empty for a streamed reply.
    pub body: String,
    /// Writes the body instead of `body`, `Transfer-Encoding: chunked`.
    stream: Option<Stream>,
}

/// What writes a streamed body: each `write` call on the writer it is given is sent as one
/// chunk, so a line-oriented client sees each write as soon as it is made.
pub type StreamBody = Box<dyn FnOnce(&mut dyn Write) -> std::io::Result<()> + Send>;

/// A [`StreamBody`] that a cloned [`Reply`] shares: whichever copy is written first sends it,
/// the other then sends an empty body. (Replies were `Clone` before they could stream.)
#[derive(Clone)]
struct Stream(Arc<Mutex<Option<StreamBody>>>);

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stream(..)")
    }
}

/// Frames every non-empty write as one HTTP/1.1 chunk.
struct ChunkedWriter<'a>(&'a mut TcpStream);

impl Write for ChunkedWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            // A zero-length chunk would end the body.
            return Ok(0);
        }
        let mut chunk = format!("{:x}\r\n", buf.len()).into_bytes();
        chunk.extend_from_slice(buf);
        chunk.extend_from_slice(b"\r\n");
        self.0.write_all(&chunk)?;
        self.0.flush()?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl Reply {
    /// `body` as JSON.
    pub fn json(status: u16, body: &Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: body.to_string(),
            stream: None,
        }
    }

    /// `body` and a newline as plain text.
    pub fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            content_type: "text/plain",
            headers: Vec::new(),
            body: format!("{body}\n"),
            stream: None,
        }
    }

    /// A reply whose body `write` sends as it goes, `Transfer-Encoding: chunked`, each write
    /// one chunk; the body ends when `write` returns. The server's connection thread runs it,
    /// so it may block (a watch waiting for changes) without holding up anything else, and
    /// should return soon once the client is gone (a write fails) or its server stops.
    pub fn stream(
        status: u16,
        content_type: &'static str,
        write: impl FnOnce(&mut dyn Write) -> std::io::Result<()> + Send + 'static,
    ) -> Self {
        let write: StreamBody = Box::new(write);
        Self {
            status,
            content_type,
            headers: Vec::new(),
            body: String::new(),
            stream: Some(Stream(Arc::new(Mutex::new(Some(write))))),
        }
    }

    /// A JSON error `{"code": <status text>, "message": ...}` (the model registry's `Error`).
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Self::error_with_code(status, status, message)
    }

    /// A JSON error whose `code` names another status than the one sent: the model registry
    /// answers a missing required field with 422 and the body `{"code": "Bad Request", ...}`.
    pub fn error_with_code(status: u16, code: u16, message: impl Into<String>) -> Self {
        Self::json(
            status,
            &json!({"code": reason(code), "message": message.into()}),
        )
    }

    /// This reply with one more header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn write_to(&self, stream: &mut TcpStream) -> std::io::Result<()> {
        let streamed = self
            .stream
            .as_ref()
            .map(|s| s.0.lock().unwrap_or_else(PoisonError::into_inner).take());
        let length = match &streamed {
            Some(_) => "Transfer-Encoding: chunked".to_owned(),
            None => format!("Content-Length: {}", self.body.len()),
        };
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\n{length}\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.content_type,
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        match streamed {
            None => stream.write_all(self.body.as_bytes())?,
            Some(write) => {
                // Small chunks go out at once instead of waiting for the previous one's ACK.
                stream.set_nodelay(true)?;
                if let Some(write) = write {
                    write(&mut ChunkedWriter(stream))?;
                }
                stream.write_all(b"0\r\n\r\n")?;
            }
        }
        stream.flush()
    }
}

/// The reason phrase of the statuses the servers send.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        422 => "Unprocessable Entity",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_decoded() {
        assert_eq!(
            parse_query("name=my%20model&parentResourceId=2&x&a+b=c+d%2B"),
            [
                ("name".to_owned(), "my model".to_owned()),
                ("parentResourceId".to_owned(), "2".to_owned()),
                ("x".to_owned(), String::new()),
                ("a b".to_owned(), "c d+".to_owned()),
            ]
        );
        assert_eq!(percent_decode("100%zz%4"), "100%zz%4");
    }

    #[test]
    fn heads_are_parsed() {
        let request = Request::from_head("GET /p?a=1&a=2 HTTP/1.1\r\nX-Thing:  v \r\nbad line");
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("GET", "/p")
        );
        assert_eq!(request.target, "/p?a=1&a=2");
        assert_eq!(request.param("a"), Some("2"));
        assert_eq!(request.params("a").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(request.header("x-THING"), Some("v"));
        assert_eq!(request.header("missing"), None);
    }
}
