//! Exit codes and the final error message: 0 ok, 1 runtime failure, 2 usage error.

use std::process::ExitCode;

pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

/// An error in what the user asked for (a bad flag value, a malformed reference), as opposed to
/// a failure while doing it. Anywhere in an error chain, it makes the exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Reports `result` on stderr (through the log, so `--log-format json` stays parseable) and turns
/// it into the process exit code.
pub fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` prints the whole chain: "cannot push layer: connection refused".
            tracing::error!("{err:#}");
            let is_usage = err.chain().any(|cause| cause.is::<UsageError>());
            ExitCode::from(if is_usage { EXIT_USAGE } else { EXIT_FAILURE })
        }
    }
}
