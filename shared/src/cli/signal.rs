//! Running a binary's async work until it ends, or until the pod is told to stop: Kubernetes
//! sends SIGTERM on eviction, and the run must end with a message saying how to go on.

use std::future::Future;

use anyhow::Context;

/// Runs `work` on a multi-threaded runtime. On SIGTERM or SIGINT it is dropped (in-flight
/// transfers are abandoned; nothing half-written is committed) and the error says
/// "stopped by SIGTERM; `resume_hint`".
pub fn block_on_until_signal<T>(
    work: impl Future<Output = anyhow::Result<T>>,
    resume_hint: &str,
) -> anyhow::Result<T> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(async {
        tokio::select! {
            result = work => result,
            signal = terminated() => Err(anyhow::anyhow!("stopped by {signal}; {resume_hint}")),
        }
    });
    // A blocking thread still at work (a file read, fix-perms' walk) must not hold the exit
    // after a signal: the pod has a grace period, not forever.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

/// Runs blocking work (a directory walk) on a thread of its own, so that the run's future
/// still yields to a signal while it goes on.
pub async fn on_blocking_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .expect("blocking work does not panic")
}

/// Resolves when SIGTERM or SIGINT arrives.
async fn terminated() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
