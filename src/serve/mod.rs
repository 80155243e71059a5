//! `grpclb serve`: the backend to deploy. It names itself in every reply
//! (`hostname` response header), serves `grpclb.v1.Echo`, health and
//! reflection, and drains gracefully on SIGTERM / Ctrl-C; [`run`] is the
//! `grpclb serve` flow (bind, register, serve, deregister, drain).

mod echo;
mod identity;
mod run;
mod tls;

use std::future::Future;
use std::net::SocketAddr;

use http::HeaderValue;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tower::util::{MapRequestLayer, MapResponseLayer};

pub use echo::EchoService;
pub use identity::Identity;
pub use run::run;

use crate::proto::echo_server::EchoServer;
use crate::tls::ServerTls;

/// The response header every reply carries: the gRPC interop servers'
/// convention, read by `grpclb bench` by default.
pub const IDENTITY_HEADER: &str = "hostname";

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "cannot listen on {address}: {source}; pick a free address/port (e.g. --listen 127.0.0.1:0) or stop what holds it"
    )]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("the identity {0:?} cannot be sent as a header value; use --name with printable ASCII")]
    BadIdentity(String),
    #[error("the gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Binds the listening socket (port 0 picks a free port).
pub async fn bind(address: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| ServeError::Bind { address, source })
}

/// Serves plaintext HTTP/2 on `listener` until `shutdown` completes, then
/// stops accepting, reports NOT_SERVING and lets in-flight calls finish.
pub async fn serve(
    listener: TcpListener,
    identity: Identity,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    serve_tls(listener, identity, None, shutdown).await
}

/// [`serve`], over TLS when `tls` is given (with client certificates
/// required when it has a client CA).
pub async fn serve_tls(
    listener: TcpListener,
    identity: Identity,
    tls: Option<&ServerTls>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let header = HeaderValue::from_str(&identity.name)
        .map_err(|_| ServeError::BadIdentity(identity.name.clone()))?;
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<EchoServer<EchoService>>().await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServeError::BadIdentity(format!("reflection: {e}")))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| ServeError::BadIdentity(format!("reflection: {e}")))?;
    // Every reply, errors and health included, names the server.
    let name_every_reply =
        MapResponseLayer::new(move |mut response: http::Response<tonic::body::Body>| {
            response
                .headers_mut()
                .insert(IDENTITY_HEADER, header.clone());
            response
        });
    let drain_reporter = reporter.clone();
    let shutdown = async move {
        shutdown.await;
        drain_reporter
            .set_service_status("", ServingStatus::NotServing)
            .await;
        drain_reporter
            .set_not_serving::<EchoServer<EchoService>>()
            .await;
    };
    tls::builder(tls)?
        .layer(name_every_reply)
        .layer(MapRequestLayer::new(tls::keep_authority))
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(EchoServer::new(EchoService::new(identity)))
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await?;
    Ok(())
}
