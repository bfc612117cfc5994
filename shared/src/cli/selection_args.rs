//! The file-selection flags of every step that reads a Hub repo (fetch-model, and build-push's
//! `hf://` source): one definition, so the two choose the same files from the same flags.

use crate::selection::{Rules, SelectionError};

#[derive(Debug, Clone, clap::Args)]
pub struct SelectionArgs {
    /// Take only the repo files matching these globs (`*` also crosses `/`); repeatable.
    #[arg(
        long,
        env = "MODELCAR_INCLUDE",
        value_name = "GLOB",
        value_delimiter = ','
    )]
    pub include: Vec<String>,

    /// Leave out the repo files matching these globs; repeatable.
    #[arg(
        long,
        env = "MODELCAR_EXCLUDE",
        value_name = "GLOB",
        value_delimiter = ','
    )]
    pub exclude: Vec<String>,

    /// Take every format of the weights, not only the HF safetensors shards (by default
    /// consolidated*.safetensors, original/ and PyTorch .bin/.pth beside safetensors are
    /// skipped, each named with the reason).
    #[arg(long, env = "MODELCAR_ALL_FORMATS")]
    pub all_formats: bool,
}

impl SelectionArgs {
    pub fn rules(&self) -> Result<Rules, SelectionError> {
        Rules::new(&self.include, &self.exclude, self.all_formats)
    }
}
