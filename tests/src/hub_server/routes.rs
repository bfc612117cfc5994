//! The Hub's endpoints: model info, the paged tree, resolve with its CDN redirect, and the
//! checks and errors in the Hub's order (token, repo, gated access, revision, entry).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

use serde_json::{json, Value};
use sha1::Sha1;
use sha2::Digest;

use super::conn::{serve_bytes, Body, Reply};
use super::repo::{hex, Repo, Revision};
use super::{Hostile, Hub};
use crate::http_server::Request;

const LAST_MODIFIED: &str = "2026-01-01T00:00:00.000Z";

impl Hub {
    pub(super) fn handle(&self, request: &Request) -> Reply {
        let path = request.path.trim_start_matches('/');
        if let Some(sha256) = path.strip_prefix("cdn/") {
            return self.cdn(sha256, request);
        }
        let found = match path.strip_prefix("api/models/") {
            Some(rest) => self.api(rest, request),
            None => self.resolve(path, request),
        };
        found.unwrap_or_else(|refusal| refusal)
    }

    /// `{repo}/revision/{rev}` and `{repo}/tree/{rev}[/{path}]`.
    fn api(&self, rest: &str, request: &Request) -> Result<Reply, Reply> {
        let mut parts = rest.splitn(4, '/');
        let (org, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let kind = parts.next();
        let after = parts.next().unwrap_or("");
        // Clients encode `/` in a revision, so the first raw `/` ends it.
        let (rev, sub) = after.split_once('/').unwrap_or((after, ""));
        let (repo, revision) = self.locate(request, org, name, &decode(rev))?;
        match kind {
            Some("revision") => Ok(info(repo, revision)),
            Some("tree") => self.tree(revision, &decode(sub), request),
            _ => Err(Reply::error(404, None, "Not Found")),
        }
    }

    /// The checks in the Hub's order: the token, the repo, access to it, then the revision.
    fn locate(
        &self,
        request: &Request,
        org: &str,
        name: &str,
        rev: &str,
    ) -> Result<(&Repo, &Revision), Reply> {
        let authenticated = self.token(request)?;
        let id = format!("{}/{}", decode(org), decode(name));
        let url = format!("{}{}", self.endpoint, request.target);
        let repo = self.repos.iter().find(|r| r.id == id).ok_or_else(|| {
            let message = format!("Repository Not Found for url: {url}.");
            Reply::error(404, Some("RepoNotFound"), &message)
        })?;
        if repo.gated && !authenticated {
            let message = format!(
                "Access to model {id} is restricted. You must have access to it and be \
                 authenticated to access it. Please log in."
            );
            return Err(Reply::error(401, Some("GatedRepo"), &message));
        }
        let revision = repo
            .revisions
            .iter()
            .find(|r| r.name == rev || r.sha == rev);
        let revision = revision.ok_or_else(|| {
            let message = format!("Invalid rev id: {rev}");
            Reply::error(404, Some("RevisionNotFound"), &message)
        })?;
        Ok((repo, revision))
    }

    /// Whether an accepted token came; a token not accepted is refused on any repo, as the
    /// Hub does, even a public one.
    fn token(&self, request: &Request) -> Result<bool, Reply> {
        let Some(value) = request.header("authorization") else {
            return Ok(false);
        };
        let token = value.strip_prefix("Bearer ").unwrap_or(value).trim();
        if self.tokens.lock().unwrap().iter().any(|t| t == token) {
            Ok(true)
        } else {
            let message = "Invalid credentials in Authorization header";
            Err(Reply::error(401, None, message))
        }
    }

    /// One page of the tree under `sub`; a `Link` header points at the next one.
    fn tree(&self, revision: &Revision, sub: &str, request: &Request) -> Result<Reply, Reply> {
        let sub = sub.trim_end_matches('/');
        let recursive = request
            .param("recursive")
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
        let entries = tree_entries(revision, sub, recursive);
        if !sub.is_empty() && entries.is_empty() {
            return Err(self.entry_not_found(request));
        }
        let start = request.param("cursor").and_then(|c| c.parse().ok());
        let start: usize = start.unwrap_or(0);
        let end = (start + self.page_size.load(Ordering::SeqCst)).min(entries.len());
        let page = entries.get(start..end).unwrap_or_default().to_vec();
        let hostile = self.hostile.lock().unwrap().clone();
        let reply = match hostile {
            Hostile::HugePage(bytes) => Reply::new(200, Body::Bytes(huge_json(bytes, &page))),
            _ => Reply::json(200, &Value::Array(page)),
        };
        let flag = if recursive { "recursive=true&" } else { "" };
        let next = match hostile {
            Hostile::LinkToSelf => {
                format!("{}{}?{flag}cursor={start}", self.endpoint, request.path)
            }
            _ if end >= entries.len() => return Ok(reply),
            Hostile::LinkTo(origin) => format!("{origin}{}?{flag}cursor={end}", request.path),
            _ => format!("{}{}?{flag}cursor={end}", self.endpoint, request.path),
        };
        Ok(reply.with("Link", format!("<{next}>; rel=\"next\"")))
    }

    /// `{repo}/resolve/{rev}/{path}`: the bytes, or for an LFS file a redirect to the CDN.
    fn resolve(&self, path: &str, request: &Request) -> Result<Reply, Reply> {
        let parts: Vec<&str> = path.splitn(5, '/').collect();
        let [org, name, "resolve", rev, file] = parts[..] else {
            return Err(Reply::error(404, None, "Not Found"));
        };
        let (_, revision) = self.locate(request, org, name, &decode(rev))?;
        let wanted = decode(file);
        let file = revision.files.iter().find(|f| f.path == wanted);
        let file = file.ok_or_else(|| self.entry_not_found(request))?;
        let reply = match &file.lfs {
            // Absolute, as the Hub's CDN URLs are: clients read the file's metadata from this
            // 302 itself and follow only relative redirects on HEAD.
            Some(sha256) => Reply::new(302, Body::Bytes(Vec::new()))
                .with("Location", format!("{}/cdn/{sha256}", self.cdn_endpoint))
                .with("X-Linked-Etag", format!("\"{sha256}\""))
                .with("X-Linked-Size", file.bytes.len()),
            None => serve_bytes(request, &file.path, &file.bytes),
        };
        Ok(reply
            .with("ETag", format!("\"{}\"", file.oid))
            .with("X-Repo-Commit", &revision.sha))
    }

    fn entry_not_found(&self, request: &Request) -> Reply {
        let message = format!(
            "Entry Not Found for url: {}{}.",
            self.endpoint, request.target
        );
        Reply::error(404, Some("EntryNotFound"), &message)
    }

    /// LFS bytes by sha256; like a CDN URL it needs no token.
    fn cdn(&self, sha256: &str, request: &Request) -> Reply {
        match self.cdn.get(sha256) {
            Some((path, bytes)) => {
                serve_bytes(request, path, bytes).with("ETag", format!("\"{sha256}\""))
            }
            None => Reply::error(404, None, "Not Found"),
        }
    }
}

/// The model info the Hub gives for one revision.
fn info(repo: &Repo, revision: &Revision) -> Reply {
    let siblings: Vec<Value> = revision
        .files
        .iter()
        .map(|f| json!({ "rfilename": f.path }))
        .collect();
    let gated: Value = if repo.gated {
        "auto".into()
    } else {
        false.into()
    };
    Reply::json(
        200,
        &json!({
            "_id": &hex(&Sha1::digest(repo.id.as_bytes()))[..24],
            "id": repo.id,
            "modelId": repo.id,
            "sha": revision.sha,
            "private": false,
            "gated": gated,
            "siblings": siblings,
            "lastModified": LAST_MODIFIED,
        }),
    )
}

/// Entries under `sub` ("" for the root), directories too, sorted by path: all of them when
/// `recursive`, else only the direct children.
fn tree_entries(revision: &Revision, sub: &str, recursive: bool) -> Vec<Value> {
    let prefix = format!("{sub}/");
    let prefix = prefix.trim_start_matches('/');
    let mut dirs = BTreeSet::new();
    let mut entries = BTreeMap::new();
    for file in revision.files.iter().filter(|f| f.path.starts_with(prefix)) {
        let rest = &file.path[prefix.len()..];
        for (slash, _) in rest.match_indices('/') {
            dirs.insert(format!("{prefix}{}", &rest[..slash]));
            if !recursive {
                break;
            }
        }
        if recursive || !rest.contains('/') {
            entries.insert(file.path.clone(), file.entry());
        }
    }
    for dir in dirs {
        let oid = hex(&Sha1::digest(format!("tree {dir}").as_bytes()));
        let entry = json!({"type": "directory", "oid": oid, "size": 0, "path": dir});
        entries.insert(dir, entry);
    }
    entries.into_values().collect()
}

/// URL path decoding: `%XX` escapes only (`+` is itself in a path); bad escapes kept as-is.
fn decode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let escaped = s.get(i + 1..i + 3).filter(|_| s.as_bytes()[i] == b'%');
        let byte = escaped.and_then(|hex| u8::from_str_radix(hex, 16).ok());
        out.push(byte.unwrap_or(s.as_bytes()[i]));
        i += if byte.is_some() { 3 } else { 1 };
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A JSON array of `bytes` bytes or a little more: `page`'s entries over and over.
fn huge_json(bytes: usize, page: &[Value]) -> Vec<u8> {
    let entry = page
        .first()
        .map_or_else(|| "{}".to_string(), Value::to_string);
    let mut out = Vec::with_capacity(bytes + entry.len() + 2);
    out.push(b'[');
    while out.len() < bytes {
        out.extend_from_slice(entry.as_bytes());
        out.push(b',');
    }
    out.extend_from_slice(entry.as_bytes());
    out.push(b']');
    out
}
