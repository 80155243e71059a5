//! `grpclb serve` flags.

use std::net::SocketAddr;

use clap::Args;

use super::ServeRegisterArgs;
use grpclb::Failure;
use grpclb::plan::ServePlan;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the bound address is printed on stderr).
    #[arg(long, default_value = "0.0.0.0:50051")]
    pub listen: String,
    /// Name sent in the `hostname` header and in replies [default: $POD_NAME, else the hostname].
    #[arg(long)]
    pub name: Option<String>,
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
        Ok(ServePlan {
            register: self.registration.plan()?,
            name: self.name,
            listen,
        })
    }
}
