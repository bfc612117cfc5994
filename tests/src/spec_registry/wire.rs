//! What goes back on the wire: whole HTTP replies as text, or a dropped connection, and the
//! digests they carry.

use std::fs;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

/// What the server does with a request: answer it, or drop the connection unanswered.
pub(super) enum Answer {
    Reply(String),
    Close,
}

/// The digest of the first `len` bytes of the file at `path`.
pub(super) fn sha256_prefix(path: &Path, len: u64) -> String {
    let mut file = fs::File::open(path).unwrap().take(len);
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

pub(super) fn digest_of(bytes: &[u8]) -> String {
    hex_digest(&Sha256::digest(bytes))
}

pub(super) fn hex_digest(hash: &[u8]) -> String {
    format!("sha256:{}", crate::tools::hex(hash))
}

pub(super) fn reply(status: u16, headers: &[(String, String)], body: &str) -> String {
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
pub(super) fn reply_head(status: u16, len: u64, digest: &str) -> String {
    format!(
        "HTTP/1.1 {status} {}\r\nContent-Length: {len}\r\nDocker-Content-Digest: {digest}\r\n\r\n",
        crate::http_server::reason(status)
    )
}
