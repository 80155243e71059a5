//! `grpclb demo`: local pods, a local ClusterIP stand-in, both modes side by side.

use super::cluster::start_service;
use super::story::{Happened, explain};
use super::{scenario, start_pods};
use crate::Failure;
use crate::plan::{BenchPlan, DemoPlan, RunMode, Scenario};
use crate::report::{Report, Style, wrap};
use crate::resolve::ResolveOptions;
use crate::target::Target;
use crate::verdict::Assertions;

/// A finished demo: the reports to print, and what explains them.
pub struct DemoRun {
    /// clusterip, then headless.
    pub reports: Vec<Report>,
    /// The scenario played, with what happened during each report's run.
    scenario: Option<(Scenario, Vec<Vec<Happened>>)>,
}

impl DemoRun {
    /// What the user is looking at, printed after the tables (a
    /// scenario's lines wrapped for `style`).
    pub fn explanation(&self, style: &Style) -> String {
        match &self.scenario {
            None => explanation(&self.reports),
            Some((scenario, happenings)) => {
                let runs: Vec<(&Report, &[Happened])> = self
                    .reports
                    .iter()
                    .zip(happenings)
                    .map(|(r, h)| (r, h.as_slice()))
                    .collect();
                explain(*scenario, &runs)
                    .iter()
                    .map(|line| wrap(line, style, 4))
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        }
    }
}

/// Runs the demo (with its scenario, if any) and returns both reports.
/// `announce` hears what was started, before the runs begin.
pub async fn run(
    plan: &DemoPlan,
    announce: impl FnOnce(String) -> Result<(), Failure>,
) -> Result<DemoRun, Failure> {
    if let Some(chosen) = plan.scenario {
        let (reports, happenings) = scenario::run(plan, chosen, announce).await?;
        return Ok(DemoRun {
            reports,
            scenario: Some((chosen, happenings)),
        });
    }
    Ok(DemoRun {
        reports: run_fixed(plan, announce).await?,
        scenario: None,
    })
}

/// The plain demo: `plan.pods` pods that stay up; both reports
/// (clusterip, then headless).
async fn run_fixed(
    plan: &DemoPlan,
    announce: impl FnOnce(String) -> Result<(), Failure>,
) -> Result<Vec<Report>, Failure> {
    let pods = start_pods(plan.pods)
        .await
        .map_err(|e| Failure::CannotRun(format!("cannot start the demo pods: {e}")))?;
    let service = start_service(pods.addresses.clone()).await?;
    let bench = bench_over(
        plan,
        pods.addresses.iter().map(|a| a.to_string()).collect(),
        vec![
            RunMode::ClusterIp {
                address: service.address.to_string(),
                connections: 1,
            },
            RunMode::Headless,
        ],
    );
    let pod_list: Vec<String> = pods.addresses.iter().map(|a| a.to_string()).collect();
    announce(format!(
        "grpclb demo: {} pods on {}, a ClusterIP stand-in on {} (one random pod per TCP connection, as kube-proxy does)\n",
        plan.pods,
        pod_list.join(", "),
        service.address
    ))?;
    let reports = crate::bench::run(&bench).await;
    drop(service);
    pods.stop().await;
    reports
}

/// What the user of the plain demo is looking at.
fn explanation(reports: &[Report]) -> String {
    let busiest = |mode: &str| {
        reports.iter().find(|r| r.mode == mode).and_then(|r| {
            r.endpoint_rows()
                .max_by(|a, b| a.share.total_cmp(&b.share))
                .map(|e| (e.name.clone(), e.share))
        })
    };
    let mut text = String::from("What you see:\n");
    if let Some((name, share)) = busiest("clusterip") {
        text.push_str(&format!(
            "  clusterip: the client dialled the Service address once. gRPC keeps that one HTTP/2\n  \
             connection, and the proxy chose a pod per connection, not per call: {name} served {:.0}%.\n",
            share * 100.0
        ));
    }
    if let Some((_, share)) = busiest("headless") {
        text.push_str(&format!(
            "  headless: grpclb resolved every pod, held a connection to each and picked one per call;\n  \
             the busiest pod served {:.0}%.\n",
            share * 100.0
        ));
    }
    text.push_str(
        "  In Kubernetes: resolve a headless Service (or the EndpointSlices) and balance per call;\n  \
         see docs/kubernetes.md and try `grpclb bench svc.ns:port --mode both --assert-even`.",
    );
    text
}

/// The bench a demo runs: these modes over the local pods at `addresses`,
/// with the demo's load, asserting nothing.
pub(super) fn bench_over(plan: &DemoPlan, addresses: Vec<String>, runs: Vec<RunMode>) -> BenchPlan {
    BenchPlan {
        method: None,
        target: Target::Static { addresses },
        pods_known: true,
        runs,
        policy: plan.policy,
        load: plan.load.clone(),
        assertions: Assertions::default(),
        settle: None,
        start_at: None,
        output: plan.output,
        quiet: plan.quiet,
        resolve: ResolveOptions::default(),
        tls: None,
    }
}
