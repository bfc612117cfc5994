//! Progress of long transfers: a counter every worker adds to, and a reporter that logs
//! bytes, rate and ETA at an interval (on stderr, so it suits terminals and pipelines alike).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
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

    /// Logs a progress line every `every` until the returned handle is dropped or aborted.
    pub fn spawn_reporter(self: &Arc<Self>, every: Duration) -> ReporterGuard {
        let progress = Arc::clone(self);
        let handle = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                tracing::info!("{}", progress.line());
            }
        });
        ReporterGuard(handle)
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

/// Stops the reporter when dropped.
pub struct ReporterGuard(tokio::task::JoinHandle<()>);

impl Drop for ReporterGuard {
    fn drop(&mut self) {
        self.0.abort();
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
