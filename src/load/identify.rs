//! Before a run: ask each endpoint once who it is, so that a pod that the
//! run never reaches still appears under its own name.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::join_all;

use super::{CallKind, send};
use crate::pool::{ChannelSettings, Member};
use crate::resolve::Endpoint;

/// Longest wait for one endpoint's answer.
const IDENTIFY_TIMEOUT: Duration = Duration::from_secs(2);

/// Address → identity, for the endpoints that answered with the identity header.
pub async fn identify(
    endpoints: &[Endpoint],
    call: &CallKind,
    identity_header: &str,
    settings: &ChannelSettings,
) -> HashMap<String, String> {
    let asks = endpoints.iter().map(|endpoint| async move {
        let member = Member::dial(endpoint.clone(), settings).ok()?;
        let outcome = send(member.channel(), call, IDENTIFY_TIMEOUT, identity_header).await;
        outcome
            .identity
            .map(|identity| (endpoint.address.clone(), identity))
    });
    join_all(asks).await.into_iter().flatten().collect()
}
