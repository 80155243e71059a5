//! Reading the command line: clap, with negative numbers passed to the
//! flag they were given to (so `-c -1` is an error about `--concurrency`,
//! not clap's tip to write `-- -1`), and such errors said in words.

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{ArgAction, CommandFactory, FromArgMatches};

use super::Cli;

/// Parses the process's arguments; on a usage error, prints it and exits
/// with 2 (0 for --help and --version).
pub fn parse() -> Cli {
    match try_parse_from(std::env::args_os()) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    }
}

/// Parses `args` (the program name first).
pub fn try_parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let mut command = Cli::command().mut_subcommands(|sub| {
        sub.allow_negative_numbers(true).mut_args(|arg| {
            // `-z -5s` reaches --duration's parser (and its error) too.
            let takes_value = matches!(arg.get_action(), ArgAction::Set | ArgAction::Append);
            if takes_value && !arg.is_positional() {
                arg.allow_hyphen_values(true)
            } else {
                arg
            }
        })
    });
    let matches = command
        .try_get_matches_from_mut(args)
        .map_err(|e| negative_in_words(e, &mut command))?;
    Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut command))
}

/// A negative number given to a flag that counts something: say so about
/// the flag.
fn negative_in_words(error: clap::Error, command: &mut clap::Command) -> clap::Error {
    if error.kind() != ErrorKind::ValueValidation {
        return error;
    }
    let (Some(ContextValue::String(flag)), Some(ContextValue::String(value))) = (
        error.get(ContextKind::InvalidArg),
        error.get(ContextKind::InvalidValue),
    ) else {
        return error;
    };
    let negative = value
        .strip_prefix('-')
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit() || c == '.'));
    if !negative {
        return error;
    }
    let flag = flag.split_whitespace().next().unwrap_or(flag);
    command.error(
        ErrorKind::ValueValidation,
        format!("{flag} cannot be negative (got {value}); see --help for its range"),
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::try_parse_from;
    use crate::cli::Command;

    /// Parses and plans `grpclb bench ipv4:127.0.0.1:1 FLAG VALUE`; the
    /// error's text when either step refuses it.
    fn bench_with(flag: &str, value: &str) -> Result<(), String> {
        let cli = try_parse_from(["grpclb", "bench", "ipv4:127.0.0.1:1", flag, value])
            .map_err(|e| e.to_string())?;
        match cli.command {
            Command::Bench(args) => args.plan().map(|_| ()).map_err(|e| e.to_string()),
            _ => Err("not bench".into()),
        }
    }

    proptest! {
        #[test]
        fn any_number_or_duration_is_planned_or_refused_by_name(
            flag in prop::sample::select(vec![
                "--concurrency", "--requests", "--rate", "--duration", "--warmup", "--timeout",
                "--max-deviation", "--max-ratio", "--chi2-p", "--max-errors", "--expect-endpoints",
                "--settle", "--payload-bytes", "--weights",
            ]),
            value in prop_oneof![
                "-?[0-9]{1,25}(\\.[0-9]{1,5})?(e[+-]?[0-9]{1,3})?",
                "-?[0-9]{1,22}(ns|ms|s|m|h|d|%)",
                "[ -~]{0,12}",
                Just("NaN".to_string()), Just("inf".to_string()), Just("-inf".to_string()),
            ],
        ) {
            if let Err(message) = bench_with(flag, &value) {
                let named = message.contains(flag)
                    || (flag == "--requests" && message.contains("--duration"));
                prop_assert!(named, "{} {:?}: {}", flag, value, message);
                prop_assert!(!message.contains("-- -"), "clap's tip: {}", message);
            }
        }
    }
}
