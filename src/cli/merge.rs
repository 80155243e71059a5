//! `grpclb merge` flags and their conversion into a [`MergePlan`].

use std::path::PathBuf;

use clap::Args;

use super::{AssertArgs, OutputArg};
use grpclb::Failure;
use grpclb::plan::{MergePlan, ReportSource};

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Reports from `grpclb bench -o json`, one or more documents per file (one per line or
    /// concatenated); `-` reads them from stdin.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The verdict's checks, judged on the merged spread.
    #[command(flatten)]
    pub assert: AssertArgs,
    /// Print tables (with a per-client breakdown) or one JSON document.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: OutputArg,
}

impl MergeArgs {
    /// Validates the flags; errors are usage errors (exit 2).
    pub fn plan(self) -> Result<MergePlan, Failure> {
        let assertions = self.assert.assertions()?;
        let mut sources = Vec::new();
        for file in self.files {
            let source = if file.as_os_str() == "-" {
                ReportSource::Stdin
            } else {
                ReportSource::File(file)
            };
            if sources.contains(&source) {
                let name = match &source {
                    ReportSource::Stdin => "- (stdin)".to_string(),
                    ReportSource::File(path) => path.display().to_string(),
                };
                return Err(Failure::Usage(format!(
                    "{name} is given twice; each report would be counted twice"
                )));
            }
            sources.push(source);
        }
        Ok(MergePlan {
            sources,
            assertions,
            output: self.output.into(),
        })
    }
}
