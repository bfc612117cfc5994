//! The command-line conventions every binary follows (`docs/design.md`, "Command-line conventions"): the flags they all
//! take, logs on stderr, the result on stdout and in `--results-dir`, exit codes.
//!
//! A binary's `main` is: parse its clap struct (which flattens [`CommonArgs`]), call
//! [`CommonArgs::init`], run its library call, hand the result to [`exit_code`].

mod exit;
mod logging;
mod output;
mod selection_args;
mod signal;

pub use exit::{exit_code, UsageError, EXIT_FAILURE, EXIT_USAGE};
pub use logging::{LogFormat, LogLevel};
pub use output::{OutputError, OutputFormat, Report};
pub use selection_args::SelectionArgs;
pub use signal::block_on_until_signal;

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

/// Parses a `KEY=VALUE` flag value (`--label`, `--annotation`, `--property`); the value may
/// contain `=`.
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.into(), v.into())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

/// A secret given as a file (`--creds-file`): its content, without the trailing newline.
/// Secrets come from files or env vars: a flag's value is in `/proc/PID/cmdline`, which every
/// process on the node can read.
pub fn read_secret_file(path: &std::path::Path, flag: &str) -> Result<String, UsageError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("{flag} {}: {e}", path.display())))?;
    let secret = text.trim_end_matches(['\n', '\r']);
    if secret.is_empty() {
        return Err(UsageError(format!("{flag} {} is empty", path.display())));
    }
    Ok(secret.to_string())
}

/// `123`, `16MiB`, `16M`, `1GiB`, `1.5G`: binary units, a bare number is bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a size such as 16MiB or 1073741824"))?;
    let shift = match unit
        .trim()
        .to_ascii_lowercase()
        .trim_end_matches('b')
        .trim_end_matches('i')
    {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit {unit:?} (use K, M, G, T, with or without iB)"
            ))
        }
    };
    Ok((number * (1u64 << shift) as f64) as u64)
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
        exit_code(result.and_then(|report| Ok(self.emit(&report)?)))
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
    #[test]
    fn key_values() {
        assert_eq!(
            super::parse_key_value("a=b=c").unwrap(),
            ("a".into(), "b=c".into())
        );
        assert!(super::parse_key_value("=x").is_err());
        assert!(super::parse_key_value("novalue").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(super::parse_size("16MiB").unwrap(), 16 << 20);
        assert_eq!(super::parse_size("16M").unwrap(), 16 << 20);
        assert_eq!(super::parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(super::parse_size("4096").unwrap(), 4096);
        assert_eq!(super::parse_size("1.5KiB").unwrap(), 1536);
        assert!(super::parse_size("lots").is_err());
        assert!(super::parse_size("5X").is_err());
    }

    #[derive(clap::Parser)]
    struct Probe {
        #[arg(long, env = "MODELCAR_TEST_PROBE_SIZE", value_parser = super::parse_size, default_value = "1")]
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
