//! Before a run: ask each pod once who it is, over the pool's own
//! connection to it, so that a pod the run never reaches still appears
//! under its own name (and the connections are up before measuring).

use std::time::Duration;

use futures::future::join_all;
use http::HeaderName;
use tokio::time::Instant;

use super::{CallKind, Prepared, exchange};
use crate::pool::{Pool, State};
use crate::record::EndpointKey;

/// Longest wait for the pool's connections and for one endpoint's answer.
const IDENTIFY_TIMEOUT: Duration = Duration::from_secs(2);

/// The key each member is known by: the identity it answered with (which
/// the member also remembers), else its endpoint's own label.
pub async fn identify(pool: &Pool, call: &CallKind, identity_header: &str) -> Vec<EndpointKey> {
    let members = pool.members();
    let prepared = HeaderName::from_bytes(identity_header.as_bytes())
        .ok()
        .and_then(|header| Prepared::new(&call.request(), IDENTIFY_TIMEOUT, header).ok());
    if let Some(prepared) = &prepared {
        let deadline = Instant::now() + IDENTIFY_TIMEOUT;
        pool.settled(deadline).await;
        let asks = members
            .iter()
            .filter(|m| m.state() == State::Ready)
            .enumerate()
            // Request messages in turn (`--data-lines`), as the run sends them.
            .map(|(message, member)| async move {
                if let Ok(reply) =
                    tokio::time::timeout_at(deadline, exchange(member, prepared, message)).await
                    && let Some(identity) = &reply.identity
                {
                    member.saw_identity(identity);
                }
            });
        join_all(asks).await;
    }
    members
        .iter()
        .map(|member| EndpointKey {
            name: member.fallback_identity(),
            address: member.endpoint().address.clone(),
        })
        .collect()
}
