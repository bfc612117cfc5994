//! Which files of a Hugging Face model repo to take (fetch-model, and build-push's `hf://`
//! source: one implementation for both). `--include`/`--exclude` globs as huggingface-cli
//! reads them (`*` also crosses `/`), and, for serving with vLLM, a default that skips second
//! copies of the weights: Mistral repos ship `consolidated.safetensors` beside the HF shards,
//! Meta repos an `original/` checkpoint, older ones PyTorch `.bin` files. Each skipped file is
//! reported with the reason, and an explicit `--include` or `--all-formats` brings it back.

use std::fmt;

use globset::{Glob, GlobSet, GlobSetBuilder};

/// A file of the repo, as the Hub lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoFile {
    pub path: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// `--include` was given and no pattern matches.
    NotIncluded,
    /// This `--exclude` pattern matches.
    Excluded(String),
    /// A second copy of the weights in another format (why, in words).
    DuplicateFormat(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub file: RepoFile,
    pub reason: SkipReason,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = &self.file.path;
        match &self.reason {
            SkipReason::NotIncluded => write!(f, "{path}: matches no --include pattern"),
            SkipReason::Excluded(pattern) => write!(f, "{path}: excluded by --exclude {pattern:?}"),
            SkipReason::DuplicateFormat(why) => write!(
                f,
                "{path}: {why}; --include it or pass --all-formats to take it"
            ),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub selected: Vec<RepoFile>,
    pub skipped: Vec<Skipped>,
}

impl Selection {
    pub fn selected_bytes(&self) -> u64 {
        self.selected.iter().map(|f| f.size).sum()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid glob {pattern:?} in {flag}")]
pub struct SelectionError {
    pub flag: &'static str,
    pub pattern: String,
    pub source: globset::Error,
}

/// The user's choices, compiled.
#[derive(Debug, Clone)]
pub struct Rules {
    include: Option<Patterns>,
    exclude: Patterns,
    all_formats: bool,
}

#[derive(Debug, Clone)]
struct Patterns {
    set: GlobSet,
    patterns: Vec<String>,
}

impl Patterns {
    fn compile(flag: &'static str, patterns: &[String]) -> Result<Self, SelectionError> {
        let mut builder = GlobSetBuilder::new();
        for pattern in patterns {
            let glob = Glob::new(pattern).map_err(|source| SelectionError {
                flag,
                pattern: pattern.clone(),
                source,
            })?;
            builder.add(glob);
        }
        let set = builder.build().map_err(|source| SelectionError {
            flag,
            pattern: patterns.join(" "),
            source,
        })?;
        Ok(Self {
            set,
            patterns: patterns.to_vec(),
        })
    }

    fn first_match(&self, path: &str) -> Option<&str> {
        self.set
            .matches(path)
            .first()
            .map(|&i| self.patterns[i].as_str())
    }
}

impl Rules {
    pub fn new(
        include: &[String],
        exclude: &[String],
        all_formats: bool,
    ) -> Result<Self, SelectionError> {
        let include = match include.is_empty() {
            true => None,
            false => Some(Patterns::compile("--include", include)?),
        };
        Ok(Self {
            include,
            exclude: Patterns::compile("--exclude", exclude)?,
            all_formats,
        })
    }

    /// Splits `files` into what to take and what to leave, each left file with its reason.
    pub fn select(&self, files: Vec<RepoFile>) -> Selection {
        let has_hf_shards = files.iter().any(|f| is_hf_safetensors(&f.path));
        let mut selection = Selection::default();
        for file in files {
            match self.skip_reason(&file.path, has_hf_shards) {
                Some(reason) => selection.skipped.push(Skipped { file, reason }),
                None => selection.selected.push(file),
            }
        }
        selection
    }

    fn skip_reason(&self, path: &str, has_hf_shards: bool) -> Option<SkipReason> {
        let included = match &self.include {
            Some(include) => match include.first_match(path) {
                Some(_) => true,
                None => return Some(SkipReason::NotIncluded),
            },
            None => false,
        };
        if let Some(pattern) = self.exclude.first_match(path) {
            return Some(SkipReason::Excluded(pattern.into()));
        }
        // An explicit --include is a request for exactly this file.
        if included || self.all_formats || !has_hf_shards {
            return None;
        }
        duplicate_format(path).map(SkipReason::DuplicateFormat)
    }
}

/// HF-format safetensors weights: what vLLM loads, and what makes the other formats duplicates.
fn is_hf_safetensors(path: &str) -> bool {
    path.ends_with(".safetensors")
        && !file_name(path).starts_with("consolidated")
        && !path.starts_with("original/")
}

/// Why `path` is a second copy of the weights, when the repo has HF safetensors shards.
fn duplicate_format(path: &str) -> Option<&'static str> {
    let name = file_name(path);
    if path.starts_with("original/") {
        Some("the original checkpoint, a second copy of the weights in the HF shards")
    } else if name.starts_with("consolidated") {
        Some("Mistral's consolidated weights, a second copy of the HF safetensors shards")
    } else if name.ends_with(".pth")
        || name.ends_with(".pt")
        || (name.starts_with("pytorch_model") && name.ends_with(".bin"))
    {
        Some("PyTorch weights, a second copy of the safetensors shards")
    } else if name.ends_with(".gguf") {
        Some("a GGUF (llama.cpp) variant, which vLLM does not load beside safetensors")
    } else {
        None
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(paths: &[&str]) -> Vec<RepoFile> {
        paths
            .iter()
            .map(|p| RepoFile {
                path: p.to_string(),
                size: 1,
            })
            .collect()
    }

    fn selected(selection: &Selection) -> Vec<&str> {
        selection.selected.iter().map(|f| f.path.as_str()).collect()
    }

    const MISTRAL: [&str; 7] = [
        "config.json",
        "consolidated.safetensors",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "params.json",
        "tokenizer.json",
    ];

    #[test]
    fn mistral_consolidated_weights_are_skipped_by_default_with_a_reason() {
        let selection = Rules::new(&[], &[], false).unwrap().select(files(&MISTRAL));
        assert!(!selected(&selection).contains(&"consolidated.safetensors"));
        assert_eq!(selected(&selection).len(), 6);
        let skipped = selection.skipped[0].to_string();
        assert!(
            skipped.contains("consolidated.safetensors") && skipped.contains("--all-formats"),
            "{skipped}"
        );
    }

    #[test]
    fn original_checkpoints_and_pytorch_copies_are_skipped_beside_shards() {
        let repo = files(&[
            "model.safetensors",
            "original/consolidated.00.pth",
            "original/params.json",
            "pytorch_model.bin",
            "model.gguf",
            "training_args.bin",
        ]);
        let selection = Rules::new(&[], &[], false).unwrap().select(repo);
        assert_eq!(
            selected(&selection),
            ["model.safetensors", "training_args.bin"]
        );
        assert_eq!(selection.skipped.len(), 4);
    }

    #[test]
    fn a_repo_without_safetensors_keeps_its_pytorch_weights() {
        let repo = files(&[
            "config.json",
            "pytorch_model-00001-of-00002.bin",
            "pytorch_model-00002-of-00002.bin",
        ]);
        let selection = Rules::new(&[], &[], false).unwrap().select(repo);
        assert_eq!(selection.selected.len(), 3);
    }

    #[test]
    fn include_exclude_and_all_formats() {
        let rules = Rules::new(
            &["*.json".into(), "consolidated*".into()],
            &["params.json".into()],
            false,
        )
        .unwrap();
        let selection = rules.select(files(&MISTRAL));
        // consolidated.safetensors asked for by name; params.json excluded; shards not included.
        assert_eq!(
            selected(&selection),
            [
                "config.json",
                "consolidated.safetensors",
                "model.safetensors.index.json",
                "tokenizer.json"
            ]
        );
        assert!(selection
            .skipped
            .iter()
            .any(|s| s.reason == SkipReason::Excluded("params.json".into())));
        assert!(selection
            .skipped
            .iter()
            .any(|s| s.reason == SkipReason::NotIncluded));

        let all = Rules::new(&[], &[], true).unwrap().select(files(&MISTRAL));
        assert_eq!(all.selected.len(), MISTRAL.len());
    }

    #[test]
    fn star_crosses_directories_as_in_huggingface_cli() {
        let rules = Rules::new(&["*.safetensors".into()], &[], false).unwrap();
        let selection = rules.select(files(&["sub/dir/w.safetensors", "sub/config.json"]));
        assert_eq!(selected(&selection), ["sub/dir/w.safetensors"]);
    }

    #[test]
    fn a_bad_glob_names_the_flag_and_the_pattern() {
        let err = Rules::new(&[], &["[unclosed".into()], false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--exclude") && err.contains("[unclosed"),
            "{err}"
        );
    }
}
