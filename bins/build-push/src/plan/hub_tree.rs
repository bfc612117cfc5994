//! A Hub repo's file list as the entries of the directory fetch-model would make of it: the
//! same entries in the same order as a scan of that directory, so the image digest is the
//! same from either source.

use std::collections::BTreeMap;
use std::path::Path;

use modelcar_shared::hub::{is_safe_path, RepoEntry};

use super::{Entry, EntryKind, PlanError};

/// The entries of `files`, with their paths in the image under `image_dir`.
pub(super) fn hub_entries(files: &[RepoEntry], image_dir: &Path) -> Result<Vec<Entry>, PlanError> {
    if files.is_empty() {
        return Err(PlanError::NoHubFiles);
    }
    let mut tree = HubDir::default();
    for file in files {
        if !is_safe_path(&file.path) {
            return Err(PlanError::BadHubPath(file.path.clone()));
        }
        tree.insert(&file.path, file)?;
    }
    let mut entries = Vec::new();
    tree.walk(image_dir, &mut entries);
    Ok(entries)
}

/// A repo's paths as a tree, children sorted by name as [`scan`] sorts a directory's.
#[derive(Default)]
struct HubDir {
    children: BTreeMap<String, HubNode>,
}

enum HubNode {
    Dir(HubDir),
    File(RepoEntry),
}

impl HubDir {
    fn insert(&mut self, path: &str, file: &RepoEntry) -> Result<(), PlanError> {
        // A file where a directory is, or twice: the path is already known to be safe.
        let bad = || PlanError::BadHubPath(file.path.clone());
        let (first, rest) = match path.split_once('/') {
            Some((first, rest)) => (first, Some(rest)),
            None => (path, None),
        };
        match rest {
            None => match self
                .children
                .insert(first.into(), HubNode::File(file.clone()))
            {
                None => Ok(()),
                Some(_) => Err(bad()),
            },
            Some(rest) => {
                let node = self
                    .children
                    .entry(first.into())
                    .or_insert_with(|| HubNode::Dir(HubDir::default()));
                match node {
                    HubNode::Dir(dir) => dir.insert(rest, file),
                    HubNode::File(_) => Err(bad()),
                }
            }
        }
    }

    fn walk(&self, image_dir: &Path, out: &mut Vec<Entry>) {
        for (name, node) in &self.children {
            let image_path = image_dir.join(name);
            match node {
                HubNode::Dir(dir) => {
                    out.push(Entry {
                        image_path: image_path.clone(),
                        kind: EntryKind::Dir,
                    });
                    dir.walk(&image_path, out);
                }
                HubNode::File(file) => out.push(Entry {
                    image_path,
                    kind: EntryKind::HubFile {
                        repo_path: file.path.clone(),
                        size: file.size,
                        lfs_sha256: file.lfs_sha256.clone(),
                        oid: file.oid.clone(),
                        hub_id: file.lfs_sha256.clone().unwrap_or_else(|| file.oid.clone()),
                    },
                }),
            }
        }
    }
}
