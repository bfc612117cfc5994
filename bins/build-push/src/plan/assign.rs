//! Which entries go into which layer: one layer for every directory, symlink and small file,
//! first; then the large files, each in a layer of its own while the layer budget allows, and
//! beyond it packed in path order into layers of balanced size. Every layer also carries the
//! directory entries above its files, so it unpacks with the right modes on its own.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use modelcar_shared::progress::human_bytes;

use super::packing::pack;
use super::{Entry, EntryKind, LayerPlan, LayerRules, PlanError, SizeLimit};

/// Tar bytes a file takes besides its content, at most: its header, a GNU long-name entry
/// for a path past 100 bytes, and the padding to a whole block. Packing counts it so that a
/// layer packed under a size limit stays under it.
fn tar_cost(entry: &Entry, size: u64) -> u64 {
    const BLOCK: u64 = 512;
    let name = entry.image_path.as_os_str().len() as u64;
    let long_name = if name > 100 {
        BLOCK + (name + 1).next_multiple_of(BLOCK)
    } else {
        0
    };
    BLOCK + long_name + size.next_multiple_of(BLOCK)
}

/// Room kept in a packed layer for its directory entries and the end-of-archive blocks.
const LAYER_OVERHEAD: u64 = 64 << 10;

pub(super) fn assign(
    entries: Vec<Entry>,
    prefix: &Path,
    rules: &LayerRules,
) -> Result<Vec<LayerPlan>, PlanError> {
    if rules.max_layers == 0 {
        return Err(PlanError::NoLayerLeft { max_layers: 0 });
    }
    let mut small = LayerPlan {
        title: format!("/{}", prefix.display()),
        entries: ancestors_of(prefix),
    };
    if !prefix.as_os_str().is_empty() {
        small.entries.push(Entry {
            image_path: prefix.into(),
            kind: EntryKind::Dir,
        });
    }
    let (large, rest): (Vec<Entry>, Vec<Entry>) = entries
        .into_iter()
        .partition(|e| e.file_size().is_some_and(|size| size >= rules.threshold));
    small.entries.extend(rest);
    let groups = group_large(&large, rules)?;
    let mut layers = vec![small];
    let mut large = large.into_iter();
    for len in groups {
        layers.push(layer_of(large.by_ref().take(len).collect()));
    }
    Ok(layers)
}

/// How many of the large files (in path order) each layer takes.
fn group_large(large: &[Entry], rules: &LayerRules) -> Result<Vec<usize>, PlanError> {
    if large.is_empty() {
        return Ok(Vec::new());
    }
    // The small-files layer takes one of the model's layers.
    let budget = rules.max_layers.saturating_sub(1);
    if budget == 0 {
        return Err(PlanError::NoLayerLeft {
            max_layers: rules.max_layers,
        });
    }
    if let Some(limit) = &rules.max_layer_size {
        if let Some(too_large) = large
            .iter()
            .find(|e| e.file_size().is_some_and(|s| s > limit.bytes))
        {
            return Err(file_too_large(too_large, limit));
        }
    }
    let costs: Vec<u64> = large
        .iter()
        .map(|e| tar_cost(e, e.file_size().unwrap_or(0)))
        .collect();
    let fits = rules
        .max_layer_size
        .as_ref()
        .map(|l| l.bytes.saturating_sub(LAYER_OVERHEAD));
    let runs = pack(&costs, budget, fits).ok_or_else(|| PlanError::CannotPack {
        files: large.len(),
        bytes: costs.iter().sum(),
        layers: budget,
        limit: rules.max_layer_size.clone().unwrap_or(SizeLimit {
            bytes: u64::MAX,
            origin: String::new(),
        }),
    })?;
    Ok(runs.into_iter().map(|r| r.len()).collect())
}

fn file_too_large(entry: &Entry, limit: &SizeLimit) -> PlanError {
    PlanError::FileTooLarge {
        path: PathBuf::from("/").join(&entry.image_path),
        size: entry.file_size().unwrap_or(0),
        limit: limit.clone(),
    }
}

/// A layer of `files` with the directories above them. One file: titled with its path, as
/// every file had its own layer before packing; several: `FIRST .. LAST`.
fn layer_of(files: Vec<Entry>) -> LayerPlan {
    let title = match (files.first(), files.last()) {
        (Some(first), Some(last)) if files.len() > 1 => format!(
            "/{} .. /{}",
            first.image_path.display(),
            last.image_path.display()
        ),
        (Some(only), _) => format!("/{}", only.image_path.display()),
        _ => String::new(),
    };
    let mut seen = BTreeSet::new();
    let mut entries = Vec::new();
    for file in files {
        for dir in ancestors_of(&file.image_path) {
            if seen.insert(dir.image_path.clone()) {
                entries.push(dir);
            }
        }
        entries.push(file);
    }
    LayerPlan { title, entries }
}

/// Directory entries for every proper ancestor of `path` (not `path` itself), outermost first.
pub(super) fn ancestors_of(path: &Path) -> Vec<Entry> {
    let mut dirs: Vec<Entry> = path
        .ancestors()
        .skip(1)
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| Entry {
            image_path: p.into(),
            kind: EntryKind::Dir,
        })
        .collect();
    dirs.reverse();
    dirs
}

impl std::fmt::Display for SizeLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", human_bytes(self.bytes), self.origin)
    }
}
