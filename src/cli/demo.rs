//! `grpclb demo` flags.

use clap::Args;

use super::bench::LoadArgs;
use grpclb::Failure;
use grpclb::plan::{DemoPlan, MAX_DEMO_PODS};

#[derive(Debug, Args)]
#[command(mut_arg("requests", |a| a.help("Total recorded calls per mode [default: 5000 unless --duration]")))]
pub struct DemoArgs {
    /// How many local backends ("pods") to start, on 127.0.0.11, .12, …
    #[arg(long, default_value_t = 3)]
    pub pods: usize,
    #[command(flatten)]
    pub load: LoadArgs,
}

impl DemoArgs {
    pub fn plan(self) -> Result<DemoPlan, Failure> {
        if !(1..=MAX_DEMO_PODS).contains(&self.pods) {
            return Err(Failure::Usage(format!(
                "--pods {} must be between 1 and {MAX_DEMO_PODS}",
                self.pods
            )));
        }
        Ok(DemoPlan {
            pods: self.pods,
            policy: self.load.policy,
            load: self.load.plan(5_000)?,
            output: self.load.output.into(),
            quiet: self.load.quiet,
        })
    }
}
