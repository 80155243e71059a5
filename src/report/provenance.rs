//! Where a report comes from: who measured, when, and how calls were
//! balanced. These are what `grpclb merge` needs to put reports from many
//! clients side by side and rebuild the fair bound of their sum.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::pick::Policy;
use crate::verdict::Balancing;

/// The form of the JSON document; `grpclb merge` reads only this one.
/// Raise it when a field changes name or meaning (new fields do not).
pub const SCHEMA: u32 = 1;

/// Who measured a run: the client's pod, node and zone from the downward
/// API (`POD_NAME`, `NODE_NAME`, `POD_ZONE`), else the hostname.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientIdentity {
    /// `POD_NAME`, else the hostname.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

impl ClientIdentity {
    /// This process's identity, read from the environment.
    pub fn from_env() -> ClientIdentity {
        let env = |key: &str| {
            std::env::var(key)
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        ClientIdentity {
            name: env("POD_NAME")
                .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned()),
            node: env("NODE_NAME"),
            zone: env("POD_ZONE"),
        }
    }
}

/// How a run balanced its calls ([`Balancing`] as JSON):
/// `{"per": "call", "policy": "round_robin", "concurrency": 8}` or
/// `{"per": "connection", "connections": 4, "concurrency": 8}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "per", rename_all = "snake_case")]
pub enum BalancingReport {
    /// The client picked an endpoint per call with `policy`.
    Call { policy: String, concurrency: usize },
    /// The network picked an endpoint per connection (ClusterIP).
    Connection {
        connections: usize,
        concurrency: usize,
    },
}

impl From<Balancing> for BalancingReport {
    fn from(balancing: Balancing) -> Self {
        match balancing {
            Balancing::PerCall {
                policy,
                concurrency,
            } => BalancingReport::Call {
                policy: policy.name().to_string(),
                concurrency,
            },
            Balancing::PerConnection {
                connections,
                concurrency,
            } => BalancingReport::Connection {
                connections,
                concurrency,
            },
        }
    }
}

impl BalancingReport {
    /// The balancing this describes; errors name an unknown policy.
    pub fn balancing(&self) -> Result<Balancing, String> {
        Ok(match self {
            BalancingReport::Call {
                policy,
                concurrency,
            } => Balancing::PerCall {
                policy: policy.parse::<Policy>()?,
                concurrency: *concurrency,
            },
            BalancingReport::Connection {
                connections,
                concurrency,
            } => Balancing::PerConnection {
                connections: *connections,
                concurrency: *concurrency,
            },
        })
    }
}

/// A wall-clock time as RFC 3339 in UTC, to the microsecond.
pub fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_micros(at).to_string()
}

/// Reads what [`rfc3339`] wrote (any RFC 3339 time in UTC, `Z`).
pub fn parse_rfc3339(text: &str) -> Result<SystemTime, String> {
    humantime::parse_rfc3339(text.trim()).map_err(|e| {
        format!("{text:?} is not an RFC 3339 time in UTC ({e}); e.g. 2026-12-01T10:00:00Z")
    })
}

/// `at` plus `seconds` (clamped to what a time can hold).
pub fn after(at: SystemTime, seconds: f64) -> SystemTime {
    let seconds = if seconds.is_finite() {
        seconds.clamp(0.0, 1e9)
    } else {
        0.0
    };
    at + Duration::from_secs_f64(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balancing_survives_the_json_round_trip() {
        for balancing in [
            Balancing::PerCall {
                policy: Policy::LeastRequest,
                concurrency: 16,
            },
            Balancing::PerConnection {
                connections: 4,
                concurrency: 8,
            },
        ] {
            let json = serde_json::to_string(&BalancingReport::from(balancing)).unwrap();
            let back: BalancingReport = serde_json::from_str(&json).unwrap();
            assert_eq!(back.balancing(), Ok(balancing), "{json}");
        }
    }

    #[test]
    fn times_read_back_to_the_microsecond() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_micros(1_796_000_000_123_456);
        assert_eq!(parse_rfc3339(&rfc3339(at)), Ok(at));
        assert!(parse_rfc3339("yesterday").is_err());
    }
}
