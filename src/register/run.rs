//! `grpclb register`: hold an address in etcd until stopped, and the
//! registration side of `grpclb serve --register`.

use std::sync::Arc;

use super::{EventSink, RegisterError, RegisterSpec, Registration};
use crate::Failure;
use crate::etcd::{EtcdError, Metadata};
use crate::plan::RegisterPlan;
use crate::signal::termination_signal;

/// Registers the plan's address until SIGTERM / Ctrl-C, then revokes the lease.
pub async fn run(plan: RegisterPlan) -> Result<(), Failure> {
    let address = plan
        .address
        .clone()
        .ok_or_else(|| Failure::Usage("grpclb register needs --address host:port".into()))?;
    let metadata = Metadata {
        name: plan.name.clone(),
        ..Metadata::default()
    };
    // Installed before announcing, so that a SIGTERM right after the
    // announcement still revokes.
    let stop = termination_signal()
        .map_err(|e| Failure::CannotRun(format!("cannot install the SIGTERM handler: {e}")))?;
    let registration = start(&plan, address, metadata, "grpclb register").await?;
    eprintln!(
        "grpclb register: registered {} under lease {:x} (ttl {} s); SIGTERM or Ctrl-C revokes it",
        registration.key(),
        registration.lease(),
        registration.ttl_s()
    );
    stop.await;
    let key = registration.key().to_string();
    registration.revoke().await.map_err(failure)?;
    eprintln!("grpclb register: revoked the lease; {key} is gone");
    Ok(())
}

/// Puts `address` under the plan's prefix and keeps it alive; later events
/// are printed on stderr after `who`.
pub async fn start(
    plan: &RegisterPlan,
    address: String,
    metadata: Metadata,
    who: &'static str,
) -> Result<Registration, Failure> {
    let spec = RegisterSpec {
        endpoints: plan.endpoints.clone(),
        prefix: plan.prefix.clone(),
        address,
        ttl_s: plan.ttl_s,
        format: plan.format,
        metadata,
        etcd: plan.etcd.clone(),
    };
    let events: EventSink = Arc::new(move |event: &str| eprintln!("{who}: {event}"));
    Registration::start(spec, events).await.map_err(failure)
}

/// The exit code of a registration error: bad settings are usage (2),
/// everything else could not run (3).
pub fn failure(err: RegisterError) -> Failure {
    match err {
        RegisterError::Usage(message) => Failure::Usage(message),
        RegisterError::Etcd {
            source: EtcdError::Usage(message),
            ..
        } => Failure::Usage(message),
        other => Failure::CannotRun(other.to_string()),
    }
}
