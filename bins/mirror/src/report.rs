//! What mirror reports on stdout and in `--results-dir`.

use serde::Serialize;

use modelcar_shared::cli::Report;
use modelcar_shared::progress::human_bytes;

#[derive(Debug, Clone, Serialize)]
pub struct MirrorReport {
    pub source: String,
    pub digest: String,
    pub destinations: Vec<DestReport>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DestReport {
    /// `registry/repository:tag` (or `@digest` when there is no tag).
    pub image: String,
    /// `registry/repository`.
    #[serde(skip)]
    pub name: String,
    pub digest: String,
    pub blobs: usize,
    /// Blobs whose bytes were sent; the others were already there or were mounted.
    pub blobs_copied: usize,
    pub bytes_copied: u64,
    pub manifests: usize,
}

impl Report for MirrorReport {
    fn human(&self) -> String {
        // A source given by digest (as --from-metadata gives it) already names it.
        let mut out = match self.source.contains('@') {
            true => self.source.clone(),
            false => format!("{}@{}", self.source, self.digest),
        };
        for d in &self.destinations {
            let what = if d.bytes_copied == 0 {
                format!("copied 0 bytes: all {} blobs already there", d.blobs)
            } else {
                format!(
                    "copied {} in {} of {} blobs",
                    human_bytes(d.bytes_copied),
                    d.blobs_copied,
                    d.blobs
                )
            };
            out.push_str(&format!(
                "\n-> {}: {what}, {} manifests",
                d.image, d.manifests
            ));
        }
        out.push_str(&format!("\nin {:.1}s", self.seconds));
        out
    }

    fn results(&self) -> Vec<(&'static str, String)> {
        match self.destinations.first() {
            Some(first) => vec![
                ("IMAGE_URL", first.image.clone()),
                ("IMAGE_DIGEST", first.digest.clone()),
            ],
            None => Vec::new(),
        }
    }
}
