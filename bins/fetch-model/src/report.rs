//! What fetch-model reports on stdout and in `--results-dir`.

use serde::Serialize;

use modelcar_shared::cli::Report;
use modelcar_shared::progress::human_bytes;

#[derive(Debug, Clone, Serialize)]
pub struct FetchReport {
    pub repo: String,
    /// The commit sha the revision resolved to.
    pub revision: String,
    pub model_dir: String,
    pub files: usize,
    pub bytes: u64,
    /// Bytes this run downloaded (0 when everything was in place).
    pub downloaded: u64,
    pub skipped: Vec<SkippedFile>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SkippedFile {
    pub path: String,
    pub reason: String,
}

impl Report for FetchReport {
    fn human(&self) -> String {
        let mut out = format!(
            "{}@{} -> {}\n{} files, {}: downloaded {} in {:.1}s",
            self.repo,
            self.revision,
            self.model_dir,
            self.files,
            human_bytes(self.bytes),
            human_bytes(self.downloaded),
            self.seconds
        );
        if !self.skipped.is_empty() {
            out.push_str(&format!("\nskipped {} files:", self.skipped.len()));
            for s in &self.skipped {
                out.push_str(&format!("\n  {}", s.reason));
            }
        }
        out
    }

    fn results(&self) -> Vec<(&'static str, String)> {
        vec![
            ("MODEL_DIR", self.model_dir.clone()),
            ("HF_REVISION", self.revision.clone()),
        ]
    }
}
