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
/// the member also remembers), else its endpoint's own label; and, for each
/// member whose TLS handshake failed, `address: reason` (such a member is
/// skipped by the run, so its row alone would not say why).
pub async fn identify(
    members: &[Arc<Member>],
    call: &CallKind,
    identity_header: &str,
    metadata: &CallMetadata,
) -> (Vec<EndpointKey>, Vec<String>) {
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
        let address = member.endpoint().address.clone();
        let tls_failure = outcome
            .message
            .filter(|m| m.starts_with("TLS: "))
            .map(|m| format!("{address}: {m}"));
        let key = EndpointKey {
            name: member.fallback_identity(),
            address,
        };
        (key, tls_failure)
    });
    let answers = join_all(asks).await;
    let failures = answers.iter().filter_map(|(_, f)| f.clone()).collect();
    (answers.into_iter().map(|(key, _)| key).collect(), failures)
}
