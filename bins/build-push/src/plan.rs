//! Which files go into which layer (`docs/design.md`, "The ModelCar image"): one layer per large file, one for
//! everything else, in sorted path order. Planning reads only metadata, and checks up front
//! what would otherwise fail half-way through a push: unreadable files, symlinks that leave
//! the model directory, device files.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// One entry of the image's file tree, below the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path inside the image, relative, e.g. `models/sub/config.json`.
    pub image_path: PathBuf,
    pub kind: EntryKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File {
        source: PathBuf,
        size: u64,
        /// What the digest cache compares to know the file did not change.
        identity: FileIdentity,
    },
    Symlink {
        target: PathBuf,
    },
    /// A file of a Hugging Face repo at one commit, streamed from the Hub into the layer.
    HubFile {
        /// Its path in the repo.
        repo_path: String,
        size: u64,
        /// The sha256 the Hub lists for an LFS file, checked as the bytes pass.
        lfs_sha256: Option<String>,
        /// The Hub's id of the content (LFS sha256, or git blob id): the digest cache's key.
        hub_id: String,
    },
}

/// The stat fields that change whenever a file's content may have (git's index uses the same).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileIdentity {
    pub size: u64,
    pub mtime_ns: i128,
    pub inode: u64,
    pub device: u64,
}

/// The entries of one layer, in tar order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerPlan {
    /// The `org.opencontainers.image.title` annotation: the file's image path, or the prefix
    /// for the layer of small files.
    pub title: String,
    pub entries: Vec<Entry>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("model directory {0} does not exist")]
    Missing(PathBuf),
    #[error("model directory {0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("model directory {0} contains no files")]
    Empty(PathBuf),
    #[error("cannot read {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("symlink {path} points to {target}, outside the model directory {root}: copy the file in, or point the link inside")]
    SymlinkEscapes {
        path: PathBuf,
        target: PathBuf,
        root: PathBuf,
    },
    #[error("{0} is a device, FIFO or socket; a model directory may hold only files, directories and symlinks")]
    Special(PathBuf),
    #[error("the Hub repo has no files to package (after --include/--exclude)")]
    NoHubFiles,
    #[error("the Hub lists a file {0:?} whose path would leave the model directory, or clash with another: refused")]
    BadHubPath(String),
    #[error("invalid --prefix {0:?}: it must be an absolute path such as /models, without '..'")]
    BadPrefix(String),
}

/// Plans the layers for `model_dir`, whose contents go under `prefix` (e.g. `/models`).
/// Files of `threshold` bytes or more get a layer each.
pub fn plan_layers(
    model_dir: &Path,
    prefix: &str,
    threshold: u64,
) -> Result<Vec<LayerPlan>, PlanError> {
    let prefix_path = image_prefix(prefix)?;
    let meta = fs::metadata(model_dir).map_err(|_| PlanError::Missing(model_dir.into()))?;
    if !meta.is_dir() {
        return Err(PlanError::NotADirectory(model_dir.into()));
    }
    let mut entries = Vec::new();
    scan(model_dir, model_dir, &prefix_path, &mut entries)?;
    if !entries
        .iter()
        .any(|e| matches!(e.kind, EntryKind::File { .. }))
    {
        return Err(PlanError::Empty(model_dir.into()));
    }
    Ok(assign(entries, &prefix_path, threshold))
}

/// Plans the layers for the files of a Hub repo (as listed at one commit), exactly as
/// [`plan_layers`] plans the directory fetch-model would make of them: the same entries in the
/// same order, so the image digest is the same either way.
pub fn plan_hub_layers(
    files: &[modelcar_shared::hub::RepoEntry],
    prefix: &str,
    threshold: u64,
) -> Result<Vec<LayerPlan>, PlanError> {
    let prefix_path = image_prefix(prefix)?;
    if files.is_empty() {
        return Err(PlanError::NoHubFiles);
    }
    let mut tree = HubDir::default();
    for file in files {
        if !modelcar_shared::hub::is_safe_path(&file.path) {
            return Err(PlanError::BadHubPath(file.path.clone()));
        }
        tree.insert(&file.path, file)?;
    }
    let mut entries = Vec::new();
    tree.walk(&prefix_path, &mut entries);
    Ok(assign(entries, &prefix_path, threshold))
}

/// A repo's paths as a tree, children sorted by name as [`scan`] sorts a directory's.
#[derive(Default)]
struct HubDir {
    children: std::collections::BTreeMap<String, HubNode>,
}

enum HubNode {
    Dir(HubDir),
    File(modelcar_shared::hub::RepoEntry),
}

impl HubDir {
    fn insert(
        &mut self,
        path: &str,
        file: &modelcar_shared::hub::RepoEntry,
    ) -> Result<(), PlanError> {
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
                        hub_id: file.lfs_sha256.clone().unwrap_or_else(|| file.oid.clone()),
                    },
                }),
            }
        }
    }
}

/// `/models` -> `models`; `/` -> `` (the image root).
fn image_prefix(prefix: &str) -> Result<PathBuf, PlanError> {
    let path = Path::new(prefix);
    let valid = path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if !valid {
        return Err(PlanError::BadPrefix(prefix.into()));
    }
    Ok(path.components().skip(1).collect())
}

/// Depth-first, sorted by file name at every level, so the layer order is the same on any machine.
fn scan(root: &Path, dir: &Path, image_dir: &Path, out: &mut Vec<Entry>) -> Result<(), PlanError> {
    let unreadable = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PlanError::Unreadable { path, source }
    };
    let mut children: Vec<_> = fs::read_dir(dir)
        .map_err(unreadable(dir))?
        .collect::<Result<_, _>>()
        .map_err(unreadable(dir))?;
    children.sort_by_key(|e| e.file_name());
    for child in children {
        let path = child.path();
        let image_path = image_dir.join(child.file_name());
        let meta = fs::symlink_metadata(&path).map_err(unreadable(&path))?;
        let kind = if meta.is_dir() {
            out.push(Entry {
                image_path: image_path.clone(),
                kind: EntryKind::Dir,
            });
            scan(root, &path, &image_path, out)?;
            continue;
        } else if meta.file_type().is_symlink() {
            EntryKind::Symlink {
                target: checked_link_target(root, &path)?,
            }
        } else if meta.is_file() {
            // Open it now: a permission problem must stop the run before anything is pushed.
            fs::File::open(&path).map_err(unreadable(&path))?;
            EntryKind::File {
                source: path.clone(),
                size: meta.len(),
                identity: FileIdentity {
                    size: meta.len(),
                    mtime_ns: i128::from(meta.mtime()) * 1_000_000_000
                        + i128::from(meta.mtime_nsec()),
                    inode: meta.ino(),
                    device: meta.dev(),
                },
            }
        } else {
            return Err(PlanError::Special(path));
        };
        out.push(Entry { image_path, kind });
    }
    Ok(())
}

/// A symlink's target, if it stays inside the model directory once resolved lexically from
/// the link's own directory. Absolute targets are refused: in the image they would resolve
/// against the image root, not the model directory.
fn checked_link_target(root: &Path, link: &Path) -> Result<PathBuf, PlanError> {
    let target = fs::read_link(link).map_err(|source| PlanError::Unreadable {
        path: link.into(),
        source,
    })?;
    let escapes = || PlanError::SymlinkEscapes {
        path: link.into(),
        target: target.clone(),
        root: root.into(),
    };
    if target.is_absolute() {
        return Err(escapes());
    }
    let link_dir = link
        .parent()
        .and_then(|p| p.strip_prefix(root).ok())
        .ok_or_else(escapes)?;
    let mut depth: Vec<_> = link_dir.components().collect();
    for component in target.components() {
        match component {
            Component::ParentDir => {
                depth.pop().ok_or_else(escapes)?;
            }
            Component::Normal(_) => depth.push(component),
            _ => {}
        }
    }
    Ok(target)
}

/// Splits the scanned entries into layers: the small-files layer (every directory, small file
/// and symlink) first, then one layer per large file. Each layer also carries the directory
/// entries above its files, so it unpacks with the right modes on its own.
fn assign(entries: Vec<Entry>, prefix: &Path, threshold: u64) -> Vec<LayerPlan> {
    let prefix_dirs = ancestors_of(prefix, Path::new(""));
    let mut small = LayerPlan {
        title: format!("/{}", prefix.display()),
        entries: prefix_dirs.clone(),
    };
    if !prefix.as_os_str().is_empty() {
        small.entries.push(Entry {
            image_path: prefix.into(),
            kind: EntryKind::Dir,
        });
    }
    let mut large = Vec::new();
    for entry in entries {
        match &entry.kind {
            EntryKind::File { size, .. } | EntryKind::HubFile { size, .. }
                if *size >= threshold =>
            {
                let mut layer_entries = prefix_dirs.clone();
                let parent = entry.image_path.parent().unwrap_or(Path::new(""));
                layer_entries.extend(ancestors_of(parent, Path::new("")));
                if !parent.as_os_str().is_empty() {
                    layer_entries.push(Entry {
                        image_path: parent.into(),
                        kind: EntryKind::Dir,
                    });
                }
                layer_entries.dedup();
                large.push(LayerPlan {
                    title: format!("/{}", entry.image_path.display()),
                    entries: {
                        layer_entries.push(entry);
                        layer_entries
                    },
                });
            }
            _ => small.entries.push(entry),
        }
    }
    std::iter::once(small).chain(large).collect()
}

/// Directory entries for every proper ancestor of `path` (not `path` itself), outermost first.
fn ancestors_of(path: &Path, stop: &Path) -> Vec<Entry> {
    let mut dirs: Vec<Entry> = path
        .ancestors()
        .skip(1)
        .filter(|p| !p.as_os_str().is_empty() && *p != stop)
        .map(|p| Entry {
            image_path: p.into(),
            kind: EntryKind::Dir,
        })
        .collect();
    dirs.reverse();
    dirs
}

impl LayerPlan {
    /// Bytes of file content in this layer.
    pub fn content_bytes(&self) -> u64 {
        self.entries
            .iter()
            .map(|e| match e.kind {
                EntryKind::File { size, .. } | EntryKind::HubFile { size, .. } => size,
                _ => 0,
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn paths(layer: &LayerPlan) -> Vec<String> {
        layer
            .entries
            .iter()
            .map(|e| e.image_path.display().to_string())
            .collect()
    }

    fn model() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        fs::create_dir_all(d.join("sub/deeper")).unwrap();
        fs::create_dir(d.join("empty")).unwrap();
        fs::write(d.join("config.json"), b"{}").unwrap();
        fs::write(d.join("b-big.safetensors"), vec![1u8; 100]).unwrap();
        fs::write(d.join("sub/deeper/a-big.bin"), vec![2u8; 200]).unwrap();
        symlink("config.json", d.join("link.json")).unwrap();
        tmp
    }

    #[test]
    fn large_files_get_a_layer_each_with_their_parent_dirs() {
        let tmp = model();
        let layers = plan_layers(tmp.path(), "/models", 100).unwrap();
        assert_eq!(layers.len(), 3);
        assert_eq!(
            paths(&layers[0]),
            [
                "models",
                "models/config.json",
                "models/empty",
                "models/link.json",
                "models/sub",
                "models/sub/deeper"
            ]
        );
        assert_eq!(paths(&layers[1]), ["models", "models/b-big.safetensors"]);
        assert_eq!(
            paths(&layers[2]),
            [
                "models",
                "models/sub",
                "models/sub/deeper",
                "models/sub/deeper/a-big.bin"
            ]
        );
        assert_eq!(layers[2].title, "/models/sub/deeper/a-big.bin");
        assert_eq!(layers[0].title, "/models");
    }

    #[test]
    fn nested_prefix_and_root_prefix() {
        let tmp = model();
        let nested = plan_layers(tmp.path(), "/opt/models", u64::MAX).unwrap();
        assert_eq!(
            &paths(&nested[0])[..3],
            ["opt", "opt/models", "opt/models/b-big.safetensors"]
        );
        let root = plan_layers(tmp.path(), "/", u64::MAX).unwrap();
        assert_eq!(paths(&root[0])[0], "b-big.safetensors");
        for bad in ["models", "/a/../b", ""] {
            assert!(
                matches!(
                    plan_layers(tmp.path(), bad, 1),
                    Err(PlanError::BadPrefix(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn symlinks_leaving_the_model_are_refused() {
        for target in ["../outside", "/etc/passwd", "sub/../../x"] {
            let tmp = model();
            symlink(target, tmp.path().join("bad")).unwrap();
            let err = plan_layers(tmp.path(), "/models", 100).unwrap_err();
            assert!(
                matches!(err, PlanError::SymlinkEscapes { .. }),
                "{target}: {err}"
            );
            assert!(err.to_string().contains("bad"), "{err}");
        }
        let tmp = model();
        symlink("../config.json", tmp.path().join("sub/up")).unwrap();
        plan_layers(tmp.path(), "/models", 100)
            .expect("a link to a parent inside the model is fine");
    }

    #[test]
    fn empty_missing_and_non_dir_sources_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("only-dirs")).unwrap();
        assert!(matches!(
            plan_layers(tmp.path(), "/models", 1),
            Err(PlanError::Empty(_))
        ));
        assert!(matches!(
            plan_layers(&tmp.path().join("nope"), "/models", 1),
            Err(PlanError::Missing(_))
        ));
        fs::write(tmp.path().join("f"), b"x").unwrap();
        assert!(matches!(
            plan_layers(&tmp.path().join("f"), "/models", 1),
            Err(PlanError::NotADirectory(_))
        ));
    }
}
