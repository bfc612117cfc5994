//! The smallest HTTP/1.0 client that can probe a server from a test without pulling an HTTP
//! stack into the harness.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::prelude::{Engine, BASE64_STANDARD};

/// Status code of `GET path` on `host` (`127.0.0.1:PORT`), with optional basic credentials.
pub fn get_status(host: &str, path: &str, basic: Option<(&str, &str)>) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let auth = basic
        .map(|(u, p)| {
            format!(
                "Authorization: Basic {}\r\n",
                BASE64_STANDARD.encode(format!("{u}:{p}"))
            )
        })
        .unwrap_or_default();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n{auth}\r\n")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let head = String::from_utf8_lossy(&response[..response.len().min(64)]).into_owned();
    head.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {head:?}")))
}
