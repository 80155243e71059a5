//! The remaining lifetime of each endpoint's lease, shown beside it.

use std::collections::HashMap;
use std::time::Duration;

use etcd_client::Client;
use futures::StreamExt;

use crate::resolve::Endpoint;

/// The longest all lease TTL look-ups for one set may take together.
const TTL_LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// How many lease look-ups run at once.
const TTL_LOOKUP_CONCURRENCY: usize = 8;

/// Looks up the remaining TTL of each endpoint's lease. Best effort: a lease
/// that cannot be looked up in time keeps an unknown TTL.
pub(super) async fn fill_ttls(client: &Client, endpoints: &mut [Endpoint]) {
    let mut leases: Vec<i64> = endpoints.iter().filter_map(|e| e.lease).collect();
    leases.sort_unstable();
    leases.dedup();
    if leases.is_empty() {
        return;
    }
    let lookups = futures::stream::iter(leases)
        .map(|id| {
            let mut client = client.clone();
            async move {
                (
                    id,
                    client
                        .lease_time_to_live(id, None)
                        .await
                        .ok()
                        .map(|r| r.ttl()),
                )
            }
        })
        .buffer_unordered(TTL_LOOKUP_CONCURRENCY)
        .filter_map(|(id, ttl)| async move { ttl.map(|ttl| (id, ttl)) })
        .collect::<HashMap<i64, i64>>();
    let Ok(ttls) = tokio::time::timeout(TTL_LOOKUP_TIMEOUT, lookups).await else {
        return;
    };
    for endpoint in endpoints {
        if let Some(lease) = endpoint.lease {
            // etcd answers -1 for a lease that has just expired.
            endpoint.ttl_s = ttls.get(&lease).copied().filter(|ttl| *ttl >= 0);
        }
    }
}
