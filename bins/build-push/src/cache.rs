//! The digest cache (`<ws>/.modelcar/blobs.json`): a layer's inputs (the files' path, size,
//! mtime, inode and device, and the tar format settings) -> the layer digest. It lets a rerun
//! ask the registry "do you have this layer?" without reading the model again. A miss costs
//! nothing but a full upload; a hit is always checked against the registry (HEAD), and a layer
//! that must be uploaded anyway is hashed again while it is sent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use modelcar_shared::digest::Digest;
use modelcar_shared::state_file;

use crate::plan::{EntryKind, LayerPlan};

/// Bumped whenever the tar layout changes, so old entries stop matching.
const LAYOUT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedLayer {
    /// Checked when the cache is read: the file is on the shared volume.
    pub digest: Digest,
    pub size: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    #[serde(default)]
    layers: BTreeMap<String, CachedLayer>,
}

#[derive(Debug)]
pub struct DigestCache {
    path: Option<PathBuf>,
    layers: std::sync::Mutex<BTreeMap<String, CachedLayer>>,
}

impl DigestCache {
    /// No cache: every layer is read and sent.
    pub fn disabled() -> Self {
        Self {
            path: None,
            layers: Default::default(),
        }
    }

    /// Loads the cache at `path`. A missing or unreadable cache is an empty one: it holds no
    /// data of its own, only shortcuts.
    pub fn load(path: PathBuf) -> Self {
        let file: CacheFile = state_file::load(&path);
        Self {
            path: Some(path),
            layers: std::sync::Mutex::new(file.layers),
        }
    }

    pub fn get(&self, key: &str) -> Option<CachedLayer> {
        self.layers.lock().ok()?.get(key).cloned()
    }

    /// Records a layer, merged under the lock with what other processes wrote meanwhile.
    pub fn record(&self, key: &str, layer: CachedLayer) -> std::io::Result<()> {
        if let Ok(mut layers) = self.layers.lock() {
            layers.insert(key.into(), layer.clone());
        }
        let Some(path) = &self.path else {
            return Ok(());
        };
        state_file::update(path, |file: &mut CacheFile| {
            file.layers.insert(key.into(), layer);
        })
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

/// The cache key of a layer: a hash over everything its bytes depend on.
pub fn layer_key(plan: &LayerPlan, mtime: u64) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!("layout {LAYOUT_VERSION} mtime {mtime}\n"));
    for entry in &plan.entries {
        let line = match &entry.kind {
            EntryKind::Dir => format!("d {}\n", entry.image_path.display()),
            EntryKind::Symlink { target } => {
                format!("l {} {}\n", entry.image_path.display(), target.display())
            }
            EntryKind::HubFile {
                repo_path,
                size,
                hub_id,
                ..
            } => format!(
                "h {} {repo_path} {size} {hub_id}\n",
                entry.image_path.display()
            ),
            EntryKind::File { identity, .. } => format!(
                "f {} {}\n",
                entry.image_path.display(),
                serde_json::to_string(identity).expect("identity serializes")
            ),
        };
        hasher.update(line);
    }
    modelcar_shared::digest::format_digest(&hasher.finalize()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::plan_layers;

    #[test]
    fn key_changes_with_content_identity_and_settings() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("w.bin");
        std::fs::write(&f, b"one").unwrap();
        let key = |mtime| layer_key(&plan_layers(tmp.path(), "/models", 0).unwrap()[1], mtime);
        let first = key(0);
        assert_eq!(first, key(0));
        assert_ne!(first, key(1), "SOURCE_DATE_EPOCH changes the bytes");
        std::fs::write(&f, b"two!").unwrap();
        assert_ne!(first, key(0), "a rewritten file changes the key");
    }

    #[test]
    fn records_persist_and_merge_across_instances() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("blobs.json");
        let a = DigestCache::load(path.clone());
        let b = DigestCache::load(path.clone());
        a.record(
            "k1",
            CachedLayer {
                digest: modelcar_shared::digest::sha256_digest(b"1"),
                size: 1,
            },
        )
        .unwrap();
        b.record(
            "k2",
            CachedLayer {
                digest: modelcar_shared::digest::sha256_digest(b"2"),
                size: 2,
            },
        )
        .unwrap();
        let c = DigestCache::load(path.clone());
        assert_eq!(c.get("k1").unwrap().size, 1);
        assert_eq!(c.get("k2").unwrap().size, 2);
        std::fs::write(&path, "garbage").unwrap();
        assert!(DigestCache::load(path).get("k1").is_none());
    }
}
