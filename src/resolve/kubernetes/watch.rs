//! Following a Service's EndpointSlices: list, watch, relist.
//!
//! kube's watcher lists, then watches from the list's resourceVersion, and
//! relists from scratch when the server answers a watch with 410 Gone. This
//! loop turns its events into complete endpoint sets: a relist is buffered
//! until it is complete and then replaces every slice at once, so a slice
//! deleted while the watch was down disappears too.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};

use super::explain;
use super::slices::{SliceSet, WantedPort, no_ready_reason};
use crate::resolve::{Endpoint, Notice, ResolveError, UpdateSender, diff};

/// What is watched, and what is known before the watch starts.
pub struct Watched {
    pub namespace: String,
    pub service: String,
    /// The API server URL, for messages.
    pub server: String,
    pub wanted: WantedPort,
    /// True when the Service was read and exists.
    pub service_known: bool,
}

/// Runs until nobody listens: sends the first set, then every change.
///
/// An error before the first set ends the source with a message saying what
/// to do; after it, errors become notices and the watch is retried with
/// backoff while the last set stays in force.
pub async fn run(client: Client, target: Watched, tx: UpdateSender) -> Result<(), ResolveError> {
    let api: Api<EndpointSlice> = Api::namespaced(client, &target.namespace);
    let config = watcher::Config::default()
        .labels(&format!("kubernetes.io/service-name={}", target.service));
    let mut events = watcher::watcher(api, config).boxed();
    let mut publisher = Publisher::new(target, tx);
    let mut slices = SliceSet::default();
    // Slices of a list in progress; replaces `slices` once complete.
    let mut listing: Option<Vec<EndpointSlice>> = None;
    let mut backoff = Backoff::default();
    loop {
        let Some(event) = events.next().await else {
            return Err(ResolveError::Failed(format!(
                "the EndpointSlice watch for {} ended unexpectedly",
                publisher.what()
            )));
        };
        let changed = match event {
            Ok(Event::Init) => {
                listing = Some(Vec::new());
                false
            }
            Ok(Event::InitApply(slice)) => {
                listing.get_or_insert_with(Vec::new).push(slice);
                false
            }
            Ok(Event::InitDone) => {
                slices.replace_all(listing.take().unwrap_or_default());
                true
            }
            Ok(Event::Apply(slice)) => {
                slices.apply(slice);
                true
            }
            Ok(Event::Delete(slice)) => slices.delete(&slice),
            Err(err) => {
                if !publisher.started() {
                    return Err(publisher.first_error(err));
                }
                let (notice, wait) = match &err {
                    watcher::Error::WatchError(status) if status.code == 410 => (
                        Notice::Relisted(format!(
                            "the EndpointSlice watch expired (410 Gone: {}); relisting",
                            status.message.trim()
                        )),
                        None,
                    ),
                    _ => {
                        let wait = backoff.next_delay();
                        (
                            Notice::SourceError(format!(
                                "EndpointSlice watch failed: {err}; keeping the last set, retrying in {}s",
                                wait.as_secs()
                            )),
                            Some(wait),
                        )
                    }
                };
                if !publisher.notice(notice).await {
                    return Ok(());
                }
                if let Some(wait) = wait {
                    tokio::time::sleep(wait).await;
                }
                false
            }
        };
        if changed {
            backoff.reset();
            if !publisher.publish(&slices).await? {
                return Ok(());
            }
        }
    }
}

/// Sends sets and notices, skipping sets that did not change.
struct Publisher {
    target: Watched,
    tx: UpdateSender,
    last: Option<Vec<Endpoint>>,
    last_reason: Option<String>,
}

impl Publisher {
    fn new(target: Watched, tx: UpdateSender) -> Publisher {
        Publisher {
            target,
            tx,
            last: None,
            last_reason: None,
        }
    }

    fn what(&self) -> String {
        format!("Service {}/{}", self.target.namespace, self.target.service)
    }

    /// True once the first set has been sent.
    fn started(&self) -> bool {
        self.last.is_some()
    }

    /// Returns false once nobody listens.
    async fn notice(&self, notice: Notice) -> bool {
        self.tx.notice(notice).await
    }

    /// Sends the union of `slices` if it changed. Returns false once nobody
    /// listens; an error only before the first set.
    async fn publish(&mut self, slices: &SliceSet) -> Result<bool, ResolveError> {
        if !self.started() && slices.is_empty() && !self.target.service_known {
            return Err(ResolveError::Failed(explain::no_slices_unknown_service(
                &self.target.namespace,
                &self.target.service,
            )));
        }
        let endpoints = match slices.endpoints(&self.target.wanted) {
            Ok(endpoints) => endpoints,
            Err(err) if !self.started() => {
                return Err(ResolveError::Failed(format!("{} {err}", self.what())));
            }
            Err(err) => {
                return Ok(self
                    .notice(Notice::SourceError(format!(
                        "{} {err}; keeping the last set",
                        self.what()
                    )))
                    .await);
            }
        };
        let reason = no_ready_reason(&endpoints, slices.len());
        if reason.is_some() && reason != self.last_reason {
            let message = format!("{}: {}", self.what(), reason.as_deref().unwrap_or_default());
            if !self.notice(Notice::NothingReady(message)).await {
                return Ok(false);
            }
        }
        self.last_reason = reason;
        if let Some(last) = &self.last
            && diff(last, &endpoints).is_empty()
        {
            return Ok(true);
        }
        self.last = Some(endpoints.clone());
        Ok(self.tx.reset(endpoints).await)
    }

    /// The message for a failure before the first set.
    fn first_error(&self, err: watcher::Error) -> ResolveError {
        let server = &self.target.server;
        let message = match err {
            watcher::Error::InitialListFailed(kube::Error::Api(status))
            | watcher::Error::WatchStartFailed(kube::Error::Api(status))
            | watcher::Error::WatchFailed(kube::Error::Api(status))
                if status.is_forbidden() =>
            {
                explain::forbidden(&self.target.namespace, &self.target.service, &status)
            }
            watcher::Error::WatchError(status) if status.is_forbidden() => {
                explain::forbidden(&self.target.namespace, &self.target.service, &status)
            }
            watcher::Error::InitialListFailed(kube::Error::Api(status)) if status.code == 401 => {
                explain::unauthorized(server, &status)
            }
            other => explain::unreachable(
                server,
                &format!("list the EndpointSlices of {}", self.what()),
                &other,
            ),
        };
        ResolveError::Failed(message)
    }
}

/// Delays between retries after errors: 1 s doubling to 30 s.
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    const FIRST: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(30);

    /// The delay before the next retry; each call doubles it up to the cap.
    fn next_delay(&mut self) -> Duration {
        let delay = Self::FIRST
            .saturating_mul(1 << self.failures.min(10))
            .min(Self::MAX);
        self.failures = self.failures.saturating_add(1);
        delay
    }

    /// Forgets past failures after a success.
    fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut backoff = Backoff::default();
        let delays: Vec<u64> = (0..7).map(|_| backoff.next_delay().as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_secs(1));
    }
}
