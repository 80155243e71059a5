//! TLS and call details for `grpclb serve`: the listener's TLS settings,
//! and the `:authority` each call named (kept for the echo reply).

use http::Request;
use tonic::transport::server::Server;

use super::ServeError;
use crate::tls::ServerTls;

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

/// A server builder that speaks TLS when `tls` is given.
pub fn builder(tls: Option<&ServerTls>) -> Result<Server, ServeError> {
    let builder = Server::builder();
    match tls {
        Some(tls) => Ok(builder.tls_config(tls.tonic_config())?),
        None => Ok(builder),
    }
}
