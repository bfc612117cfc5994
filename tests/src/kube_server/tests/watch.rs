//! Watches over real HTTP: the chunked body read event by event, as a client reads it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{json, Value};

use super::{apply, host, isvc, rv, ISVCS};
use crate::kube_server::KubeServer;

/// Reads a watch's chunked body event by event.
struct Events(BufReader<TcpStream>);

impl Events {
    fn open(kube: &KubeServer, query: &str) -> Self {
        let mut stream = TcpStream::connect(host(kube)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let head = format!(
            "GET {ISVCS}?{query} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
            kube.token()
        );
        stream.write_all(head.as_bytes()).unwrap();
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        while !head.ends_with("\r\n\r\n") {
            assert_ne!(reader.read_line(&mut head).unwrap(), 0, "{head}");
        }
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("Transfer-Encoding: chunked\r\n"), "{head}");
        assert!(
            head.contains("Content-Type: application/json\r\n"),
            "{head}"
        );
        Self(reader)
    }

    /// The next event, or None at the end of the body.
    fn next(&mut self) -> Option<Value> {
        let mut size = String::new();
        self.0.read_line(&mut size).unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        let mut chunk = vec![0; size + 2];
        self.0.read_exact(&mut chunk).unwrap();
        if size == 0 {
            return None;
        }
        assert!(
            chunk.ends_with(b"\n\r\n"),
            "one event and a newline per chunk"
        );
        Some(serde_json::from_slice(&chunk[..size]).unwrap())
    }
}

#[test]
fn a_watch_streams_changes_after_its_resource_version() {
    let kube = KubeServer::start();
    let (_, created) = apply(&kube, "modelcar-deploy", &isvc(&["--a"]), false);
    let selector = "fieldSelector=metadata.name%3Dgranite";
    let mut events = Events::open(
        &kube,
        &format!("watch=1&{selector}&resourceVersion={}", rv(&created)),
    );
    let ready = json!([{"type": "Ready", "status": "True"}]);
    kube.set_status("default", "granite", ready, Some("http://granite.default"));
    let event = events.next().expect("an event");
    assert_eq!(event["type"], "MODIFIED");
    let status = &event["object"]["status"];
    assert_eq!(status["conditions"][0]["type"], "Ready");
    assert!(status["conditions"][0]["lastTransitionTime"].is_string());
    assert_eq!(
        (&status["url"], &status["observedGeneration"]),
        (&json!("http://granite.default"), &json!(1))
    );
    assert_eq!(
        event["object"]["metadata"]["managedFields"],
        created["metadata"]["managedFields"]
    );
    assert_eq!(kube.watches(), 1);
    // From scratch: the current object as ADDED.
    let mut fresh = Events::open(&kube, &format!("watch=true&{selector}"));
    assert_eq!(fresh.next().unwrap()["type"], "ADDED");
    kube.end_watches();
    assert_eq!(fresh.next(), None);
    drop(kube);
    assert_eq!(events.next(), None, "a dropped server ends its watches");
}

#[test]
fn a_watch_from_before_compaction_expires() {
    let kube = KubeServer::start();
    let (_, created) = apply(&kube, "modelcar-deploy", &isvc(&["--a"]), false);
    kube.set_status("default", "granite", json!([]), None);
    kube.compact_watch_history();
    let now = rv(&kube.inference_service("default", "granite").unwrap());
    let mut events = Events::open(
        &kube,
        &format!("watch=true&resourceVersion={}", rv(&created)),
    );
    let event = events.next().unwrap();
    let message = format!("too old resource version: {} ({now})", rv(&created));
    assert_eq!(
        event,
        json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {},
               "status": "Failure", "message": message, "reason": "Expired", "code": 410}})
    );
    assert_eq!(events.next(), None);
}
