//! The `grpclb.v1.Echo` service.

use tonic::{Request, Response, Status};

use super::Identity;
use crate::proto::echo_server::Echo;
use crate::proto::{EchoReply, EchoRequest, ServerIdentity, WhoAmIRequest};

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
        Ok(Response::new(EchoReply {
            payload: request.into_inner().payload,
            server: Some(self.identity.clone()),
        }))
    }

    async fn who_am_i(
        &self,
        _request: Request<WhoAmIRequest>,
    ) -> Result<Response<ServerIdentity>, Status> {
        Ok(Response::new(self.identity.clone()))
    }
}
