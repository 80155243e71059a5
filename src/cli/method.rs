//! Flags for calling any unary method (`bench --call pkg.Service/Method
//! --data …`) and the `list` and `describe` subcommands.

use std::path::PathBuf;

use clap::Args;

use super::{DiscoveryArgs, EtcdArgs, OutputArg};
use grpclb::Failure;
use grpclb::method::{CallName, DescriptorSource, MethodError, MethodSpec, RequestData};
use grpclb::plan::DiscoverPlan;
use grpclb::resolve::ResolveOptions;
use grpclb::target::Target;

/// Where method descriptors come from when not from server reflection.
#[derive(Debug, Clone, Args)]
pub struct DescriptorArgs {
    /// Describe methods with this .proto file instead of server reflection (repeatable);
    /// compiled in-process, no protoc needed.
    #[arg(long, value_name = "FILE", conflicts_with = "protoset")]
    pub proto: Vec<PathBuf>,
    /// Folder the --proto files' imports are relative to (repeatable) [default: each file's folder].
    #[arg(long, short = 'I', value_name = "DIR", requires = "proto")]
    pub import_path: Vec<PathBuf>,
    /// Describe methods with this FileDescriptorSet (protoc --include_imports
    /// --descriptor_set_out=FILE, or buf build -o FILE) instead of server reflection (repeatable).
    #[arg(long, value_name = "FILE")]
    pub protoset: Vec<PathBuf>,
}

impl DescriptorArgs {
    /// The descriptor source these flags ask for (reflection when none is given).
    pub fn source(&self) -> DescriptorSource {
        if !self.proto.is_empty() {
            DescriptorSource::ProtoFiles {
                files: self.proto.clone(),
                import_paths: self.import_path.clone(),
            }
        } else if !self.protoset.is_empty() {
            DescriptorSource::Protosets(self.protoset.clone())
        } else {
            DescriptorSource::Reflection
        }
    }

    fn given(&self) -> bool {
        !self.proto.is_empty() || !self.protoset.is_empty()
    }
}

/// `bench` flags for the request a named method sends.
#[derive(Debug, Clone, Args)]
pub struct MethodArgs {
    /// The request as JSON (proto3 JSON mapping), or @FILE to read it from a file;
    /// encoded once before the run [default: {}].
    #[arg(long, value_name = "JSON|@FILE")]
    pub data: Option<String>,
    /// A file with one JSON request per line; calls send them in turn, cycling.
    #[arg(long, value_name = "FILE", conflicts_with = "data")]
    pub data_lines: Option<PathBuf>,
    /// Decode the first N responses to JSON and print them on stderr after the run.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub print_responses: usize,
    #[command(flatten)]
    pub descriptors: DescriptorArgs,
}

impl MethodArgs {
    /// The method to prepare when the run starts, if `call` is not a
    /// built-in call sent as today (health or echo without JSON).
    pub fn spec(&self, call: &CallName) -> Result<Option<MethodSpec>, Failure> {
        let data = RequestData::from_flags(self.data.as_deref(), self.data_lines.as_deref());
        let builtin = matches!(call, CallName::Health | CallName::Echo);
        if builtin && self.descriptors.given() {
            return Err(Failure::Usage(
                "--proto and --protoset describe a method named with --call pkg.Service/Method; \
                 health and echo are described by grpclb itself"
                    .into(),
            ));
        }
        if builtin && !data.is_given() && self.print_responses == 0 {
            return Ok(None);
        }
        Ok(Some(MethodSpec {
            call: call.clone(),
            source: self.descriptors.source(),
            data,
            print_responses: self.print_responses,
        }))
    }
}

/// Parses `--call`: health, echo, or pkg.Service/Method.
pub fn parse_call(s: &str) -> Result<CallName, String> {
    s.parse().map_err(|e: MethodError| e.to_string())
}

/// `grpclb bench --help` examples, most of them for calling your own method.
pub const BENCH_EXAMPLES: &str = "Examples:
  grpclb bench ipv4:10.1.0.7:50051,10.1.0.8:50051 --assert-even     # health checks, per call
  grpclb bench echo.default:50051 --mode both                        # ClusterIP vs per call
  grpclb bench echo.default:50051 --call greeter.v1.Greeter/Hello --data '{\"name\": \"x\"}'
  grpclb bench echo.default:50051 --call greeter.v1.Greeter/Hello --data-lines requests.jsonl \\
    --print-responses 3
  grpclb bench 10.1.0.7:50051 --call greeter.v1.Greeter/Hello --data @request.json \\
    --proto api/greeter.proto -I api                                  # no server reflection";

const LIST_EXAMPLES: &str = "Examples:
  grpclb list 127.0.0.1:50051                       # through server reflection
  grpclb list dns:///greeter.default.svc.cluster.local:50051 -o json
  grpclb list --proto api/greeter.proto -I api      # from .proto files, no server";

/// `grpclb list`: the services and methods a server (or files) describe.
#[derive(Debug, Args)]
#[command(after_help = LIST_EXAMPLES)]
pub struct ListArgs {
    /// The server to ask through reflection (any target form; the first endpoint that answers
    /// is asked). Not needed with --proto or --protoset.
    #[arg(required_unless_present_any = ["proto", "protoset"])]
    pub target: Option<String>,
    #[command(flatten)]
    pub descriptors: DescriptorArgs,
    /// Print proto-like text or one JSON document.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: OutputArg,
    #[command(flatten)]
    pub discovery: DiscoveryArgs,
    #[command(flatten)]
    pub etcd: EtcdArgs,
}

const DESCRIBE_EXAMPLES: &str = "Examples:
  grpclb describe 127.0.0.1:50051 grpclb.v1.Echo        # a service, its methods and messages
  grpclb describe 127.0.0.1:50051 grpclb.v1.Echo/Echo   # one method and its messages
  grpclb describe --proto api/greeter.proto greeter.v1.HelloRequest -o json";

/// `grpclb describe`: one service, method or message and the messages it uses.
#[derive(Debug, Args)]
#[command(
    override_usage = "grpclb describe [OPTIONS] [TARGET] <pkg.Service[/Method]|pkg.Message>",
    after_help = DESCRIBE_EXAMPLES
)]
pub struct DescribeArgs {
    /// [TARGET] then what to describe: pkg.Service, pkg.Service/Method or pkg.Message.
    /// TARGET (the server asked through reflection) is left out with --proto or --protoset.
    #[arg(value_name = "TARGET SYMBOL", num_args = 1..=2, required = true)]
    pub names: Vec<String>,
    #[command(flatten)]
    pub descriptors: DescriptorArgs,
    /// Print proto-like text or one JSON document.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: OutputArg,
    #[command(flatten)]
    pub discovery: DiscoveryArgs,
    #[command(flatten)]
    pub etcd: EtcdArgs,
}

impl ListArgs {
    /// Validates the flags and the target; errors are usage errors (exit 2).
    pub fn plan(self) -> Result<DiscoverPlan, Failure> {
        Ok(DiscoverPlan {
            target: self.target.as_deref().map(Target::parse).transpose()?,
            source: self.descriptors.source(),
            symbol: None,
            output: self.output.into(),
            resolve: ResolveOptions {
                etcd: self.etcd.options(),
                ..self.discovery.options()?
            },
        })
    }
}

impl DescribeArgs {
    /// Validates the flags and the target; errors are usage errors (exit 2).
    pub fn plan(self) -> Result<DiscoverPlan, Failure> {
        let (target, symbol) = match self.names.as_slice() {
            [target, symbol] => (Some(target.as_str()), symbol.clone()),
            [symbol] if self.descriptors.given() => (None, symbol.clone()),
            [symbol] => {
                return Err(Failure::Usage(format!(
                    "describe needs TARGET and what to describe, e.g. grpclb describe 127.0.0.1:50051 {symbol} \
                     (or --proto FILE / --protoset FILE instead of TARGET)"
                )));
            }
            _ => return Err(Failure::Usage("describe takes [TARGET] SYMBOL".into())),
        };
        Ok(DiscoverPlan {
            target: target.map(Target::parse).transpose()?,
            source: self.descriptors.source(),
            symbol: Some(symbol),
            output: self.output.into(),
            resolve: ResolveOptions {
                etcd: self.etcd.options(),
                ..self.discovery.options()?
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};
    use grpclb::Failure;
    use grpclb::load::CallKind;
    use grpclb::method::{CallName, DescriptorSource, RequestData};
    use grpclb::plan::{BenchPlan, DiscoverPlan};

    fn bench(args: &[&str]) -> Result<BenchPlan, Failure> {
        let cli = Cli::try_parse_from([&["grpclb", "bench", "127.0.0.1:50051"], args].concat())
            .map_err(|e| Failure::Usage(e.to_string()))?;
        match cli.command {
            Command::Bench(args) => args.plan(),
            other => panic!("not bench: {other:?}"),
        }
    }

    fn discover(args: &[&str]) -> Result<DiscoverPlan, Failure> {
        let cli = Cli::try_parse_from([&["grpclb"], args].concat())
            .map_err(|e| Failure::Usage(e.to_string()))?;
        match cli.command {
            Command::List(args) => args.plan(),
            Command::Describe(args) => args.plan(),
            other => panic!("not list or describe: {other:?}"),
        }
    }

    #[test]
    fn built_in_calls_without_json_are_sent_as_before() {
        let plan = bench(&["--call", "echo", "--payload-bytes", "8"]).expect("plan");
        assert!(plan.method.is_none());
        assert!(matches!(plan.load.call, CallKind::Echo { ref payload } if payload.len() == 8));
        let plan = bench(&[]).expect("plan");
        assert!(plan.method.is_none());
        assert!(matches!(plan.load.call, CallKind::Health { .. }));
    }

    #[test]
    fn a_named_method_is_prepared_from_its_source_when_the_run_starts() {
        let plan = bench(&["--call", "pkg.v1.Svc/Do", "--data", "@req.json"]).expect("plan");
        let spec = plan.method.expect("a method to prepare");
        assert_eq!(
            spec.call,
            CallName::Method("pkg.v1.Svc/Do".parse().expect("name"))
        );
        assert_eq!(spec.source, DescriptorSource::Reflection);
        assert_eq!(spec.data, RequestData::File("req.json".into()));
        let plan =
            bench(&["--call", "pkg.v1.Svc/Do", "--proto", "a.proto", "-I", "inc"]).expect("plan");
        assert_eq!(
            plan.method.expect("method").source,
            DescriptorSource::ProtoFiles {
                files: vec!["a.proto".into()],
                import_paths: vec!["inc".into()],
            }
        );
        let plan = bench(&["--call", "echo", "--print-responses", "2"]).expect("plan");
        assert_eq!(plan.method.expect("method").print_responses, 2);
    }

    #[test]
    fn conflicting_method_flags_are_usage_errors() {
        for args in [
            &[
                "--call",
                "pkg.v1.Svc/Do",
                "--proto",
                "a.proto",
                "--protoset",
                "a.pb",
            ][..],
            &[
                "--call",
                "pkg.v1.Svc/Do",
                "--data",
                "{}",
                "--data-lines",
                "r.jsonl",
            ],
            &["--call", "echo", "--payload-bytes", "8", "--data", "{}"],
            &["--call", "health", "--proto", "a.proto"],
            &["--call", "pkg.v1.Svc/Do", "--payload-bytes", "8"],
            &["--call", "not a method"],
        ] {
            let err = bench(args).expect_err("refused");
            assert_eq!(err.exit_code(), 2, "{args:?}: {err}");
        }
    }

    #[test]
    fn describe_leaves_out_the_target_only_with_files() {
        let plan = discover(&["describe", "--proto", "a.proto", "pkg.v1.Svc"]).expect("plan");
        assert_eq!(
            (plan.target, plan.symbol.as_deref()),
            (None, Some("pkg.v1.Svc"))
        );
        let plan = discover(&["describe", "127.0.0.1:50051", "pkg.v1.Svc/Do"]).expect("plan");
        assert!(plan.target.is_some());
        let err = discover(&["describe", "pkg.v1.Svc"]).expect_err("no target");
        assert!(err.to_string().contains("needs TARGET"), "{err}");
        assert!(discover(&["list"]).is_err());
        let plan = discover(&["list", "--protoset", "a.pb"]).expect("plan");
        assert_eq!(
            plan.source,
            DescriptorSource::Protosets(vec!["a.pb".into()])
        );
    }
}
