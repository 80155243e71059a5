//! Validated plans: what each subcommand is asked to do, as plain values.
//!
//! The binary turns flags into these (its errors are the exit-code-2
//! errors); the library runs them. A program that embeds grpclb builds a
//! plan directly, without clap.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::etcd::{EtcdOptions, ValueFormat};
use crate::load::LoadPlan;
use crate::method::{DescriptorSource, MethodSpec};
use crate::pick::Policy;
use crate::resolve::ResolveOptions;
use crate::target::Target;
use crate::verdict::Assertions;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Human tables.
    Table,
    /// One stable JSON document on stdout.
    Json,
}

/// One mode of a bench run.
#[derive(Debug, Clone, PartialEq)]
pub enum RunMode {
    /// Dial this address over `connections` connections.
    ClusterIp { address: String, connections: usize },
    /// Balance per call over the resolved endpoints.
    Headless,
    /// Dial the Kubernetes target's Service by its cluster DNS name
    /// (`svc.ns.svc.cluster.local:port`), as an ordinary client in the
    /// cluster does; the port is looked up when the run starts.
    ServiceOfTarget { connections: usize },
}

/// A validated `bench` invocation.
#[derive(Debug, Clone)]
pub struct BenchPlan {
    /// What lists the pods (resolved for headless runs and to name idle pods).
    pub target: Target,
    /// True when `target` lists the pods (not just the Service address).
    pub pods_known: bool,
    pub runs: Vec<RunMode>,
    pub policy: Policy,
    pub load: LoadPlan,
    /// A method to describe and encode when the run starts; its call then
    /// replaces `load.call`.
    pub method: Option<MethodSpec>,
    pub assertions: Assertions,
    /// Keep measuring until the checks hold for a window, up to this long.
    pub settle: Option<Duration>,
    /// Wait until this wall-clock time before warming up (`--start-at`), so
    /// that many clients measure over the same window.
    pub start_at: Option<SystemTime>,
    pub output: Output,
    /// No live progress view.
    pub quiet: bool,
    pub resolve: ResolveOptions,
    /// Dial over TLS (`None`: plaintext HTTP/2).
    pub tls: Option<crate::tls::ClientTls>,
}

/// A validated `resolve` invocation.
#[derive(Debug, Clone)]
pub struct ResolvePlan {
    pub target: Target,
    pub watch: bool,
    /// How long to watch; `None` until Ctrl-C.
    pub duration: Option<Duration>,
    pub output: Output,
    pub resolve: ResolveOptions,
}

/// A validated `list` or `describe` invocation.
#[derive(Debug, Clone)]
pub struct DiscoverPlan {
    /// The server asked through reflection (`None` with file sources).
    pub target: Option<Target>,
    pub source: DescriptorSource,
    /// What to describe; `None` lists every service.
    pub symbol: Option<String>,
    pub output: Output,
    pub resolve: ResolveOptions,
}

/// A validated `demo` invocation.
#[derive(Debug, Clone)]
pub struct DemoPlan {
    /// Local backends to start, on 127.0.0.11, .12, …
    pub pods: usize,
    pub policy: Policy,
    pub load: LoadPlan,
    pub output: Output,
    pub quiet: bool,
    /// Pods that come and go during each run (`--scenario`); `None`: a
    /// fixed set of `pods`.
    pub scenario: Option<Scenario>,
}

/// What happens to the demo's pods while each mode runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// 2 pods; 2 more join a third of the way in.
    ScaleUp,
    /// 3 pods replaced one by one by new ones.
    Rollout,
    /// 3 pods that close each connection after about a second.
    MaxConnectionAge,
    /// 3 pods; one dies abruptly, without GOAWAY.
    Kill,
}

/// How long each mode of a scenario runs unless `--duration` or
/// `--requests` says otherwise: both modes fit in 20 s.
pub const SCENARIO_DURATION: Duration = Duration::from_secs(6);

impl Scenario {
    /// The name `--scenario` takes.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::ScaleUp => "scale-up",
            Scenario::Rollout => "rollout",
            Scenario::MaxConnectionAge => "max-connection-age",
            Scenario::Kill => "kill",
        }
    }
}

/// Loopback addresses 127.0.0.11 … 127.0.0.254 hold the demo's pods.
pub const MAX_DEMO_PODS: usize = 200;

/// A validated `serve` invocation.
#[derive(Debug, Clone)]
pub struct ServePlan {
    /// Every address to listen on (one process can stand in for many pods).
    pub listen: Vec<SocketAddr>,
    /// The name sent in every reply; `None`: `$POD_NAME`, else the hostname.
    pub name: Option<String>,
    /// Register in etcd while serving (`--register`).
    pub register: Option<RegisterPlan>,
    /// Faults and connection recycling (`--delay`, `--max-connection-age`, …).
    pub settings: crate::serve::ServeSettings,
}

/// A validated registration, waiting for its address when that is only
/// known once the server has bound its port.
#[derive(Debug, Clone)]
pub struct RegisterPlan {
    /// etcd endpoints (empty: `ETCDCTL_ENDPOINTS`).
    pub endpoints: Vec<String>,
    pub prefix: String,
    /// The address to register; `None` for `serve` without `--advertise`.
    pub address: Option<String>,
    pub ttl_s: i64,
    pub format: ValueFormat,
    pub name: Option<String>,
    pub etcd: EtcdOptions,
}

/// Where `grpclb merge` reads reports from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportSource {
    /// Standard input (`-`).
    Stdin,
    File(PathBuf),
}

/// A validated `merge` invocation.
#[derive(Debug, Clone)]
pub struct MergePlan {
    /// Each holds one or more JSON documents from `grpclb bench -o json`.
    pub sources: Vec<ReportSource>,
    /// Judged on the merged spread, as `bench` judges one run.
    pub assertions: Assertions,
    pub output: Output,
}
