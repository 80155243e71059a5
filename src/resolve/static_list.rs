//! A fixed list of addresses (`ipv4:`, `ipv6:`, `static:///`, `host:port`).

use super::{Endpoint, Resolution, ResolveError, spawn_source};

/// Resolves to `addresses` once; the set never changes.
pub async fn start(addresses: Vec<String>) -> Result<Resolution, ResolveError> {
    spawn_source("static", move |tx| async move {
        let mut endpoints: Vec<Endpoint> = Vec::new();
        for address in addresses {
            // A list naming an address twice still has one endpoint there.
            if !endpoints.iter().any(|e| e.address == address) {
                endpoints.push(Endpoint::new(address, "static"));
            }
        }
        tx.reset(endpoints).await;
        Ok(())
    })
    .await
}
