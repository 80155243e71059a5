//! One call: the RPC a load run sends, and who answered it.

use std::sync::Arc;
use std::time::Duration;

use tonic::Code;
use tonic::metadata::MetadataMap;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::raw_call::{RawCall, send_raw};
use crate::metadata::CallMetadata;
use crate::proto::EchoRequest;
use crate::proto::echo_client::EchoClient;

/// The RPC each call sends.
#[derive(Debug, Clone)]
pub enum CallKind {
    /// `grpc.health.v1.Health/Check` for `service` ("" = the whole server).
    Health { service: String },
    /// `grpclb.v1.Echo/Echo` with a payload of this many bytes.
    Echo { payload: Vec<u8> },
    /// Any unary method, from requests encoded once (`--call pkg.Service/Method`).
    Method(Arc<RawCall>),
}

impl CallKind {
    /// The full method name, for reports.
    pub fn method(&self) -> &str {
        match self {
            CallKind::Health { .. } => "grpc.health.v1.Health/Check",
            CallKind::Echo { .. } => "grpclb.v1.Echo/Echo",
            CallKind::Method(call) => call.name(),
        }
    }
}

/// What came back from one call.
#[derive(Debug)]
pub struct CallOutcome {
    /// `Ok` or the error's status code name (`UNAVAILABLE`, `DEADLINE_EXCEEDED`, `NOT_SERVING`, …).
    pub result: Result<(), String>,
    /// The server's identity from the identity header, when it sent one.
    pub identity: Option<String>,
    /// True when the endpoint could not be reached at all.
    pub unreachable: bool,
    /// The server's `grpc-message` with an error status, when it sent one.
    pub message: Option<String>,
}

/// Sends one call over `channel` with `metadata`, bounded by `timeout`.
pub async fn send(
    channel: Channel,
    kind: &CallKind,
    timeout: Duration,
    identity_header: &str,
    metadata: &CallMetadata,
) -> CallOutcome {
    let call = async {
        match kind {
            CallKind::Health { service } => {
                let request = request(
                    HealthCheckRequest {
                        service: service.clone(),
                    },
                    metadata,
                    timeout,
                );
                let response = HealthClient::new(channel).check(request).await;
                response.map(|r| {
                    let serving = r.get_ref().status == ServingStatus::Serving as i32;
                    (identity(r.metadata(), identity_header), serving)
                })
            }
            CallKind::Echo { payload } => {
                let request = request(
                    EchoRequest {
                        payload: payload.clone(),
                    },
                    metadata,
                    timeout,
                );
                let response = EchoClient::new(channel).echo(request).await;
                response.map(|r| (identity(r.metadata(), identity_header), true))
            }
            CallKind::Method(call) => {
                let response = send_raw(channel, call, timeout, metadata).await;
                response.map(|r| {
                    let answered_by = identity(r.metadata(), identity_header);
                    call.sample(answered_by.as_deref(), r.get_ref());
                    (answered_by, true)
                })
            }
        }
    };
    match tokio::time::timeout(timeout, call).await {
        Err(_) => CallOutcome {
            result: Err("DEADLINE_EXCEEDED".into()),
            identity: None,
            unreachable: false,
            message: None,
        },
        Ok(Ok((answered_by, serving))) => CallOutcome {
            result: if serving {
                Ok(())
            } else {
                Err("NOT_SERVING".into())
            },
            identity: answered_by,
            unreachable: false,
            message: None,
        },
        Ok(Err(status)) => CallOutcome {
            result: Err(code_name(status.code()).into()),
            identity: identity(status.metadata(), identity_header),
            unreachable: status.code() == Code::Unavailable,
            // A failed TLS handshake, in words, rather than "transport error".
            message: crate::tls::explain(&status)
                .map(|failure| failure.to_string())
                .or_else(|| Some(status.message().to_string()).filter(|m| !m.is_empty())),
        },
    }
}

/// A request with the run's metadata and deadline.
pub(super) fn request<T>(
    message: T,
    metadata: &CallMetadata,
    timeout: Duration,
) -> tonic::Request<T> {
    let mut request = tonic::Request::from_parts(
        MetadataMap::from_headers(metadata.headers()),
        tonic::Extensions::default(),
        message,
    );
    request.set_timeout(timeout);
    request
}

/// The identity header's value, if present and printable.
fn identity(metadata: &MetadataMap, header: &str) -> Option<String> {
    metadata
        .get(header)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// The canonical upper-case name of a gRPC status code.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
