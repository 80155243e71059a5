//! A call to any unary method from pre-encoded request bytes, sent over
//! tonic with a codec that passes bytes through unchanged. This is the
//! one place the load path meets [`crate::method`]; an HTTP/2 engine that
//! sends `path + bytes` itself replaces this file.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use http::uri::PathAndQuery;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Response, Status};

use crate::method::{MethodCall, ResponseSamples};

/// A method call ready to send many times: requests taken in turn.
pub struct RawCall {
    /// `pkg.Service/Method`, for reports.
    name: String,
    path: PathAndQuery,
    requests: Vec<Bytes>,
    /// Index of the next request; shared by every worker so that
    /// `--data-lines` cycles through all lines evenly.
    next: AtomicUsize,
    samples: Option<Arc<ResponseSamples>>,
}

impl RawCall {
    /// Wraps a prepared method; `samples` keeps responses for `--print-responses`.
    pub fn new(call: MethodCall, samples: Option<Arc<ResponseSamples>>) -> Result<RawCall, String> {
        let path = PathAndQuery::try_from(call.path.as_str())
            .map_err(|e| format!("{} is not a valid HTTP/2 path: {e}", call.path))?;
        if call.requests.is_empty() {
            return Err(format!("{} has no request to send", call.name));
        }
        Ok(RawCall {
            name: call.name.to_string(),
            path,
            requests: call.requests,
            next: AtomicUsize::new(0),
            samples,
        })
    }

    /// The method's full name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn next_request(&self) -> Bytes {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.requests.len();
        self.requests[i].clone()
    }

    /// Keeps a response body for `--print-responses` while more are wanted.
    pub(super) fn sample(&self, from: Option<&str>, body: &Bytes) {
        if let Some(samples) = &self.samples
            && samples.wants_more()
        {
            samples.offer(from, body);
        }
    }
}

impl std::fmt::Debug for RawCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawCall")
            .field("name", &self.name)
            .field("requests", &self.requests.len())
            .finish()
    }
}

/// Sends the next request of `call` over `channel`, bounded by `timeout`.
pub(super) async fn send_raw(
    channel: Channel,
    call: &RawCall,
    timeout: Duration,
    metadata: &crate::metadata::CallMetadata,
) -> Result<Response<Bytes>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("connection not ready: {e}")))?;
    let request = super::call::request(call.next_request(), metadata, timeout);
    grpc.unary(request, call.path.clone(), BytesCodec).await
}

/// A codec whose messages are already-encoded bytes.
#[derive(Debug, Clone, Copy, Default)]
struct BytesCodec;

impl Codec for BytesCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = BytesCodec;
    type Decoder = BytesCodec;

    fn encoder(&mut self) -> Self::Encoder {
        BytesCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        BytesCodec
    }
}

impl Encoder for BytesCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for BytesCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
