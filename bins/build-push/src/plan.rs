//! Which files go into which layer (`docs/design.md`, "The ModelCar image"): the small files
//! together, each large file in a layer of its own while the layer budget allows, packed
//! beyond it; all in sorted path order, from sizes and paths alone, so a directory and the Hub
//! repo it came from give the same layers. Planning reads only metadata.

mod assign;
mod hub_tree;
mod packing;
mod scan;

use std::path::{Component, Path, PathBuf};

use modelcar_shared::hub::RepoEntry;
use modelcar_shared::progress::human_bytes;

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
        /// Its git blob id (of the LFS pointer, for an LFS file), checked as the bytes pass
        /// for a file kept in git.
        oid: String,
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
    #[error("cannot read {path}")]
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
    #[error("{path} is {}, larger than a layer may be: {limit}. Leave it out (--exclude for an hf:// source, or move it out of the model directory), or raise the registry's limit and pass --max-layer-size", human_bytes(*size))]
    FileTooLarge {
        path: PathBuf,
        size: u64,
        limit: SizeLimit,
    },
    #[error("the {files} large files ({}) do not fit in {layers} layers of at most {limit}: raise --max-layers, or the registry's limit and --max-layer-size", human_bytes(*bytes))]
    CannotPack {
        files: usize,
        bytes: u64,
        layers: usize,
        limit: SizeLimit,
    },
    #[error("layer {title} would be {}, larger than a layer may be: {limit}. Lower --layer-threshold so that its files get layers of their own, or raise --max-layers", human_bytes(*size))]
    LayerTooLarge {
        title: String,
        size: u64,
        limit: SizeLimit,
    },
    #[error("--max-layers leaves the model {max_layers} layer(s) beside the base image's, too few for its small files and its large ones: raise --max-layers, or use a base image of fewer layers")]
    NoLayerLeft { max_layers: usize },
}

/// What decides the layers.
#[derive(Debug, Clone)]
pub struct LayerRules {
    /// Files this large or larger are large: a layer each while the budget allows.
    pub threshold: u64,
    /// Layers the model may take, its small-files layer included.
    pub max_layers: usize,
    /// The most bytes a layer may hold, where a registry caps it.
    pub max_layer_size: Option<SizeLimit>,
}

impl LayerRules {
    /// A layer per large file, however many, and no size limit.
    pub fn unlimited(threshold: u64) -> Self {
        Self {
            threshold,
            max_layers: usize::MAX,
            max_layer_size: None,
        }
    }
}

/// A cap on a layer's size, and where it comes from (`--max-layer-size`, or a registry's
/// documented limit), for the error that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeLimit {
    pub bytes: u64,
    pub origin: String,
}

/// A model's entries, as they go under the image's prefix, before they are split into layers.
#[derive(Debug, Clone)]
pub struct ModelTree {
    prefix: PathBuf,
    entries: Vec<Entry>,
}

impl ModelTree {
    /// The entries of `model_dir`, whose contents go under `prefix` (e.g. `/models`).
    pub fn scan_dir(model_dir: &Path, prefix: &str) -> Result<Self, PlanError> {
        let prefix = image_prefix(prefix)?;
        let entries = scan::scan_dir(model_dir, &prefix)?;
        Ok(Self { prefix, entries })
    }

    /// The entries of a Hub repo's files (as listed at one commit) under `prefix`: the same
    /// as [`ModelTree::scan_dir`] gives for the directory fetch-model makes of them.
    pub fn from_hub(files: &[RepoEntry], prefix: &str) -> Result<Self, PlanError> {
        let prefix = image_prefix(prefix)?;
        let entries = hub_tree::hub_entries(files, &prefix)?;
        Ok(Self { prefix, entries })
    }

    /// The number of large files: the layers the model takes beyond its small-files layer
    /// when the budget allows.
    pub fn large_files(&self, threshold: u64) -> usize {
        self.entries
            .iter()
            .filter(|e| e.file_size().is_some_and(|s| s >= threshold))
            .count()
    }

    pub fn layers(self, rules: &LayerRules) -> Result<Vec<LayerPlan>, PlanError> {
        assign::assign(self.entries, &self.prefix, rules)
    }
}

/// The layers of `model_dir` under `prefix`, a layer for every file of `threshold` bytes or
/// more, however many.
pub fn plan_layers(
    model_dir: &Path,
    prefix: &str,
    threshold: u64,
) -> Result<Vec<LayerPlan>, PlanError> {
    ModelTree::scan_dir(model_dir, prefix)?.layers(&LayerRules::unlimited(threshold))
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

impl Entry {
    /// A file's size; `None` for a directory or symlink.
    pub fn file_size(&self) -> Option<u64> {
        match self.kind {
            EntryKind::File { size, .. } | EntryKind::HubFile { size, .. } => Some(size),
            _ => None,
        }
    }
}

impl LayerPlan {
    /// Bytes of file content in this layer.
    pub fn content_bytes(&self) -> u64 {
        self.entries.iter().filter_map(Entry::file_size).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
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

    /// `n` files of `size` bytes, half of them in a sub-directory.
    fn shards(n: usize, size: usize) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("sub")).unwrap();
        fs::write(tmp.path().join("config.json"), b"{}").unwrap();
        for i in 0..n {
            let dir = if i % 2 == 0 { "" } else { "sub/" };
            let name = format!("{dir}shard-{i:03}.bin");
            fs::write(tmp.path().join(name), vec![i as u8; size]).unwrap();
        }
        tmp
    }

    fn layers(tmp: &tempfile::TempDir, rules: &LayerRules) -> Result<Vec<LayerPlan>, PlanError> {
        ModelTree::scan_dir(tmp.path(), "/models")?.layers(rules)
    }

    fn budget(max_layers: usize, max_layer_size: Option<u64>) -> LayerRules {
        LayerRules {
            threshold: 10,
            max_layers,
            max_layer_size: max_layer_size.map(|bytes| SizeLimit {
                bytes,
                origin: "--max-layer-size".into(),
            }),
        }
    }

    #[test]
    fn beyond_the_budget_large_files_share_layers_with_their_dirs() {
        let tmp = shards(200, 100);
        let plans = layers(&tmp, &budget(99, None)).unwrap();
        assert_eq!(plans.len(), 99);
        let files: Vec<usize> = plans[1..]
            .iter()
            .map(|l| l.entries.iter().filter(|e| e.file_size().is_some()).count())
            .collect();
        assert_eq!(files.iter().sum::<usize>(), 200);
        assert!(files.iter().all(|&f| f == 2 || f == 3), "{files:?}");
        // Path order: the top-level shards, then those under sub/; each layer lists a
        // directory once, before its files.
        assert_eq!(
            paths(&plans[1]),
            ["models", "models/shard-000.bin", "models/shard-002.bin"]
        );
        assert_eq!(
            plans[1].title,
            "/models/shard-000.bin .. /models/shard-002.bin"
        );
        for layer in &plans {
            let listed = paths(layer);
            for (i, path) in listed.iter().enumerate() {
                assert!(!listed[..i].contains(path), "{path} twice in {listed:?}");
                if let Some((parent, _)) = path.rsplit_once('/') {
                    assert!(listed[..i].iter().any(|p| p == parent), "{listed:?}");
                }
            }
        }
    }

    #[test]
    fn within_the_budget_nothing_changes() {
        let tmp = shards(20, 100);
        let unlimited = layers(&tmp, &LayerRules::unlimited(10)).unwrap();
        assert_eq!(layers(&tmp, &budget(21, None)).unwrap(), unlimited);
        assert_eq!(layers(&tmp, &budget(20, None)).unwrap().len(), 20);
    }

    #[test]
    fn a_file_above_the_size_limit_is_named() {
        let tmp = shards(4, 100);
        fs::write(tmp.path().join("sub/huge.gguf"), vec![0u8; 1000]).unwrap();
        let err = layers(&tmp, &budget(100, Some(999))).unwrap_err();
        assert!(matches!(err, PlanError::FileTooLarge { .. }), "{err}");
        let message = err.to_string();
        for part in [
            "/models/sub/huge.gguf",
            "1000 B",
            "999 B",
            "--max-layer-size",
            "--exclude",
        ] {
            assert!(message.contains(part), "{part:?} not in {message}");
        }
    }

    #[test]
    fn packing_that_cannot_keep_the_size_limit_is_refused() {
        let tmp = shards(10, 100 << 10);
        // Ten 100 KiB files in 3 layers need more than 300 KiB a layer.
        let err = layers(&tmp, &budget(4, Some(300 << 10))).unwrap_err();
        assert!(
            matches!(
                err,
                PlanError::CannotPack {
                    files: 10,
                    layers: 3,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(layers(&tmp, &budget(4, Some(600 << 10))).unwrap().len(), 4);
    }

    #[test]
    fn a_budget_with_no_room_for_large_files_is_refused() {
        let tmp = shards(3, 100);
        let err = layers(&tmp, &budget(1, None)).unwrap_err();
        assert!(
            matches!(err, PlanError::NoLayerLeft { max_layers: 1 }),
            "{err}"
        );
        assert!(matches!(
            layers(&tmp, &budget(0, None)),
            Err(PlanError::NoLayerLeft { max_layers: 0 })
        ));
        let small_only = layers(
            &tmp,
            &LayerRules {
                threshold: 1000,
                ..budget(1, None)
            },
        );
        assert_eq!(small_only.unwrap().len(), 1);
    }
}
