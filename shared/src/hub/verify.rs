//! What a downloaded file is checked against: an LFS file's sha256 as the Hub lists it, or for
//! a file kept in git its blob id (sha1 over `blob <size>\0` and the content). The sha256 is
//! computed for every file, since the metadata file records it.

use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::client::RepoEntry;
use crate::digest::hex;

pub struct FileHasher {
    sha256: Sha256,
    git_blob: Option<Sha1>,
}

/// A finished file's hashes.
pub struct Hashes {
    pub sha256: String,
    git_blob: Option<String>,
}

/// How a file failed its check.
#[derive(Debug)]
pub struct Mismatch {
    pub what: &'static str,
    pub expected: String,
    pub actual: String,
}

impl FileHasher {
    pub fn new(entry: &RepoEntry) -> Self {
        let git_blob = entry.lfs_sha256.is_none().then(|| {
            let mut sha1 = Sha1::new();
            sha1.update(format!("blob {}\0", entry.size).as_bytes());
            sha1
        });
        Self {
            sha256: Sha256::new(),
            git_blob,
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.sha256.update(bytes);
        if let Some(sha1) = &mut self.git_blob {
            sha1.update(bytes);
        }
    }

    /// Hashes everything `reader` gives (a file already on disk); returns how many bytes.
    pub fn update_from(&mut self, reader: &mut impl std::io::Read) -> std::io::Result<u64> {
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0;
        loop {
            match reader.read(&mut buf)? {
                0 => return Ok(total),
                n => {
                    self.update(&buf[..n]);
                    total += n as u64;
                }
            }
        }
    }

    pub fn finish(self) -> Hashes {
        Hashes {
            sha256: hex(&self.sha256.finalize()),
            git_blob: self.git_blob.map(|h| hex(&h.finalize())),
        }
    }
}

impl Hashes {
    /// Whether these are the hashes the Hub lists for `entry`.
    pub fn check(&self, entry: &RepoEntry) -> Result<(), Mismatch> {
        let (what, expected, actual) = match (&entry.lfs_sha256, &self.git_blob) {
            (Some(lfs), _) => ("sha256", lfs, &self.sha256),
            (None, Some(blob)) => ("git blob id", &entry.oid, blob),
            (None, None) => unreachable!("a file kept in git is hashed as a git blob"),
        };
        match expected.eq_ignore_ascii_case(actual) {
            true => Ok(()),
            false => Err(Mismatch {
                what,
                expected: expected.clone(),
                actual: actual.clone(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(content: &[u8], lfs: Option<String>, oid: &str) -> RepoEntry {
        RepoEntry {
            path: "f".into(),
            size: content.len() as u64,
            oid: oid.into(),
            lfs_sha256: lfs,
        }
    }

    #[test]
    fn git_blob_ids_match_what_git_computes() {
        // `printf 'hello\n' | git hash-object --stdin`
        let e = entry(b"hello\n", None, "ce013625030ba8dba906f756967f9e9ca394464a");
        let mut h = FileHasher::new(&e);
        h.update(b"hel");
        h.update(b"lo\n");
        assert!(h.finish().check(&e).is_ok());
        let mut bad = FileHasher::new(&e);
        bad.update(b"jello\n");
        assert_eq!(bad.finish().check(&e).err().unwrap().what, "git blob id");
    }

    #[test]
    fn lfs_files_are_checked_by_sha256() {
        let sha = crate::digest::sha256_digest(b"weights");
        let e = entry(
            b"weights",
            Some(sha.trim_start_matches("sha256:").into()),
            "x",
        );
        let mut h = FileHasher::new(&e);
        h.update(b"weights");
        assert!(h.finish().check(&e).is_ok());
    }
}
