//! Flags that say how targets are resolved, shared by `bench` and `resolve`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::parse_duration;
use crate::resolve::ResolveOptions;

/// Where endpoints come from: cluster access, DNS refresh, conditions.
#[derive(Debug, Clone, Args)]
pub struct DiscoveryArgs {
    /// Kubernetes: the kubeconfig to use [default: $KUBECONFIG, else ~/.kube/config, else the pod's service account].
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubernetes: the kubeconfig context to use instead of its current context.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// How often DNS targets are re-resolved (0 resolves once).
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub dns_refresh: Duration,
    /// Also balance onto endpoints that are terminating but still serving.
    #[arg(long)]
    pub include_terminating: bool,
}

impl DiscoveryArgs {
    /// The resolver settings these flags ask for.
    pub fn options(&self) -> ResolveOptions {
        ResolveOptions {
            dns_refresh: self.dns_refresh,
            include_terminating: self.include_terminating,
            kubeconfig: self.kubeconfig.clone(),
            kube_context: self.context.clone(),
        }
    }
}
