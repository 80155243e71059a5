//! Flags that say how targets are resolved, shared by `bench` and `resolve`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::parse_duration;
use grpclb::Failure;
use grpclb::resolve::ResolveOptions;

/// The longest `--resolve-timeout` accepted.
const MAX_RESOLVE_TIMEOUT: Duration = Duration::from_secs(3600);

/// Where endpoints come from: cluster access, DNS refresh, conditions.
#[derive(Debug, Clone, Args)]
pub struct DiscoveryArgs {
    /// Kubernetes: the kubeconfig to use [default: $KUBECONFIG, else ~/.kube/config, else the pod's service account].
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubernetes: the kubeconfig context to use instead of its current context.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Kubernetes: the cluster's DNS domain; clusterip mode dials svc.ns.svc.<domain>:port.
    #[arg(long, value_name = "DOMAIN", default_value = grpclb::resolve::DEFAULT_CLUSTER_DOMAIN)]
    pub cluster_domain: String,
    /// How often DNS targets are re-resolved (0 resolves once).
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub dns_refresh: Duration,
    /// Also balance onto endpoints that are terminating but still serving.
    #[arg(long)]
    pub include_terminating: bool,
    /// Give up (exit 3) when the first endpoint set has not arrived within this long.
    #[arg(long, value_parser = parse_duration, default_value = "30s", value_name = "D")]
    pub resolve_timeout: Duration,
}

impl DiscoveryArgs {
    /// The resolver settings these flags ask for; a usage error when one
    /// is out of range.
    pub fn options(&self) -> Result<ResolveOptions, Failure> {
        if self.resolve_timeout.is_zero() || self.resolve_timeout > MAX_RESOLVE_TIMEOUT {
            return Err(Failure::Usage(format!(
                "--resolve-timeout {} is out of range; give a duration from 1ms to 1h (e.g. 30s)",
                humantime::format_duration(self.resolve_timeout)
            )));
        }
        Ok(ResolveOptions {
            dns_refresh: self.dns_refresh,
            include_terminating: self.include_terminating,
            kubeconfig: self.kubeconfig.clone(),
            kube_context: self.context.clone(),
            cluster_domain: self.cluster_domain.clone(),
            first_set_timeout: self.resolve_timeout,
            ..ResolveOptions::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};
    use grpclb::plan::{BenchPlan, RunMode};

    fn bench_plan(args: &[&str]) -> BenchPlan {
        let cli = Cli::try_parse_from([&["grpclb", "bench"], args].concat()).expect("parses");
        match cli.command {
            Command::Bench(args) => args.plan().expect("a valid plan"),
            other => panic!("not bench: {other:?}"),
        }
    }

    #[test]
    fn cluster_flags_reach_the_resolver() {
        let plan = bench_plan(&[
            "echo.default:grpc",
            "--kubeconfig",
            "/tmp/kc",
            "--context",
            "prod",
            "--dns-refresh",
            "1s",
            "--include-terminating",
        ]);
        assert_eq!(
            plan.resolve.kubeconfig.as_deref(),
            Some(std::path::Path::new("/tmp/kc"))
        );
        assert_eq!(plan.resolve.kube_context.as_deref(), Some("prod"));
        assert_eq!(plan.resolve.dns_refresh, std::time::Duration::from_secs(1));
        assert!(plan.resolve.include_terminating);
    }

    #[test]
    fn kubernetes_target_in_both_modes_dials_its_service() {
        let plan = bench_plan(&["echo.default:grpc", "--mode", "both", "--connections", "2"]);
        assert_eq!(
            plan.runs,
            vec![
                RunMode::ServiceOfTarget { connections: 2 },
                RunMode::Headless
            ]
        );
        assert!(plan.pods_known);
        let plan = bench_plan(&["echo.default:grpc", "--mode", "clusterip", "--assert-even"]);
        assert_eq!(plan.runs, vec![RunMode::ServiceOfTarget { connections: 1 }]);
        let plan = bench_plan(&[
            "echo.default:grpc",
            "--mode",
            "both",
            "--clusterip-target",
            "10.96.0.20:50051",
        ]);
        assert_eq!(
            plan.runs[0],
            RunMode::ClusterIp {
                address: "10.96.0.20:50051".into(),
                connections: 1
            }
        );
    }
}
