//! The client side: the rustls configuration `bench` dials pods with, the
//! name each pod's certificate is checked against, and the handshake.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use serde::Serialize;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::failure::{HandshakeFailure, explain};
use super::insecure::SkipVerify;
use super::{TlsError, files, provider};

/// Which name a server's certificate must be valid for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerNameChoice {
    /// This name for every address dialled (`--tls-server-name`, or the
    /// Service's DNS name for a Kubernetes target).
    Fixed(String),
    /// The host part of each address dialled (an IP for pods).
    EachAddress,
}

/// The TLS flags of `bench`, before files are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTlsOptions {
    /// CA bundle to trust instead of the system roots (`--cacert`).
    pub cacert: Option<PathBuf>,
    /// Client certificate chain (`--cert`).
    pub cert: Option<PathBuf>,
    /// Key of the client certificate (`--key`).
    pub key: Option<PathBuf>,
    pub server_name: ServerNameChoice,
    /// Accept any server certificate (`--insecure-skip-verify`).
    pub insecure_skip_verify: bool,
}

/// What a report says about the TLS a run used (never any key material).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsSummary {
    /// `system` or the `--cacert` file.
    pub roots: String,
    /// The name certificates are checked against, or `each address`.
    pub server_name: String,
    pub client_certificate: bool,
    pub insecure_skip_verify: bool,
    /// Set with `--insecure-skip-verify`: what that gives up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// What `--insecure-skip-verify` gives up, said on stderr and in the JSON.
pub const INSECURE_WARNING: &str = "--insecure-skip-verify: server certificates are NOT verified; \
     any server (or anyone in the path) can answer as your pods. Use it only to debug, never in CI gates";

/// A ready client TLS configuration: files read, key checked against its
/// certificate, ALPN `h2` (gRPC requires it).
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
    fixed_name: Option<ServerName<'static>>,
    summary: TlsSummary,
}

impl fmt::Debug for ClientTls {
    /// The summary only: a configuration holds the client's private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// Reads the files and builds the configuration; every error names the
    /// flag and the file.
    pub fn new(options: &ClientTlsOptions) -> Result<ClientTls, TlsError> {
        let fixed_name = match &options.server_name {
            ServerNameChoice::Fixed(name) => {
                Some(ServerName::try_from(name.clone()).map_err(|_| {
                    TlsError::Usage(format!(
                        "--tls-server-name {name:?} is neither a DNS name nor an IP address"
                    ))
                })?)
            }
            ServerNameChoice::EachAddress => None,
        };
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Usage(format!("TLS setup: {e}")))?;
        let (builder, roots) = if options.insecure_skip_verify {
            let verifier = Arc::new(SkipVerify::new(provider()));
            (
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(verifier),
                "none (not verified)".to_string(),
            )
        } else {
            match &options.cacert {
                Some(path) => (
                    builder.with_root_certificates(roots_from_file(path)?),
                    path.display().to_string(),
                ),
                None => (
                    builder.with_root_certificates(system_roots()?),
                    "system".to_string(),
                ),
            }
        };
        let mut config = match (&options.cert, &options.key) {
            (Some(cert), Some(key)) => {
                let (chain, key) = files::certified_key(cert, "--cert", key, "--key")?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| TlsError::Usage(format!("--cert/--key: {e}")))?
            }
            (None, None) => builder.with_no_client_auth(),
            (Some(_), None) => {
                return Err(TlsError::Usage(
                    "--cert needs --key (the private key of the client certificate)".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(TlsError::Usage(
                    "--key needs --cert (the client certificate it belongs to)".into(),
                ));
            }
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        let summary = TlsSummary {
            roots,
            server_name: match &options.server_name {
                ServerNameChoice::Fixed(name) => name.clone(),
                ServerNameChoice::EachAddress => "each address".to_string(),
            },
            client_certificate: options.cert.is_some(),
            insecure_skip_verify: options.insecure_skip_verify,
            warning: options
                .insecure_skip_verify
                .then(|| INSECURE_WARNING.to_string()),
        };
        Ok(ClientTls {
            config: Arc::new(config),
            fixed_name,
            summary,
        })
    }

    /// The rustls configuration (ALPN `h2`).
    pub fn config(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.config)
    }

    /// What reports show about this configuration.
    pub fn summary(&self) -> &TlsSummary {
        &self.summary
    }

    /// The name the certificate of the server at `address` (`host:port`)
    /// must be valid for.
    pub fn server_name(&self, address: &str) -> Result<ServerName<'static>, HandshakeFailure> {
        if let Some(name) = &self.fixed_name {
            return Ok(name.clone());
        }
        let host = host_of(address);
        ServerName::try_from(host.to_string()).map_err(|_| {
            HandshakeFailure::Other(format!(
                "{host:?} cannot be checked against a certificate; pass --tls-server-name NAME"
            ))
        })
    }

    /// The TLS handshake over `tcp` to the server at `address`.
    pub async fn handshake(
        &self,
        tcp: TcpStream,
        address: &str,
    ) -> Result<TlsStream<TcpStream>, HandshakeFailure> {
        let name = self.server_name(address)?;
        TlsConnector::from(self.config())
            .connect(name, tcp)
            .await
            .map_err(|e| explain(&e).unwrap_or_else(|| HandshakeFailure::during_handshake(&e)))
    }
}

/// The host of `host:port` or `[v6]:port`.
fn host_of(address: &str) -> &str {
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    address.rsplit_once(':').map_or(address, |(host, _)| host)
}

fn roots_from_file(path: &std::path::Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in files::certificates(path, "--cacert")? {
        roots.add(cert).map_err(|e| TlsError::Malformed {
            flag: "--cacert",
            path: path.to_path_buf(),
            problem: format!("holds a certificate that cannot be a trust anchor ({e})"),
        })?;
    }
    Ok(roots)
}

/// The operating system's trusted CAs.
fn system_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (_added, _ignored) = roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        return Err(TlsError::Usage(
            "--tls: no system CA certificates found (install ca-certificates, or pass the CA that signed your servers with --cacert FILE)"
                .into(),
        ));
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_of_an_address_is_checked_by_default() {
        assert_eq!(host_of("10.0.0.7:50051"), "10.0.0.7");
        assert_eq!(host_of("[fd00::1]:50051"), "fd00::1");
        assert_eq!(
            host_of("echo.default.svc.cluster.local:80"),
            "echo.default.svc.cluster.local"
        );
    }

    #[test]
    fn a_bad_server_name_is_a_usage_error() {
        let options = ClientTlsOptions {
            cacert: None,
            cert: None,
            key: None,
            server_name: ServerNameChoice::Fixed("not a name!".into()),
            insecure_skip_verify: true,
        };
        let err = ClientTls::new(&options).expect_err("bad name");
        assert!(err.to_string().contains("--tls-server-name"), "{err}");
    }
}
