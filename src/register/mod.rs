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

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use run::{failure, run, start};

use crate::etcd::connect::{self, EtcdError, EtcdOptions};
use crate::etcd::value::{Metadata, ValueFormat};
use keeper::Keeper;

mod keeper;
mod run;

/// The lease TTL used when none is given, in seconds.
pub const DEFAULT_TTL_S: i64 = 10;

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
        let key = keeper.key().to_string();
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
