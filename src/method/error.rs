//! Why a method could not be described, found or encoded; every message
//! says what was wrong and what to do, and maps to the design's exit codes.

use std::path::PathBuf;

/// A method that cannot be benched, listed or described as asked.
#[derive(Debug, thiserror::Error)]
pub enum MethodError {
    /// `--call` (or the describe name) is not of the form `pkg.Service/Method`.
    #[error(
        "{0:?} is not a method name; write pkg.Service/Method (e.g. grpclb.v1.Echo/Echo), or health or echo for the built-in calls"
    )]
    BadName(String),
    /// The service is not among the ones described.
    #[error("{}", unknown_service(.service, .known, .origin))]
    UnknownService {
        service: String,
        known: Vec<String>,
        origin: String,
    },
    /// The service exists but has no such method.
    #[error("service {service} has no method {method:?}; its methods are: {}", .known.join(", "))]
    UnknownMethod {
        service: String,
        method: String,
        known: Vec<String>,
    },
    /// Only one request and one response per call can be benched.
    #[error(
        "{method} is a {kind} method; grpclb benches unary calls only (one request, one response). \
         Pick a unary method: grpclb describe TARGET {service} lists each method with its kind"
    )]
    Streaming {
        method: String,
        service: String,
        kind: &'static str,
    },
    /// A file named on the command line could not be read.
    #[error("cannot read {flag} {}: {source}; check the path", .path.display())]
    ReadFile {
        flag: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// `--proto` files that do not compile.
    #[error(
        "cannot compile the --proto files: {0}; check the file, and give the folder its imports are relative to with --import-path DIR"
    )]
    Compile(String),
    /// `--protoset` that is not a usable FileDescriptorSet.
    #[error(
        "--protoset {} is not a usable FileDescriptorSet ({detail}); make one with \
         protoc --include_imports --descriptor_set_out=FILE x.proto, or buf build -o FILE",
        .path.display()
    )]
    Protoset { path: PathBuf, detail: String },
    /// `--data-lines` with no JSON line in it.
    #[error("--data-lines {} has no JSON line; put one JSON request per line", .0.display())]
    NoLines(PathBuf),
    /// Request text that is not JSON at all.
    #[error(
        "{origin} is not valid JSON: {detail}; give one JSON object, e.g. --data '{{\"name\": \"x\"}}'"
    )]
    MalformedJson { origin: String, detail: String },
    /// A JSON key that names no field of the message.
    #[error("{origin}: unknown field {field} (in {message}); its fields are: {}", .known.join(", "))]
    UnknownField {
        origin: String,
        message: String,
        field: String,
        known: Vec<String>,
    },
    /// A JSON value that does not fit its field.
    #[error("{origin}: field {field} of {message} expects {expected}: {detail}")]
    FieldMismatch {
        origin: String,
        message: String,
        field: String,
        expected: String,
        detail: String,
    },
    /// JSON that the message refuses for a reason not tied to one field.
    #[error(
        "{origin} does not fit {message}: {detail}; grpclb describe TARGET {message} shows its fields"
    )]
    Mismatch {
        origin: String,
        message: String,
        detail: String,
    },
    /// The server answered, but offers no reflection service.
    #[error(
        "{address} does not offer server reflection (grpc.reflection.v1 and v1alpha answer UNIMPLEMENTED). \
         Enable it in the server (grpc-go: reflection.Register(server); Java: ProtoReflectionService; \
         Python: grpc_reflection's enable_server_reflection; tonic: tonic-reflection), \
         or describe the methods yourself with --proto FILE [--import-path DIR] or --protoset FILE"
    )]
    ReflectionDisabled { address: String },
    /// No endpoint answered the reflection service.
    #[error(
        "no endpoint answered server reflection ({}); check that the servers run and the target is right, \
         or describe the methods with --proto FILE or --protoset FILE",
        .tried.join("; ")
    )]
    Unreachable { tried: Vec<String> },
    /// The target could not be resolved to endpoints to ask.
    #[error(transparent)]
    Resolve(#[from] crate::resolve::ResolveError),
    /// Reflection was asked for without a server to ask.
    #[error(
        "no TARGET to ask through server reflection; give the server's address, or describe the methods with --proto FILE or --protoset FILE"
    )]
    NoTarget,
    /// The reflection service answered with an error or with descriptors that do not fit together.
    #[error(
        "server reflection at {address} failed: {detail}; describe the methods with --proto FILE or --protoset FILE instead"
    )]
    Reflection { address: String, detail: String },
}

fn unknown_service(service: &str, known: &[String], origin: &str) -> String {
    if known.is_empty() {
        format!("no service {service} in {origin}, which describes no service at all")
    } else {
        format!(
            "no service {service} in {origin}; its services are: {}",
            known.join(", ")
        )
    }
}

impl MethodError {
    /// The process exit code (design: 2 = bad usage, 3 = could not run).
    pub fn exit_code(&self) -> u8 {
        match self {
            MethodError::ReflectionDisabled { .. }
            | MethodError::Unreachable { .. }
            | MethodError::Reflection { .. }
            | MethodError::Resolve(crate::resolve::ResolveError::Failed(_)) => 3,
            _ => 2,
        }
    }
}

impl From<MethodError> for crate::Failure {
    fn from(err: MethodError) -> Self {
        match err.exit_code() {
            3 => crate::Failure::CannotRun(err.to_string()),
            _ => crate::Failure::Usage(err.to_string()),
        }
    }
}
