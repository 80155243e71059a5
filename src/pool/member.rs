//! One pool member: an endpoint, its HTTP/2 connection and the state of
//! that connection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use h2::client::SendRequest;
use http::HeaderValue;
use http::uri::Authority;
use tokio::sync::Notify;

use super::Membership;
use super::state::{Reason, State, Timeline};
use crate::resolve::Endpoint;

/// An endpoint with its connection. Cheap to clone through `Arc`; a
/// metadata update of the endpoint keeps the connection ([`Member::with_endpoint`]).
pub struct Member {
    endpoint: Endpoint,
    link: Arc<Link>,
}

/// The connection to one address and what is known about it: shared by
/// every version of the member and by its connection task.
pub(super) struct Link {
    /// Index of this member in per-run tallies; never reused in a pool.
    pub(super) slot: usize,
    pub(super) address: String,
    authority: Authority,
    timeline: Mutex<Timeline>,
    /// The connection's request handle while ready.
    sender: ArcSwapOption<SendRequest<Bytes>>,
    in_flight: AtomicUsize,
    last_identity: ArcSwapOption<HeaderValue>,
    /// Woken when the member is removed.
    pub(super) stop: Notify,
    membership: Weak<Membership>,
}

impl Link {
    pub(super) fn new(
        slot: usize,
        address: &str,
        membership: Weak<Membership>,
    ) -> Result<Link, String> {
        let authority: Authority = address
            .parse()
            .map_err(|_| format!("cannot dial {address:?}: not a host:port address"))?;
        if authority.port_u16().is_none() {
            return Err(format!("cannot dial {address:?}: the port is missing"));
        }
        Ok(Link {
            slot,
            address: address.to_string(),
            authority,
            timeline: Mutex::new(Timeline::new(Instant::now())),
            sender: ArcSwapOption::empty(),
            in_flight: AtomicUsize::new(0),
            last_identity: ArcSwapOption::empty(),
            stop: Notify::new(),
            membership,
        })
    }

    pub(super) fn state(&self) -> State {
        self.timeline
            .lock()
            .map(|t| t.state())
            .unwrap_or(State::Shutdown)
    }

    /// Records a state change and, when it changed whether the member may
    /// be picked, rebuilds the pool's ready list.
    pub(super) fn transition(&self, state: State, reason: Option<Reason>) {
        let changed = match self.timeline.lock() {
            Ok(mut timeline) => {
                let was_ready = timeline.state() == State::Ready;
                timeline.record(Instant::now(), state, reason)
                    && (was_ready || state == State::Ready)
            }
            Err(_) => false,
        };
        if state != State::Ready {
            self.sender.store(None);
        }
        if changed && let Some(membership) = self.membership.upgrade() {
            membership.rebuild_ready();
        }
    }

    /// Publishes a fresh connection's handle and marks the member ready.
    pub(super) fn publish(&self, sender: SendRequest<Bytes>) {
        if self.state() == State::Shutdown {
            return;
        }
        self.sender.store(Some(Arc::new(sender)));
        self.transition(State::Ready, None);
    }

    pub(super) fn is_shut_down(&self) -> bool {
        self.state() == State::Shutdown
    }
}

impl Member {
    pub(super) fn new(endpoint: Endpoint, link: Arc<Link>) -> Member {
        Member { endpoint, link }
    }

    pub(super) fn link(&self) -> &Arc<Link> {
        &self.link
    }

    /// The same connection and counters, with updated endpoint metadata.
    pub fn with_endpoint(&self, endpoint: Endpoint) -> Arc<Member> {
        Arc::new(Member {
            endpoint,
            link: Arc::clone(&self.link),
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// This member's index in per-run tallies (stable for the pool's life).
    pub fn slot(&self) -> usize {
        self.link.slot
    }

    /// The `:authority` calls to this member carry.
    pub fn authority(&self) -> &Authority {
        &self.link.authority
    }

    /// The connection state now.
    pub fn state(&self) -> State {
        self.link.state()
    }

    /// Every state change so far.
    pub fn timeline(&self) -> Timeline {
        self.link
            .timeline
            .lock()
            .map(|t| t.clone())
            .unwrap_or_else(|_| Timeline::new(Instant::now()))
    }

    /// A handle to send a call on, while the member is ready.
    pub fn sender(&self) -> Option<SendRequest<Bytes>> {
        self.link.sender.load().as_deref().cloned()
    }

    /// The server sent GOAWAY: no new calls on this connection; calls in
    /// flight finish and the connection task reconnects once it closes.
    pub fn draining(&self) {
        if self.state() == State::Ready {
            self.link.transition(State::Draining, Some(Reason::GoAway));
        }
    }

    /// Calls in flight on this member now.
    pub fn in_flight(&self) -> usize {
        self.link.in_flight.load(Ordering::Relaxed)
    }

    /// Counts a call as in flight until the guard drops.
    pub fn start_call(&self) -> InFlight<'_> {
        self.link.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight { link: &self.link }
    }

    /// Remembers the identity this member answered with.
    pub fn saw_identity(&self, identity: &HeaderValue) {
        let last = self.link.last_identity.load();
        if last.as_deref() != Some(identity) {
            self.link
                .last_identity
                .store(Some(Arc::new(identity.clone())));
        }
    }

    /// The identity to credit a call with when the reply carried none: the
    /// last identity seen on this member, else the endpoint's own label.
    pub fn fallback_identity(&self) -> String {
        self.link
            .last_identity
            .load()
            .as_deref()
            .and_then(identity_text)
            .unwrap_or_else(|| self.endpoint.label().to_string())
    }

    /// True when both share one connection (for tests of the diff).
    pub fn same_connection(&self, other: &Member) -> bool {
        Arc::ptr_eq(&self.link, &other.link)
    }
}

/// An identity header's value as text, when printable and not blank.
pub fn identity_text(value: &HeaderValue) -> Option<String> {
    value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// Decrements the member's in-flight count on drop.
pub struct InFlight<'a> {
    link: &'a Link,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.link.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
