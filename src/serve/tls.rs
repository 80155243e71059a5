//! TLS and call details for `grpclb serve`: the TLS handshake of each
//! accepted connection, and the `:authority` each call named (kept for the
//! echo reply).

use std::time::Duration;

use http::Request;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::tls::ServerTls;

/// Longest a client may take over its TLS handshake: a client that
/// connects and says nothing must not hold a task forever.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// What a connection is served over: the TCP stream, or TLS on top of it.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// The stream to serve HTTP/2 on: `tcp` itself, or after the TLS
/// handshake; `None` when the handshake failed (the client gets the alert
/// and the connection is dropped).
pub async fn secure(tcp: TcpStream, tls: Option<&ServerTls>) -> Option<Box<dyn Io>> {
    let Some(tls) = tls else {
        return Some(Box::new(tcp));
    };
    match tokio::time::timeout(HANDSHAKE_LIMIT, tls.acceptor().accept(tcp)).await {
        Ok(Ok(stream)) => Some(Box::new(stream)),
        _ => None,
    }
}

/// The `:authority` a call arrived with, as a request extension.
#[derive(Debug, Clone)]
pub struct ReceivedAuthority(pub String);

/// Records each request's authority where the echo service can read it.
pub fn keep_authority<B>(mut request: Request<B>) -> Request<B> {
    let authority = request
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .unwrap_or_default();
    request
        .extensions_mut()
        .insert(ReceivedAuthority(authority));
    request
}
