//! `grpclb serve` flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use super::ServeRegisterArgs;
use grpclb::Failure;
use grpclb::plan::ServePlan;
use grpclb::tls::{ServerTls, ServerTlsOptions};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the bound address is printed on stderr).
    #[arg(long, default_value = "0.0.0.0:50051")]
    pub listen: String,
    /// Name sent in the `hostname` header and in replies [default: $POD_NAME, else the hostname].
    #[arg(long)]
    pub name: Option<String>,
    /// Serve over TLS with this certificate chain (PEM; with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key of --tls-cert (PEM: PKCS#8, RSA or EC).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM): mutual TLS.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
    #[command(flatten)]
    pub registration: ServeRegisterArgs,
}

impl ServeArgs {
    pub fn plan(self) -> Result<ServePlan, Failure> {
        let listen: SocketAddr = self.listen.parse().map_err(|_| {
            Failure::Usage(format!(
                "--listen {:?} is not an IP:port address; write e.g. 0.0.0.0:50051 or 127.0.0.1:0",
                self.listen
            ))
        })?;
        if let Some(name) = &self.name
            && (name.is_empty() || !name.chars().all(|c| c.is_ascii_graphic()))
        {
            return Err(Failure::Usage(format!(
                "--name {name:?} must be non-empty printable ASCII without spaces (it is sent as a header)"
            )));
        }
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some(
                ServerTls::load(&ServerTlsOptions {
                    cert,
                    key,
                    client_ca: self.client_ca,
                })
                .map_err(|e| Failure::Usage(e.to_string()))?,
            ),
            _ => None,
        };
        Ok(ServePlan {
            tls,
            register: self.registration.plan()?,
            name: self.name,
            listen,
        })
    }
}
