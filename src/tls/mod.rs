//! TLS for grpclb's own connections, rustls with ring: the client side that
//! `bench` dials pods with (roots, client certificate, the name to verify,
//! handshake failures in words) and the server side of `grpclb serve`.
//!
//! Key material is read here and nowhere else, and never printed: errors
//! name the flag and the file, never the content.

mod client;
mod failure;
mod files;
mod insecure;
mod server;
mod stream;

pub use client::{ClientTls, ClientTlsOptions, ServerNameChoice, TlsSummary};
pub use failure::{HandshakeFailure, explain};
pub use server::{ServerTls, ServerTlsOptions};
pub use stream::{ConnectError, Stream, connect};

use std::path::PathBuf;

/// Why TLS settings cannot be used; each message names the flag and file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// A file named by a flag cannot be read.
    #[error("cannot read {flag} file {}: {reason}", path.display())]
    Unreadable {
        flag: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// A file holds no usable PEM item of the kind the flag wants.
    #[error("{flag} file {}: {problem}", path.display())]
    Malformed {
        flag: &'static str,
        path: PathBuf,
        problem: String,
    },
    /// The flags do not fit together.
    #[error("{0}")]
    Usage(String),
}

/// The crypto provider for every TLS configuration grpclb builds: ring,
/// chosen explicitly so that no process-wide default is needed.
fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}
