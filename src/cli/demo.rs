//! `grpclb demo` flags.

use clap::{Args, ValueEnum};

use super::bench::LoadArgs;
use grpclb::Failure;
use grpclb::load::Stop;
use grpclb::plan::{DemoPlan, MAX_DEMO_PODS, SCENARIO_DURATION, Scenario};

#[derive(Debug, Args)]
#[command(mut_arg("requests", |a| a.help("Total recorded calls per mode [default: 5000 unless --duration]; a --scenario runs 6s per mode")))]
pub struct DemoArgs {
    /// How many local backends ("pods") to start, on 127.0.0.11, .12, …
    #[arg(long, default_value_t = 3, conflicts_with = "scenario")]
    pub pods: usize,
    /// Pods that come and go while each mode runs; both modes replay it from the same start.
    #[arg(long, value_enum, value_name = "NAME")]
    pub scenario: Option<ScenarioArg>,
    #[command(flatten)]
    pub load: LoadArgs,
}

/// The scenarios `--scenario` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScenarioArg {
    /// 2 pods, then 2 more join mid-run
    ScaleUp,
    /// 3 pods replaced one by one, mid-run
    Rollout,
    /// pods send GOAWAY after ~0.5s; clients redial
    MaxConnectionAge,
    /// a pod dies mid-run, without GOAWAY
    Kill,
}

impl From<ScenarioArg> for Scenario {
    fn from(arg: ScenarioArg) -> Scenario {
        match arg {
            ScenarioArg::ScaleUp => Scenario::ScaleUp,
            ScenarioArg::Rollout => Scenario::Rollout,
            ScenarioArg::MaxConnectionAge => Scenario::MaxConnectionAge,
            ScenarioArg::Kill => Scenario::Kill,
        }
    }
}

impl DemoArgs {
    pub fn plan(self) -> Result<DemoPlan, Failure> {
        if !(1..=MAX_DEMO_PODS).contains(&self.pods) {
            return Err(Failure::Usage(format!(
                "--pods {} must be between 1 and {MAX_DEMO_PODS}",
                self.pods
            )));
        }
        let scenario = self.scenario.map(Scenario::from);
        let mut load = self.load.plan(5_000)?;
        // Pods come and go at set times: a scenario runs for a while, not a count.
        if scenario.is_some() && self.load.requests.is_none() && self.load.duration.is_none() {
            load.stop = Stop::Duration(SCENARIO_DURATION);
        }
        Ok(DemoPlan {
            pods: self.pods,
            policy: self.load.policy,
            load,
            output: self.load.output.into(),
            quiet: self.load.quiet,
            scenario,
        })
    }
}
