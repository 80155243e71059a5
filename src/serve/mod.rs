//! `grpclb serve`: the backend to deploy. It names itself in every reply
//! (`hostname` response header), serves `grpclb.v1.Echo`, health and
//! reflection, and drains gracefully on SIGTERM / Ctrl-C; [`run`] is the
//! `grpclb serve` flow (bind, register, serve, deregister, drain). It can
//! play a slow, flaky or failing pod ([`Faults`]) and recycle its
//! connections ([`ConnectionAge`]).

mod connections;
mod echo;
mod faults;
mod identity;
mod linger;
mod listen;
mod run;
mod tls;

use std::future::Future;
use std::net::SocketAddr;

use http::HeaderValue;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic_health::ServingStatus;
use tower::ServiceBuilder;
use tower::util::{MapRequestLayer, MapResponseLayer};

pub use connections::ConnectionAge;
pub use echo::EchoService;
pub use faults::{FaultLayer, Faults, parse_failure_code};
pub use identity::Identity;
pub use listen::{bind_all, listener_name, parse_listen};
pub use run::run;

use crate::proto::echo_server::EchoServer;

/// The response header every reply carries: the gRPC interop servers'
/// convention, read by `grpclb bench` by default.
pub const IDENTITY_HEADER: &str = "hostname";

/// How long a GOAWAY takes to take effect (the client's acknowledgement is
/// one round trip away) before health reports NOT_SERVING on a drain.
const GOAWAY_SETTLE: std::time::Duration = std::time::Duration::from_millis(100);

/// How a server behaves beyond answering: injected faults and connection
/// recycling. The default is a well-behaved server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServeSettings {
    pub faults: Faults,
    /// `--max-connection-age`: `None` keeps connections for as long as clients do.
    pub connection_age: Option<ConnectionAge>,
    /// Serve over TLS (`--tls-cert`, `--tls-key`, `--client-ca`).
    pub tls: Option<crate::tls::ServerTls>,
}

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
}

/// Binds the listening socket (port 0 picks a free port).
pub async fn bind(address: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| ServeError::Bind { address, source })
}

/// Serves on `listener` until `shutdown` completes, then stops accepting,
/// reports NOT_SERVING and lets in-flight calls finish.
pub async fn serve(
    listener: TcpListener,
    identity: Identity,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    serve_with(listener, identity, ServeSettings::default(), shutdown).await
}

/// [`serve`], with faults and connection recycling.
pub async fn serve_with(
    listener: TcpListener,
    identity: Identity,
    settings: ServeSettings,
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
    // NOT_SERVING once every connection had GOAWAY: health watchers learn
    // of the drain, while calls that still arrived before the GOAWAY took
    // effect are answered SERVING (they are served).
    let drain_reporter = reporter.clone();
    let draining = async move {
        tokio::time::sleep(GOAWAY_SETTLE).await;
        drain_reporter
            .set_service_status("", ServingStatus::NotServing)
            .await;
        drain_reporter
            .set_not_serving::<EchoServer<EchoService>>()
            .await;
    };
    let routes = Routes::new(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(EchoServer::new(EchoService::new(identity)))
        .prepare();
    let service = ServiceBuilder::new()
        .layer(name_every_reply)
        .layer(MapRequestLayer::new(tls::keep_authority))
        .layer(FaultLayer::new(settings.faults))
        .service(routes);
    connections::serve_connections(
        listener,
        service,
        settings.connection_age,
        settings.tls,
        shutdown,
        draining,
    )
    .await;
    Ok(())
}
