//! Exit codes and the final error message: 0 ok, 1 runtime failure, 2 usage error.

use std::process::ExitCode;

pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

/// The error and its causes, "outer: inner: innermost". anyhow's context layers are causes
/// like any other; every error type keeps its cause out of its own message (see `causes`).
fn chain_message(err: &anyhow::Error) -> String {
    let causes: Vec<String> = err.chain().map(ToString::to_string).collect();
    causes.join(": ")
}

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
    #[error("cannot read /m/x")]
    struct KeepsItsSourceApart {
        source: std::io::Error,
    }

    #[test]
    fn causes_are_chained_in_order() {
        let io = std::io::Error::other("permission denied");
        let err = anyhow::Error::new(KeepsItsSourceApart { source: io }).context("layer /models");
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
