//! Blob uploads as each [`Personality`] keeps them: open, PATCH, GET status, commit.

use std::fs;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::personality::Personality;
use super::settings::Settings;
use super::table::{Table, Upload};
use super::wire::{hex_digest, reply, sha256_prefix, Answer};
use crate::http_server::Request;

const GHCR_LIMIT: u64 = 4 << 20;
const S3_MIN_PART: u64 = 5 << 20;

pub(super) struct Uploads<'a> {
    pub root: PathBuf,
    pub table: &'a Table,
    pub settings: &'a Settings,
    pub personality: Personality,
    /// Which node of an HA pair this request reached.
    pub node: u64,
    /// The host clients name the registry by (Quay's absolute URLs use its configured
    /// SERVER_HOSTNAME, which is that name, not its own address behind a proxy).
    pub host: String,
}

impl Uploads<'_> {
    fn path(&self, uuid: &str) -> PathBuf {
        self.root.join("uploads").join(uuid)
    }

    fn get(&self, uuid: &str) -> Option<Upload> {
        self.table.lock().unwrap().get(uuid).cloned()
    }

    fn update(&self, uuid: &str, f: impl FnOnce(&mut Upload)) -> bool {
        match self.table.lock().unwrap().get_mut(uuid) {
            Some(upload) => {
                f(upload);
                true
            }
            None => false,
        }
    }

    pub fn forget(&self, uuid: &str) {
        self.table.lock().unwrap().remove(uuid);
        let _ = fs::remove_file(self.path(uuid));
    }

    pub fn start(&self, name: &str, uuid: &str) -> String {
        let path = self.path(uuid);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"").unwrap();
        self.table.lock().unwrap().insert(
            uuid.into(),
            Upload {
                count: 0,
                sha: Sha256::new(),
                node: None,
                first_part_end: None,
                small_part: false,
                last_part: None,
                patches: 0,
            },
        );
        let mut headers = self.location(name, uuid, 0);
        headers.push(("Docker-Upload-UUID".into(), uuid.into()));
        headers.push(("Range".into(), self.range_on_start()));
        if let Some(min) = self.settings.min_chunk {
            headers.push(("OCI-Chunk-Min-Length".into(), min.to_string()));
        }
        reply(202, &headers, "")
    }

    /// The upload URL as this registry writes it.
    fn location(&self, name: &str, uuid: &str, count: u64) -> Vec<(String, String)> {
        let url = format!("/v2/{name}/blobs/uploads/{uuid}");
        let url = match self.personality {
            Personality::Distribution3 => format!("{url}?_state={uuid}.{count}"),
            Personality::Quay => format!("http://{}{url}", self.host),
            _ => url,
        };
        if !self.settings.known_as_localhost {
            return vec![("Location".into(), url)];
        }
        let port = self.host.rsplit_once(':').map_or("80", |(_, port)| port);
        let name = format!("localhost:{port}");
        let url = match url.starts_with('/') {
            true => format!("http://{name}{url}"),
            false => url.replacen(&self.host, &name, 1),
        };
        vec![("Location".into(), url)]
    }

    fn range_on_start(&self) -> String {
        match self.personality {
            Personality::Quay => "bytes=0--1".into(),
            _ => "0-0".into(),
        }
    }

    /// The `Range` this registry reports for an upload, on a GET.
    fn range_on_status(&self, upload: &Upload) -> String {
        match self.personality {
            Personality::Quay => format!("bytes=0-{}", upload.count),
            Personality::Ecr => spec_range(upload.first_part_end.unwrap_or(upload.count)),
            _ => spec_range(upload.count),
        }
    }

    pub fn status(&self, name: &str, uuid: &str) -> String {
        let Some(upload) = self.get(uuid) else {
            return unknown();
        };
        let mut upload = upload;
        if self.personality == Personality::ArtifactoryHa
            && upload.node.is_some_and(|n| n != self.node)
        {
            upload.count = 0;
        }
        let mut headers = match self.personality {
            Personality::Quay => Vec::new(),
            _ => self.location(name, uuid, upload.count),
        };
        headers.push(("Docker-Upload-UUID".into(), uuid.into()));
        headers.push(("Range".into(), self.range_on_status(&upload)));
        reply(204, &headers, "")
    }

    pub fn patch(&self, name: &str, uuid: &str, request: &Request, body: &mut dyn Read) -> Answer {
        let Some(upload) = self.get(uuid) else {
            return Answer::Reply(unknown());
        };
        let length: u64 = request
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let start = match self.check_patch(name, uuid, &upload, request, length) {
            Ok(start) => start,
            Err(refusal) => return Answer::Reply(refusal),
        };
        // Quay skips what it holds already of a request that starts before its count.
        let skip = match self.personality {
            Personality::Quay if start > 0 && start < upload.count => upload.count - start,
            _ => 0,
        };
        let write_at = start + skip;
        let (received, written) = self.receive(uuid, write_at, skip, body);
        let cut = received < length;
        if cut && self.personality.loses_cut_upload() {
            self.forget(uuid);
            return Answer::Close;
        }
        let node = self.node;
        let personality = self.personality;
        let known = self.update(uuid, |u| {
            u.patches += 1;
            match personality {
                // Quay writes its record at the end, from what it read at the start.
                Personality::Quay => u.count = upload.count + written,
                Personality::Ecr if cut => {}
                Personality::Ecr => {
                    u.small_part |= u.last_part.is_some_and(|prev| prev < S3_MIN_PART);
                    u.last_part = Some(written);
                    u.count = write_at + written;
                    u.first_part_end.get_or_insert(u.count);
                }
                Personality::ArtifactoryHa => {
                    u.node.get_or_insert(node);
                    u.count = write_at + written;
                }
                // Counted as the bytes arrived.
                Personality::Distribution3 | Personality::Ghcr => {}
                Personality::ArtifactRegistry => u.count = write_at + written,
            }
        });
        if !known {
            // Another request committed or cancelled it meanwhile (Quay: the record is gone,
            // `update_blob_upload` returns None: BLOB_UPLOAD_INVALID).
            return Answer::Reply(reply(
                400,
                &[],
                r#"{"errors":[{"code":"BLOB_UPLOAD_INVALID","message":"blob upload invalid"}]}"#,
            ));
        }
        self.settings.patches.lock().unwrap().push(received);
        let upload = self.get(uuid).expect("just updated");
        let mut headers = self.location(name, uuid, upload.count);
        headers.push(("Docker-Upload-UUID".into(), uuid.into()));
        let range = match self.personality {
            Personality::Quay => format!("0-{}", upload.count as i64 - 1),
            Personality::Ecr => spec_range(upload.first_part_end.unwrap_or(upload.count)),
            _ => spec_range(upload.count),
        };
        headers.push(("Range".into(), range));
        Answer::Reply(reply(202, &headers, ""))
    }

    /// The personality's checks before any byte is taken: `Ok(start)`, or the refusal.
    fn check_patch(
        &self,
        name: &str,
        uuid: &str,
        upload: &Upload,
        request: &Request,
        length: u64,
    ) -> Result<u64, String> {
        let parsed = request.header("content-range").map(parse_range);
        match self.personality {
            Personality::Distribution3 => {
                check_state(uuid, upload.count, request.param("_state"))?;
                match parsed {
                    Some(None) => Err(reply(500, &[], r#"{"errors":[{"code":"UNKNOWN"}]}"#)),
                    Some(Some(start)) if start != upload.count => Err(range_invalid()),
                    _ => Ok(upload.count),
                }
            }
            Personality::Quay => match parsed {
                None => Ok(0),
                Some(None) => Err(reply(
                    400,
                    &[],
                    r#"{"errors":[{"code":"INVALID_REQUEST","message":"Invalid range header"}]}"#,
                )),
                Some(Some(start)) if start > 0 && start > upload.count => {
                    let mut headers = self.location(name, uuid, upload.count);
                    headers.push(("Range".into(), format!("0-{}", upload.count)));
                    headers.push(("Docker-Upload-UUID".into(), uuid.into()));
                    Err(reply(416, &headers, ""))
                }
                Some(Some(start)) => Ok(start),
            },
            Personality::Ghcr => match parsed {
                Some(_) if length > GHCR_LIMIT => Err(reply(
                    416,
                    &[],
                    r#"{"errors":[{"code":"REQUESTED_RANGE_NOT_SATISFIABLE","message":"the request body is too large and exceeds the maximum permissible limit of 4.00MiB"}]}"#,
                )),
                Some(Some(start)) if start != upload.count => Err(range_invalid()),
                _ => Ok(upload.count),
            },
            Personality::ArtifactRegistry => match (parsed, upload.patches) {
                (None, 0) => Ok(0),
                _ => Err(reply(
                    400,
                    &[],
                    r#"{"errors":[{"code":"UNSUPPORTED","message":"chunked upload is not supported"}]}"#,
                )),
            },
            Personality::Ecr => match parsed {
                Some(Some(start)) if start != upload.count => Err(range_invalid()),
                _ => Ok(upload.count),
            },
            Personality::ArtifactoryHa => match upload.node {
                Some(node) if node != self.node => Err(unknown()),
                _ => match parsed {
                    Some(Some(start)) if start != upload.count => Err(range_invalid()),
                    _ => Ok(upload.count),
                },
            },
        }
    }

    /// Takes the body as it arrives, writing it from `at` after skipping `skip` bytes; Quay
    /// hashes as it goes, the others count as they go (so a GET sees the upload grow).
    /// Returns (bytes received, bytes written).
    fn receive(&self, uuid: &str, at: u64, mut skip: u64, body: &mut dyn Read) -> (u64, u64) {
        let Ok(file) = fs::OpenOptions::new().write(true).open(self.path(uuid)) else {
            return (0, 0);
        };
        let mut buf = vec![0u8; 64 * 1024];
        let (mut received, mut written) = (0u64, 0u64);
        let mut sha = self.get(uuid).map(|u| u.sha);
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            received += n as u64;
            let dropped = skip.min(n as u64) as usize;
            skip -= dropped as u64;
            let piece = &buf[dropped..n];
            if piece.is_empty() {
                continue;
            }
            if file.write_all_at(piece, at + written).is_err() {
                break;
            }
            written += piece.len() as u64;
            if let Some(sha) = &mut sha {
                sha.update(piece);
            }
            if matches!(
                self.personality,
                Personality::Distribution3 | Personality::Ghcr
            ) {
                self.update(uuid, |u| u.count = at + written);
            }
        }
        if self.personality == Personality::Quay {
            if let Some(sha) = sha {
                self.update(uuid, |u| u.sha = sha);
            }
        }
        (received, written)
    }

    /// PUT `?digest=`: the rest of the body, then the commit.
    pub fn finish(&self, uuid: &str, request: &Request, body: &mut dyn Read) -> Answer {
        let Some(upload) = self.get(uuid) else {
            return Answer::Reply(unknown());
        };
        if self.personality == Personality::Distribution3 {
            if let Err(refusal) = check_state(uuid, upload.count, request.param("_state")) {
                return Answer::Reply(refusal);
            }
        }
        let (_, written) = self.receive(uuid, upload.count, 0, body);
        self.update(uuid, |u| u.count += written);
        if self.settings.take_commit_failure() {
            // Quay's database error mid-commit: the upload is deleted, no answer is sent.
            self.forget(uuid);
            return Answer::Close;
        }
        if self.settings.take_commit_500() {
            self.forget(uuid);
            return Answer::Reply(reply(
                500,
                &[],
                r#"{"errors":[{"code":"UNKNOWN","message":"unknown error"}]}"#,
            ));
        }
        let upload = self.get(uuid).expect("present");
        let digest = request.param("digest").unwrap_or_default().to_string();
        let held = match self.personality {
            Personality::Quay => hex_digest(&upload.sha.clone().finalize()),
            _ => sha256_prefix(&self.path(uuid), upload.count),
        };
        if upload.small_part {
            self.forget(uuid);
            return Answer::Reply(reply(
                400,
                &[],
                r#"{"errors":[{"code":"BLOB_UPLOAD_INVALID","message":"EntityTooSmall: a part is under 5 MiB"}]}"#,
            ));
        }
        if held != digest {
            self.forget(uuid);
            return Answer::Reply(reply(400, &[], r#"{"errors":[{"code":"DIGEST_INVALID"}]}"#));
        }
        let blob = self.root.join("blobs").join(digest.replace(':', "-"));
        fs::create_dir_all(blob.parent().unwrap()).unwrap();
        let data = self.path(uuid);
        let file = fs::OpenOptions::new().write(true).open(&data).unwrap();
        file.set_len(upload.count).unwrap();
        fs::rename(&data, &blob).unwrap();
        self.table.lock().unwrap().remove(uuid);
        Answer::Reply(reply(
            201,
            &[
                ("Location".into(), format!("/v2/blobs/{digest}")),
                ("Docker-Content-Digest".into(), digest.clone()),
            ],
            "",
        ))
    }
}

/// distribution's `_state` check (`ResumeBlobUpload`): missing or for another upload, 400;
/// for another offset, 416.
fn check_state(uuid: &str, count: u64, state: Option<&str>) -> Result<(), String> {
    let invalid = || reply(400, &[], r#"{"errors":[{"code":"BLOB_UPLOAD_INVALID"}]}"#);
    let (for_uuid, offset) = state.and_then(|s| s.rsplit_once('.')).ok_or_else(invalid)?;
    let offset: u64 = offset.parse().map_err(|_| invalid())?;
    if for_uuid != uuid {
        return Err(invalid());
    }
    if offset != count {
        return Err(range_invalid());
    }
    Ok(())
}

/// `<start>-<end>` as distribution and Quay parse it: digits only. `None`: not that.
fn parse_range(value: &str) -> Option<u64> {
    let (start, end) = value.split_once('-')?;
    end.parse::<u64>().ok()?;
    start.parse().ok()
}

fn spec_range(count: u64) -> String {
    format!("0-{}", count.saturating_sub(1))
}

fn range_invalid() -> String {
    reply(
        416,
        &[],
        r#"{"errors":[{"code":"RANGE_INVALID","message":"invalid content range"}]}"#,
    )
}

fn unknown() -> String {
    reply(
        404,
        &[],
        r#"{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN","message":"blob upload unknown to registry"}]}"#,
    )
}
