//! The server side, for `grpclb serve --tls-cert --tls-key [--client-ca]`:
//! files read and checked at start (a key that does not match its
//! certificate is refused before listening), ALPN `h2`, and client
//! certificates required when a client CA is given.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;

use super::{TlsError, files, provider};

/// The TLS flags of `serve`, before files are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsOptions {
    /// The server's certificate chain (`--tls-cert`).
    pub cert: PathBuf,
    /// Its private key (`--tls-key`).
    pub key: PathBuf,
    /// CA that client certificates must be signed by (`--client-ca`);
    /// client certificates are then required.
    pub client_ca: Option<PathBuf>,
}

/// A checked server TLS configuration.
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
    requires_client_certificate: bool,
}

impl fmt::Debug for ServerTls {
    /// Never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field(
                "requires_client_certificate",
                &self.requires_client_certificate,
            )
            .finish_non_exhaustive()
    }
}

impl PartialEq for ServerTls {
    /// The same configuration object (settings compare by identity).
    fn eq(&self, other: &ServerTls) -> bool {
        Arc::ptr_eq(&self.config, &other.config)
    }
}

impl ServerTls {
    /// Reads and checks the files: the key must match the certificate, the
    /// client CA must hold a certificate usable as a trust anchor.
    pub fn load(options: &ServerTlsOptions) -> Result<ServerTls, TlsError> {
        let (chain, key) =
            files::certified_key(&options.cert, "--tls-cert", &options.key, "--tls-key")?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Usage(format!("TLS setup: {e}")))?;
        let builder = match &options.client_ca {
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for cert in files::certificates(path, "--client-ca")? {
                    roots.add(cert).map_err(|e| TlsError::Malformed {
                        flag: "--client-ca",
                        path: path.clone(),
                        problem: format!("holds a certificate that cannot be a trust anchor ({e})"),
                    })?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()
                        .map_err(|e| TlsError::Malformed {
                            flag: "--client-ca",
                            path: path.clone(),
                            problem: format!("cannot verify clients with it ({e})"),
                        })?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|e| TlsError::Usage(format!("--tls-cert/--tls-key: {e}")))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(ServerTls {
            config: Arc::new(config),
            requires_client_certificate: options.client_ca.is_some(),
        })
    }

    /// True when clients must present a certificate signed by the client CA.
    pub fn requires_client_certificate(&self) -> bool {
        self.requires_client_certificate
    }

    /// The acceptor for incoming connections.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(Arc::clone(&self.config))
    }
}
