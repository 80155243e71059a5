//! A client of gRPC server reflection: lists a server's services and
//! fetches the descriptors of the ones asked for, with their imports.
//!
//! Reflection v1 and v1alpha are the same messages under two service names,
//! so one set of message types speaks both; v1alpha is asked only when the
//! server answers v1 with UNIMPLEMENTED (older grpc-go, Python, Java).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::stream;
use http::uri::PathAndQuery;
use prost::Message;
use prost_reflect::DescriptorPool;
use prost_reflect::prost_types::FileDescriptorProto;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

use super::MethodError;

/// Longest wait for a TCP connection to one endpoint.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait for one reflection answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);
/// Most files fetched for one request, a bound on a server that keeps naming new imports.
const MAX_FILES: usize = 1000;

/// The two names of the reflection service, newest first.
const VERSIONS: [(&str, &str); 2] = [
    (
        "v1",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    ),
    (
        "v1alpha",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ),
];

/// A connection to one server's reflection service.
pub struct ReflectionClient {
    channel: Channel,
    address: String,
    path: PathAndQuery,
    version: &'static str,
}

impl ReflectionClient {
    /// Connects to the first of `addresses` that answers, and finds which
    /// reflection version it offers.
    pub async fn connect(addresses: &[String]) -> Result<ReflectionClient, MethodError> {
        let mut tried = Vec::new();
        for address in addresses {
            let channel = match dial(address).await {
                Ok(channel) => channel,
                Err(why) => {
                    tried.push(format!("{address}: {why}"));
                    continue;
                }
            };
            match Self::negotiate(channel, address).await {
                Ok(client) => return Ok(client),
                Err(Negotiation::Disabled) => {
                    return Err(MethodError::ReflectionDisabled {
                        address: address.clone(),
                    });
                }
                Err(Negotiation::Failed(why)) => tried.push(format!("{address}: {why}")),
            }
        }
        if tried.is_empty() {
            tried.push("the target resolved to no endpoint".into());
        }
        Err(MethodError::Unreachable { tried })
    }

    /// Asks v1, then v1alpha, for the service list to learn which one the server speaks.
    async fn negotiate(channel: Channel, address: &str) -> Result<ReflectionClient, Negotiation> {
        for (version, path) in VERSIONS {
            let client = ReflectionClient {
                channel: channel.clone(),
                address: address.to_string(),
                path: PathAndQuery::from_static(path),
                version,
            };
            match client
                .ask(MessageRequest::ListServices(String::new()))
                .await
            {
                Ok(_) => return Ok(client),
                Err(status) if status.code() == Code::Unimplemented => continue,
                Err(status) => {
                    return Err(Negotiation::Failed(format!(
                        "{} ({})",
                        crate::status::code_name(status.code()),
                        status.message()
                    )));
                }
            }
        }
        Err(Negotiation::Disabled)
    }

    /// Where the descriptors came from, for messages: "reflection v1 at 10.0.0.7:50051".
    pub fn origin(&self) -> String {
        format!(
            "the reflection service (grpc.reflection.{}) of {}",
            self.version, self.address
        )
    }

    /// The names of every service the server offers.
    pub async fn services(&self) -> Result<Vec<String>, MethodError> {
        let answer = self.ask(MessageRequest::ListServices(String::new())).await;
        match self.checked(answer)? {
            MessageResponse::ListServicesResponse(list) => {
                Ok(list.service.into_iter().map(|s| s.name).collect())
            }
            other => Err(self.unexpected(&other)),
        }
    }

    /// The descriptors of `symbols` (services or messages) and every file they import.
    /// A symbol the server does not know gives [`MethodError::UnknownService`]
    /// with the services it does know.
    pub async fn descriptors(&self, symbols: &[String]) -> Result<DescriptorPool, MethodError> {
        let mut files: BTreeMap<String, FileDescriptorProto> = BTreeMap::new();
        for symbol in symbols {
            match self
                .ask(MessageRequest::FileContainingSymbol(symbol.clone()))
                .await
            {
                Err(status) if status.code() == Code::NotFound => {
                    return Err(MethodError::UnknownService {
                        service: symbol.clone(),
                        known: self.services().await?,
                        origin: self.origin(),
                    });
                }
                answer => self.add_files(self.checked(answer)?, &mut files)?,
            }
        }
        // Fetch imports the server did not send along, until none is missing.
        let mut asked = BTreeSet::new();
        while files.len() < MAX_FILES {
            let missing: Vec<String> = files
                .values()
                .flat_map(|f| f.dependency.iter())
                .filter(|d| !files.contains_key(*d) && !asked.contains(*d))
                .cloned()
                .collect();
            if missing.is_empty() {
                break;
            }
            for name in missing {
                asked.insert(name.clone());
                let answer = self.ask(MessageRequest::FileByFilename(name)).await;
                self.add_files(self.checked(answer)?, &mut files)?;
            }
        }
        let mut pool = DescriptorPool::new();
        pool.add_file_descriptor_protos(files.into_values())
            .map_err(|e| MethodError::Reflection {
                address: self.address.clone(),
                detail: format!("its descriptors do not link: {e}"),
            })?;
        Ok(pool)
    }

    /// Decodes the files of a file-descriptor answer into `files`.
    fn add_files(
        &self,
        answer: MessageResponse,
        files: &mut BTreeMap<String, FileDescriptorProto>,
    ) -> Result<(), MethodError> {
        let MessageResponse::FileDescriptorResponse(response) = answer else {
            return Err(self.unexpected(&answer));
        };
        for bytes in response.file_descriptor_proto {
            let file = FileDescriptorProto::decode(bytes.as_slice()).map_err(|e| {
                MethodError::Reflection {
                    address: self.address.clone(),
                    detail: format!("it sent a file descriptor that does not decode: {e}"),
                }
            })?;
            files.entry(file.name().to_string()).or_insert(file);
        }
        Ok(())
    }

    /// An answer, or the status it failed with as a [`MethodError::Reflection`].
    fn checked(
        &self,
        answer: Result<MessageResponse, Status>,
    ) -> Result<MessageResponse, MethodError> {
        answer.map_err(|status| MethodError::Reflection {
            address: self.address.clone(),
            detail: format!(
                "{} ({})",
                crate::status::code_name(status.code()),
                status.message()
            ),
        })
    }

    /// Sends one request on its own stream and reads the one answer. An error
    /// answer becomes a status with its code, as some servers (tonic) send
    /// errors as statuses and others (grpc-go, C-core) as error answers.
    async fn ask(&self, request: MessageRequest) -> Result<MessageResponse, Status> {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(request),
        };
        let exchange = async {
            grpc.ready()
                .await
                .map_err(|e| Status::unavailable(e.to_string()))?;
            let codec = tonic_prost::ProstCodec::<ServerReflectionRequest, ServerReflectionResponse>::default();
            let mut answers = grpc
                .streaming(
                    tonic::Request::new(stream::iter([request])),
                    self.path.clone(),
                    codec,
                )
                .await?
                .into_inner();
            answers
                .message()
                .await?
                .and_then(|answer| answer.message_response)
                .ok_or_else(|| Status::unknown("the reflection stream ended without an answer"))
                .and_then(|answer| match answer {
                    MessageResponse::ErrorResponse(e) => {
                        Err(Status::new(Code::from_i32(e.error_code), e.error_message))
                    }
                    answer => Ok(answer),
                })
        };
        tokio::time::timeout(ASK_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| Err(Status::deadline_exceeded("no reflection answer in 10s")))
    }

    fn unexpected(&self, answer: &MessageResponse) -> MethodError {
        MethodError::Reflection {
            address: self.address.clone(),
            detail: format!("it answered with an unexpected message: {answer:?}"),
        }
    }
}

/// Why an endpoint gave no reflection client.
enum Negotiation {
    /// Both versions answered UNIMPLEMENTED.
    Disabled,
    /// Anything else (unreachable, refused); worth trying the next endpoint.
    Failed(String),
}

/// Opens a connection, bounded by [`CONNECT_TIMEOUT`].
async fn dial(address: &str) -> Result<Channel, String> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .map_err(|e| format!("not a dialable address ({e})"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true);
    endpoint.connect().await.map_err(|e| {
        // tonic's message is generic ("transport error"); the causes say what happened.
        let mut text = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(inner) = cause {
            let part = inner.to_string();
            if !text.ends_with(&part) {
                text.push_str(&format!(": {part}"));
            }
            cause = inner.source();
        }
        text
    })
}
