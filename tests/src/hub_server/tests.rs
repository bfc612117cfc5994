//! Each endpoint over a real socket: info and tree paging, ranges through the CDN redirect,
//! gated access, cut downloads, byte counters and keep-alive.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::repo::{git_blob_oid, hex};
use super::{HubRepo, HubServer};

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
    let mut stream = TcpStream::connect(("127.0.0.1", hub.ports[0])).unwrap();
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

/// Where the resolve URL of an LFS file redirects: the CDN origin, whose path every port of
/// the test Hub serves.
fn cdn_location(hub: &HubServer, path: &str) -> String {
    let redirect = get(hub, &format!("/org/model/resolve/main/{path}"));
    cdn_path(hub, redirect.header("location").unwrap())
}

fn cdn_path(hub: &HubServer, location: &str) -> String {
    let cdn = format!("http://127.0.0.1:{}", hub.ports[1]);
    let path = location.strip_prefix(&cdn);
    path.unwrap_or_else(|| panic!("{location} is not on the CDN origin {cdn}"))
        .to_owned()
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
    let location = &cdn_path(&hub, redirect.header("location").unwrap());
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
    let mut stream = TcpStream::connect(("127.0.0.1", hub.ports[0])).unwrap();
    let one = "GET /org/model/resolve/main/hello.txt HTTP/1.1\r\n\r\n";
    let two = "HEAD /org/model/resolve/main/hello.txt HTTP/1.1\r\nConnection: close\r\n\r\n";
    stream.write_all(format!("{one}{two}").as_bytes()).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    assert_eq!(raw.matches("HTTP/1.1 200 OK").count(), 2, "{raw}");
    assert!(raw.contains("\r\n\r\nhello\nHTTP/1.1"), "{raw}");
}
