//! The command line: clap definitions, and the one step that turns raw
//! flags into the library's validated plans (`grpclb::plan`). Errors in
//! that step are the exit-code-2 errors. Nothing past this module sees a
//! raw flag.

mod applies;
mod assert;
mod bench;
mod demo;
mod discovery;
mod etcd;
mod merge;
mod method;
mod parse;
mod register;
mod resolve;
mod serve;
mod tls;

use clap::{Parser, Subcommand, ValueEnum};

pub use assert::AssertArgs;
pub use bench::BenchArgs;
pub use demo::DemoArgs;
pub use discovery::DiscoveryArgs;
pub use etcd::EtcdArgs;
pub use merge::MergeArgs;
pub use method::{DescribeArgs, ListArgs, MethodArgs, parse_call};
pub use parse::parse;
pub use register::{RegisterArgs, ServeRegisterArgs};
pub use resolve::ResolveArgs;
pub use serve::ServeArgs;
pub use tls::ConnectArgs;

/// Diagnose and benchmark gRPC load balancing: see whether calls spread
/// across your pods, through a ClusterIP Service and with per-call balancing.
#[derive(Debug, Parser)]
#[command(name = "grpclb", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fire load at a target and show how calls spread over its endpoints.
    Bench(Box<BenchArgs>),
    /// Run the backend to deploy: echo, health and reflection, naming itself in every reply.
    Serve(ServeArgs),
    /// Show the endpoints a target resolves to, and follow their changes with --watch.
    Resolve(ResolveArgs),
    /// Run everything on this machine: local pods, a ClusterIP stand-in, both modes side by side.
    Demo(DemoArgs),
    /// Register an address in etcd under a lease and keep it alive until stopped.
    Register(RegisterArgs),
    /// Merge the JSON reports of many clients (`bench -o json`) and judge the whole spread.
    Merge(MergeArgs),
    /// List the services and methods a server offers (server reflection) or .proto files describe.
    List(ListArgs),
    /// Show a service, method or message and the shape of its messages.
    Describe(DescribeArgs),
}

/// How results are printed (`--output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputArg {
    /// Human tables.
    Table,
    /// One stable JSON document on stdout.
    Json,
}

impl From<OutputArg> for grpclb::plan::Output {
    fn from(arg: OutputArg) -> Self {
        match arg {
            OutputArg::Table => grpclb::plan::Output::Table,
            OutputArg::Json => grpclb::plan::Output::Json,
        }
    }
}

/// Parses a duration such as `10s`, `500ms`, `1m30s`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not a duration ({e}); write e.g. 10s, 500ms, 1m"))
}
