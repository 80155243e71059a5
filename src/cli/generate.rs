//! `grpclb completions` and `grpclb man`: shell completion scripts and
//! manual pages generated from the same clap definitions as the parser, so
//! they cannot drift from the flags.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Cli;
use grpclb::Failure;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The subcommand whose page to print [default: the page of grpclb itself].
    #[arg(value_parser = PAGES.map(|(sub, _)| sub))]
    pub subcommand: Option<String>,
}

/// Each subcommand and the name of its page, as git names its pages.
const PAGES: [(&str, &str); 10] = [
    ("bench", "grpclb-bench"),
    ("serve", "grpclb-serve"),
    ("resolve", "grpclb-resolve"),
    ("demo", "grpclb-demo"),
    ("register", "grpclb-register"),
    ("merge", "grpclb-merge"),
    ("list", "grpclb-list"),
    ("describe", "grpclb-describe"),
    ("completions", "grpclb-completions"),
    ("man", "grpclb-man"),
];

impl CompletionsArgs {
    /// The completion script for the shell.
    pub fn script(&self) -> Vec<u8> {
        let mut out = Vec::new();
        clap_complete::generate(self.shell, &mut Cli::command(), "grpclb", &mut out);
        out
    }
}

impl ManArgs {
    /// The roff page: `grpclb(1)`, or `grpclb-SUBCOMMAND(1)`.
    pub fn page(&self) -> Result<Vec<u8>, Failure> {
        let mut root = Cli::command();
        root.build();
        let command = match &self.subcommand {
            None => root,
            Some(name) => {
                let (sub, page) = PAGES
                    .into_iter()
                    .find(|(sub, _)| sub == name)
                    .and_then(|(sub, page)| Some((root.find_subcommand(sub)?.clone(), page)))
                    .ok_or_else(|| Failure::Usage(format!("no subcommand {name:?}")))?;
                sub.name(page)
            }
        };
        let mut out = Vec::new();
        clap_mangen::Man::new(command)
            .render(&mut out)
            .map_err(|e| Failure::CannotRun(format!("cannot render the manual page: {e}")))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_that_names_the_subcommands() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::PowerShell] {
            let script = String::from_utf8(CompletionsArgs { shell }.script()).expect("utf-8");
            for word in ["bench", "resolve", "assert-even", "round_robin"] {
                assert!(script.contains(word), "{shell}: no {word}");
            }
        }
    }

    #[test]
    fn man_pages_render_for_grpclb_and_each_subcommand() {
        let page = |sub: Option<&str>| {
            let args = ManArgs {
                subcommand: sub.map(String::from),
            };
            String::from_utf8(args.page().expect("renders")).expect("utf-8")
        };
        let top = page(None);
        assert!(
            top.starts_with(".ie") || top.contains(".TH grpclb"),
            "{top}"
        );
        assert!(top.contains("bench"));
        let bench = page(Some("bench"));
        assert!(bench.contains(".TH grpclb-bench"), "{bench}");
        assert!(bench.contains("assert\\-even"), "{bench}");
        assert!(bench.contains("Examples"), "{bench}");
    }
}
