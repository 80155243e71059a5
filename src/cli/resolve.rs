//! `grpclb resolve` flags and their conversion into a [`ResolvePlan`].

use std::time::Duration;

use clap::Args;

use super::{DiscoveryArgs, EtcdArgs, OutputArg, parse_duration};
use grpclb::Failure;
use grpclb::plan::ResolvePlan;
use grpclb::resolve::ResolveOptions;
use grpclb::target::Target;

#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// What to resolve: svc.ns[:port], kubernetes:///…, dns:///host:port, etcd://…/prefix,
    /// ipv4:a:port,b:port, static:///…
    pub target: String,
    /// Follow changes live, one line per change, until Ctrl-C or --duration.
    #[arg(long, short = 'w')]
    pub watch: bool,
    /// Stop watching after this long (e.g. 30s).
    #[arg(long, short = 'z', value_parser = parse_duration, requires = "watch")]
    pub duration: Option<Duration>,
    /// Print a table or JSON (with --watch: one JSON object per line per change).
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: OutputArg,
    #[command(flatten)]
    pub discovery: DiscoveryArgs,
    #[command(flatten)]
    pub etcd: EtcdArgs,
}

impl ResolveArgs {
    /// Validates the flags and the target; errors are usage errors (exit 2).
    pub fn plan(self) -> Result<ResolvePlan, Failure> {
        let target = Target::parse(&self.target)?;
        if self.duration.is_some_and(|d| d.is_zero()) {
            return Err(Failure::Usage(
                "--duration must be longer than 0 (e.g. 30s)".into(),
            ));
        }
        Ok(ResolvePlan {
            target,
            watch: self.watch,
            duration: self.duration,
            output: self.output.into(),
            resolve: ResolveOptions {
                etcd: self.etcd.options(),
                ..self.discovery.options()?
            },
        })
    }
}
