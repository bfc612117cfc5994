//! The command-line conventions every binary follows (`docs/design.md`, "Command-line conventions"): the flags they all
//! take, logs on stderr, the result on stdout and in `--results-dir`, exit codes.
//!
//! Every binary's `main` has one shape: parse its clap struct (which flattens [`CommonArgs`])
//! with [`parse`], then hand [`CommonArgs::run_async`] the run, a future of its [`Report`]:
//! set-up, signals, the report on stdout and in `--results-dir`, and the exit code are done
//! there, the same way for all six.

mod exit;
mod logging;
mod output;
mod registry_args;
mod selection_args;
mod signal;
mod trust_args;
mod values;

pub use exit::{exit_code, UsageError, EXIT_FAILURE, EXIT_USAGE};
pub use logging::{LogFormat, LogLevel};
pub use output::{OutputError, OutputFormat, Report};
pub use registry_args::{DestArgs, DestSideArgs, SideFlags, SrcSideArgs, TransferArgs};
pub use selection_args::SelectionArgs;
pub use signal::{block_on_until_signal, on_blocking_thread};
pub use trust_args::TrustArgs;
pub use values::{parse_key_value, parse_size, read_secret_file};

use std::path::PathBuf;

use crate::perms::set_shared_umask;

/// Parses the command line. An environment variable that a flag reads but that is set to
/// the empty string counts as unset, as a shell user expects and as a Tekton step needs
/// (a Task passes every param as an env var, optional ones defaulting to "").
pub fn parse<T: clap::Parser>() -> T {
    unset_empty_env::<T>();
    T::parse()
}

/// Removes the empty environment variables that `T`'s flags read. Called first thing in
/// main, before any thread starts.
fn unset_empty_env<T: clap::CommandFactory>() {
    for arg in T::command().get_arguments() {
        if let Some(name) = arg.get_env() {
            if std::env::var_os(name).is_some_and(|v| v.is_empty()) {
                std::env::remove_var(name);
            }
        }
    }
}

/// Flags shared by every binary; `#[command(flatten)]` it into the binary's own arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Format of the logs on stderr: `text` for people, `json` for log pipelines.
    #[arg(long, value_enum, env = "MODELCAR_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Most verbose level of log written to stderr.
    #[arg(long, value_enum, env = "MODELCAR_LOG_LEVEL", default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,

    /// Format of the result on stdout: short `text`, or one `json` object for scripts.
    #[arg(long, value_enum, env = "MODELCAR_OUTPUT", default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// Also write each result value to DIR/<NAME>, without a trailing newline (Tekton results).
    #[arg(long, env = "MODELCAR_RESULTS_DIR", value_name = "DIR")]
    pub results_dir: Option<PathBuf>,
}

impl CommonArgs {
    /// An async binary's whole run after parsing its flags: the set-up, `work` until it ends
    /// (or the pod is told to stop: see [`block_on_until_signal`]), its report on stdout and
    /// in `--results-dir`, and the exit code.
    pub fn run_async<R: Report>(
        &self,
        resume_hint: &str,
        work: impl std::future::Future<Output = anyhow::Result<R>>,
    ) -> std::process::ExitCode {
        self.init();
        let result = block_on_until_signal(work, resume_hint);
        exit_code(result.and_then(|report| {
            self.emit(&report)?;
            match report.failure() {
                Some(failure) => Err(anyhow::anyhow!(failure)),
                None => Ok(()),
            }
        }))
    }

    /// Process set-up every binary needs before doing any work: the shared umask and logging.
    pub fn init(&self) {
        set_shared_umask();
        logging::init(self.log_format, self.log_level);
    }

    /// Prints `report` on stdout in the chosen format and writes its results to `--results-dir`.
    pub fn emit<R: Report>(&self, report: &R) -> Result<(), OutputError> {
        output::print(report, self.output)?;
        match &self.results_dir {
            Some(dir) => output::write_results(dir, &report.results()),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #[derive(clap::Parser)]
    struct Probe {
        #[arg(long, env = "MODELCAR_TEST_PROBE_SIZE", value_parser = super::values::parse_size, default_value = "1")]
        size: u64,
    }

    #[test]
    fn an_empty_env_var_counts_as_unset() {
        use clap::Parser;
        std::env::set_var("MODELCAR_TEST_PROBE_SIZE", "");
        assert!(
            Probe::try_parse_from(["probe"]).is_err(),
            "clap alone takes \"\" as a value"
        );
        super::unset_empty_env::<Probe>();
        assert_eq!(Probe::try_parse_from(["probe"]).unwrap().size, 1);
        std::env::set_var("MODELCAR_TEST_PROBE_SIZE", "2KiB");
        super::unset_empty_env::<Probe>();
        assert_eq!(Probe::try_parse_from(["probe"]).unwrap().size, 2048);
    }
}
