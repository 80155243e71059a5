//! The task that keeps one member connected: connect, publish the HTTP/2
//! handle while ready, drive the connection, and reconnect with gRPC's
//! backoff when it fails or ends, until the member is removed.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use h2::client::{Connection, SendRequest};
use tokio::time::{Instant, sleep_until, timeout, timeout_at};

use super::backoff::{Backoff, BackoffSettings};
use super::member::Link;
use super::state::{Reason, State};
use crate::tls::{ClientTls, Stream};

/// HTTP/2 flow-control windows: large enough that an echo payload never
/// waits for a window update (the values hyper's client uses).
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 5 * 1024 * 1024;

/// After removal, how long calls still in flight may keep the connection.
const REMOVED_DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// Connects (over TLS when `tls` is given), keeps connected, and records
/// every state change of `link`.
pub(super) async fn maintain(link: Arc<Link>, settings: BackoffSettings, tls: Option<ClientTls>) {
    let mut backoff = Backoff::new(settings, Instant::now());
    let mut why: Option<Reason> = None;
    loop {
        if link.is_shut_down() {
            return;
        }
        link.transition(State::Connecting, why.take());
        let deadline = backoff.attempt_deadline(Instant::now());
        let attempt = tokio::select! {
            attempt = timeout_at(deadline, connect(&link.address, tls.as_ref(), deadline)) => attempt,
            () = link.stop.notified() => return,
        };
        let failure = match attempt {
            Ok(Ok((sender, connection))) => {
                backoff.reset(Instant::now());
                link.publish(sender);
                why = Some(run(&link, connection).await);
                if link.is_shut_down() {
                    return;
                }
                // A connection that was ready and ended reconnects at once
                // (gRPC: READY → IDLE → CONNECTING); only failed attempts wait.
                continue;
            }
            Ok(Err(reason)) => reason,
            Err(_elapsed) => Reason::TimedOut,
        };
        link.transition(State::TransientFailure, Some(failure));
        let retry_at = backoff.failed();
        tokio::select! {
            () = sleep_until(retry_at) => {}
            () = link.stop.notified() => return,
        }
    }
}

/// Drives a ready connection until it ends; returns why it ended. When the
/// member is removed meanwhile, calls in flight still finish.
async fn run(link: &Link, connection: Connection<Stream, Bytes>) -> Reason {
    tokio::pin!(connection);
    let ended = tokio::select! {
        ended = &mut connection => ended,
        () = link.stop.notified() => {
            // Our handle is gone; the connection closes once the calls
            // that hold one finish.
            let _ = timeout(REMOVED_DRAIN_LIMIT, &mut connection).await;
            return Reason::Removed;
        }
    };
    match ended {
        Ok(()) => Reason::ClosedByServer,
        Err(error) => Reason::of_h2(&error),
    }
}

/// One attempt: TCP connect, the TLS handshake when asked, then the
/// HTTP/2 handshake, all by `deadline`.
async fn connect(
    address: &str,
    tls: Option<&ClientTls>,
    deadline: Instant,
) -> Result<(SendRequest<Bytes>, Connection<Stream, Bytes>), Reason> {
    let limit = deadline.saturating_duration_since(Instant::now());
    let stream = crate::tls::connect(address, tls, limit)
        .await
        .map_err(Reason::of_connect)?;
    let (sender, mut connection) = h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .handshake(stream)
        .await
        .map_err(|e| Reason::of_h2(&e))?;
    // Ready only once the server answers: its SETTINGS come before the
    // ACK of our PING. A listener whose process is dying (a SIGKILLed pod)
    // accepts but never answers, and must not be picked meanwhile.
    if let Some(mut ping_pong) = connection.ping_pong() {
        tokio::select! {
            pong = ping_pong.ping(h2::Ping::opaque()) => {
                pong.map_err(|e| Reason::of_h2(&e))?;
            }
            ended = &mut connection => {
                return Err(match ended {
                    Ok(()) => Reason::ClosedByServer,
                    Err(e) => Reason::of_h2(&e),
                });
            }
        }
    }
    Ok((sender, connection))
}
