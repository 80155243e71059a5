//! The server side, for `grpclb serve --tls-cert --tls-key [--client-ca]`:
//! files read and checked at start (a key that does not match its
//! certificate is refused before listening), then handed to tonic.

use std::fmt;
use std::path::PathBuf;

use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use super::{TlsError, files};

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

/// Checked server TLS material, ready for tonic.
#[derive(Clone)]
pub struct ServerTls {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    client_ca_pem: Option<Vec<u8>>,
}

impl fmt::Debug for ServerTls {
    /// Never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field(
                "requires_client_certificate",
                &self.requires_client_certificate(),
            )
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Reads and checks the files: the key must match the certificate, the
    /// client CA must hold a certificate.
    pub fn load(options: &ServerTlsOptions) -> Result<ServerTls, TlsError> {
        files::certified_key(&options.cert, "--tls-cert", &options.key, "--tls-key")?;
        let read = |path: &PathBuf, flag: &'static str| {
            std::fs::read(path).map_err(|e| TlsError::Unreadable {
                flag,
                path: path.clone(),
                reason: e.kind().to_string(),
            })
        };
        let client_ca_pem = match &options.client_ca {
            Some(path) => {
                files::certificates(path, "--client-ca")?;
                Some(read(path, "--client-ca")?)
            }
            None => None,
        };
        Ok(ServerTls {
            cert_pem: read(&options.cert, "--tls-cert")?,
            key_pem: read(&options.key, "--tls-key")?,
            client_ca_pem,
        })
    }

    /// True when clients must present a certificate signed by the client CA.
    pub fn requires_client_certificate(&self) -> bool {
        self.client_ca_pem.is_some()
    }

    /// tonic's server TLS settings (ALPN `h2`; client certificates
    /// required when a client CA is set).
    pub fn tonic_config(&self) -> ServerTlsConfig {
        let config =
            ServerTlsConfig::new().identity(Identity::from_pem(&self.cert_pem, &self.key_pem));
        match &self.client_ca_pem {
            Some(ca) => config.client_ca_root(Certificate::from_pem(ca)),
            None => config,
        }
    }
}
