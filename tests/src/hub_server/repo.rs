//! The repos the Hub serves: files per branch or tag, their git blob ids and LFS pointers,
//! and each revision's commit sha.

use std::sync::Arc;

use serde_json::{json, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Files at least this large are stored in LFS, as `git lfs` setups on the Hub do.
const LFS_THRESHOLD: usize = 1024;
/// Weights are always LFS on the Hub (its default `.gitattributes`), whatever their size.
const LFS_EXTENSIONS: [&str; 4] = [".safetensors", ".bin", ".gguf", ".pth"];

/// Paths and bytes.
type Files = Vec<(String, Vec<u8>)>;

/// A model repo to serve: its `main` branch, and any other branches or tags.
pub struct HubRepo {
    id: String,
    gated: bool,
    /// Branch or tag names with their files; the first is `main`.
    revisions: Vec<(String, Files)>,
}

impl HubRepo {
    /// `id` is `org/name`; the repo starts with an empty `main`.
    pub fn new(id: &str) -> Self {
        assert!(
            id.matches('/').count() == 1,
            "a Hub repo id is org/name: {id}"
        );
        Self {
            id: id.to_owned(),
            gated: false,
            revisions: vec![("main".to_owned(), Vec::new())],
        }
    }

    /// A file on `main`.
    pub fn file(mut self, path: &str, bytes: Vec<u8>) -> Self {
        self.revisions[0].1.push((path.to_owned(), bytes));
        self
    }

    /// Only an accepted token may read it.
    pub fn gated(mut self) -> Self {
        self.gated = true;
        self
    }

    /// Another branch or tag, with its own files and so its own commit sha.
    pub fn revision(mut self, name: &str, files: Files) -> Self {
        self.revisions.push((name.to_owned(), files));
        self
    }
}

/// A file as the Hub describes it.
pub(super) struct HubFile {
    pub(super) path: String,
    pub(super) bytes: Arc<Vec<u8>>,
    /// Git blob sha1: of the bytes, or for an LFS file of the pointer git holds in its place.
    pub(super) oid: String,
    /// The sha256 of the bytes, for an LFS file.
    pub(super) lfs: Option<String>,
}

impl HubFile {
    fn new(path: String, bytes: Vec<u8>) -> Self {
        let is_lfs =
            bytes.len() >= LFS_THRESHOLD || LFS_EXTENSIONS.iter().any(|e| path.ends_with(e));
        let lfs = is_lfs.then(|| hex(&Sha256::digest(&bytes)));
        let oid = match &lfs {
            Some(sha) => git_blob_oid(lfs_pointer(sha, bytes.len()).as_bytes()),
            None => git_blob_oid(&bytes),
        };
        Self {
            path,
            bytes: Arc::new(bytes),
            oid,
            lfs,
        }
    }

    pub(super) fn entry(&self) -> Value {
        let size = self.bytes.len();
        let mut entry = json!({"type": "file", "oid": self.oid, "size": size, "path": self.path});
        if let Some(sha) = &self.lfs {
            let pointer_size = lfs_pointer(sha, size).len();
            entry["lfs"] = json!({"oid": sha, "size": size, "pointerSize": pointer_size});
        }
        entry
    }
}

pub(super) struct Revision {
    pub(super) name: String,
    pub(super) sha: String,
    /// Sorted by path, as the Hub lists them.
    pub(super) files: Vec<HubFile>,
}

pub(super) struct Repo {
    pub(super) id: String,
    pub(super) gated: bool,
    pub(super) revisions: Vec<Revision>,
}

impl Repo {
    pub(super) fn build(repo: HubRepo) -> Self {
        let revisions = repo.revisions.into_iter().map(|(name, files)| {
            let mut files: Vec<HubFile> =
                files.into_iter().map(|(p, b)| HubFile::new(p, b)).collect();
            files.sort_by(|a, b| a.path.cmp(&b.path));
            // Deterministic, and different for every repo, revision name and file set.
            let mut hasher = Sha1::new();
            hasher.update(format!("commit\0{}\0{name}\0", repo.id));
            for file in &files {
                hasher.update(format!("{}\0{}\0", file.path, file.oid));
            }
            let sha = hex(&hasher.finalize());
            Revision { name, sha, files }
        });
        Self {
            revisions: revisions.collect(),
            id: repo.id,
            gated: repo.gated,
        }
    }
}

/// The object id git gives a file's bytes, which the Hub reports as `oid`.
pub(super) fn git_blob_oid(bytes: &[u8]) -> String {
    let mut hasher = Sha1::new();
    hasher.update(format!("blob {}\0", bytes.len()));
    hasher.update(bytes);
    hex(&hasher.finalize())
}

/// The pointer file git stores for an LFS file.
fn lfs_pointer(sha256: &str, size: usize) -> String {
    format!("version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n")
}

pub(super) use crate::tools::hex;
