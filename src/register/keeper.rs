//! The background side of a registration: grant or reuse a lease, put the
//! key under it, renew it three times per TTL, re-register after losing
//! etcd, and revoke on request.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use etcd_client::{Client, LeaseKeepAliveStream, LeaseKeeper, PutOptions};
use tokio::sync::oneshot;

use super::{DEFAULT_TTL_S, EventSink, RegisterError, RegisterSpec};
use crate::etcd::connect::{self, Backoff, EtcdError};
use crate::etcd::value;

/// A failing re-registration is reported every this many attempts.
const REPORT_EVERY_ATTEMPTS: u32 = 10;

/// An established registration: a client, the lease, and its keep-alive stream.
pub(super) struct Link {
    client: Client,
    pub(super) lease: i64,
    pub(super) ttl_s: i64,
    keeper: LeaseKeeper,
    responses: LeaseKeepAliveStream,
}

/// The background side of a registration.
pub(super) struct Keeper {
    spec: RegisterSpec,
    endpoints: Vec<String>,
    key: String,
    value: String,
    events: EventSink,
}

impl Keeper {
    /// Validates the spec: a dialable address and a TTL of at least 1 s.
    pub(super) fn new(spec: RegisterSpec, events: EventSink) -> Result<Keeper, RegisterError> {
        let address = value::parse_address(spec.address.trim()).map_err(|problem| {
            RegisterError::Usage(format!(
                "cannot register address {:?}: {problem}",
                spec.address
            ))
        })?;
        if spec.ttl_s < 1 {
            return Err(RegisterError::Usage(format!(
                "--ttl {} is too short; give the lease at least 1 second (the default is {DEFAULT_TTL_S})",
                spec.ttl_s
            )));
        }
        let key = format!("{}{address}", connect::directory(&spec.prefix));
        let value = value::encode(spec.format, &address, &spec.metadata);
        Ok(Keeper {
            endpoints: connect::endpoints_or_env(&spec.endpoints),
            spec,
            key,
            value,
            events,
        })
    }

    /// The key this keeper holds.
    pub(super) fn key(&self) -> &str {
        &self.key
    }

    /// Connects, reuses `lease` if it is still alive (else grants a new
    /// one), puts the key under it, and opens the keep-alive stream.
    pub(super) async fn establish(&self, lease: Option<i64>) -> Result<Link, EtcdError> {
        let endpoints = &self.endpoints;
        let mut client = connect::connect(endpoints, &self.spec.etcd).await?;
        let alive = match lease {
            Some(id) => {
                connect::call(
                    endpoints,
                    "looking up the lease",
                    client.lease_time_to_live(id, None),
                )
                .await?
                .ttl()
                    > 0
            }
            None => false,
        };
        let (lease, ttl_s) = match lease {
            Some(id) if alive => (id, self.spec.ttl_s),
            _ => {
                let granted = connect::call(
                    endpoints,
                    "granting a lease",
                    client.lease_grant(self.spec.ttl_s, None),
                )
                .await?;
                (granted.id(), granted.ttl())
            }
        };
        connect::call(
            endpoints,
            "putting the key",
            client.put(
                self.key.as_str(),
                self.value.as_str(),
                Some(PutOptions::new().with_lease(lease)),
            ),
        )
        .await?;
        let (keeper, responses) = connect::call(
            endpoints,
            "starting the lease keep-alive",
            client.lease_keep_alive(lease),
        )
        .await?;
        Ok(Link {
            client,
            lease,
            ttl_s,
            keeper,
            responses,
        })
    }

    /// Keeps the lease alive until told to stop, then revokes it.
    pub(super) async fn run(
        self,
        link: Link,
        lease: Arc<AtomicI64>,
        mut stop: oneshot::Receiver<()>,
    ) -> Result<(), RegisterError> {
        let mut link = Some(link);
        let mut last_lease = lease.load(Ordering::Relaxed);
        let mut backoff = Backoff::new(self.spec.etcd.reconnect_min, self.spec.etcd.reconnect_max);
        let mut failures: u32 = 0;
        loop {
            let stopped = tokio::select! {
                biased;
                _ = &mut stop => true,
                () = self.step(&mut link, &mut last_lease, &mut backoff, &mut failures) => false,
            };
            lease.store(last_lease, Ordering::Relaxed);
            if stopped {
                return self.revoke(link, last_lease).await;
            }
        }
    }

    /// One round: renew and wait, or (after a loss) wait and re-establish.
    async fn step(
        &self,
        link: &mut Option<Link>,
        last_lease: &mut i64,
        backoff: &mut Backoff,
        failures: &mut u32,
    ) {
        match link {
            Some(live) => match renew(&self.endpoints, live).await {
                Ok(ttl) if ttl > 0 => tokio::time::sleep(renew_interval(live.ttl_s)).await,
                Ok(_) => {
                    (self.events)(&format!(
                        "lease {:x} of {} expired (etcd was out of reach for longer than the TTL); registering again",
                        live.lease, self.key
                    ));
                    *link = None;
                }
                Err(err) => {
                    (self.events)(&format!(
                        "lost etcd while keeping {} alive: {err}; reconnecting",
                        self.key
                    ));
                    *link = None;
                }
            },
            None => {
                tokio::time::sleep(backoff.next_wait()).await;
                match self.establish(Some(*last_lease)).await {
                    Ok(new_link) => {
                        let how = if new_link.lease == *last_lease {
                            format!("kept lease {:x}", new_link.lease)
                        } else {
                            format!("under new lease {:x}", new_link.lease)
                        };
                        (self.events)(&format!(
                            "registered {} again after {} attempt(s), {how}",
                            self.key,
                            *failures + 1
                        ));
                        *last_lease = new_link.lease;
                        *link = Some(new_link);
                        *failures = 0;
                        backoff.reset();
                    }
                    Err(err) => {
                        *failures += 1;
                        if failures.is_multiple_of(REPORT_EVERY_ATTEMPTS) {
                            (self.events)(&format!(
                                "still cannot register {} after {failures} attempts: {err}",
                                self.key
                            ));
                        }
                    }
                }
            }
        }
    }

    /// Revokes the lease (which deletes the key), through the live client
    /// or a fresh one.
    async fn revoke(&self, link: Option<Link>, lease: i64) -> Result<(), RegisterError> {
        let revoke_error = |source| RegisterError::Revoke {
            key: self.key.clone(),
            lease,
            ttl_s: self.spec.ttl_s,
            source,
        };
        let mut client = match link {
            Some(link) => link.client,
            None => connect::connect(&self.endpoints, &self.spec.etcd)
                .await
                .map_err(revoke_error)?,
        };
        match connect::call(
            &self.endpoints,
            "revoking the lease",
            client.lease_revoke(lease),
        )
        .await
        {
            Ok(_) => Ok(()),
            // Already gone (expired): the key is gone with it.
            Err(EtcdError::Server { detail, .. }) if detail.contains("not found") => Ok(()),
            Err(err) => Err(revoke_error(err)),
        }
    }
}

/// Sends one keep-alive and returns the TTL etcd answers (0 or less: the lease is gone).
async fn renew(endpoints: &[String], link: &mut Link) -> Result<i64, EtcdError> {
    connect::call(endpoints, "renewing the lease", link.keeper.keep_alive()).await?;
    match connect::call(endpoints, "renewing the lease", link.responses.message()).await? {
        Some(response) => Ok(response.ttl()),
        None => Err(EtcdError::Unreachable {
            endpoints: endpoints.join(","),
            detail: "etcd closed the keep-alive stream".to_string(),
        }),
    }
}

/// How often to renew a lease of `ttl_s` seconds: three times per TTL, as
/// etcd's own clients do, so that one lost renewal does not expire it.
fn renew_interval(ttl_s: i64) -> Duration {
    let ttl = Duration::from_secs(u64::try_from(ttl_s.max(1)).unwrap_or(1));
    (ttl / 3).max(Duration::from_millis(300))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::{EtcdOptions, Metadata, ValueFormat};

    fn spec(address: &str, ttl_s: i64) -> RegisterSpec {
        RegisterSpec {
            endpoints: vec!["127.0.0.1:1".into()],
            prefix: "/grpclb/echo".into(),
            address: address.into(),
            ttl_s,
            format: ValueFormat::Plain,
            metadata: Metadata::default(),
            etcd: EtcdOptions::default(),
        }
    }

    fn quiet() -> EventSink {
        Arc::new(|_: &str| {})
    }

    #[test]
    fn key_is_the_address_under_the_prefix_directory() {
        let keeper = Keeper::new(spec("127.0.0.2:9000", 10), quiet()).expect("valid");
        assert_eq!(keeper.key, "/grpclb/echo/127.0.0.2:9000");
        assert_eq!(keeper.value, "127.0.0.2:9000");
    }

    #[test]
    fn bad_address_or_ttl_is_a_usage_error() {
        assert!(matches!(
            Keeper::new(spec("nope", 10), quiet()),
            Err(RegisterError::Usage(_))
        ));
        assert!(matches!(
            Keeper::new(spec("127.0.0.2:9000", 0), quiet()),
            Err(RegisterError::Usage(_))
        ));
    }

    #[test]
    fn renewal_interval_is_a_third_of_the_ttl() {
        assert_eq!(renew_interval(9), Duration::from_secs(3));
        assert_eq!(renew_interval(1), Duration::from_secs(1) / 3);
    }
}
