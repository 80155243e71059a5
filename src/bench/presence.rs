//! When each endpoint was in the pool during a run: the pool's epochs with
//! the calls each carried (what the time-aware verdict judges on), when
//! each endpoint joined and left and how fast calls followed (discovery and
//! drain lag), and, behind a Service address, which pod each connection
//! landed on.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::states::seconds_from;
use crate::pool::{Member, Pool, Reason, State};
use crate::record::{EndpointKey, Epoch, Recorder};
use crate::report::{ConnectionGenerations, GenerationReport, LagReport, LagSummary, Report};

/// The pool's members now, as the rows a run expects: named by who they
/// last answered as, else by the resolver's label.
pub(super) fn in_pool(pool: &Pool) -> Vec<EndpointKey> {
    pool.members()
        .iter()
        .map(|m| EndpointKey {
            name: m.fallback_identity(),
            address: m.endpoint().address.clone(),
        })
        .collect()
}

/// Calls a clusterip run could only credit to the Service address (the pod
/// that answered joined after the pods were identified) moved to that
/// pod's row, found by name among `newcomers`.
pub(super) fn placed(mut record: Recorder, service: &str, newcomers: &[EndpointKey]) -> Recorder {
    let keys: Vec<EndpointKey> = record.by_endpoint.keys().cloned().collect();
    for key in keys.into_iter().filter(|k| k.address == service) {
        let Some(pod) = newcomers.iter().find(|n| n.name == key.name) else {
            continue;
        };
        if let Some(tally) = record.by_endpoint.remove(&key) {
            record
                .by_endpoint
                .entry(pod.clone())
                .or_default()
                .merge(&tally);
        }
    }
    record
}

/// The pool's epochs that overlap the window `start..end`, with the calls
/// recorded in each (`epoch_calls`, by epoch number).
pub(super) fn epochs(pool: &Pool, epoch_calls: &[u64], start: Instant, end: Instant) -> Vec<Epoch> {
    let starts = pool.epochs();
    let address = |slot: usize| pool.member(slot).map(|m| m.endpoint().address.clone());
    starts
        .iter()
        .enumerate()
        .filter_map(|(i, epoch)| {
            let until = starts.get(i + 1).map_or(end, |next| next.at);
            let calls = epoch_calls.get(i).copied().unwrap_or(0);
            if calls == 0 && (until < start || epoch.at > end) {
                return None;
            }
            Some(Epoch {
                from_s: seconds_from(start, epoch.at),
                to_s: seconds_from(start, until.min(end)),
                calls,
                ready: epoch.slots.iter().filter_map(|&s| address(s)).collect(),
            })
        })
        .collect()
}

/// Fills in when each endpoint joined and left the pool, its discovery and
/// drain lag, and the run's lag summary.
pub(super) fn with_presence(report: &mut Report, pool: &Pool, start: Instant) {
    // The newest member of each address: a pod re-added is a new member.
    let mut by_address: HashMap<String, Arc<Member>> = HashMap::new();
    for member in pool.every_member() {
        by_address.insert(member.endpoint().address.clone(), member);
    }
    let elapsed = report.elapsed_s;
    for endpoint in &mut report.endpoints {
        let Some(member) = by_address.get(&endpoint.address) else {
            continue;
        };
        let timeline = member.timeline();
        let transitions = timeline.transitions();
        let joined = transitions.first().map(|t| seconds_from(start, t.at));
        let left = transitions
            .iter()
            .find(|t| t.state == State::Shutdown && t.reason == Some(Reason::Removed))
            .map(|t| seconds_from(start, t.at));
        endpoint.joined_s = joined;
        endpoint.left_s = left;
        endpoint.discovery_lag_s = joined
            .filter(|j| *j >= 0.0)
            .zip(endpoint.first_call_s)
            .map(|(j, first)| round3((first - j).max(0.0)));
        endpoint.drain_lag_s = left
            .filter(|l| (0.0..=elapsed).contains(l))
            .map(|l| round3(endpoint.last_call_s.map_or(0.0, |last| (last - l).max(0.0))));
    }
    let lags = |lag: fn(&crate::report::EndpointReport) -> Option<f64>| {
        LagSummary::of(report.endpoints.iter().filter_map(lag).collect())
    };
    let lag = LagReport {
        discovery: lags(|e| e.discovery_lag_s),
        drain: lags(|e| e.drain_lag_s),
    };
    report.lag = (lag.discovery.is_some() || lag.drain.is_some()).then_some(lag);
}

/// Which pod each connection to a Service address landed on, connection
/// by connection, in order; `known` maps pod names to addresses.
pub(super) fn generations(
    pool: &Pool,
    start: Instant,
    known: &HashMap<String, String>,
) -> Vec<ConnectionGenerations> {
    pool.every_member()
        .iter()
        .map(|member| ConnectionGenerations {
            connection: member.endpoint().label().to_string(),
            generations: member
                .generations()
                .into_iter()
                .map(|g| GenerationReport {
                    at_s: seconds_from(start, g.at),
                    address: g.identity.as_ref().and_then(|pod| known.get(pod).cloned()),
                    pod: g.identity,
                })
                .collect(),
        })
        .collect()
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
