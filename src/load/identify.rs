//! Before a run: ask each pod once who it is, over the pool's own
//! connection to it, so that a pod the run never reaches still appears
//! under its own name (and the connections are up before measuring).

use std::time::Duration;

use futures::future::join_all;
use tokio::time::Instant;

use super::{Prepared, exchange};
use crate::pool::{Pool, Reason, State};
use crate::record::EndpointKey;

/// Longest wait for the pool's connections and for one endpoint's answer.
const IDENTIFY_TIMEOUT: Duration = Duration::from_secs(2);

/// The key each member is known by: the identity it answered with (which
/// the member also remembers), else its endpoint's own label; and, for each
/// member whose TLS handshake failed, `address: reason` (such a member is
/// never picked by the run, so its row alone would not say why).
/// `call` is the run's call (metadata, authority and scheme included).
pub async fn identify(pool: &Pool, call: &Prepared) -> (Vec<EndpointKey>, Vec<String>) {
    let members = pool.members();
    let prepared = call.with_timeout(IDENTIFY_TIMEOUT);
    let deadline = Instant::now() + IDENTIFY_TIMEOUT;
    pool.settled(deadline).await;
    let asks = members
        .iter()
        .filter(|m| m.state() == State::Ready)
        .enumerate()
        // Request messages in turn (`--data-lines`), as the run sends them.
        .map(|(message, member)| {
            let prepared = &prepared;
            // The member remembers who answered (see `exchange`).
            async move {
                let _ =
                    tokio::time::timeout_at(deadline, exchange(member, prepared, message)).await;
            }
        });
    join_all(asks).await;
    let tls_failures = members
        .iter()
        .filter(|member| member.state() != State::Ready)
        .filter_map(|member| {
            // The latest failure: after a backoff the member is connecting again.
            let timeline = member.timeline();
            timeline
                .transitions()
                .iter()
                .rev()
                .find_map(|t| match &t.reason {
                    Some(Reason::Tls(words)) => {
                        Some(format!("{}: {words}", member.endpoint().address))
                    }
                    _ => None,
                })
        })
        .collect();
    let keys = members
        .iter()
        .map(|member| EndpointKey {
            name: member.fallback_identity(),
            address: member.endpoint().address.clone(),
        })
        .collect();
    (keys, tls_failures)
}
