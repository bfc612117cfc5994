//! A model directory's entries, read from metadata alone, depth-first and sorted by name at
//! every level, so the layer order is the same on any machine. What would otherwise fail half
//! way through a push fails here: unreadable files, symlinks that leave the model directory,
//! device files.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use super::{Entry, EntryKind, FileIdentity, PlanError};

/// Every entry below `model_dir`, with its path in the image under `image_dir`.
pub(super) fn scan_dir(model_dir: &Path, image_dir: &Path) -> Result<Vec<Entry>, PlanError> {
    let meta = fs::metadata(model_dir).map_err(|_| PlanError::Missing(model_dir.into()))?;
    if !meta.is_dir() {
        return Err(PlanError::NotADirectory(model_dir.into()));
    }
    let mut entries = Vec::new();
    scan(model_dir, model_dir, image_dir, &mut entries)?;
    if !entries
        .iter()
        .any(|e| matches!(e.kind, EntryKind::File { .. }))
    {
        return Err(PlanError::Empty(model_dir.into()));
    }
    Ok(entries)
}

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
