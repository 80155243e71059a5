//! `grpclb bench` flags and their conversion into a [`BenchPlan`].

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::{Args, ValueEnum};

use super::choices::Choices;
use super::{
    AssertArgs, ConnectArgs, DiscoveryArgs, EtcdArgs, MethodArgs, OutputArg, parse_call,
    parse_duration,
};
use grpclb::Failure;
use grpclb::load::{CallKind, LoadPlan, MAX_PAYLOAD_BYTES, Stop, check_connections};
use grpclb::method::MethodSpec;
use grpclb::pick::Policy;
use grpclb::plan::{BenchPlan, RunMode};
use grpclb::resolve::ResolveOptions;
use grpclb::serve::IDENTITY_HEADER;
use grpclb::target::Target;
use grpclb::verdict::Weights;

/// Which way calls reach the pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeChoice {
    /// Dial the Service address over a fixed set of connections; the network picks a pod per connection.
    Clusterip,
    /// Resolve every pod, hold a connection to each, pick one per call.
    Headless,
    /// Clusterip, then headless, side by side.
    Both,
}

/// The RPC to send: `health`, `echo`, or any method by name.
pub type CallChoice = grpclb::method::CallName;

/// Load shape, shared by `bench` and `demo`.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Per-call policy in headless mode (least_request: the less loaded of two random endpoints).
    #[arg(long = "lb", default_value = "round_robin", value_parser = Choices::<Policy>::new(POLICIES))]
    pub policy: Policy,
    /// Concurrent workers (calls in flight at most).
    #[arg(long, short = 'c', default_value_t = 8)]
    pub concurrency: usize,
    /// Worker threads sending the calls, each with its own runtime [default: the number of cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Total recorded calls per mode [default: 10000 unless --duration].
    #[arg(long, short = 'n', conflicts_with = "duration")]
    pub requests: Option<u64>,
    /// Run each mode for this long instead of a request count (e.g. 10s).
    #[arg(long, short = 'z', value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Open loop: send this many calls per second in total; latency counts from the intended send time.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Calls sent and not recorded before measuring, for this long (e.g. 500ms).
    #[arg(long, value_parser = parse_duration, default_value = "200ms")]
    pub warmup: Duration,
    /// Deadline of each call.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub timeout: Duration,
    /// The RPC to send: health (grpc.health.v1.Health/Check), echo (grpclb.v1.Echo/Echo, needs
    /// grpclb serve), or any unary method as pkg.Service/Method with --data (bench only).
    #[arg(long, default_value = "health", value_parser = parse_call, value_name = "health|echo|pkg.Service/Method")]
    pub call: CallChoice,
    /// Payload size for --call echo.
    #[arg(long, default_value_t = 0)]
    pub payload_bytes: usize,
    /// Service name asked about by --call health ("" = the whole server).
    #[arg(long, default_value = "")]
    pub health_service: String,
    /// Response header that names the answering server.
    #[arg(long, default_value = IDENTITY_HEADER)]
    pub identity_header: String,
    /// Print tables or one JSON document (json: stdout holds nothing else).
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: OutputArg,
    /// Also write the JSON document to this file (whatever --output prints).
    #[arg(long, short = 'O', value_name = "PATH")]
    pub output_file: Option<PathBuf>,
    /// No live progress bar.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// The names `--lb` accepts (`p2c` is also taken, for least_request).
const POLICIES: &[&str] = &["round_robin", "pick_first", "random", "least_request"];

#[derive(Debug, Args)]
#[command(after_help = super::method::BENCH_EXAMPLES)]
pub struct BenchArgs {
    /// What to balance over: svc.ns[:port], kubernetes:///…, dns:///host:port, etcd://…/prefix,
    /// ipv4:a:port,b:port, static:///…, or host:port (a Service address, for --mode clusterip).
    pub target: String,
    /// clusterip: through the Service address; headless: per-call balancing over every pod; both.
    #[arg(long, value_enum, default_value = "headless")]
    pub mode: ModeChoice,
    /// The Service (ClusterIP) address to dial in clusterip mode, when TARGET lists the pods.
    #[arg(long)]
    pub clusterip_target: Option<String>,
    /// HTTP/2 connections held to the Service address in clusterip mode [default: 1].
    #[arg(long)]
    pub connections: Option<usize>,
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub method: MethodArgs,
    /// The verdict's checks.
    #[command(flatten)]
    pub assert: AssertArgs,
    /// Keep measuring in windows until the checks hold for a whole window, for at most this long
    /// (e.g. 2m); report the last window and how long it took.
    #[arg(long, value_parser = parse_duration, value_name = "D")]
    pub settle: Option<Duration>,
    /// Wait until this time (RFC 3339 UTC, e.g. 2026-12-01T10:00:00Z) before warming up, so that
    /// many clients (an Indexed Job's pods) measure over the same window for `grpclb merge`.
    #[arg(long, value_parser = parse_start_at, value_name = "RFC3339")]
    pub start_at: Option<SystemTime>,
    /// Cluster access, DNS refresh, terminating endpoints.
    #[command(flatten)]
    pub discovery: DiscoveryArgs,
    #[command(flatten)]
    pub etcd: EtcdArgs,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// How far ahead `--start-at` may be: further is taken for a mistake.
const START_AT_LIMIT: Duration = Duration::from_secs(24 * 3600);

fn parse_start_at(s: &str) -> Result<SystemTime, String> {
    let at = grpclb::report::parse_rfc3339(s)?;
    match at.duration_since(SystemTime::now()) {
        Ok(ahead) if ahead > START_AT_LIMIT => Err(format!(
            "{s} is {} ahead; --start-at waits at most 24h (a wrong date?)",
            humantime::format_duration(Duration::from_secs(ahead.as_secs()))
        )),
        _ => Ok(at),
    }
}

impl LoadArgs {
    /// Validates the load flags.
    pub fn plan(&self, default_requests: u64) -> Result<LoadPlan, Failure> {
        if self.payload_bytes > MAX_PAYLOAD_BYTES {
            return Err(Failure::Usage(format!(
                "--payload-bytes {} must be at most {MAX_PAYLOAD_BYTES} (gRPC servers refuse messages over 4 MiB)",
                self.payload_bytes
            )));
        }
        if http::HeaderName::from_bytes(self.identity_header.as_bytes()).is_err() {
            return Err(Failure::Usage(format!(
                "--identity-header {:?} is not a valid header name (lowercase letters, digits, '-')",
                self.identity_header
            )));
        }
        if self.payload_bytes > 0 && self.call != CallChoice::Echo {
            return Err(Failure::Usage("--payload-bytes needs --call echo".into()));
        }
        let stop = match (self.requests, self.duration) {
            (_, Some(d)) => Stop::Duration(d),
            (Some(n), None) => Stop::Requests(n),
            (None, None) => Stop::Requests(default_requests),
        };
        let call = match &self.call {
            CallChoice::Health => CallKind::Health {
                service: self.health_service.clone(),
            },
            CallChoice::Echo => CallKind::Echo {
                payload: vec![b'x'; self.payload_bytes],
            },
            CallChoice::Method(name) => {
                return Err(Failure::Usage(format!(
                    "--call {name} is for grpclb bench; demo sends health or echo"
                )));
            }
        };
        let plan = LoadPlan {
            concurrency: self.concurrency,
            threads: self
                .threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            stop,
            rate: self.rate,
            warmup: self.warmup,
            timeout: self.timeout,
            call,
            identity_header: self.identity_header.to_ascii_lowercase(),
            metadata: Default::default(),
        };
        // Every numeric range lives in one place: `LoadPlan::check`.
        plan.check().map_err(Failure::Usage)?;
        Ok(plan)
    }
}

impl BenchArgs {
    /// Validates every flag and the target; errors are usage errors (exit 2).
    pub fn plan(self) -> Result<BenchPlan, Failure> {
        super::applies::check_bench(&self)?;
        let target = Target::parse(&self.target)?;
        let method = self.method.spec(&self.load.call)?;
        let load = match &self.load.call {
            // Described when the run starts (see `method`); health stands in until then.
            CallChoice::Method(_) => LoadArgs {
                call: CallChoice::Health,
                ..self.load.clone()
            }
            .plan(10_000)?,
            _ => self.load.plan(10_000)?,
        };
        if self.payload_bytes_conflict(&method) {
            return Err(Failure::Usage(
                "--payload-bytes and --data both give the echo payload; use one".into(),
            ));
        }
        if let Some(connections) = self.connections {
            check_connections(connections).map_err(Failure::Usage)?;
        }
        let service_address = match &self.clusterip_target {
            Some(address) => Some(clusterip_address(
                &Target::parse(address)?,
                "--clusterip-target",
            )?),
            None => None,
        };
        let wants_clusterip = matches!(self.mode, ModeChoice::Clusterip | ModeChoice::Both);
        // A Kubernetes target names its Service too: clusterip runs dial it.
        let service_of_target = service_address.is_none()
            && matches!(target, Target::Kubernetes { .. })
            && wants_clusterip;
        // TARGET lists the pods unless it is the Service address itself.
        let pods_known = !(wants_clusterip && service_address.is_none()) || service_of_target;
        let connections = self.connections.unwrap_or(1);
        let clusterip_run = |address: String| RunMode::ClusterIp {
            address,
            connections,
        };
        let runs = match self.mode {
            ModeChoice::Headless => vec![RunMode::Headless],
            ModeChoice::Clusterip if service_of_target => {
                vec![RunMode::ServiceOfTarget { connections }]
            }
            ModeChoice::Clusterip => {
                let address = match service_address.clone() {
                    Some(a) => a,
                    None => clusterip_address(&target, "TARGET")?,
                };
                vec![clusterip_run(address)]
            }
            ModeChoice::Both if service_of_target => {
                vec![RunMode::ServiceOfTarget { connections }, RunMode::Headless]
            }
            ModeChoice::Both => {
                let address = service_address.clone().ok_or_else(|| {
                    Failure::Usage(
                        "--mode both needs the Service address too: add --clusterip-target host:port \
                         (TARGET lists the pods, --clusterip-target is what ordinary clients dial)"
                            .into(),
                    )
                })?;
                vec![clusterip_run(address), RunMode::Headless]
            }
        };
        if self.settle.is_some_and(|d| d.is_zero()) {
            return Err(Failure::Usage(
                "--settle must be longer than 0 (e.g. 2m)".into(),
            ));
        }
        let mut assertions = self.assert.assertions()?;
        if self.settle.is_some() && !assertions.any() {
            // Settling waits for the default bound when nothing else is asked.
            assertions.spread = true;
        }
        if !pods_known
            && (assertions.judges_spread() || assertions.weights.is_some())
            && assertions.expect_endpoints.is_none()
            && !matches!(assertions.weights, Some(Weights::ByName(_)))
        {
            return Err(Failure::Usage(format!(
                "cannot judge the spread behind {}: grpclb does not know how many pods are behind it. \
                 Add --expect-endpoints N, or give the pods as TARGET and the Service as --clusterip-target",
                self.target
            )));
        }
        let metadata = self.connect.metadata()?;
        let tls = self
            .connect
            .client_tls(&target, &metadata, &self.discovery.cluster_domain)?;
        let load = LoadPlan { metadata, ..load };
        Ok(BenchPlan {
            tls,
            target,
            pods_known,
            runs,
            policy: self.load.policy,
            load,
            method,
            assertions,
            settle: self.settle,
            start_at: self.start_at,
            output: self.load.output.into(),
            quiet: self.load.quiet,
            resolve: ResolveOptions {
                etcd: self.etcd.options(),
                ..self.discovery.options()?
            },
        })
    }
}

impl BenchArgs {
    /// True when echo's payload is given twice.
    fn payload_bytes_conflict(&self, method: &Option<MethodSpec>) -> bool {
        self.load.payload_bytes > 0 && method.as_ref().is_some_and(|m| m.data.is_given())
    }
}

/// The single address a clusterip run dials.
fn clusterip_address(target: &Target, flag: &str) -> Result<String, Failure> {
    target.single_address().ok_or_else(|| {
        Failure::Usage(format!(
            "clusterip mode dials one address, but {flag} is {target}; \
             give the Service address (host:port), e.g. --clusterip-target 10.96.0.20:50051"
        ))
    })
}
