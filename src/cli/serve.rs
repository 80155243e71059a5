//! `grpclb serve` flags.

use clap::Args;

use super::ServeRegisterArgs;
use grpclb::Failure;
use grpclb::plan::ServePlan;
use grpclb::serve::parse_listen;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the bound address is printed on stderr). Several:
    /// a comma-separated list and IPv4 ranges (127.0.1.1-127.0.4.250:50051), each answering as NAME-1, NAME-2, ….
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
        let listen = parse_listen(&self.listen).map_err(Failure::Usage)?;
        if listen.len() > 1 && self.registration.register.is_some() {
            return Err(Failure::Usage(
                "--register registers one address; give --listen a single address, or run one process per address".into(),
            ));
        }
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
