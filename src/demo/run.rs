//! `grpclb demo`: local pods, a local ClusterIP stand-in, both modes side by side.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::{ConnectionBalancer, start_pods};
use crate::Failure;
use crate::plan::{BenchPlan, DemoPlan, RunMode};
use crate::report::Report;
use crate::resolve::ResolveOptions;
use crate::serve::bind;
use crate::target::Target;
use crate::verdict::Assertions;

/// Where the ClusterIP stand-in listens, like a Service's virtual IP.
const SERVICE_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10));

/// Runs the demo and returns both reports (clusterip, then headless).
/// `announce` hears what was started, before the runs begin.
pub async fn run(
    plan: &DemoPlan,
    announce: impl FnOnce(String) -> Result<(), Failure>,
) -> Result<Vec<Report>, Failure> {
    let pods = start_pods(plan.pods)
        .await
        .map_err(|e| Failure::CannotRun(format!("cannot start the demo pods: {e}")))?;
    let service_listener = match bind(SocketAddr::new(SERVICE_IP, 50051)).await {
        Ok(listener) => listener,
        Err(_) => bind(SocketAddr::new(SERVICE_IP, 0))
            .await
            .map_err(|e| Failure::CannotRun(format!("cannot start the ClusterIP stand-in: {e}")))?,
    };
    let service = ConnectionBalancer::start(service_listener, pods.addresses.clone())
        .map_err(|e| Failure::CannotRun(format!("cannot start the ClusterIP stand-in: {e}")))?;
    let bench = BenchPlan {
        method: None,
        target: Target::Static {
            addresses: pods.addresses.iter().map(|a| a.to_string()).collect(),
        },
        pods_known: true,
        runs: vec![
            RunMode::ClusterIp {
                address: service.address.to_string(),
                connections: 1,
            },
            RunMode::Headless,
        ],
        policy: plan.policy,
        load: plan.load.clone(),
        assertions: Assertions::default(),
        settle: None,
        start_at: None,
        output: plan.output,
        quiet: plan.quiet,
        resolve: ResolveOptions::default(),
        tls: None,
    };
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

/// What the user is looking at, printed after the tables.
pub fn explanation(reports: &[Report]) -> String {
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
