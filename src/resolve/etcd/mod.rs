//! The etcd source: every key under a prefix is an endpoint.
//!
//! Services register themselves as `<prefix>/<address>` = `<address>` (or
//! etcd's endpoint JSON) under a lease they keep alive; this source reads the
//! prefix, then watches it, so the endpoint set follows registrations live.
//! The prefix is a directory: `/grpclb/echo` reads `/grpclb/echo/…` and
//! never `/grpclb/echo2/…`.

mod follow;
mod keyset;
mod ttl;

use super::{Resolution, ResolveError, spawn_source};
use crate::etcd::{EtcdOptions, connect};

/// Starts following `prefix` on `endpoints` (empty: `ETCDCTL_ENDPOINTS`).
///
/// Waits for the first read of the prefix; fails (exit 3) when etcd cannot
/// be reached or refuses access.
pub async fn start(
    endpoints: &[String],
    prefix: &str,
    options: &EtcdOptions,
) -> Result<Resolution, ResolveError> {
    let source = follow::Source {
        endpoints: connect::endpoints_or_env(endpoints),
        dir: connect::directory(prefix),
        options: options.clone(),
    };
    spawn_source("etcd", move |tx| source.run(tx)).await
}
