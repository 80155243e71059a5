//! `grpclb serve`: run the backend until SIGTERM / Ctrl-C.

use std::net::SocketAddr;
use std::time::Duration;

use super::{Identity, bind, bind_all, listener_name, serve_with};
use crate::Failure;
use crate::etcd::Metadata;
use crate::load::raise_open_files_limit;
use crate::plan::{RegisterPlan, ServePlan};
use crate::register::{self, Registration};
use crate::signal::termination_signal;

/// After revoking its lease, a registered server waits this long before it
/// drains, so that watching clients drop it before it stops taking calls.
const DEREGISTER_GRACE: Duration = Duration::from_millis(500);

/// Serves until a termination signal, then drains.
pub async fn run(plan: ServePlan) -> Result<(), Failure> {
    let shutdown = termination_signal()
        .map_err(|e| Failure::CannotRun(format!("cannot install the SIGTERM handler: {e}")))?;
    let first = match plan.listen.as_slice() {
        [one] => *one,
        _ => return serve_many(plan, shutdown).await,
    };
    let identity = Identity::from_env(plan.name, first);
    let listener = bind(first)
        .await
        .map_err(|e| Failure::CannotRun(e.to_string()))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Failure::CannotRun(format!("cannot read the bound address: {e}")))?;
    let security = match &plan.settings.tls {
        Some(tls) if tls.requires_client_certificate() => " (TLS, client certificates required)",
        Some(_) => " (TLS)",
        None => "",
    };
    eprintln!(
        "grpclb serve: listening on {bound}{security} as {}",
        identity.name
    );
    let faults = plan.settings.faults.describe();
    if !faults.is_empty() {
        eprintln!("grpclb serve: injecting faults: {faults}");
    }
    if let Some(age) = plan.settings.connection_age {
        let then = age.grace.map_or("their calls finish".to_string(), |g| {
            format!("{g:?} of grace")
        });
        eprintln!(
            "grpclb serve: connections get GOAWAY after {:?} ±10%, then {then}",
            age.age
        );
    }
    let registration = match &plan.register {
        Some(register) => Some(register_self(register, bound, &identity).await?),
        None => None,
    };
    serve_with(
        listener,
        identity,
        plan.settings,
        deregister_then(registration, shutdown),
    )
    .await
    .map_err(|e| Failure::CannotRun(e.to_string()))?;
    eprintln!("grpclb serve: drained, bye");
    Ok(())
}

/// Up to this many listeners are announced one line each.
const ANNOUNCED_ONE_BY_ONE: usize = 16;

/// Serves on several addresses in one process, each under its own name
/// (`NAME-1`, `NAME-2`, …), until a termination signal; then all drain.
async fn serve_many(plan: ServePlan, shutdown: impl Future<Output = ()>) -> Result<(), Failure> {
    raise_open_files_limit();
    let listeners = bind_all(&plan.listen)
        .await
        .map_err(|e| Failure::CannotRun(e.to_string()))?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let count = listeners.len();
    let mut servers = Vec::with_capacity(count);
    let mut bound = Vec::with_capacity(count);
    for (index, listener) in listeners.into_iter().enumerate() {
        let address = listener
            .local_addr()
            .map_err(|e| Failure::CannotRun(format!("cannot read the bound address: {e}")))?;
        let base = Identity::from_env(plan.name.clone(), address);
        let identity = Identity {
            name: listener_name(&base.name, index, count),
            ..base
        };
        if count <= ANNOUNCED_ONE_BY_ONE {
            eprintln!("grpclb serve: listening on {address} as {}", identity.name);
        }
        bound.push((address, identity.name.clone()));
        let mut stopped = stopped.clone();
        let settings = plan.settings.clone();
        servers.push(tokio::spawn(serve_with(
            listener,
            identity,
            settings,
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            },
        )));
    }
    if let (Some((first, first_name)), Some((last, last_name))) = (bound.first(), bound.last())
        && count > ANNOUNCED_ONE_BY_ONE
    {
        eprintln!(
            "grpclb serve: listening on {count} addresses, {first} to {last}, as {first_name} to {last_name}"
        );
    }
    shutdown.await;
    let _ = stop.send(true);
    for server in servers {
        match server.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Failure::CannotRun(e.to_string())),
            Err(e) => return Err(Failure::CannotRun(format!("a listener stopped: {e}"))),
        }
    }
    eprintln!("grpclb serve: drained, bye");
    Ok(())
}

/// Registers this server under the plan's prefix.
async fn register_self(
    plan: &RegisterPlan,
    bound: SocketAddr,
    identity: &Identity,
) -> Result<Registration, Failure> {
    let address = advertised_address(plan, bound, identity)?;
    let metadata = Metadata {
        name: Some(identity.name.clone()),
        node: Some(identity.node.clone()).filter(|n| !n.is_empty()),
        zone: Some(identity.zone.clone()).filter(|z| !z.is_empty()),
    };
    let registration = register::start(plan, address, metadata, "grpclb serve").await?;
    eprintln!(
        "grpclb serve: registered {} under lease {:x} (ttl {} s)",
        registration.key(),
        registration.lease(),
        registration.ttl_s()
    );
    Ok(registration)
}

/// What to register: `--advertise`, else the bound address, else (bound to
/// a wildcard) `$POD_IP` with the bound port.
fn advertised_address(
    plan: &RegisterPlan,
    bound: SocketAddr,
    identity: &Identity,
) -> Result<String, Failure> {
    if let Some(address) = &plan.address {
        return Ok(address.clone());
    }
    if !bound.ip().is_unspecified() {
        return Ok(bound.to_string());
    }
    match identity.pod_ip.parse::<std::net::IpAddr>() {
        Ok(ip) if !ip.is_unspecified() => Ok(SocketAddr::new(ip, bound.port()).to_string()),
        _ => Err(Failure::Usage(format!(
            "listening on {bound} (every interface), grpclb cannot tell which address clients should dial; \
             pass --advertise host:port, or set POD_IP (the downward API's status.podIP)"
        ))),
    }
}

/// Completes after `signal`, once the registration (if any) is revoked and
/// watchers had a moment to drop this server.
async fn deregister_then(registration: Option<Registration>, signal: impl Future<Output = ()>) {
    signal.await;
    let Some(registration) = registration else {
        return;
    };
    let key = registration.key().to_string();
    match registration.revoke().await {
        Ok(()) => {
            eprintln!("grpclb serve: deregistered {key} (lease revoked); draining");
            tokio::time::sleep(DEREGISTER_GRACE).await;
        }
        Err(err) => eprintln!("grpclb serve: {err}; draining anyway"),
    }
}
