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
    runtime.block_on(async {
        tokio::select! {
            result = work => result,
            signal = terminated() => Err(anyhow::anyhow!("stopped by {signal}; {resume_hint}")),
        }
    })
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
