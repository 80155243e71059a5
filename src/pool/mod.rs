//! The pool: one HTTP/2 channel per endpoint, kept in step with the resolver.
//!
//! An update is applied as a diff: unchanged endpoints keep their
//! connection, new ones are dialled, removed ones are evicted. A call holds
//! its [`Member`] by `Arc`, so calls in flight on a removed endpoint finish.

mod member;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

pub use member::{InFlight, Member};

use crate::pick::Picker;
use crate::resolve::Endpoint;

/// How channels are dialled.
#[derive(Debug, Clone)]
pub struct ChannelSettings {
    pub connect_timeout: Duration,
    /// How long a member that failed to connect is skipped by the picker
    /// (when others are available), as gRPC skips a subchannel in
    /// TRANSIENT_FAILURE.
    pub eject_for: Duration,
    /// Dial over TLS (`None`: plaintext HTTP/2).
    pub tls: Option<crate::tls::ClientTls>,
    /// The `:authority` of every call instead of the address dialled.
    pub authority: Option<http::uri::Authority>,
}

impl Default for ChannelSettings {
    fn default() -> Self {
        ChannelSettings {
            connect_timeout: Duration::from_secs(3),
            eject_for: Duration::from_secs(1),
            tls: None,
            authority: None,
        }
    }
}

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

/// The live set of members and the policy that picks among them.
pub struct Pool {
    members: ArcSwap<Vec<Arc<Member>>>,
    picker: Box<dyn Picker>,
    settings: ChannelSettings,
    include_terminating: bool,
    epoch: Instant,
}

impl Pool {
    /// An empty pool; fill it with [`Pool::apply`].
    pub fn new(
        picker: Box<dyn Picker>,
        settings: ChannelSettings,
        include_terminating: bool,
    ) -> Pool {
        Pool {
            members: ArcSwap::from_pointee(Vec::new()),
            picker,
            settings,
            include_terminating,
            epoch: Instant::now(),
        }
    }

    /// `connections` separate HTTP/2 connections to one address, labelled
    /// "connection 1", "connection 2", …: what an ordinary client of a
    /// ClusterIP Service holds.
    pub fn fixed_connections(
        address: &str,
        connections: usize,
        picker: Box<dyn Picker>,
        settings: ChannelSettings,
    ) -> Result<Pool, String> {
        let pool = Pool::new(picker, settings, false);
        let mut members = Vec::with_capacity(connections);
        for i in 1..=connections {
            let endpoint = Endpoint {
                name: Some(format!("connection {i}")),
                ..Endpoint::new(address, "clusterip")
            };
            members.push(Arc::new(Member::dial(endpoint, &pool.settings)?));
        }
        pool.members.store(Arc::new(members));
        Ok(pool)
    }

    /// Applies a complete endpoint set as a diff. Returns what changed;
    /// an endpoint that cannot be dialled is reported as an error string
    /// and left out.
    pub fn apply(&self, endpoints: &[Endpoint]) -> (PoolChange, Vec<String>) {
        let current = self.members.load_full();
        let mut next: Vec<Arc<Member>> = Vec::with_capacity(endpoints.len());
        let mut change = PoolChange::default();
        let mut problems = Vec::new();
        for endpoint in endpoints
            .iter()
            .filter(|e| e.balanced_onto(self.include_terminating))
        {
            if next
                .iter()
                .any(|m| m.endpoint().address == endpoint.address)
            {
                continue;
            }
            match current
                .iter()
                .find(|m| m.endpoint().address == endpoint.address)
            {
                Some(existing) => next.push(existing.with_endpoint(endpoint.clone())),
                None => match Member::dial(endpoint.clone(), &self.settings) {
                    Ok(member) => {
                        change.added.push(endpoint.address.clone());
                        next.push(Arc::new(member));
                    }
                    Err(problem) => problems.push(problem),
                },
            }
        }
        for old in current.iter() {
            if !next
                .iter()
                .any(|m| m.endpoint().address == old.endpoint().address)
            {
                change.removed.push(old.endpoint().address.clone());
            }
        }
        self.members.store(Arc::new(next));
        (change, problems)
    }

    /// The current members, in resolver order.
    pub fn members(&self) -> Arc<Vec<Arc<Member>>> {
        self.members.load_full()
    }

    /// Picks the member for the next call, skipping members that recently
    /// failed to connect while any other is available. `None` when empty.
    pub fn pick(&self) -> Option<Arc<Member>> {
        let members = self.members.load();
        let len = members.len();
        if len == 0 {
            return None;
        }
        let chosen = self.picker.pick(len, &|i| members[i].in_flight());
        let now = self.now_ms();
        let usable = (0..len)
            .map(|offset| (chosen + offset) % len)
            .find(|&i| !members[i].is_ejected(now))
            .unwrap_or(chosen);
        Some(Arc::clone(&members[usable]))
    }

    /// Records that `member` could not be reached, so the picker skips it
    /// for a while.
    pub fn eject(&self, member: &Member) {
        member.eject_until(self.now_ms() + self.settings.eject_for.as_millis() as u64);
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pick::RoundRobin;

    fn pool() -> Pool {
        Pool::new(
            Box::new(RoundRobin::starting_at(0)),
            ChannelSettings::default(),
            false,
        )
    }

    fn endpoints(addresses: &[&str]) -> Vec<Endpoint> {
        addresses
            .iter()
            .map(|a| Endpoint::new(*a, "test"))
            .collect()
    }

    #[tokio::test]
    async fn unchanged_endpoints_keep_their_connection() {
        let pool = pool();
        pool.apply(&endpoints(&["127.0.0.1:1", "127.0.0.2:1"]));
        let before = pool.members();
        let (change, _) = pool.apply(&endpoints(&["127.0.0.2:1", "127.0.0.3:1"]));
        assert_eq!(change.added, vec!["127.0.0.3:1"]);
        assert_eq!(change.removed, vec!["127.0.0.1:1"]);
        let after = pool.members();
        assert!(
            after[0].same_connection(&before[1]),
            "127.0.0.2 was re-dialled"
        );
    }

    #[tokio::test]
    async fn removed_endpoint_gets_no_new_calls() {
        let pool = pool();
        pool.apply(&endpoints(&["127.0.0.1:1", "127.0.0.2:1"]));
        pool.apply(&endpoints(&["127.0.0.2:1"]));
        for _ in 0..10 {
            let member = pool.pick().expect("a member");
            assert_eq!(member.endpoint().address, "127.0.0.2:1");
        }
    }

    #[tokio::test]
    async fn unready_endpoints_are_not_balanced_onto() {
        let pool = pool();
        let mut set = endpoints(&["127.0.0.1:1", "127.0.0.2:1"]);
        set[0].ready = false;
        pool.apply(&set);
        assert_eq!(pool.members().len(), 1);
        assert_eq!(pool.members()[0].endpoint().address, "127.0.0.2:1");
    }

    #[tokio::test]
    async fn ejected_member_is_skipped_while_others_remain() {
        let pool = pool();
        pool.apply(&endpoints(&["127.0.0.1:1", "127.0.0.2:1"]));
        let first = pool.members()[0].clone();
        pool.eject(&first);
        for _ in 0..10 {
            assert_eq!(
                pool.pick().expect("member").endpoint().address,
                "127.0.0.2:1"
            );
        }
    }

    #[tokio::test]
    async fn empty_pool_picks_nothing() {
        assert!(pool().pick().is_none());
    }
}
