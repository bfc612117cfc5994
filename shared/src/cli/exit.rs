//! Exit codes and the final error message: 0 ok, 1 runtime failure, 2 usage error.

use std::process::ExitCode;

pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

/// An error in what the user asked for (a bad flag value, a malformed reference), as opposed to
/// a failure while doing it. Anywhere in an error chain, it makes the exit code 2.
/// The error and its causes, "outer: inner", leaving out a cause whose text the message
/// already carries (error types that print their source would otherwise say it twice).
fn chain_message(err: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !message.contains(&text) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&text);
        }
    }
    message
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Reports `result` on stderr (through the log, so `--log-format json` stays parseable) and turns
/// it into the process exit code.
pub fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{}", chain_message(&err));
            let is_usage = err.chain().any(|cause| cause.is::<UsageError>());
            ExitCode::from(if is_usage { EXIT_USAGE } else { EXIT_FAILURE })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read /m/x: {source}")]
    struct PrintsItsSource {
        source: std::io::Error,
    }

    #[test]
    fn causes_are_chained_once() {
        let io = std::io::Error::other("permission denied");
        let err = anyhow::Error::new(PrintsItsSource { source: io }).context("layer /models");
        assert_eq!(
            chain_message(&err),
            "layer /models: cannot read /m/x: permission denied"
        );
    }

    #[test]
    fn usage_errors_anywhere_in_the_chain_exit_2() {
        let err = anyhow::Error::new(UsageError("bad flag".into())).context("parsing");
        assert_eq!(exit_code(Err(err)), ExitCode::from(EXIT_USAGE));
    }
}
