//! One pool member: an endpoint and the HTTP/2 channel to it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tonic::transport::Channel;

use super::ChannelSettings;
use crate::resolve::Endpoint;

/// An endpoint with its channel, its in-flight count and the identity it
/// last answered with.
pub struct Member {
    endpoint: Endpoint,
    channel: Channel,
    shared: Arc<Shared>,
}

/// State that survives a metadata-only update of the endpoint.
#[derive(Default)]
struct Shared {
    in_flight: AtomicUsize,
    ejected_until_ms: AtomicU64,
    last_identity: Mutex<Option<String>>,
}

impl Member {
    /// Creates the member and its (lazily connecting) channel.
    pub fn dial(endpoint: Endpoint, settings: &ChannelSettings) -> Result<Member, String> {
        let uri = format!("http://{}", endpoint.address);
        let mut dial = tonic::transport::Endpoint::from_shared(uri)
            .map_err(|e| format!("cannot dial {}: {e}", endpoint.address))?
            .connect_timeout(settings.connect_timeout)
            .tcp_nodelay(true);
        // Calls name `--authority` (and `https` over TLS) instead of the address.
        let scheme = if settings.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let authority = settings
            .authority
            .as_ref()
            .map_or(endpoint.address.as_str(), |a| a.as_str());
        if settings.tls.is_some() || settings.authority.is_some() {
            let origin = format!("{scheme}://{authority}")
                .parse()
                .map_err(|e| format!("cannot dial {}: {e}", endpoint.address))?;
            dial = dial.origin(origin);
        }
        let channel = match &settings.tls {
            None => dial.connect_lazy(),
            Some(tls) => dial.connect_with_connector_lazy(crate::tls::connector(
                endpoint.address.clone(),
                tls.clone(),
                settings.connect_timeout,
            )),
        };
        Ok(Member {
            endpoint,
            channel,
            shared: Arc::new(Shared::default()),
        })
    }

    /// The same connection and counters, with updated endpoint metadata.
    pub fn with_endpoint(&self, endpoint: Endpoint) -> Arc<Member> {
        Arc::new(Member {
            endpoint,
            channel: self.channel.clone(),
            shared: Arc::clone(&self.shared),
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// A handle to the channel (cheap: channels are shared handles).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// Calls in flight on this member now.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Relaxed)
    }

    /// Counts a call as in flight until the guard drops.
    pub fn start_call(&self) -> InFlight {
        self.shared.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Remembers the identity this member answered with.
    pub fn saw_identity(&self, identity: &str) {
        if let Ok(mut last) = self.shared.last_identity.lock()
            && last.as_deref() != Some(identity)
        {
            *last = Some(identity.to_string());
        }
    }

    /// The identity to credit a call with when the reply carried none: the
    /// last identity seen on this member, else the endpoint's own label.
    pub fn fallback_identity(&self) -> String {
        self.shared
            .last_identity
            .lock()
            .ok()
            .and_then(|last| last.clone())
            .unwrap_or_else(|| self.endpoint.label().to_string())
    }

    pub(super) fn is_ejected(&self, now_ms: u64) -> bool {
        self.shared.ejected_until_ms.load(Ordering::Relaxed) > now_ms
    }

    pub(super) fn eject_until(&self, until_ms: u64) {
        self.shared
            .ejected_until_ms
            .store(until_ms, Ordering::Relaxed);
    }

    /// True when both share one connection (for tests of the diff).
    pub fn same_connection(&self, other: &Member) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

/// Decrements the member's in-flight count on drop.
pub struct InFlight {
    shared: Arc<Shared>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.shared.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
