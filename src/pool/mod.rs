//! The pool: one HTTP/2 connection per endpoint, kept in step with the
//! resolver, and the ready members a policy picks among.
//!
//! An update is applied as a diff: unchanged endpoints keep their
//! connection, new ones are dialled, removed ones are shut down (calls in
//! flight on them finish). Each member's connection task moves it through
//! gRPC's states; whenever a member becomes ready or stops being ready the
//! ready list is rebuilt, as grpc-go rebuilds its picker over READY
//! subchannels, so a policy only ever sees usable members.

mod backoff;
mod connection;
mod engine;
mod member;
mod state;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::sync::Notify;
use tokio::time::Instant;

pub use backoff::{Backoff, BackoffSettings};
pub use engine::{Engine, EngineError};
pub use member::{Generation, InFlight, Member, identity_text};
pub use state::{Reason, State, Timeline, Transition};

use crate::pick::Picker;
use crate::resolve::Endpoint;
use crate::tls::ClientTls;
use member::Link;

/// What [`Pool::apply`] changed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PoolChange {
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

impl PoolChange {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

/// The number of a span over which the ready set did not change: calls
/// are counted per epoch so that each member's fair share can follow the
/// time it could be picked.
pub type Epoch = u32;

/// When an epoch began and which members (by slot) could be picked in it.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochStart {
    pub at: std::time::Instant,
    pub slots: Vec<usize>,
}

/// The members that may be picked now, and the epoch they make.
struct Ready {
    epoch: Epoch,
    members: Vec<Arc<Member>>,
}

/// Every member and the ready ones; shared with the connection tasks,
/// which rebuild the ready list on each change.
pub(crate) struct Membership {
    all: ArcSwap<Vec<Arc<Member>>>,
    ready: ArcSwap<Ready>,
    /// Every epoch so far, by number; serializes rebuilds, so the last one
    /// stored saw every state change.
    epochs: Mutex<Vec<EpochStart>>,
    /// Woken whenever the ready list is rebuilt.
    changed: Notify,
}

impl Membership {
    fn new() -> Membership {
        Membership {
            all: ArcSwap::from_pointee(Vec::new()),
            ready: ArcSwap::from_pointee(Ready {
                epoch: 0,
                members: Vec::new(),
            }),
            epochs: Mutex::new(vec![EpochStart {
                at: std::time::Instant::now(),
                slots: Vec::new(),
            }]),
            changed: Notify::new(),
        }
    }

    fn rebuild_ready(&self) {
        let Ok(mut epochs) = self.epochs.lock() else {
            return;
        };
        let members: Vec<Arc<Member>> = self
            .all
            .load()
            .iter()
            .filter(|m| m.state() == State::Ready)
            .cloned()
            .collect();
        let slots: Vec<usize> = members.iter().map(|m| m.slot()).collect();
        let same = epochs.last().is_some_and(|e| e.slots == slots);
        if !same {
            epochs.push(EpochStart {
                at: std::time::Instant::now(),
                slots,
            });
        }
        let epoch = (epochs.len() - 1) as Epoch;
        self.ready.store(Arc::new(Ready { epoch, members }));
        self.changed.notify_waiters();
    }
}

/// The live set of members and the policy that picks among the ready ones.
pub struct Pool {
    membership: Arc<Membership>,
    picker: Box<dyn Picker>,
    backoff: BackoffSettings,
    /// Dial over TLS (`None`: plaintext HTTP/2).
    tls: Option<ClientTls>,
    include_terminating: bool,
    engine: Arc<Engine>,
    /// Every member ever created, by slot (the latest version of each):
    /// a run names its rows after it, including members removed mid-run.
    by_slot: Mutex<Vec<Arc<Member>>>,
}

impl Pool {
    /// An empty pool whose connections run on `engine` (over TLS when
    /// `tls` is given); fill it with [`Pool::apply`].
    pub fn new(
        picker: Box<dyn Picker>,
        backoff: BackoffSettings,
        tls: Option<ClientTls>,
        include_terminating: bool,
        engine: Arc<Engine>,
    ) -> Pool {
        Pool {
            membership: Arc::new(Membership::new()),
            picker,
            backoff,
            tls,
            include_terminating,
            engine,
            by_slot: Mutex::new(Vec::new()),
        }
    }

    /// `connections` separate HTTP/2 connections to one address, labelled
    /// "connection 1", "connection 2", …: what an ordinary client of a
    /// ClusterIP Service holds.
    pub fn fixed_connections(
        address: &str,
        connections: usize,
        picker: Box<dyn Picker>,
        backoff: BackoffSettings,
        tls: Option<ClientTls>,
        engine: Arc<Engine>,
    ) -> Result<Pool, String> {
        let pool = Pool::new(picker, backoff, tls, false, engine);
        let mut members = Vec::with_capacity(connections);
        for i in 1..=connections {
            let endpoint = Endpoint {
                name: Some(format!("connection {i}")),
                ..Endpoint::new(address, "clusterip")
            };
            members.push(pool.dial(endpoint)?);
        }
        pool.membership.all.store(Arc::new(members));
        pool.membership.rebuild_ready();
        Ok(pool)
    }

    /// The worker threads the pool's connections run on.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Creates a member and starts its connection task.
    fn dial(&self, endpoint: Endpoint) -> Result<Arc<Member>, String> {
        let mut by_slot = self.by_slot.lock().unwrap_or_else(|e| e.into_inner());
        let slot = by_slot.len();
        let link = Arc::new(Link::new(
            slot,
            &endpoint.address,
            Arc::downgrade(&self.membership),
        )?);
        self.engine.spawn(
            slot,
            connection::maintain(Arc::clone(&link), self.backoff, self.tls.clone()),
        );
        let member = Arc::new(Member::new(endpoint, link));
        by_slot.push(Arc::clone(&member));
        Ok(member)
    }

    /// The member with this slot (its latest version), removed or not.
    pub fn member(&self, slot: usize) -> Option<Arc<Member>> {
        let by_slot = self.by_slot.lock().unwrap_or_else(|e| e.into_inner());
        by_slot.get(slot).cloned()
    }

    /// Every member the pool ever had, removed ones included, by slot.
    pub fn every_member(&self) -> Vec<Arc<Member>> {
        self.by_slot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Applies a complete endpoint set as a diff. Returns what changed;
    /// an endpoint that cannot be dialled is reported as an error string
    /// and left out.
    pub fn apply(&self, endpoints: &[Endpoint]) -> (PoolChange, Vec<String>) {
        let current = self.membership.all.load_full();
        let by_address: HashMap<&str, &Arc<Member>> = current
            .iter()
            .map(|m| (m.endpoint().address.as_str(), m))
            .collect();
        let mut next: Vec<Arc<Member>> = Vec::with_capacity(endpoints.len());
        let mut kept: HashMap<&str, ()> = HashMap::with_capacity(endpoints.len());
        let mut change = PoolChange::default();
        let mut problems = Vec::new();
        for endpoint in endpoints
            .iter()
            .filter(|e| e.balanced_onto(self.include_terminating))
        {
            if kept.insert(endpoint.address.as_str(), ()).is_some() {
                continue;
            }
            match by_address.get(endpoint.address.as_str()) {
                Some(existing) => {
                    let updated = existing.with_endpoint(endpoint.clone());
                    let mut by_slot = self.by_slot.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(entry) = by_slot.get_mut(updated.slot()) {
                        *entry = Arc::clone(&updated);
                    }
                    next.push(updated);
                }
                None => match self.dial(endpoint.clone()) {
                    Ok(member) => {
                        change.added.push(endpoint.address.clone());
                        next.push(member);
                    }
                    Err(problem) => problems.push(problem),
                },
            }
        }
        let removed: Vec<&Arc<Member>> = current
            .iter()
            .filter(|m| !kept.contains_key(m.endpoint().address.as_str()))
            .collect();
        self.membership.all.store(Arc::new(next));
        for old in removed {
            change.removed.push(old.endpoint().address.clone());
            shut_down(old);
        }
        self.membership.rebuild_ready();
        (change, problems)
    }

    /// The current members, in resolver order.
    pub fn members(&self) -> Arc<Vec<Arc<Member>>> {
        self.membership.all.load_full()
    }

    /// The members that may be picked now, in resolver order.
    pub fn ready_members(&self) -> Vec<Arc<Member>> {
        self.membership.ready.load().members.clone()
    }

    /// Every epoch of the pool so far, by number.
    pub fn epochs(&self) -> Vec<EpochStart> {
        self.membership
            .epochs
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default()
    }

    /// Picks the member for the next call among the ready ones, with the
    /// epoch it was picked in; `None` when none is ready.
    pub fn pick(&self) -> Option<(Arc<Member>, Epoch)> {
        let ready = self.membership.ready.load();
        if ready.members.is_empty() {
            return None;
        }
        let members = &ready.members;
        let chosen = self.picker.pick(members.len(), &|i| members[i].in_flight());
        members.get(chosen).map(|m| (Arc::clone(m), ready.epoch))
    }

    /// Picks a ready member, waiting for one to become ready until
    /// `deadline` (then `None`), without spinning.
    pub async fn pick_or_wait(&self, deadline: Instant) -> Option<(Arc<Member>, Epoch)> {
        loop {
            let changed = self.membership.changed.notified();
            tokio::pin!(changed);
            // Register before looking, so a rebuild in between is not missed.
            changed.as_mut().enable();
            if let Some(member) = self.pick() {
                return Some(member);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return None;
            }
        }
    }

    /// Waits until `member` is no longer among the ready ones, or until
    /// `deadline`.
    pub async fn until_unready(&self, member: &Member, deadline: Instant) {
        loop {
            let changed = self.membership.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let ready = self.membership.ready.load();
            if !ready.members.iter().any(|m| m.slot() == member.slot()) {
                return;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return;
            }
        }
    }

    /// Waits until every member has left `Connecting` at least once (ready
    /// or failed), or until `deadline`.
    pub async fn settled(&self, deadline: Instant) {
        loop {
            let changed = self.membership.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let members = self.members();
            if members.iter().all(|m| m.timeline().transitions().len() > 1) {
                return;
            }
            // Failures do not rebuild the ready list: look again soon.
            let nap = Instant::now() + std::time::Duration::from_millis(20);
            if tokio::time::timeout_at(deadline.min(nap), changed)
                .await
                .is_err()
                && Instant::now() >= deadline
            {
                return;
            }
        }
    }
}

/// Marks a member removed and stops its connection task.
fn shut_down(member: &Member) {
    member
        .link()
        .transition(State::Shutdown, Some(Reason::Removed));
    // A stored permit: the task sees it even if it is not waiting yet.
    member.link().stop.notify_one();
}

impl Drop for Pool {
    fn drop(&mut self) {
        for member in self.membership.all.load().iter() {
            shut_down(member);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pick::RoundRobin;
    use std::time::Duration;

    fn pool() -> Pool {
        Pool::new(
            Box::new(RoundRobin::starting_at(0)),
            BackoffSettings::default(),
            None,
            false,
            Arc::new(Engine::start(1).expect("engine")),
        )
    }

    fn endpoints(addresses: &[String]) -> Vec<Endpoint> {
        addresses
            .iter()
            .map(|a| Endpoint::new(a.clone(), "test"))
            .collect()
    }

    /// Addresses where nothing listens (connection refused).
    fn dead(n: u8) -> String {
        let listener = std::net::TcpListener::bind(format!("127.0.9.{n}:0")).expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        drop(listener);
        address
    }

    /// In-process `grpclb serve` backends on 127.0.8.x.
    async fn live(n: usize) -> Vec<String> {
        let pods = crate::demo::start_pods(n).await.expect("pods");
        let addresses = pods.addresses.iter().map(|a| a.to_string()).collect();
        std::mem::forget(pods);
        addresses
    }

    #[tokio::test]
    async fn unchanged_endpoints_keep_their_connection() {
        let pool = pool();
        let (a, b, c) = (dead(1), dead(2), dead(3));
        pool.apply(&endpoints(&[a.clone(), b.clone()]));
        let before = pool.members();
        let (change, _) = pool.apply(&endpoints(&[b.clone(), c.clone()]));
        assert_eq!(change.added, vec![c]);
        assert_eq!(change.removed, vec![a]);
        let after = pool.members();
        assert!(after[0].same_connection(&before[1]), "{b} was re-dialled");
        assert_eq!(before[0].state(), State::Shutdown);
    }

    #[tokio::test]
    async fn unready_endpoints_are_not_balanced_onto() {
        let pool = pool();
        let mut set = endpoints(&[dead(4), dead(5)]);
        set[0].ready = false;
        pool.apply(&set);
        assert_eq!(pool.members().len(), 1);
        assert_eq!(pool.members()[0].endpoint().address, set[1].address);
    }

    #[tokio::test]
    async fn refused_member_is_in_transient_failure_with_the_reason() {
        let pool = pool();
        pool.apply(&endpoints(&[dead(6)]));
        pool.settled(Instant::now() + Duration::from_secs(5)).await;
        let member = &pool.members()[0];
        assert_eq!(member.state(), State::TransientFailure);
        let timeline = member.timeline();
        let last = timeline.transitions().last().expect("a transition");
        assert_eq!(last.reason, Some(Reason::ConnectionRefused));
        assert!(pool.pick().is_none());
    }

    #[tokio::test]
    async fn round_robin_stays_exact_over_the_ready_members() {
        let pool = pool();
        let mut addresses = live(3).await;
        addresses.insert(1, dead(7));
        pool.apply(&endpoints(&addresses));
        pool.settled(Instant::now() + Duration::from_secs(5)).await;
        assert_eq!(pool.ready_members().len(), 3);
        let mut counts: HashMap<String, usize> = HashMap::new();
        for _ in 0..300 {
            let (member, _) = pool.pick().expect("a ready member");
            *counts.entry(member.endpoint().address.clone()).or_default() += 1;
        }
        assert_eq!(counts.len(), 3, "{counts:?}");
        assert!(counts.values().all(|&n| n == 100), "{counts:?}");
        assert!(!counts.contains_key(&addresses[1]));
    }

    #[tokio::test]
    async fn a_call_waits_for_a_member_instead_of_failing() {
        let pool = pool();
        let started = Instant::now();
        let none = pool
            .pick_or_wait(started + Duration::from_millis(300))
            .await;
        assert!(none.is_none());
        assert!(started.elapsed() >= Duration::from_millis(300));
        let addresses = live(1).await;
        pool.apply(&endpoints(&addresses));
        let member = pool
            .pick_or_wait(Instant::now() + Duration::from_secs(5))
            .await;
        assert!(member.is_some());
    }

    #[tokio::test]
    async fn removed_endpoint_gets_no_new_calls() {
        let pool = pool();
        let addresses = live(2).await;
        pool.apply(&endpoints(&addresses));
        pool.settled(Instant::now() + Duration::from_secs(5)).await;
        pool.apply(&endpoints(&addresses[1..]));
        for _ in 0..10 {
            let (member, _) = pool.pick().expect("a member");
            assert_eq!(member.endpoint().address, addresses[1]);
        }
    }

    #[tokio::test]
    async fn empty_pool_picks_nothing() {
        assert!(pool().pick().is_none());
    }
}
