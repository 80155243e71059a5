//! One pool member: an endpoint, its HTTP/2 connection and the state of
//! that connection.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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

/// A ready connection's request handle and its generation.
struct Connected {
    sender: SendRequest<Bytes>,
    generation: u64,
}

/// One connection a member made: behind a Service address each new
/// connection may land on another pod, so clusterip runs show them in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// 1 for the first connection, then 2, …
    pub number: u64,
    /// When it became ready.
    pub at: Instant,
    /// Who answered on it (the identity header), once a reply said.
    pub identity: Option<String>,
}

/// One connection as the link keeps it (the identity as it came).
struct Dialled {
    number: u64,
    at: Instant,
    identity: Option<HeaderValue>,
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
    sender: ArcSwapOption<Connected>,
    in_flight: AtomicUsize,
    last_identity: ArcSwapOption<HeaderValue>,
    /// Every connection made so far, in order, with who answered on it.
    generations: Mutex<Vec<Dialled>>,
    /// The newest generation whose identity is known (0: none).
    identified: AtomicU64,
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
            generations: Mutex::new(Vec::new()),
            identified: AtomicU64::new(0),
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
        let generation = {
            let mut generations = self.generations.lock().unwrap_or_else(|e| e.into_inner());
            let number = generations.len() as u64 + 1;
            generations.push(Dialled {
                number,
                at: Instant::now(),
                identity: None,
            });
            number
        };
        self.sender
            .store(Some(Arc::new(Connected { sender, generation })));
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

    /// A handle to send a call on, while the member is ready, and the
    /// generation of the connection it sends on.
    pub fn sender(&self) -> Option<(SendRequest<Bytes>, u64)> {
        self.link
            .sender
            .load()
            .as_deref()
            .map(|c| (c.sender.clone(), c.generation))
    }

    /// Every connection made so far, oldest first.
    pub fn generations(&self) -> Vec<Generation> {
        let generations = self
            .link
            .generations
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        generations
            .iter()
            .map(|g| Generation {
                number: g.number,
                at: g.at,
                identity: g.identity.as_ref().and_then(identity_text),
            })
            .collect()
    }

    /// Who answered on connection `generation`, once a reply said: a
    /// failed call that carried no identity went to that pod.
    pub fn identity_on(&self, generation: u64) -> Option<HeaderValue> {
        let generations = self
            .link
            .generations
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        generations
            .iter()
            .find(|g| g.number == generation)
            .and_then(|g| g.identity.clone())
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

    /// Remembers the identity this member answered with on connection
    /// `generation` (the first answer of each connection names it).
    pub fn saw_identity(&self, identity: &HeaderValue, generation: u64) {
        let last = self.link.last_identity.load();
        if last.as_deref() != Some(identity) {
            self.link
                .last_identity
                .store(Some(Arc::new(identity.clone())));
        }
        if generation > self.link.identified.load(Ordering::Relaxed) {
            self.link
                .identified
                .fetch_max(generation, Ordering::Relaxed);
            let mut generations = self
                .link
                .generations
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(g) = generations.iter_mut().find(|g| g.number == generation)
                && g.identity.is_none()
            {
                g.identity = Some(identity.clone());
            }
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
