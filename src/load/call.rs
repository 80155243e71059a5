//! One call on the wire: the request encoded once per run, sent over a
//! member's HTTP/2 connection as shared bytes, and the reply read for its
//! status and the identity of the server that answered.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use h2::RecvStream;
use http::header::{CONTENT_TYPE, TE, USER_AGENT};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use prost::Message;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use crate::metadata::CallMetadata;
use crate::pool::Member;
use crate::proto::EchoRequest;
use crate::record::ErrorCode;

/// The RPC a run sends.
#[derive(Debug, Clone)]
pub enum CallKind {
    /// `grpc.health.v1.Health/Check` for `service` ("" = the whole server).
    Health { service: String },
    /// `grpclb.v1.Echo/Echo` with a payload of this many bytes.
    Echo { payload: Vec<u8> },
    /// Any unary method (`--call pkg.Service/Method`), its requests encoded
    /// once (`--data-lines`: one per line, sent in turn).
    Method {
        /// `pkg.Service/Method`, for reports.
        name: String,
        /// `/pkg.Service/Method`.
        path: String,
        requests: Vec<Bytes>,
    },
}

impl CallKind {
    /// The full method name, for reports.
    pub fn method(&self) -> &str {
        match self {
            CallKind::Health { .. } => "grpc.health.v1.Health/Check",
            CallKind::Echo { .. } => "grpclb.v1.Echo/Echo",
            CallKind::Method { name, .. } => name,
        }
    }

    /// The call as any unary call is sent: a method path and the encoded
    /// request message.
    pub fn request(&self) -> CallRequest {
        match self {
            CallKind::Health { service } => CallRequest {
                path: format!("/{}", self.method()),
                messages: vec![Bytes::from(
                    HealthCheckRequest {
                        service: service.clone(),
                    }
                    .encode_to_vec(),
                )],
                check: ReplyCheck::HealthServing,
            },
            CallKind::Echo { payload } => CallRequest {
                path: format!("/{}", self.method()),
                messages: vec![Bytes::from(
                    EchoRequest {
                        payload: payload.clone(),
                    }
                    .encode_to_vec(),
                )],
                check: ReplyCheck::Status,
            },
            CallKind::Method { path, requests, .. } => CallRequest {
                path: path.clone(),
                messages: requests.clone(),
                check: ReplyCheck::Status,
            },
        }
    }
}

/// A unary call in wire terms: any method can be sent this way once its
/// request messages are encoded (calls cycle through `messages`).
#[derive(Debug, Clone)]
pub struct CallRequest {
    /// `/package.Service/Method`.
    pub path: String,
    /// Encoded request messages (protobuf bytes, without gRPC framing).
    pub messages: Vec<Bytes>,
    pub check: ReplyCheck,
}

/// What makes a reply a success besides `grpc-status: 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyCheck {
    /// Nothing: the body is read and dropped.
    Status,
    /// The health response must say SERVING.
    HealthServing,
    /// Nothing, but the body is kept in the reply (`--print-responses`).
    Keep,
}

/// A call ready to send many times: path, headers and framed messages
/// built once per run.
#[derive(Debug, Clone)]
pub struct Prepared {
    path: PathAndQuery,
    headers: HeaderMap,
    frames: Vec<Bytes>,
    check: ReplyCheck,
    identity_header: HeaderName,
    /// `https` over TLS, else `http`.
    scheme: Scheme,
    /// `--authority`: every call's `:authority` instead of the member's address.
    authority: Option<Authority>,
}

/// Why a call could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("{0:?} is not a method path; write /package.Service/Method")]
    Path(String),
    #[error("a call needs at least one request message")]
    NoMessage,
    #[error("a request message of {0} bytes is over gRPC's 4 GiB frame limit")]
    TooLarge(usize),
}

impl Prepared {
    /// Encodes `request` for calls with deadline `timeout`, reading the
    /// server's identity from `identity_header`.
    pub fn new(
        request: &CallRequest,
        timeout: Duration,
        identity_header: HeaderName,
    ) -> Result<Prepared, PrepareError> {
        let path: PathAndQuery = request
            .path
            .parse()
            .map_err(|_| PrepareError::Path(request.path.clone()))?;
        if !request.path.starts_with('/') || request.path.matches('/').count() != 2 {
            return Err(PrepareError::Path(request.path.clone()));
        }
        if request.messages.is_empty() {
            return Err(PrepareError::NoMessage);
        }
        let frames = request
            .messages
            .iter()
            .map(frame)
            .collect::<Result<Vec<_>, _>>()?;
        let mut headers = HeaderMap::with_capacity(4);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert(TE, HeaderValue::from_static("trailers"));
        headers.insert(
            HeaderName::from_static("grpc-timeout"),
            grpc_timeout(timeout),
        );
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("grpclb/", env!("CARGO_PKG_VERSION"))),
        );
        Ok(Prepared {
            path,
            headers,
            frames,
            check: request.check,
            identity_header,
            scheme: Scheme::HTTP,
            authority: None,
        })
    }

    /// The same call carrying `metadata` (`--metadata` headers, and
    /// `--authority` as every call's `:authority`), with the `https` scheme
    /// when the pool dials over TLS.
    pub fn addressed(mut self, metadata: &CallMetadata, tls: bool) -> Prepared {
        metadata.apply(&mut self.headers);
        self.authority = metadata.authority().cloned();
        if tls {
            self.scheme = Scheme::HTTPS;
        }
        self
    }

    /// The same call with another deadline.
    pub fn with_timeout(&self, timeout: Duration) -> Prepared {
        let mut call = self.clone();
        call.headers.insert(
            HeaderName::from_static("grpc-timeout"),
            grpc_timeout(timeout),
        );
        call
    }

    /// The same call, keeping each reply's body (for a look at what the
    /// method returns; never on the load path).
    pub fn keeping_body(&self) -> Prepared {
        Prepared {
            check: ReplyCheck::Keep,
            ..self.clone()
        }
    }

    /// How many distinct request messages calls cycle through.
    pub fn messages(&self) -> usize {
        self.frames.len()
    }

    fn request_to(&self, member: &Member) -> Request<()> {
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(
            self.authority
                .clone()
                .unwrap_or_else(|| member.authority().clone()),
        );
        parts.path_and_query = Some(self.path.clone());
        let mut request = Request::new(());
        *request.method_mut() = Method::POST;
        // Every part was validated when the run and the member were made.
        *request.uri_mut() = Uri::from_parts(parts).unwrap_or_default();
        *request.headers_mut() = self.headers.clone();
        request
    }
}

/// gRPC's length-prefixed message: flag 0 (uncompressed), length, bytes.
fn frame(message: &Bytes) -> Result<Bytes, PrepareError> {
    let len = u32::try_from(message.len()).map_err(|_| PrepareError::TooLarge(message.len()))?;
    let mut framed = BytesMut::with_capacity(5 + message.len());
    framed.put_u8(0);
    framed.put_u32(len);
    framed.put_slice(message);
    Ok(framed.freeze())
}

/// The `grpc-timeout` value: at most 8 digits, in the finest unit that fits.
fn grpc_timeout(timeout: Duration) -> HeaderValue {
    const MAX: u128 = 99_999_999;
    let micros = timeout.as_micros();
    let text = if micros <= MAX {
        format!("{micros}u")
    } else if timeout.as_millis() <= MAX {
        format!("{}m", timeout.as_millis())
    } else if u128::from(timeout.as_secs()) <= MAX {
        format!("{}S", timeout.as_secs())
    } else {
        format!("{}H", (timeout.as_secs() / 3600).min(MAX as u64))
    };
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("99999999H"))
}

/// What came back from one call.
#[derive(Debug)]
pub struct Reply {
    /// `Ok`, or why the call failed.
    pub result: Result<(), ErrorCode>,
    /// The identity header's value, from the headers or the trailers.
    pub identity: Option<HeaderValue>,
    /// True when the server did not process the call (the connection was
    /// going away or refused the stream): it may be sent elsewhere.
    pub refused: bool,
    /// The server's `grpc-message` with a failure, when it sent one.
    pub message: Option<String>,
    /// The response message (without gRPC framing), with [`ReplyCheck::Keep`].
    pub body: Option<Bytes>,
}

impl Reply {
    fn failed(code: ErrorCode, identity: Option<HeaderValue>) -> Reply {
        Reply {
            result: Err(code),
            identity,
            refused: false,
            message: None,
            body: None,
        }
    }

    fn answered(result: Result<(), ErrorCode>, identity: Option<HeaderValue>) -> Reply {
        Reply {
            result,
            identity,
            refused: false,
            message: None,
            body: None,
        }
    }

    fn refused() -> Reply {
        Reply {
            result: Err(ErrorCode::UNAVAILABLE),
            identity: None,
            refused: true,
            message: None,
            body: None,
        }
    }

    /// Adds the server's `grpc-message` (percent-decoded, as gRPC sends it).
    fn with_message(mut self, headers: &HeaderMap) -> Reply {
        self.message = headers
            .get(GRPC_MESSAGE)
            .map(|v| percent_decoded(v.as_bytes()))
            .filter(|m| !m.is_empty());
        self
    }
}

/// Sends one call to `member` with request message `message` and reads
/// the reply; the member remembers who answered on which of its
/// connections. The caller bounds it with the call's deadline.
pub async fn exchange(member: &Member, call: &Prepared, message: usize) -> Reply {
    let Some((sender, generation)) = member.sender() else {
        return Reply::refused();
    };
    let mut reply = send(member, sender, call, message).await;
    match &reply.identity {
        Some(identity) => member.saw_identity(identity, generation),
        // A failure without the header went to the pod this connection
        // reached (behind a Service address, not necessarily the last one).
        None if !reply.refused => reply.identity = member.identity_on(generation),
        None => {}
    }
    reply
}

/// Sends the call on one connection and reads the reply.
async fn send(
    member: &Member,
    sender: h2::client::SendRequest<Bytes>,
    call: &Prepared,
    message: usize,
) -> Reply {
    let mut sender = match sender.ready().await {
        Ok(sender) => sender,
        Err(error) => return refused_by_connection(member, &error),
    };
    let (response, mut body) = match sender.send_request(call.request_to(member), false) {
        Ok(sent) => sent,
        Err(error) => return refused_by_connection(member, &error),
    };
    let frame = call.frames[message % call.frames.len()].clone();
    if let Err(error) = body.send_data(frame, true) {
        return from_stream_error(member, &error, None);
    }
    let response = match response.await {
        Ok(response) => response,
        Err(error) => return from_stream_error(member, &error, None),
    };
    let (head, stream) = response.into_parts();
    let identity = head.headers.get(&call.identity_header).cloned();
    if head.status != http::StatusCode::OK {
        return Reply::failed(code_of_http_status(head.status), identity);
    }
    // A trailers-only reply carries the status in its headers.
    if let Some(status) = head.headers.get(GRPC_STATUS) {
        return match ErrorCode::from_grpc_status(status.as_bytes()) {
            Some(code) => Reply::failed(code, identity).with_message(&head.headers),
            None => Reply::answered(Ok(()), identity),
        };
    }
    read_body(member, call, stream, identity).await
}

const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// `grpc-message` is percent-encoded (gRPC's PROTOCOL-HTTP2): `%XX` bytes.
fn percent_decoded(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = raw
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (raw[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads the body (releasing flow-control capacity as it goes; keeping
/// only what the check needs) and the trailers.
async fn read_body(
    member: &Member,
    call: &Prepared,
    mut stream: RecvStream,
    identity: Option<HeaderValue>,
) -> Reply {
    let mut kept: Option<Bytes> = None;
    while let Some(chunk) = stream.data().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(error) => return from_stream_error(member, &error, identity),
        };
        let _ = stream.flow_control().release_capacity(chunk.len());
        if call.check != ReplyCheck::Status {
            kept = Some(match kept.take() {
                None => chunk,
                Some(before) => {
                    let mut joined = BytesMut::from(&before[..]);
                    joined.extend_from_slice(&chunk);
                    joined.freeze()
                }
            });
        }
    }
    let trailers = match stream.trailers().await {
        Ok(trailers) => trailers.unwrap_or_default(),
        Err(error) => return from_stream_error(member, &error, identity),
    };
    let identity = identity.or_else(|| trailers.get(&call.identity_header).cloned());
    let status = match trailers.get(GRPC_STATUS) {
        Some(status) => ErrorCode::from_grpc_status(status.as_bytes()),
        // A reply without a status is not a success (gRPC: INTERNAL).
        None => Some(ErrorCode::INTERNAL),
    };
    if let Some(code) = status {
        return Reply::failed(code, identity).with_message(&trailers);
    }
    let result = match call.check {
        ReplyCheck::Status | ReplyCheck::Keep => Ok(()),
        ReplyCheck::HealthServing if serving(kept.as_deref()) => Ok(()),
        ReplyCheck::HealthServing => Err(ErrorCode::NOT_SERVING),
    };
    let mut reply = Reply::answered(result, identity);
    if call.check == ReplyCheck::Keep {
        reply.body = kept.and_then(|framed| (framed.len() >= 5).then(|| framed.slice(5..)));
    }
    reply
}

/// True when a framed health response says SERVING.
fn serving(body: Option<&[u8]>) -> bool {
    let Some(body) = body else {
        return false;
    };
    let Some(message) = body.get(5..) else {
        return false;
    };
    if body[0] != 0 {
        // Compressed: never asked for, so not understood.
        return false;
    }
    HealthCheckResponse::decode(message).is_ok_and(|r| r.status == ServingStatus::Serving as i32)
}

/// The connection refused a new stream: it is going away (or gone), and
/// the call was never sent.
fn refused_by_connection(member: &Member, error: &h2::Error) -> Reply {
    if error.is_go_away() || error.get_io().is_some() {
        member.draining();
    }
    Reply::refused()
}

/// A stream that failed after it was opened.
fn from_stream_error(member: &Member, error: &h2::Error, identity: Option<HeaderValue>) -> Reply {
    use h2::Reason;
    // Streams above a GOAWAY's last-stream-id, and REFUSED_STREAM, were
    // not processed by the server.
    if error.is_remote() && (error.is_go_away() || error.reason() == Some(Reason::REFUSED_STREAM)) {
        if error.is_go_away() {
            member.draining();
        }
        return Reply::refused();
    }
    let code = if error.is_io() {
        ErrorCode::UNAVAILABLE
    } else {
        match error.reason() {
            Some(Reason::CANCEL) => ErrorCode::CANCELLED,
            Some(Reason::ENHANCE_YOUR_CALM) => ErrorCode::RESOURCE_EXHAUSTED,
            Some(Reason::INADEQUATE_SECURITY) => ErrorCode::PERMISSION_DENIED,
            Some(Reason::REFUSED_STREAM) => ErrorCode::UNAVAILABLE,
            _ if error.is_go_away() => ErrorCode::UNAVAILABLE,
            _ => ErrorCode::INTERNAL,
        }
    };
    // What broke, in the transport's words ("connection reset by peer").
    let mut reply = Reply::failed(code, identity);
    reply.message = Some(error.to_string());
    reply
}

/// gRPC's mapping of HTTP statuses to codes (doc/http-grpc-status-mapping.md).
fn code_of_http_status(status: http::StatusCode) -> ErrorCode {
    match status.as_u16() {
        400 => ErrorCode::INTERNAL,
        401 => ErrorCode::UNAUTHENTICATED,
        403 => ErrorCode::PERMISSION_DENIED,
        404 => ErrorCode::UNIMPLEMENTED,
        429 | 502 | 503 | 504 => ErrorCode::UNAVAILABLE,
        _ => ErrorCode::UNKNOWN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_fits_eight_digits() {
        assert_eq!(grpc_timeout(Duration::from_secs(5)), "5000000u");
        assert_eq!(grpc_timeout(Duration::from_secs(3600)), "3600000m");
        assert_eq!(grpc_timeout(Duration::from_millis(1)), "1000u");
    }

    #[test]
    fn health_request_is_the_five_byte_empty_message() {
        let request = CallKind::Health {
            service: String::new(),
        }
        .request();
        let prepared = Prepared::new(
            &request,
            Duration::from_secs(1),
            HeaderName::from_static("hostname"),
        )
        .expect("prepared");
        assert_eq!(&prepared.frames[0][..], &[0, 0, 0, 0, 0]);
        assert_eq!(prepared.path.as_str(), "/grpc.health.v1.Health/Check");
    }

    #[test]
    fn serving_reads_the_health_status() {
        assert!(serving(Some(&[0, 0, 0, 0, 2, 8, 1])));
        assert!(!serving(Some(&[0, 0, 0, 0, 2, 8, 2])));
        assert!(!serving(Some(&[0, 0, 0])));
        assert!(!serving(None));
    }

    #[test]
    fn a_bad_method_path_is_refused() {
        let request = CallRequest {
            path: "grpc.health.v1.Health".into(),
            messages: vec![Bytes::new()],
            check: ReplyCheck::Status,
        };
        let prepared = Prepared::new(
            &request,
            Duration::from_secs(1),
            HeaderName::from_static("hostname"),
        );
        assert!(matches!(prepared, Err(PrepareError::Path(_))));
    }
}
