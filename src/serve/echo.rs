//! The `grpclb.v1.Echo` service.

use std::collections::HashMap;

use tonic::metadata::{KeyAndValueRef, MetadataMap};
use tonic::{Request, Response, Status};

use super::Identity;
use super::tls::ReceivedAuthority;
use crate::metadata::is_secret_key;
use crate::proto::echo_server::Echo;
use crate::proto::{EchoReply, EchoRequest, ServerIdentity, WhoAmIRequest};
use crate::target::REDACTED;

/// Echoes payloads and reports who served.
pub struct EchoService {
    identity: ServerIdentity,
}

impl EchoService {
    pub fn new(identity: Identity) -> EchoService {
        EchoService {
            identity: ServerIdentity {
                name: identity.name,
                pod_ip: identity.pod_ip,
                node: identity.node,
                zone: identity.zone,
            },
        }
    }
}

#[tonic::async_trait]
impl Echo for EchoService {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        let metadata = received(request.metadata());
        let authority = request
            .extensions()
            .get::<ReceivedAuthority>()
            .map(|a| a.0.clone())
            .unwrap_or_default();
        Ok(Response::new(EchoReply {
            payload: request.into_inner().payload,
            server: Some(self.identity.clone()),
            metadata,
            authority,
        }))
    }

    async fn who_am_i(
        &self,
        _request: Request<WhoAmIRequest>,
    ) -> Result<Response<ServerIdentity>, Status> {
        Ok(Response::new(self.identity.clone()))
    }
}

/// The metadata a call arrived with, for the reply: values of one key are
/// joined with ", ", credentials are redacted (a reply may be logged).
fn received(metadata: &MetadataMap) -> HashMap<String, String> {
    let mut seen: HashMap<String, String> = HashMap::new();
    for entry in metadata.iter() {
        let (key, value) = match entry {
            KeyAndValueRef::Ascii(key, value) => (
                key.as_str(),
                String::from_utf8_lossy(value.as_encoded_bytes()).into_owned(),
            ),
            KeyAndValueRef::Binary(key, value) => (
                key.as_str(),
                String::from_utf8_lossy(value.as_encoded_bytes()).into_owned(),
            ),
        };
        // gRPC's own headers say nothing the caller chose.
        if key.starts_with("grpc-") || key == "te" || key == "content-type" {
            continue;
        }
        let value = if is_secret_key(key) {
            format!("{REDACTED} ({} bytes)", value.len())
        } else {
            value
        };
        seen.entry(key.to_string())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(&value);
            })
            .or_insert(value);
    }
    seen
}
