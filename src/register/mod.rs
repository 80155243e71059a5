//! Registration: announce a server under a service prefix in etcd.
//!
//! The key `<prefix>/<address>` is put under a lease that a background task
//! keeps alive while the server runs, so that a server that dies without a
//! word (SIGKILL, a lost node) disappears from the prefix once its TTL runs
//! out. A clean stop revokes the lease first, so that clients stop picking
//! the server before it drains. When etcd goes away the task reconnects with
//! backoff and puts the key again, under a new lease if the old one expired.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use etcd_client::{Client, LeaseKeepAliveStream, LeaseKeeper, PutOptions};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::resolve::etcd::connect::{self, Backoff, EtcdError, EtcdOptions};
use crate::resolve::etcd::value::{self, Metadata, ValueFormat};

/// The lease TTL used when none is given, in seconds.
pub const DEFAULT_TTL_S: i64 = 10;

/// A failing re-registration is reported every this many attempts.
const REPORT_EVERY_ATTEMPTS: u32 = 10;

/// What to register, and where.
#[derive(Debug, Clone)]
pub struct RegisterSpec {
    /// etcd endpoints; empty means `ETCDCTL_ENDPOINTS` (then 127.0.0.1:2379).
    pub endpoints: Vec<String>,
    /// The service prefix, as `/grpclb/echo`; the key is `<prefix>/<address>`.
    pub prefix: String,
    /// The address clients should dial, `host:port`.
    pub address: String,
    /// Seconds the key outlives its registrant (etcd may round it up).
    pub ttl_s: i64,
    pub format: ValueFormat,
    /// Written into the JSON format's `Metadata`; ignored by the plain format.
    pub metadata: Metadata,
    pub etcd: EtcdOptions,
}

/// Receives registration events worth telling the operator (reconnected,
/// registered again under a new lease).
pub type EventSink = Arc<dyn Fn(&str) + Send + Sync>;

/// Why registering or deregistering failed. Every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The spec is wrong: a bad address or TTL (exit 2).
    #[error("{0}")]
    Usage(String),
    /// etcd could not be used (exit 3).
    #[error("cannot register {key}: {source}")]
    Etcd { key: String, source: EtcdError },
    /// The lease could not be revoked; the key lingers until its TTL runs out.
    #[error(
        "could not revoke lease {lease:x} of {key}: {source}; the key disappears by itself within {ttl_s} s"
    )]
    Revoke {
        key: String,
        lease: i64,
        ttl_s: i64,
        source: EtcdError,
    },
}

/// A live registration. Revoke it to deregister at once; dropping it stops
/// the keep-alive, and the key then expires after its TTL.
pub struct Registration {
    key: String,
    ttl_s: i64,
    lease: Arc<AtomicI64>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), RegisterError>>,
}

impl Registration {
    /// Puts the key under a new lease and starts keeping it alive.
    ///
    /// Fails when the spec is invalid or etcd cannot be reached within a few
    /// seconds; `events` hears about later reconnects.
    pub async fn start(
        spec: RegisterSpec,
        events: EventSink,
    ) -> Result<Registration, RegisterError> {
        let keeper = Keeper::new(spec, events)?;
        let key = keeper.key.clone();
        let link = keeper
            .establish(None)
            .await
            .map_err(|source| RegisterError::Etcd {
                key: key.clone(),
                source,
            })?;
        let ttl_s = link.ttl_s;
        let lease = Arc::new(AtomicI64::new(link.lease));
        let (stop, stop_rx) = oneshot::channel();
        let task = tokio::spawn(keeper.run(link, lease.clone(), stop_rx));
        Ok(Registration {
            key,
            ttl_s,
            lease,
            stop: Some(stop),
            task,
        })
    }

    /// The key this registration holds.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The lease the key is attached to now (it changes when the key had to
    /// be registered again).
    pub fn lease(&self) -> i64 {
        self.lease.load(Ordering::Relaxed)
    }

    /// The TTL etcd granted, in seconds.
    pub fn ttl_s(&self) -> i64 {
        self.ttl_s
    }

    /// Revokes the lease, so the key disappears now, and stops the keep-alive.
    pub async fn revoke(mut self) -> Result<(), RegisterError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // The task revokes within one bounded call; allow for a connect too.
        let limit = connect::CONNECT_TIMEOUT + connect::CALL_TIMEOUT + Duration::from_secs(1);
        match tokio::time::timeout(limit, &mut self.task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join_error)) => Err(RegisterError::Revoke {
                key: self.key.clone(),
                lease: self.lease(),
                ttl_s: self.ttl_s,
                source: EtcdError::Usage(format!(
                    "the keep-alive task ended abnormally: {join_error}"
                )),
            }),
            Err(_) => Err(RegisterError::Revoke {
                key: self.key.clone(),
                lease: self.lease(),
                ttl_s: self.ttl_s,
                source: EtcdError::Unreachable {
                    endpoints: String::new(),
                    detail: format!("no answer within {limit:?}"),
                },
            }),
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An established registration: a client, the lease, and its keep-alive stream.
struct Link {
    client: Client,
    lease: i64,
    ttl_s: i64,
    keeper: LeaseKeeper,
    responses: LeaseKeepAliveStream,
}

/// The background side of a registration.
struct Keeper {
    spec: RegisterSpec,
    endpoints: Vec<String>,
    key: String,
    value: String,
    events: EventSink,
}

impl Keeper {
    fn new(spec: RegisterSpec, events: EventSink) -> Result<Keeper, RegisterError> {
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

    /// Connects, reuses `lease` if it is still alive (else grants a new
    /// one), puts the key under it, and opens the keep-alive stream.
    async fn establish(&self, lease: Option<i64>) -> Result<Link, EtcdError> {
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
    async fn run(
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
    fn renewal_runs_three_times_per_ttl() {
        assert_eq!(renew_interval(9), Duration::from_secs(3));
        assert_eq!(renew_interval(1), Duration::from_secs(1) / 3);
    }
}
