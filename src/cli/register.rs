//! `grpclb register` flags, and the registration flags of `grpclb serve`:
//! both become a [`RegisterPlan`].

use clap::Args;

use super::choices::Choices;
use super::etcd::EtcdArgs;
use grpclb::Failure;
use grpclb::etcd::ValueFormat;
use grpclb::etcd::value::parse_address;
use grpclb::plan::RegisterPlan;
use grpclb::register::DEFAULT_TTL_S;
use grpclb::target::Target;

#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// Where to register: etcd://host:2379[,host:2379]/prefix (etcd:///prefix uses ETCDCTL_ENDPOINTS).
    pub target: String,
    /// The address clients should dial, host:port.
    #[arg(long)]
    pub address: String,
    /// Seconds the key outlives this process if it dies without revoking.
    #[arg(long, default_value_t = DEFAULT_TTL_S)]
    pub ttl: i64,
    /// How the value is written: the bare address, or etcd's endpoint JSON.
    #[arg(long, default_value = "plain", value_parser = Choices::<ValueFormat>::new(VALUE_FORMATS))]
    pub value_format: ValueFormat,
    /// Name written into the JSON value's Metadata (shown by `grpclb resolve`).
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub etcd: EtcdArgs,
}

/// The registration flags of `grpclb serve`.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeRegisterArgs {
    /// Register this server in etcd while serving: etcd://host:2379/prefix.
    /// The lease is revoked first on SIGTERM / Ctrl-C, then calls drain.
    #[arg(long, value_name = "ETCD_TARGET")]
    pub register: Option<String>,
    /// Seconds the key outlives the server if it dies without revoking.
    #[arg(long, default_value_t = DEFAULT_TTL_S, requires = "register")]
    pub ttl: i64,
    /// The address to register, host:port [default: the bound address, or $POD_IP with the bound port].
    #[arg(long, requires = "register")]
    pub advertise: Option<String>,
    /// How the value is written: the bare address, or etcd's endpoint JSON (with name, node, zone).
    #[arg(long, default_value = "plain", value_parser = Choices::<ValueFormat>::new(VALUE_FORMATS), requires = "register")]
    pub value_format: ValueFormat,
    #[command(flatten)]
    pub etcd: EtcdArgs,
}

/// The names `--value-format` accepts.
const VALUE_FORMATS: &[&str] = &["plain", "json"];

impl RegisterArgs {
    /// Validates the flags; errors are usage errors (exit 2).
    pub fn plan(self) -> Result<RegisterPlan, Failure> {
        let (endpoints, prefix) = etcd_target(&self.target, "TARGET")?;
        let address = checked_address(&self.address, "--address")?;
        Ok(RegisterPlan {
            endpoints,
            prefix,
            address: Some(address),
            ttl_s: checked_ttl(self.ttl)?,
            format: self.value_format,
            name: self.name,
            etcd: self.etcd.options(),
        })
    }
}

impl ServeRegisterArgs {
    /// Validates the flags; `None` when the server does not register.
    pub fn plan(&self) -> Result<Option<RegisterPlan>, Failure> {
        let Some(target) = &self.register else {
            return Ok(None);
        };
        let (endpoints, prefix) = etcd_target(target, "--register")?;
        let address = match &self.advertise {
            Some(advertise) => Some(checked_address(advertise, "--advertise")?),
            None => None,
        };
        Ok(Some(RegisterPlan {
            endpoints,
            prefix,
            address,
            ttl_s: checked_ttl(self.ttl)?,
            format: self.value_format,
            name: None,
            etcd: self.etcd.options(),
        }))
    }
}

/// The endpoints and prefix of an `etcd://` target.
fn etcd_target(input: &str, flag: &str) -> Result<(Vec<String>, String), Failure> {
    match Target::parse(input)? {
        Target::Etcd { endpoints, prefix } => Ok((endpoints, prefix)),
        other => Err(Failure::Usage(format!(
            "{flag} must be an etcd target, but {other} is a {} target; write e.g. etcd://127.0.0.1:2379/grpclb/echo",
            other.scheme()
        ))),
    }
}

fn checked_address(address: &str, flag: &str) -> Result<String, Failure> {
    let normalized = parse_address(address.trim()).map_err(|problem| {
        Failure::Usage(format!(
            "{flag} {address:?}: {problem}; write host:port, e.g. 10.1.0.7:9000"
        ))
    })?;
    if normalized.starts_with("0.0.0.0:") || normalized.starts_with("[::]:") {
        return Err(Failure::Usage(format!(
            "{flag} {address:?} is the wildcard address, which clients cannot dial; give the server's own IP"
        )));
    }
    Ok(normalized)
}

fn checked_ttl(ttl: i64) -> Result<i64, Failure> {
    if ttl < 1 {
        return Err(Failure::Usage(format!(
            "--ttl {ttl} is too short; give the lease at least 1 second (default {DEFAULT_TTL_S})"
        )));
    }
    Ok(ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_needs_an_etcd_target_and_a_dialable_address() {
        let args = |target: &str, address: &str| RegisterArgs {
            target: target.into(),
            address: address.into(),
            ttl: 10,
            value_format: ValueFormat::Plain,
            name: None,
            etcd: EtcdArgs::default(),
        };
        let plan = args("etcd://127.0.0.1:2379/grpclb/echo", "127.0.0.2:9000")
            .plan()
            .expect("valid");
        assert_eq!(plan.prefix, "/grpclb/echo");
        assert_eq!(plan.address.as_deref(), Some("127.0.0.2:9000"));
        for (target, address) in [
            ("ipv4:127.0.0.1:9000", "127.0.0.2:9000"),
            ("etcd://127.0.0.1:2379/grpclb/echo", "127.0.0.2"),
            ("etcd://127.0.0.1:2379/grpclb/echo", "0.0.0.0:9000"),
        ] {
            let err = args(target, address).plan().expect_err("invalid");
            assert_eq!(err.exit_code(), 2, "{err}");
        }
    }
}
