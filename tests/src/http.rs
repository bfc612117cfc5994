//! The smallest HTTP/1.0 client that can probe a server from a test without pulling an HTTP
//! stack into the harness. HTTP/1.0 so that servers close the connection and never answer
//! chunked: the body is whatever comes before EOF.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::prelude::{Engine, BASE64_STANDARD};

/// A whole response: status, headers in arrival order, body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `Authorization` header value for basic credentials.
pub fn basic_auth(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        BASE64_STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Status code of `GET path` on `host` (`127.0.0.1:PORT`), with optional basic credentials.
pub fn get_status(host: &str, path: &str, basic: Option<(&str, &str)>) -> std::io::Result<u16> {
    let auth = basic.map(|(u, p)| basic_auth(u, p));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| ("Authorization", a))
        .into_iter()
        .collect();
    request(host, "GET", path, &headers, &[]).map(|r| r.status)
}

/// `method path` on `host` with extra `headers` and `body` (sent with its `Content-Length`
/// unless it is empty and the method is GET or HEAD).
pub fn request(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = format!("{method} {path} HTTP/1.0\r\nHost: {host}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !(body.is_empty() && matches!(method, "GET" | "HEAD")) {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> std::io::Result<Response> {
    let not_http = || {
        let start = String::from_utf8_lossy(&raw[..raw.len().min(64)]).into_owned();
        std::io::Error::other(format!("not an HTTP response: {start:?}"))
    };
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(not_http)?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(not_http)?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(Response {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    })
}
