//! What a run of fix-perms did, for stdout.

use std::path::PathBuf;

use modelcar_shared::cli::Report;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct FixReport {
    pub dry_run: bool,
    pub roots: Vec<RootReport>,
    /// Entries looked at, directories included.
    pub scanned: u64,
    /// Entries changed (with `--dry-run`: that would be changed).
    pub changed: u64,
    /// Entries this UID may not change, left as they are because every task can use them
    /// (or, like `lost+found`, the pipeline does not); each is a warning on stderr.
    pub skipped: u64,
    /// Entries that could not be read, or could not be changed and stay unusable for the
    /// pipeline's tasks; each is an error on stderr.
    pub errors: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RootReport {
    pub path: PathBuf,
    /// The group every entry below `path` was given; `None` when the root could not be opened.
    pub gid: Option<u32>,
    /// Why the root could not be opened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Report for FixReport {
    fn failure(&self) -> Option<String> {
        (self.errors > 0).then(|| {
            format!(
                "{} entries could not be read, or stay unusable for the pipeline's tasks (see the errors above)",
                self.errors
            )
        })
    }

    fn human(&self) -> String {
        let roots: Vec<String> = self
            .roots
            .iter()
            .map(|r| match (&r.error, r.gid) {
                (Some(e), _) => format!("{} (cannot open: {e})", r.path.display()),
                (None, Some(gid)) => format!("{} (group {gid})", r.path.display()),
                (None, None) => r.path.display().to_string(),
            })
            .collect();
        let verb = if self.dry_run {
            "would change"
        } else {
            "changed"
        };
        let note = if self.changed == 0 && self.errors == 0 && self.skipped == 0 {
            " (already correct)"
        } else {
            ""
        };
        format!(
            "{}: scanned {}, {verb} {}{note}, left as they are {}, errors {}",
            roots.join(", "),
            self.scanned,
            self.changed,
            self.skipped,
            self.errors
        )
    }
}
