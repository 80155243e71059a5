//! `grpclb serve` flags.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{ServeRegisterArgs, parse_duration};
use grpclb::Failure;
use grpclb::plan::ServePlan;
use grpclb::serve::{ConnectionAge, Faults, ServeSettings, parse_failure_code, parse_listen};
use grpclb::tls::{ServerTls, ServerTlsOptions};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the bound address is printed on stderr). Several:
    /// a comma-separated list and IPv4 ranges (127.0.1.1-127.0.4.250:50051), each answering as NAME-1, NAME-2, ….
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
    #[command(flatten)]
    pub behaviour: ServeBehaviourArgs,
}

/// Faults and connection recycling, to reproduce a slow, flaky or failing
/// pod and servers that recycle connections. Faults apply to the Echo and
/// Health calls (not to reflection).
#[derive(Debug, Args)]
#[command(next_help_heading = "Faults and connection lifecycle")]
pub struct ServeBehaviourArgs {
    /// Answer every Echo and Health call after this delay (e.g. 5ms): a slow pod.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub delay: Option<Duration>,
    /// Vary each delay uniformly within ± this (e.g. 2ms); at most --delay.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", requires = "delay")]
    pub jitter: Option<Duration>,
    /// Fail this fraction of calls (0 to 1, e.g. 0.01) with --error-code: a flaky pod.
    #[arg(long, value_name = "FRACTION")]
    pub error_rate: Option<f64>,
    /// The gRPC status of --error-rate and --fail-after failures: a name such as UNAVAILABLE, RESOURCE_EXHAUSTED, INTERNAL, or its number [default: UNAVAILABLE].
    #[arg(long, value_parser = parse_failure_code, value_name = "CODE")]
    pub error_code: Option<tonic::Code>,
    /// Fail every call with this gRPC status (e.g. UNAVAILABLE): a failing pod that still accepts connections.
    #[arg(long, value_parser = parse_failure_code, value_name = "CODE", conflicts_with_all = ["error_rate", "fail_after"])]
    pub fail_with: Option<tonic::Code>,
    /// Serve the first N calls, then fail every later one with --error-code: a pod that breaks mid-run.
    #[arg(long, value_name = "N")]
    pub fail_after: Option<u64>,
    /// Send each connection GOAWAY after this age, ±10% per connection (gRPC's MaxConnectionAge): clients reconnect, through a ClusterIP possibly to another pod.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub max_connection_age: Option<Duration>,
    /// After the GOAWAY, give calls still running this long, then close the connection (gRPC's MaxConnectionAgeGrace) [default: wait for them].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", requires = "max_connection_age")]
    pub max_connection_age_grace: Option<Duration>,
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
            settings: ServeSettings {
                tls,
                ..self.behaviour.settings()?
            },
            register: self.registration.plan()?,
            name: self.name,
            listen,
        })
    }
}

impl ServeBehaviourArgs {
    /// The validated settings; bad values are usage errors.
    pub fn settings(self) -> Result<ServeSettings, Failure> {
        let usage = |m: String| Err(Failure::Usage(m));
        let delay = self.delay.unwrap_or_default();
        let jitter = self.jitter.unwrap_or_default();
        if jitter > delay {
            return usage(format!(
                "--jitter {jitter:?} is larger than --delay {delay:?}; a delay cannot go below zero, so give a jitter of at most the delay"
            ));
        }
        let error_rate = self.error_rate.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&error_rate) {
            return usage(format!(
                "--error-rate {error_rate} must be a fraction between 0 and 1 (0.01 fails 1% of calls)"
            ));
        }
        if self.error_code.is_some() && self.error_rate.is_none() && self.fail_after.is_none() {
            return usage(
                "--error-code sets the status of --error-rate and --fail-after failures; add one of them, or use --fail-with CODE to fail every call".into(),
            );
        }
        if let Some(age) = self.max_connection_age
            && age.is_zero()
        {
            return usage(
                "--max-connection-age must be longer than 0 (e.g. 30s); leave it out to keep connections open".into(),
            );
        }
        let faults = Faults {
            delay,
            jitter,
            error_rate,
            error_code: self.error_code.unwrap_or(tonic::Code::Unavailable),
            fail_with: self.fail_with,
            fail_after: self.fail_after,
        };
        let connection_age = self.max_connection_age.map(|age| ConnectionAge {
            age,
            grace: self.max_connection_age_grace,
        });
        Ok(ServeSettings {
            faults,
            connection_age,
            tls: None,
        })
    }
}
