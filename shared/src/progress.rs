//! Progress of long transfers: a counter every worker adds to, and a reporter on stderr: a
//! progress bar when stderr is a terminal, a log line with bytes, rate and ETA at an interval
//! otherwise (Tekton steps, CI logs, `--log-format json` pipelines).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressStyle};

/// Whether a bar may be drawn on a terminal: not when the logs are JSON for a machine.
static BAR_ALLOWED: AtomicBool = AtomicBool::new(true);

/// Called by logging set-up: `false` keeps progress to log lines even on a terminal.
pub fn allow_bar(allowed: bool) {
    BAR_ALLOWED.store(allowed, Relaxed);
}

/// The bar on screen, if any: log lines are written around it, not across it.
static ACTIVE_BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Runs `write` (a log line going to stderr) with the progress bar, if one is drawn, lifted.
pub fn with_bar_suspended<R>(write: impl FnOnce() -> R) -> R {
    let bar = ACTIVE_BAR.lock().ok().and_then(|active| active.clone());
    match bar {
        Some(bar) => bar.suspend(write),
        None => write(),
    }
}
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Progress {
    label: String,
    total: AtomicU64,
    done: AtomicU64,
    started: Instant,
}

impl Progress {
    pub fn new(label: impl Into<String>, total: u64) -> Arc<Self> {
        Arc::new(Self {
            label: label.into(),
            total: AtomicU64::new(total),
            done: AtomicU64::new(0),
            started: Instant::now(),
        })
    }

    pub fn add(&self, bytes: u64) {
        self.done.fetch_add(bytes, Relaxed);
    }

    /// Removes bytes that will not be sent after all (a layer found already present), or
    /// that must be sent again (a retried upload).
    pub fn adjust_total(&self, delta: i64) {
        if delta >= 0 {
            self.total.fetch_add(delta as u64, Relaxed);
        } else {
            self.total.fetch_sub(delta.unsigned_abs(), Relaxed);
        }
    }

    pub fn done(&self) -> u64 {
        self.done.load(Relaxed)
    }

    /// Reports progress until the returned guard is dropped: a bar redrawn several times a
    /// second on a terminal, else a log line every `every`.
    pub fn spawn_reporter(self: &Arc<Self>, every: Duration) -> ReporterGuard {
        let progress = Arc::clone(self);
        if !(BAR_ALLOWED.load(Relaxed) && std::io::stderr().is_terminal()) {
            let handle = tokio::spawn(async move {
                let mut ticker = tokio::time::interval(every);
                ticker.tick().await;
                loop {
                    ticker.tick().await;
                    tracing::info!("{}", progress.line());
                }
            });
            return ReporterGuard { handle, bar: None };
        }
        let bar = ProgressBar::new(self.total.load(Relaxed));
        let style = ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(self.label.clone());
        if let Ok(mut active) = ACTIVE_BAR.lock() {
            *active = Some(bar.clone());
        }
        let drawn = bar.clone();
        let handle = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_millis(200));
            loop {
                ticker.tick().await;
                drawn.set_length(progress.total.load(Relaxed));
                drawn.set_position(progress.done());
            }
        });
        ReporterGuard {
            handle,
            bar: Some(bar),
        }
    }

    /// `uploading: 1.2 GiB of 3.0 GiB (40%), 410 MB/s, ETA 4s`
    pub fn line(&self) -> String {
        let (done, total) = (self.done(), self.total.load(Relaxed));
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = done as f64 / secs;
        let pct = if total == 0 {
            100.0
        } else {
            100.0 * done as f64 / total as f64
        };
        let eta = if rate > 0.0 && total > done {
            format!(", ETA {}s", ((total - done) as f64 / rate).ceil() as u64)
        } else {
            String::new()
        };
        format!(
            "{}: {} of {} ({pct:.0}%), {:.0} MB/s{eta}",
            self.label,
            human_bytes(done),
            human_bytes(total),
            rate / 1e6
        )
    }
}

/// Stops the reporter, and clears its bar, when dropped.
pub struct ReporterGuard {
    handle: tokio::task::JoinHandle<()>,
    bar: Option<ProgressBar>,
}

impl Drop for ReporterGuard {
    fn drop(&mut self) {
        self.handle.abort();
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            if let Ok(mut active) = ACTIVE_BAR.lock() {
                *active = None;
            }
        }
    }
}

/// `1.5 GiB`, `512 B`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn line_reports_share_and_rate() {
        let p = Progress::new("uploading", 200);
        p.add(50);
        p.adjust_total(-100);
        let line = p.line();
        assert!(line.starts_with("uploading: 50 B of 100 B (50%)"), "{line}");
    }
}
