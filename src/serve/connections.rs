//! The accept loop: one HTTP/2 connection per client, each closed gracefully
//! when its age runs out (`--max-connection-age`, as gRPC servers'
//! `MaxConnectionAge`) and all of them drained on shutdown.
//!
//! Served here rather than by tonic's `Server` because a gRPC server jitters
//! each connection's age (±10%) so that clients do not reconnect in step,
//! and sends GOAWAY at the age before it waits out the grace; tonic applies
//! one age to every connection and, with a grace set, closes at age + grace
//! without a GOAWAY first.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rand::Rng;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::linger::Linger;

/// How long a closed connection waits for the client to close its side.
const LINGER_LIMIT: Duration = Duration::from_secs(1);

/// `--max-connection-age` and its grace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionAge {
    /// Each connection gets GOAWAY after this, ±10%.
    pub age: Duration,
    /// After the GOAWAY, calls still running after this long are cut off
    /// with the connection; `None` waits for them however long they take.
    pub grace: Option<Duration>,
}

impl ConnectionAge {
    /// One connection's age: `age` ±10%, uniformly, as gRPC servers draw it.
    fn jittered(&self) -> Duration {
        self.age.mul_f64(rand::rng().random_range(0.9..=1.1))
    }
}

/// Serves `service` on every connection `listener` accepts until `shutdown`
/// completes; then stops accepting, sends every connection GOAWAY, runs
/// `draining` and waits until every call has finished.
pub async fn serve_connections<S>(
    listener: TcpListener,
    service: S,
    age: Option<ConnectionAge>,
    tls: Option<crate::tls::ServerTls>,
    shutdown: impl Future<Output = ()>,
    draining: impl Future<Output = ()>,
) where
    S: tower::Service<
            http::Request<Incoming>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let (drain, drain_started) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(_) => {
                // Out of file descriptors and the like: back off, keep serving.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Ok((stream, linger)) = Linger::keep(stream) else {
            continue;
        };
        let service = TowerToHyperService::new(service.clone());
        let drain_started = drain_started.clone();
        let age = age.map(|a| (a.jittered(), a.grace));
        let tls = tls.clone();
        connections.spawn(async move {
            let Some(stream) = super::tls::secure(stream, tls.as_ref()).await else {
                return;
            };
            let connection = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .max_concurrent_streams(None)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            // GOAWAY when the connection's age is reached or the server
            // drains; then closed once its calls are done or the grace is over.
            let grace = tokio::select! {
                _ = &mut connection => return,
                () = aged(age) => age.and_then(|(_, grace)| grace),
                () = drained(drain_started) => None,
            };
            connection.as_mut().graceful_shutdown();
            match grace {
                Some(grace) => drop(tokio::time::timeout(grace, connection).await),
                None => drop(connection.await),
            }
            linger.close(LINGER_LIMIT).await;
        });
    }
    // Stop accepting (clients now get "connection refused"), then drain.
    drop(listener);
    let _ = drain.send(true);
    let all_closed = async { while connections.join_next().await.is_some() {} };
    tokio::join!(draining, all_closed);
}

/// Completes when a connection of this age is due for GOAWAY; never without an age.
async fn aged(age: Option<(Duration, Option<Duration>)>) {
    match age {
        Some((age, _)) => tokio::time::sleep(age).await,
        None => std::future::pending().await,
    }
}

/// Completes once the server drains.
async fn drained(mut draining: watch::Receiver<bool>) {
    let _ = draining.wait_for(|drain| *drain).await;
}
