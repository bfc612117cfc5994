//! A listener on another host than the servers under test (127.0.0.2, where 127.0.0.1 serves
//! the registries and the Hub), standing for wherever an attacker would like a credential to
//! go: it records the head of every request it gets and answers 404.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;

/// One request as received: its request line and its headers.
#[derive(Debug, Clone)]
pub struct Captured {
    pub line: String,
    pub headers: Vec<(String, String)>,
}

pub struct CaptureListener {
    port: u16,
    seen: Arc<Mutex<Vec<Captured>>>,
}

impl CaptureListener {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.2:0").expect("cannot bind 127.0.0.2");
        let port = listener.local_addr().expect("address").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = Arc::clone(&log);
                thread::spawn(move || {
                    let mut reader = BufReader::new(&stream);
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut headers = Vec::new();
                    let mut header = String::new();
                    while reader.read_line(&mut header).unwrap_or(0) > 2 {
                        if let Some((k, v)) = header.trim_end().split_once(':') {
                            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                        }
                        header.clear();
                    }
                    log.lock().unwrap().push(Captured {
                        line: line.trim_end().to_string(),
                        headers,
                    });
                    let _ = (&stream).write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                });
            }
        });
        Self { port, seen }
    }

    /// `http://127.0.0.2:PORT`.
    pub fn origin(&self) -> String {
        format!("http://127.0.0.2:{}", self.port)
    }

    pub fn requests(&self) -> Vec<Captured> {
        self.seen.lock().unwrap().clone()
    }

    /// Every `Authorization` header received.
    pub fn authorization_headers(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .flat_map(|r| r.headers)
            .filter(|(k, _)| k == "authorization")
            .map(|(_, v)| v)
            .collect()
    }
}
