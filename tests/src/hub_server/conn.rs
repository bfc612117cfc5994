//! HTTP/1.1 on the wire: the accept loop, keep-alive connections, reading request heads and
//! bodies, and writing replies binary-safe, ranged, counted, and cut when a test asks.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use serde_json::{json, Value};

use super::Hub;
use crate::http_server::{reason, Request};

/// Bodies go out in writes of this size, so a cut can fall mid-body.
const WRITE_CHUNK: usize = 64 * 1024;

pub(super) fn accept_loop(listener: TcpListener, hub: Arc<Hub>, stop: &AtomicBool) {
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

pub(super) struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Body,
}

pub(super) enum Body {
    Bytes(Vec<u8>),
    /// Part of a file, streamed, counted and cut under the file's path.
    File {
        path: String,
        bytes: Arc<Vec<u8>>,
        range: Range<usize>,
    },
}

impl Reply {
    pub(super) fn new(status: u16, body: Body) -> Self {
        let headers = Vec::new();
        Self {
            status,
            headers,
            body,
        }
    }

    pub(super) fn json(status: u16, value: &Value) -> Self {
        let body = Body::Bytes(value.to_string().into_bytes());
        Self::new(status, body).with("Content-Type", "application/json; charset=utf-8")
    }

    /// The Hub's error: `{"error": ...}`, and its kind in `X-Error-Code` when it names one.
    pub(super) fn error(status: u16, code: Option<&str>, message: &str) -> Self {
        let reply = Self::json(status, &json!({ "error": message }));
        match code {
            Some(code) => reply.with("X-Error-Code", code),
            None => reply,
        }
    }

    pub(super) fn with(mut self, name: &'static str, value: impl ToString) -> Self {
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
        // A corrupted file: its first byte is sent flipped, its listing unchanged.
        let corrupt = self.corrupted.lock().unwrap().contains(path);
        for (i, chunk) in body[..sent].chunks(WRITE_CHUNK).enumerate() {
            match (corrupt && i == 0, chunk.split_first()) {
                (true, Some((first, rest))) => {
                    stream.write_all(&[!first])?;
                    stream.write_all(rest)?;
                }
                _ => stream.write_all(chunk)?,
            }
            let mut served = self.served.lock().unwrap();
            *served.entry(path.to_owned()).or_default() += chunk.len() as u64;
            drop(served);
            let throttle = *self.throttle.lock().unwrap();
            if let Some(rate) = throttle {
                let secs = chunk.len() as f64 / rate as f64;
                std::thread::sleep(std::time::Duration::from_secs_f64(secs));
            }
        }
        if cut.is_some() {
            stream.flush()?;
            stream.shutdown(Shutdown::Both)?;
            return Ok(false);
        }
        Ok(true)
    }
}

/// All of a file, or the part a GET's `Range` asks for; 416 past its end.
pub(super) fn serve_bytes(request: &Request, path: &str, bytes: &Arc<Vec<u8>>) -> Reply {
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
