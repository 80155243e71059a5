//! The command line: clap definitions, and the one step that turns raw
//! flags into the library's validated plans (`grpclb::plan`). Errors in
//! that step are the exit-code-2 errors. Nothing past this module sees a
//! raw flag.

mod applies;
mod assert;
mod bench;
mod choices;
mod demo;
mod discovery;
mod etcd;
mod generate;
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
pub use generate::{CompletionsArgs, ManArgs};
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
    /// Colour in tables and verdicts: auto colours only a terminal, and
    /// never under NO_COLOR or TERM=dumb.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        value_name = "WHEN"
    )]
    pub color: ColorArg,
    #[command(subcommand)]
    pub command: Command,
}

/// When to colour (`--color`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    /// Colour when stdout is a terminal, NO_COLOR is unset and TERM is not dumb.
    Auto,
    /// Always colour, even into a pipe or a file.
    Always,
    /// Never colour.
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fire load at a target and show how calls spread over its endpoints.
    Bench(Box<BenchArgs>),
    /// Run the backend to deploy: echo, health and reflection, naming itself in every reply.
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(ServeArgs),
    /// Show the endpoints a target resolves to, and follow their changes with --watch.
    #[command(after_help = RESOLVE_EXAMPLES)]
    Resolve(ResolveArgs),
    /// Run everything on this machine: local pods, a ClusterIP stand-in, both modes side by side.
    #[command(after_help = DEMO_EXAMPLES)]
    Demo(DemoArgs),
    /// Register an address in etcd under a lease and keep it alive until stopped.
    #[command(after_help = REGISTER_EXAMPLES)]
    Register(RegisterArgs),
    /// Merge the JSON reports of many clients (`bench -o json`) and judge the whole spread.
    #[command(after_help = MERGE_EXAMPLES)]
    Merge(MergeArgs),
    /// List the services and methods a server offers (server reflection) or .proto files describe.
    List(ListArgs),
    /// Show a service, method or message and the shape of its messages.
    Describe(DescribeArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions(CompletionsArgs),
    /// Print the manual page (roff) of grpclb or of one of its subcommands.
    #[command(after_help = MAN_EXAMPLES)]
    Man(ManArgs),
}

const MERGE_EXAMPLES: &str = "\
Examples:
  grpclb merge client-a.json client-b.json --assert-even
  cat reports/*.json | grpclb merge - -o json > merged.json";

const SERVE_EXAMPLES: &str = "\
Examples:
  grpclb serve --listen 0.0.0.0:50051
  grpclb serve --listen 127.0.0.11:0 --name pod-a
  grpclb serve --listen 127.0.0.11:50051 --name pod-a --register etcd://127.0.0.1:2379/grpclb/echo";

const RESOLVE_EXAMPLES: &str = "\
Examples:
  grpclb resolve echo.default:grpc
  grpclb resolve dns:///echo-headless.default.svc.cluster.local:50051 --watch
  grpclb resolve etcd://127.0.0.1:2379/grpclb/echo --watch -o json";

const DEMO_EXAMPLES: &str = "\
Examples:
  grpclb demo
  grpclb demo --pods 5 --lb random
  grpclb demo -o json -O demo.json";

const REGISTER_EXAMPLES: &str = "\
Examples:
  grpclb register etcd://127.0.0.1:2379/grpclb/echo --address 10.1.0.7:50051
  grpclb register etcd://127.0.0.1:2379/grpclb/echo --address 10.1.0.7:50051 --value-format json --name pod-a
  ETCDCTL_ENDPOINTS=10.0.0.5:2379 grpclb register etcd:///grpclb/echo --address 10.1.0.7:50051";

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  grpclb completions bash > /etc/bash_completion.d/grpclb
  grpclb completions zsh > \"${fpath[1]}/_grpclb\"
  grpclb completions fish > ~/.config/fish/completions/grpclb.fish";

const MAN_EXAMPLES: &str = "\
Examples:
  grpclb man | man -l -
  grpclb man bench > /usr/local/share/man/man1/grpclb-bench.1
  for c in '' bench serve resolve demo register; do grpclb man $c > grpclb${c:+-$c}.1; done";

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
