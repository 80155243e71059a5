//! Before a run: ask each pod once who it is, over the pool's own
//! connection to it, so that a pod the run never reaches still appears
//! under its own name (and the connection is up before measuring).

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;

use super::{CallKind, send};
use crate::metadata::CallMetadata;
use crate::pool::Member;
use crate::record::EndpointKey;

/// Longest wait for one endpoint's answer.
const IDENTIFY_TIMEOUT: Duration = Duration::from_secs(2);

/// The key each member is known by: the identity it answered with (which
/// the member also remembers), else its endpoint's own label.
pub async fn identify(
    members: &[Arc<Member>],
    call: &CallKind,
    identity_header: &str,
    metadata: &CallMetadata,
) -> Vec<EndpointKey> {
    let asks = members.iter().map(|member| async move {
        let outcome = send(
            member.channel(),
            call,
            IDENTIFY_TIMEOUT,
            identity_header,
            metadata,
        )
        .await;
        if let Some(identity) = &outcome.identity {
            member.saw_identity(identity);
        }
        EndpointKey {
            name: member.fallback_identity(),
            address: member.endpoint().address.clone(),
        }
    });
    join_all(asks).await
}
